package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// SetSchedule replaces a doctor's booking rules.
type SetSchedule struct {
	DoctorID string
	Schedule doctor.Schedule
}

// SetSchedule runs the command. Admins, and the doctor for themself, may.
func (h *Handler) SetSchedule(ctx context.Context, m Meta, c SetSchedule) (DoctorResult, error) {
	if err := mayManageDoctor(m, c.DoctorID); err != nil {
		return DoctorResult{}, err
	}
	// A schedule that is wrong is told so before whether it could take
	// payments.
	if _, err := c.Schedule.Compile(); err != nil {
		return DoctorResult{}, err
	}
	if c.Schedule.PaymentPolicy != doctor.PaymentNone && !h.payments {
		return DoctorResult{}, ErrPaymentsDisabled
	}
	var out DoctorResult
	pos, err := h.execDoctor(ctx, "SetSchedule", c.DoctorID, m, request{body: c.Schedule}, func(d *doctor.Doctor, _ time.Time) error {
		return d.SetSchedule(c.Schedule)
	}, doctorView(&out))
	out.Position = pos
	return out, err
}

// mayManageDoctor lets admins and the doctor themself manage a doctor.
func mayManageDoctor(m Meta, doctorID string) error {
	switch m.Actor.Role {
	case domain.RoleAdmin, domain.RoleSystem:
		return nil
	case domain.RoleDoctor:
		if m.Actor.UserID == doctorID {
			return nil
		}
		return doctor.ErrDoctorNotFound
	}
	return domain.Detail(doctor.ErrNotAllowed, "only admins and the doctor may do this")
}
