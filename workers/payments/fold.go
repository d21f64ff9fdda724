package payments

import (
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/payment"
	"github.com/prescripto/prescripto/projections"
)

// Webhook event types (Razorpay's names).
const (
	webhookPaymentAuthorized = "payment.authorized"
	webhookPaymentCaptured   = "payment.captured"
	webhookPaymentFailed     = "payment.failed"
	webhookOrderPaid         = "order.paid"
	webhookRefundProcessed   = "refund.processed"
	webhookRefundFailed      = "refund.failed"
)

// maxOrphanAge bounds how long a webhook about an order the log does not
// know is kept waiting for that order to be recorded.
const maxOrphanAge = 24 * time.Hour

// fold applies one event to the state (w.mu held) and returns the
// appointment it touched, if any.
func (w *Worker) fold(e projections.Event) *appt {
	if ev, ok := e.Data.(payment.WebhookReceived); ok {
		return w.foldWebhook(ev, e.RecordedAt)
	}
	ev, ok := e.Data.(doctor.AppointmentEvent)
	if !ok {
		return nil
	}
	if r, ok := ev.(doctor.SlotReserved); ok {
		if r.PaymentStatus == doctor.PaymentNotRequired {
			return nil
		}
		a := &appt{doctorID: r.DoctorID, id: r.AppointmentID, status: r.Status, start: r.Start, captured: map[string]int64{}}
		if r.HoldExpiresAt != nil {
			a.holdUntil = *r.HoldExpiresAt
		}
		w.appts[a.id] = a
		return a
	}
	a := w.appts[ev.AppointmentRef()]
	if a == nil {
		return nil
	}
	w.foldAppointment(a, ev, e.RecordedAt)
	w.foldPayment(a, ev, e.RecordedAt)
	return a
}

func (w *Worker) foldAppointment(a *appt, ev doctor.AppointmentEvent, at time.Time) {
	switch e := ev.(type) {
	case doctor.AppointmentConfirmed:
		a.status, a.holdUntil = doctor.StatusConfirmed, time.Time{}
	case doctor.HoldExpired:
		a.status = doctor.StatusExpired
	case doctor.AppointmentCancelled:
		a.status = doctor.StatusCancelled
		if e.RefundDue && a.current != "" {
			amount := e.RefundAmount
			if amount == 0 { // recorded before refund amounts were kept
				amount = a.captured[a.current]
			}
			a.owe(a.current, amount)
		}
	case doctor.AppointmentRescheduled:
		a.start = e.Start
	case doctor.AppointmentCompleted:
		a.status = doctor.StatusCompleted
	case doctor.AppointmentMarkedNoShow:
		a.status = doctor.StatusNoShow
	}
}

func (w *Worker) foldPayment(a *appt, ev doctor.AppointmentEvent, at time.Time) {
	switch e := ev.(type) {
	case doctor.PaymentOrderRequested:
		a.claimAt = e.RequestedAt
	case doctor.PaymentOrderCreated:
		a.orders = append(a.orders, e.OrderID)
		a.orderedAt, a.claimAt = at, time.Time{}
		a.nextPoll, a.pollWait = at.Add(w.cfg.PollAfter), w.cfg.PollAfter
		w.orders[e.OrderID] = a.id
		w.adoptOrphans(e.OrderID, a)
	case doctor.PaymentCaptured:
		a.captured[e.PaymentID] = e.Amount
		w.payments[e.PaymentID] = a.id
		if e.RefundDue {
			a.owe(e.PaymentID, e.Amount)
		} else if a.current == "" {
			a.current = e.PaymentID
		}
	case doctor.PaymentFailed:
		if a.failed == nil {
			a.failed = map[string]bool{}
		}
		a.failed[e.PaymentID] = true
	case doctor.RefundIssued:
		if a.refunds == nil {
			a.refunds = map[string]*refund{}
		}
		a.refunds[e.RefundID] = &refund{paymentID: e.PaymentID, amount: e.Amount, next: at.Add(w.cfg.PollAfter), wait: w.cfg.PollAfter}
	case doctor.RefundProcessed:
		if r := a.refunds[e.RefundID]; r != nil {
			r.state = refundProcessed
		}
	case doctor.RefundFailed:
		if r := a.refunds[e.RefundID]; r != nil {
			r.state = refundFailed
		}
	}
}

// owe records that amount of payment p is to be given back.
func (a *appt) owe(p string, amount int64) {
	if a.due == nil {
		a.due = map[string]int64{}
	}
	a.due[p] = min(a.due[p]+amount, a.captured[p])
}

// foldWebhook routes a webhook to its appointment: by its order (or, for
// a refund, its payment) as this log recorded them; the ids in a webhook
// are never trusted to name an appointment. A webhook about an order the
// log does not know yet waits (bounded) for the order to be recorded.
func (w *Worker) foldWebhook(ev payment.WebhookReceived, at time.Time) *appt {
	f := fact{WebhookReceived: ev, at: at}
	switch ev.Event {
	case webhookPaymentAuthorized, webhookPaymentCaptured, webhookOrderPaid, webhookPaymentFailed,
		webhookRefundProcessed, webhookRefundFailed:
	default:
		w.metrics.ignored(ev.Event)
		return nil
	}
	id, ok := w.orders[ev.OrderID]
	if !ok && ev.PaymentID != "" {
		id, ok = w.payments[ev.PaymentID]
	}
	if !ok {
		w.orphans = append(w.orphans, f)
		w.dropOldOrphans(at)
		return nil
	}
	a := w.appts[id]
	a.facts = append(a.facts, f)
	return a
}

// adoptOrphans hands the waiting webhooks of a newly recorded order to its
// appointment.
func (w *Worker) adoptOrphans(orderID string, a *appt) {
	kept := w.orphans[:0]
	for _, f := range w.orphans {
		if f.OrderID == orderID {
			a.facts = append(a.facts, f)
			continue
		}
		kept = append(kept, f)
	}
	clear(w.orphans[len(kept):])
	w.orphans = kept
}

func (w *Worker) dropOldOrphans(now time.Time) {
	kept := w.orphans[:0]
	for _, f := range w.orphans {
		if now.Sub(f.at) <= maxOrphanAge {
			kept = append(kept, f)
		} else {
			w.metrics.ignored("orphan")
		}
	}
	clear(w.orphans[len(kept):])
	w.orphans = kept
}
