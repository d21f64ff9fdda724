package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// CapturePayment records a verified payment; the same payment id twice
// records nothing.
type CapturePayment struct {
	DoctorID      string
	AppointmentID string
	PaymentID     string
	OrderID       string
	Amount        int64
}

// CapturePayment runs the command.
func (h *Handler) CapturePayment(ctx context.Context, m Meta, c CapturePayment) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "CapturePayment", c.DoctorID, m, request{body: struct {
		PaymentID string `json:"paymentId"`
		OrderID   string `json:"orderId"`
		Amount    int64  `json:"amount"`
	}{c.PaymentID, c.OrderID, c.Amount}}, func(d *doctor.Doctor, now time.Time) error {
		return d.CapturePayment(c.AppointmentID, c.PaymentID, c.OrderID, c.Amount, now)
	}, appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
