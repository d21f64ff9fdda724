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
		return AppointmentResult{}, ErrPaymentsUnavailable
	}
	if c.OrderID == "" || c.PaymentID == "" || !h.gateway.VerifyPaymentSignature(c.OrderID, c.PaymentID, c.Signature) {
		return AppointmentResult{}, ErrBadSignature
	}
	doctorID, apptID, ours, err := h.ourOrder(ctx, m, c.OrderID)
	if err != nil {
		return AppointmentResult{}, err
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
		DoctorID: doctorID, AppointmentID: apptID, PaymentID: p.ID, OrderID: c.OrderID, Amount: p.Amount, Currency: p.Currency,
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
		return h.gateway.Capture(ctx, p.ID, p.Amount, p.Currency)
	}
	return GatewayPayment{}, domain.Detail(ErrPaymentNotCaptured, "the payment is %s", p.Status)
}
