package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// RescheduleAppointment moves an appointment to another slot of the same
// doctor, atomically: the old slot is released only if the new one is taken.
type RescheduleAppointment struct {
	DoctorID      string
	AppointmentID string
	Start         time.Time
}

// RescheduleAppointment runs the command.
func (h *Handler) RescheduleAppointment(ctx context.Context, m Meta, c RescheduleAppointment) (AppointmentResult, error) {
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "RescheduleAppointment", c.DoctorID, m, request{body: struct {
		Start time.Time `json:"start"`
	}{c.Start.UTC()}}, func(d *doctor.Doctor, now time.Time) error {
		return d.Reschedule(c.AppointmentID, c.Start, m.Actor, now)
	}, appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
