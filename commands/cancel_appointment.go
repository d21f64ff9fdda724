package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// CancelAppointment frees an appointment's slot at once.
type CancelAppointment struct {
	DoctorID      string
	AppointmentID string
	Reason        string
}

// CancelAppointment runs the command.
func (h *Handler) CancelAppointment(ctx context.Context, m Meta, c CancelAppointment) (AppointmentResult, error) {
	if c.Reason != "" && m.Actor.Role == domain.RolePatient {
		// The reason is sealed with the patient's key (see warmKey).
		if err := h.warmKey(ctx, m.Actor.UserID); err != nil {
			return AppointmentResult{}, err
		}
	}
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "CancelAppointment", c.DoctorID, m, request{body: struct {
		Reason string `json:"reason"`
	}{c.Reason}}, func(d *doctor.Doctor, now time.Time) error {
		return d.Cancel(c.AppointmentID, c.Reason, m.Actor, now)
	}, h.appointmentView(c.AppointmentID, &out))
	out.Position = pos
	return out, err
}
