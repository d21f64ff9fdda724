package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// ExpireHold frees a held slot whose payment did not arrive in time.
type ExpireHold struct {
	DoctorID      string
	AppointmentID string
}

// ExpireHold runs the command.
func (h *Handler) ExpireHold(ctx context.Context, m Meta, c ExpireHold) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "ExpireHold", c.DoctorID, m, request{body: struct{}{}}, func(d *doctor.Doctor, now time.Time) error {
		return d.ExpireHold(c.AppointmentID, now)
	}, h.appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
