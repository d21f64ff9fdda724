package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// ErrOrderInFlight: another request is creating the order and did not
// finish within the wait.
var ErrOrderInFlight = domain.NewError(domain.ErrUnavailable, "payment_order_pending", "the payment order is being created; retry in a moment")

// PayAppointment asks for the payment order of an appointment.
type PayAppointment struct {
	DoctorID      string
	AppointmentID string
}

// PaymentOrder is the order a patient pays.
type PaymentOrder struct {
	OrderID       string
	Amount        int64
	Currency      string
	KeyID         string
	AppointmentID string
	HoldExpiresAt time.Time // zero unless the appointment is held
	CheckoutURL   string
	// Created: this call created the order (else it existed).
	Created  bool
	Position uint64
}

// PayAppointment returns the appointment's payment order, creating it at
// the provider the first time: amount and currency are the appointment's
// fee from the log, receipt its id. Concurrent calls, also from other
// processes, make one order: the caller whose claim
// (PaymentOrderRequested) is appended creates it, the others wait for it.
// A claimer that died is replaced once its claim is older than the order
// lease; the new claimer first asks the provider for an order with the
// appointment's receipt, so the order the dead one may have made is
// adopted, not duplicated.
func (h *Handler) PayAppointment(ctx context.Context, m Meta, c PayAppointment) (PaymentOrder, error) {
	if h.gateway == nil {
		return PaymentOrder{}, ErrPaymentsDisabled
	}
	m.IdempotencyKey = "" // idempotent by nature: one order per appointment
	m.target = c.AppointmentID
	// Waiting for another request's order is bounded in real time (the
	// lease is in the log's time).
	deadline := time.Now().Add(h.orderWait)
	for attempt := 0; ; attempt++ {
		var claim doctor.OrderClaim
		var out PaymentOrder
		_, err := h.execDoctor(ctx, "RequestPaymentOrder", c.DoctorID, m, request{}, func(d *doctor.Doctor, now time.Time) error {
			var err error
			claim, err = d.RequestPaymentOrder(c.AppointmentID, m.Actor, now, h.orderLease)
			return err
		}, h.orderView(c.AppointmentID, &out))
		if err != nil {
			return PaymentOrder{}, err
		}
		switch claim {
		case doctor.OrderExists:
			return out, nil
		case doctor.OrderClaimed:
			return h.createOrder(ctx, m, c, out)
		}
		if !time.Now().Before(deadline) {
			return PaymentOrder{}, ErrOrderInFlight
		}
		// The order may come from another process: the next decision,
		// recording nothing, looks at the stream before it answers.
		if err := backoff(ctx, min(attempt, 4)); err != nil {
			return PaymentOrder{}, err
		}
	}
}

// orderView reads the appointment's current order (if any) and what an
// order for it asks for.
func (h *Handler) orderView(id string, out *PaymentOrder) viewFunc {
	return func(d *doctor.Doctor) {
		a, _ := d.Appointment(id)
		*out = PaymentOrder{
			Amount: a.Fees, Currency: a.Currency, KeyID: h.gateway.KeyID(), AppointmentID: id, HoldExpiresAt: a.HoldExpiresAt,
		}
		if o, ok := d.CurrentOrder(id); ok {
			out.OrderID, out.Amount, out.Currency = o.ID, o.Amount, o.Currency
			out.CheckoutURL = h.gateway.CheckoutURL(o.ID)
		}
	}
}

// createOrder is the claimer's part: adopt an order the provider already
// has for the appointment, or create one, then record it.
func (h *Handler) createOrder(ctx context.Context, m Meta, c PayAppointment, want PaymentOrder) (PaymentOrder, error) {
	o, found, err := h.gateway.OrderByReceipt(ctx, c.AppointmentID)
	if err != nil {
		return PaymentOrder{}, err
	}
	if !found {
		o, err = h.gateway.CreateOrder(ctx, NewOrder{
			Amount: want.Amount, Currency: want.Currency, Receipt: c.AppointmentID,
			Notes: map[string]string{"appointment_id": c.AppointmentID, "doctor_id": c.DoctorID},
		})
		if err != nil {
			return PaymentOrder{}, err
		}
	}
	res, err := h.CreatePaymentOrder(ctx, Meta{Actor: domain.Actor{Role: domain.RoleSystem}, CorrelationID: m.CorrelationID, CausationID: m.CausationID, RequestID: m.RequestID, ClientRequestID: m.ClientRequestID},
		CreatePaymentOrder{DoctorID: c.DoctorID, AppointmentID: c.AppointmentID, Order: doctor.Order{ID: o.ID, Amount: o.Amount, Currency: o.Currency}})
	if err != nil {
		return PaymentOrder{}, err
	}
	a := res.Appointment
	return PaymentOrder{
		OrderID: o.ID, Amount: o.Amount, Currency: o.Currency, KeyID: h.gateway.KeyID(), AppointmentID: a.ID,
		HoldExpiresAt: a.HoldExpiresAt, CheckoutURL: h.gateway.CheckoutURL(o.ID), Created: true, Position: res.Position,
	}, nil
}
