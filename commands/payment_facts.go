package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// The payment facts: each records what the provider confirmed (an order,
// a captured or failed payment, a refund and its outcome) on the doctor's
// stream, once (idempotent by the provider's ids). The payment flows
// (PayAppointment, VerifyPayment) and the payments worker run them after
// they asked the provider; they trust their caller to have done so.

// CreatePaymentOrder records the payment order made for an appointment.
type CreatePaymentOrder struct {
	DoctorID      string
	AppointmentID string
	Order         doctor.Order
}

// CreatePaymentOrder runs the command.
func (h *Handler) CreatePaymentOrder(ctx context.Context, m Meta, c CreatePaymentOrder) (AppointmentResult, error) {
	return h.paymentFact(ctx, "CreatePaymentOrder", c.DoctorID, c.AppointmentID, m, c.Order, func(d *doctor.Doctor, _ time.Time) error {
		return d.CreatePaymentOrder(c.AppointmentID, c.Order, m.Actor)
	})
}

// CapturePayment records a verified payment; the same payment id twice
// records nothing.
type CapturePayment struct {
	DoctorID      string
	AppointmentID string
	PaymentID     string
	OrderID       string
	Amount        int64
	Currency      string
}

// CapturePayment runs the command.
func (h *Handler) CapturePayment(ctx context.Context, m Meta, c CapturePayment) (AppointmentResult, error) {
	return h.paymentFact(ctx, "CapturePayment", c.DoctorID, c.AppointmentID, m, c, func(d *doctor.Doctor, now time.Time) error {
		return d.CapturePayment(c.AppointmentID, c.PaymentID, c.OrderID, c.Amount, c.Currency, now)
	})
}

// FailPayment records a failed payment attempt.
type FailPayment struct {
	DoctorID      string
	AppointmentID string
	OrderID       string
	PaymentID     string
	Reason        string
}

// FailPayment runs the command.
func (h *Handler) FailPayment(ctx context.Context, m Meta, c FailPayment) (AppointmentResult, error) {
	return h.paymentFact(ctx, "FailPayment", c.DoctorID, c.AppointmentID, m, c, func(d *doctor.Doctor, _ time.Time) error {
		return d.FailPayment(c.AppointmentID, c.OrderID, c.PaymentID, c.Reason)
	})
}

// IssueRefund records a refund the provider accepted, once per refund id.
type IssueRefund struct {
	DoctorID      string
	AppointmentID string
	PaymentID     string
	RefundID      string
	Amount        int64
}

// IssueRefund runs the command.
func (h *Handler) IssueRefund(ctx context.Context, m Meta, c IssueRefund) (AppointmentResult, error) {
	return h.paymentFact(ctx, "IssueRefund", c.DoctorID, c.AppointmentID, m, c, func(d *doctor.Doctor, now time.Time) error {
		return d.IssueRefund(c.AppointmentID, c.PaymentID, c.RefundID, c.Amount, now)
	})
}

// ProcessRefund records that a refund was paid back (issuing it first if
// the log has not seen it yet).
type ProcessRefund struct {
	DoctorID      string
	AppointmentID string
	PaymentID     string
	RefundID      string
	Amount        int64
}

// ProcessRefund runs the command.
func (h *Handler) ProcessRefund(ctx context.Context, m Meta, c ProcessRefund) (AppointmentResult, error) {
	return h.paymentFact(ctx, "ProcessRefund", c.DoctorID, c.AppointmentID, m, c, func(d *doctor.Doctor, now time.Time) error {
		return d.ProcessRefund(c.AppointmentID, c.PaymentID, c.RefundID, c.Amount, now)
	})
}

// FailRefund records that a pending refund failed.
type FailRefund struct {
	DoctorID      string
	AppointmentID string
	RefundID      string
	Reason        string
}

// FailRefund runs the command.
func (h *Handler) FailRefund(ctx context.Context, m Meta, c FailRefund) (AppointmentResult, error) {
	return h.paymentFact(ctx, "FailRefund", c.DoctorID, c.AppointmentID, m, c, func(d *doctor.Doctor, now time.Time) error {
		return d.FailRefund(c.AppointmentID, c.RefundID, c.Reason, now)
	})
}

// paymentFact runs one payment fact on a doctor stream and answers the
// appointment as it left it.
func (h *Handler) paymentFact(ctx context.Context, command, doctorID, apptID string, m Meta, body any, decide decideFunc) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = apptID
	pos, err := h.execDoctor(ctx, command, doctorID, m, request{body: body}, decide, h.appointmentView(apptID, &out))
	out.Position = pos
	return out, err
}
