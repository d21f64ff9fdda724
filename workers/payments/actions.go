package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// decide lists what is due for the appointment at now (w.mu held). The
// actions capture copies of what they need: they run without the lock.
func (w *Worker) decide(a *appt, now time.Time) []action {
	var acts []action
	for _, f := range a.openFacts() {
		if act, ok := w.factAction(a, f); ok {
			acts = append(acts, act)
		}
	}
	switch {
	case a.status == doctor.StatusHeld && len(a.orders) == 0 && a.uncheckedClaim():
		if !now.Before(a.claimAt.Add(w.cfg.OrderLease)) {
			acts = append(acts, w.adopt(a))
		}
	case a.status == doctor.StatusHeld && len(a.orders) == 0:
		if !now.Before(a.holdUntil) {
			acts = append(acts, w.expire(a))
		}
	case a.status == doctor.StatusHeld:
		inLead := !now.Before(a.holdUntil.Add(-w.cfg.ExpiryLead))
		if (inLead && !a.leadChecked) || !now.Before(a.holdUntil) || !now.Before(a.nextPoll) {
			acts = append(acts, w.reconcile(a, now))
		}
	case a.status == doctor.StatusConfirmed && a.current == "" && len(a.orders) > 0 && now.Before(a.start):
		if !now.Before(a.nextPoll) {
			acts = append(acts, w.reconcile(a, now))
		}
	}
	for p := range a.due {
		if left := a.refundLeft(p); left > 0 {
			acts = append(acts, w.refund(a, p, left, a.failedRefunds(p)))
		}
	}
	for id, r := range a.refunds {
		if r.state == refundPending && !now.Before(r.next) {
			acts = append(acts, w.followRefund(a, id, r))
		}
	}
	return acts
}

// meta is the metadata of the worker's commands about an appointment.
func meta(a *appt) commands.Meta {
	return commands.Meta{Actor: domain.System, CorrelationID: "payments-" + a.id}
}

// factAction acts on a verified webhook. Nothing in it is taken as true
// but its ids: a payment is settled as the provider reports it when asked.
func (w *Worker) factAction(a *appt, f fact) (action, bool) {
	doctorID, id, m := a.doctorID, a.id, meta(a)
	m.CausationID = f.EventID
	switch f.Event {
	case webhookPaymentAuthorized, webhookPaymentCaptured, webhookOrderPaid:
		orderID := f.OrderID
		return action{"settle " + f.PaymentID, f.EventID, func(ctx context.Context) error {
			return w.settle(ctx, m, doctorID, id, orderID, f.PaymentID)
		}}, true
	case webhookPaymentFailed:
		return action{"fail " + f.PaymentID, f.EventID, func(ctx context.Context) error {
			_, err := w.cfg.Commands.FailPayment(ctx, m, commands.FailPayment{DoctorID: doctorID, AppointmentID: id, OrderID: f.OrderID, PaymentID: f.PaymentID, Reason: f.ErrorReason})
			if err == nil {
				w.metrics.failedPayment()
			}
			return err
		}}, true
	case webhookRefundProcessed:
		return action{"refund processed " + f.RefundID, f.EventID, func(ctx context.Context) error {
			return w.refundProcessed(ctx, m, doctorID, id, f.PaymentID, f.RefundID, f.Amount)
		}}, true
	case webhookRefundFailed:
		return action{"refund failed " + f.RefundID, f.EventID, func(ctx context.Context) error {
			_, err := w.cfg.Commands.FailRefund(ctx, m, commands.FailRefund{DoctorID: doctorID, AppointmentID: id, RefundID: f.RefundID, Reason: f.ErrorReason})
			return err
		}}, true
	}
	return action{}, false
}

// settle records a payment the provider holds for one of our orders.
func (w *Worker) settle(ctx context.Context, m commands.Meta, doctorID, apptID, orderID, paymentID string) error {
	_, err := w.cfg.Commands.SettlePayment(ctx, m, commands.SettlePayment{DoctorID: doctorID, AppointmentID: apptID, OrderID: orderID, PaymentID: paymentID})
	switch {
	case err == nil:
		w.metrics.captured()
		return nil
	case errors.Is(err, commands.ErrPaymentNotCaptured), errors.Is(err, doctor.ErrPaymentMismatch):
		// Not money we can take for this appointment: nothing to record.
		w.metrics.ignored("unsettleable")
		w.cfg.Logger.Warn().Err(err).Str("appointment_id", apptID).Str("payment_id", paymentID).Msg("payments: payment not settled")
		return nil
	}
	return err
}

// reconcile asks the provider about the appointment's orders and settles
// what was paid; a hold with nothing paid that ran out is expired; else
// the next ask is scheduled, backing off.
func (w *Worker) reconcile(a *appt, now time.Time) action {
	doctorID, id, m := a.doctorID, a.id, meta(a)
	orders := append([]string(nil), a.orders...)
	held, holdUntil := a.status == doctor.StatusHeld, a.holdUntil
	return action{"reconcile", "", func(ctx context.Context) error {
		paid := false
		for _, o := range orders {
			ps, err := w.cfg.Gateway.OrderPayments(ctx, o)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Status != commands.GatewayPaymentAuthorized && p.Status != commands.GatewayPaymentCaptured {
					continue
				}
				if err := w.settle(ctx, m, doctorID, id, o, p.ID); err != nil {
					return err
				}
				paid = true
			}
		}
		w.metrics.reconciled()
		if !paid && held && !now.Before(holdUntil) {
			return w.expireNow(ctx, m, doctorID, id)
		}
		w.mu.Lock()
		a.pollWait = min(a.pollWait*2, w.cfg.MaxPoll)
		a.nextPoll = now.Add(a.pollWait)
		if held && !now.Before(holdUntil.Add(-w.cfg.ExpiryLead)) {
			a.leadChecked = true // asked once in the last stretch: next at the expiry
		}
		w.mu.Unlock()
		return nil
	}}
}

// expire frees a hold that ran out with no order to ask about.
func (w *Worker) expire(a *appt) action {
	doctorID, id, m := a.doctorID, a.id, meta(a)
	return action{"expire", "", func(ctx context.Context) error { return w.expireNow(ctx, m, doctorID, id) }}
}

func (w *Worker) expireNow(ctx context.Context, m commands.Meta, doctorID, id string) error {
	_, err := w.cfg.Commands.ExpireHold(ctx, m, commands.ExpireHold{DoctorID: doctorID, AppointmentID: id})
	switch {
	case err == nil:
		w.metrics.expired()
		return nil
	case errors.Is(err, doctor.ErrInvalidTransition):
		return nil // confirmed, cancelled or expired meanwhile (by another worker, too)
	}
	return err
}

// adopt looks for the order a claimer that died may have made (by the
// appointment's receipt) and records it; with none, the claim is marked
// checked and the hold runs its course.
func (w *Worker) adopt(a *appt) action {
	doctorID, id, m, claim := a.doctorID, a.id, meta(a), a.claimAt
	return action{"adopt order", "", func(ctx context.Context) error {
		o, found, err := w.cfg.Gateway.OrderByReceipt(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			w.mu.Lock()
			a.claimChecked = claim
			w.mu.Unlock()
			return nil
		}
		_, err = w.cfg.Commands.CreatePaymentOrder(ctx, m, commands.CreatePaymentOrder{
			DoctorID: doctorID, AppointmentID: id, Order: doctor.Order{ID: o.ID, Amount: o.Amount, Currency: o.Currency},
		})
		return err
	}}
}

// refundNamespace roots the idempotency keys of refunds.
var refundNamespace = uuid.MustParse("5d1f0b52-8a7e-4f4e-9c55-3e1b7f1c2a90")

// refund gives back amount of payment p. The provider's idempotency key
// is derived from the appointment, the payment and the attempt (failed
// refunds of the payment so far), so a retry after a crash, or another
// worker, makes the same refund, and a refund that failed is made anew.
func (w *Worker) refund(a *appt, p string, amount int64, attempt int) action {
	doctorID, id, m := a.doctorID, a.id, meta(a)
	key := uuid.NewSHA1(refundNamespace, fmt.Appendf(nil, "%s\x00%s\x00%d", id, p, attempt)).String()
	return action{"refund " + p, "", func(ctx context.Context) error {
		r, err := w.cfg.Gateway.Refund(ctx, p, amount, key)
		if err != nil {
			return err
		}
		if _, err := w.cfg.Commands.IssueRefund(ctx, m, commands.IssueRefund{DoctorID: doctorID, AppointmentID: id, PaymentID: p, RefundID: r.ID, Amount: r.Amount}); err != nil {
			return err
		}
		w.metrics.refunded()
		return w.refundOutcome(ctx, m, doctorID, id, r)
	}}
}

// followRefund asks the provider how a pending refund stands.
func (w *Worker) followRefund(a *appt, refundID string, r *refund) action {
	doctorID, id, m, p := a.doctorID, a.id, meta(a), r.paymentID
	return action{"follow refund " + refundID, "", func(ctx context.Context) error {
		got, err := w.cfg.Gateway.RefundStatus(ctx, p, refundID)
		if err != nil {
			return err
		}
		if got.Status == commands.GatewayRefundPending {
			w.mu.Lock()
			r.wait = min(r.wait*2, w.cfg.MaxPoll)
			r.next = w.cfg.Now().Add(r.wait)
			w.mu.Unlock()
			return nil
		}
		return w.refundOutcome(ctx, m, doctorID, id, got)
	}}
}

// refundOutcome records a refund the provider processed or failed.
func (w *Worker) refundOutcome(ctx context.Context, m commands.Meta, doctorID, id string, r commands.GatewayRefund) error {
	switch r.Status {
	case commands.GatewayRefundProcessed:
		return w.refundProcessed(ctx, m, doctorID, id, r.PaymentID, r.ID, r.Amount)
	case commands.GatewayRefundFailed:
		_, err := w.cfg.Commands.FailRefund(ctx, m, commands.FailRefund{DoctorID: doctorID, AppointmentID: id, RefundID: r.ID, Reason: "the provider could not pay the refund back"})
		return err
	}
	return nil
}

func (w *Worker) refundProcessed(ctx context.Context, m commands.Meta, doctorID, id, paymentID, refundID string, amount int64) error {
	_, err := w.cfg.Commands.ProcessRefund(ctx, m, commands.ProcessRefund{DoctorID: doctorID, AppointmentID: id, PaymentID: paymentID, RefundID: refundID, Amount: amount})
	if errors.Is(err, domain.ErrInvalid) || errors.Is(err, doctor.ErrPaymentUnknown) {
		w.metrics.ignored("refund")
		w.cfg.Logger.Warn().Err(err).Str("appointment_id", id).Str("refund_id", refundID).Msg("payments: refund outcome not recorded")
		return nil
	}
	return err
}
