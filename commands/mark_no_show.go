package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// MarkNoShow marks an appointment as missed by the patient.
type MarkNoShow struct {
	DoctorID      string
	AppointmentID string
}

// MarkNoShow runs the command.
func (h *Handler) MarkNoShow(ctx context.Context, m Meta, c MarkNoShow) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "MarkNoShow", c.DoctorID, m, request{body: struct{}{}}, func(d *doctor.Doctor, now time.Time) error {
		return d.MarkNoShow(c.AppointmentID, m.Actor, now)
	}, h.appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
