package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// IssueRefund records a refund of a captured payment, once per refund id.
type IssueRefund struct {
	DoctorID      string
	AppointmentID string
	PaymentID     string
	RefundID      string
	Amount        int64
}

// IssueRefund runs the command.
func (h *Handler) IssueRefund(ctx context.Context, m Meta, c IssueRefund) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "IssueRefund", c.DoctorID, m, request{body: struct {
		PaymentID string `json:"paymentId"`
		RefundID  string `json:"refundId"`
		Amount    int64  `json:"amount"`
	}{c.PaymentID, c.RefundID, c.Amount}}, func(d *doctor.Doctor, now time.Time) error {
		return d.IssueRefund(c.AppointmentID, c.PaymentID, c.RefundID, c.Amount, now)
	}, appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
