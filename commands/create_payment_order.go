package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// CreatePaymentOrder records the payment order made for an appointment.
type CreatePaymentOrder struct {
	DoctorID      string
	AppointmentID string
	OrderID       string
}

// CreatePaymentOrder runs the command.
func (h *Handler) CreatePaymentOrder(ctx context.Context, m Meta, c CreatePaymentOrder) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "CreatePaymentOrder", c.DoctorID, m, request{body: struct {
		OrderID string `json:"orderId"`
	}{c.OrderID}}, func(d *doctor.Doctor, _ time.Time) error {
		return d.CreatePaymentOrder(c.AppointmentID, c.OrderID, m.Actor)
	}, appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
