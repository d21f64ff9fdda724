package commands

import (
	"context"
	"errors"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// ErrPaymentNotCaptured: the provider has the payment, but not as money
// taken (it failed, or was never authorized).
var ErrPaymentNotCaptured = domain.NewError(domain.ErrConflict, "payment_not_captured", "the payment did not go through")

// VerifyPayment is what a checkout hands the patient's browser.
type VerifyPayment struct {
	OrderID   string
	PaymentID string
	Signature string
}

// VerifyPayment confirms a checkout: the signature must be the provider's
// for this order and payment; the order must be one this engine recorded
// for an appointment of the caller; the payment, as the provider reports
// it, must be of that order, for its amount and currency, and captured (an
// authorized one is captured here). Then the payment is recorded, once per
// payment id: a held appointment becomes confirmed, or, if it can no longer
// use the money, the payment is recorded as due back (the payments worker
// refunds it).
func (h *Handler) VerifyPayment(ctx context.Context, m Meta, c VerifyPayment) (AppointmentResult, error) {
	if h.gateway == nil {
		return AppointmentResult{}, ErrPaymentsDisabled
	}
	if c.OrderID == "" || c.PaymentID == "" || !h.gateway.VerifyPaymentSignature(c.OrderID, c.PaymentID, c.Signature) {
		return AppointmentResult{}, ErrBadSignature
	}
	doctorID, apptID, _, err := h.ourOrder(ctx, m, c.OrderID)
	if err != nil {
		return AppointmentResult{}, err
	}
	return h.SettlePayment(ctx, m, SettlePayment{DoctorID: doctorID, AppointmentID: apptID, OrderID: c.OrderID, PaymentID: c.PaymentID})
}

// SettlePayment records a payment the provider holds against one of an
// appointment's orders: the order must be recorded on the doctor's stream
// for that appointment, the payment (as the provider reports it, never as
// a client or a webhook says) must be of that order, for its amount and
// currency, and captured (an authorized one is captured here). The verify
// route and the payments worker (webhooks, reconciliation) both end here.
type SettlePayment struct {
	DoctorID      string
	AppointmentID string
	OrderID       string
	PaymentID     string
}

// SettlePayment runs the command.
func (h *Handler) SettlePayment(ctx context.Context, m Meta, c SettlePayment) (AppointmentResult, error) {
	if h.gateway == nil {
		return AppointmentResult{}, ErrPaymentsDisabled
	}
	var ours doctor.Order
	found := false
	err := h.Doctor(ctx, c.DoctorID, func(d *doctor.Doctor) {
		id, o, ok := d.OrderOf(c.OrderID)
		ours, found = o, ok && id == c.AppointmentID
	})
	if err != nil {
		return AppointmentResult{}, err
	}
	if !found {
		return AppointmentResult{}, domain.Detail(doctor.ErrPaymentMismatch, "order %q is not an order of appointment %s", c.OrderID, c.AppointmentID)
	}
	p, err := h.gateway.Payment(ctx, c.PaymentID)
	if err != nil {
		return AppointmentResult{}, err
	}
	if p, err = h.collect(ctx, p, c.OrderID, ours); err != nil {
		return AppointmentResult{}, err
	}
	m.IdempotencyKey = "" // idempotent by payment id
	return h.CapturePayment(ctx, m, CapturePayment{
		DoctorID: c.DoctorID, AppointmentID: c.AppointmentID, PaymentID: p.ID, OrderID: c.OrderID, Amount: p.Amount, Currency: p.Currency,
	})
}

// ourOrder finds the appointment of a provider order: the order's notes
// name the doctor, and that doctor's stream must have recorded the order
// for an appointment of the caller (a patient sees another's as not found).
func (h *Handler) ourOrder(ctx context.Context, m Meta, orderID string) (doctorID, apptID string, ours doctor.Order, err error) {
	o, err := h.gateway.Order(ctx, orderID)
	if errors.Is(err, ErrGatewayNotFound) {
		return "", "", doctor.Order{}, domain.Detail(ErrBadSignature, "no such order")
	}
	if err != nil {
		return "", "", doctor.Order{}, err
	}
	doctorID = o.Notes["doctor_id"]
	var patientID string
	err = h.Doctor(ctx, doctorID, func(d *doctor.Doctor) {
		var ok bool
		if apptID, ours, ok = d.OrderOf(orderID); ok {
			a, _ := d.Appointment(apptID)
			patientID = a.PatientID
		}
	})
	switch {
	case errors.Is(err, doctor.ErrDoctorNotFound) || (err == nil && apptID == ""):
		return "", "", doctor.Order{}, domain.Detail(ErrBadSignature, "the order is not one of this server's")
	case err != nil:
		return "", "", doctor.Order{}, err
	case m.Actor.Role == domain.RolePatient && patientID != m.Actor.UserID:
		return "", "", doctor.Order{}, doctor.ErrAppointmentNotFound
	}
	return doctorID, apptID, ours, nil
}

// collect checks a payment against our order and makes sure its money is
// taken: an authorized payment is captured.
func (h *Handler) collect(ctx context.Context, p GatewayPayment, orderID string, ours doctor.Order) (GatewayPayment, error) {
	if p.OrderID != orderID {
		return GatewayPayment{}, domain.Detail(doctor.ErrPaymentMismatch, "payment %s is not a payment of order %s", p.ID, orderID)
	}
	if p.Amount != ours.Amount || p.Currency != ours.Currency {
		return GatewayPayment{}, domain.Detail(doctor.ErrPaymentMismatch, "the payment is %d %s, the order %d %s", p.Amount, p.Currency, ours.Amount, ours.Currency)
	}
	switch p.Status {
	case GatewayPaymentCaptured, GatewayPaymentRefunded:
		return p, nil
	case GatewayPaymentAuthorized:
		captured, err := h.gateway.Capture(ctx, p.ID, p.Amount, p.Currency)
		if errors.Is(err, ErrGatewayRefused) {
			// Another process captured it first: what counts is how the
			// provider has it now.
			if now, ferr := h.gateway.Payment(ctx, p.ID); ferr == nil && now.Status == GatewayPaymentCaptured {
				return now, nil
			}
		}
		return captured, err
	}
	return GatewayPayment{}, domain.Detail(ErrPaymentNotCaptured, "the payment is %s", p.Status)
}
