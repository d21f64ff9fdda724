package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// CompleteAppointment marks an appointment as attended.
type CompleteAppointment struct {
	DoctorID      string
	AppointmentID string
}

// CompleteAppointment runs the command.
func (h *Handler) CompleteAppointment(ctx context.Context, m Meta, c CompleteAppointment) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "CompleteAppointment", c.DoctorID, m, request{body: struct{}{}}, func(d *doctor.Doctor, now time.Time) error {
		return d.Complete(c.AppointmentID, m.Actor, now)
	}, h.appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
