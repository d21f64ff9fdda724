package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// RegisterDoctor onboards a doctor and opens the doctor's login.
type RegisterDoctor struct {
	Profile  doctor.Profile
	Email    string
	Password string
	// Schedule, when set, is set right after registration.
	Schedule *doctor.Schedule
}

// RegisterDoctor runs the command (admins only). The email is claimed
// first; then the doctor stream and the login account are opened. With an
// Idempotency-Key every step is idempotent, so a retry completes a
// registration that stopped half-way.
func (h *Handler) RegisterDoctor(ctx context.Context, m Meta, c RegisterDoctor) (DoctorResult, error) {
	const command = "RegisterDoctor"
	if m.Actor.Role != domain.RoleAdmin && m.Actor.Role != domain.RoleSystem {
		return DoctorResult{}, domain.Detail(doctor.ErrNotAllowed, "only admins onboard doctors")
	}
	p := c.Profile.Normalize()
	if err := p.Validate(); err != nil {
		return DoctorResult{}, err
	}
	if c.Schedule != nil {
		if _, err := c.Schedule.Compile(); err != nil {
			return DoctorResult{}, err
		}
		if c.Schedule.PaymentPolicy != doctor.PaymentNone && !h.payments {
			return DoctorResult{}, ErrPaymentsDisabled
		}
	}
	id := newID(m, command, "doctor")
	if _, err := h.openAccount(ctx, command, m, NewAccount{ID: id, Name: p.Name, Email: c.Email, Password: c.Password, Role: domain.RoleDoctor, DoctorID: id}); err != nil {
		return DoctorResult{}, err
	}
	var out DoctorResult
	// No claim (request{}): the doctor's id, and so its stream, is derived
	// from the key, and openAccount checked the request against the key's.
	pos, err := h.execDoctor(ctx, command, id, m, request{}, func(d *doctor.Doctor, now time.Time) error {
		if !d.Registered() {
			if err := d.Register(p, now); err != nil {
				return err
			}
		}
		if c.Schedule != nil {
			return d.SetSchedule(*c.Schedule)
		}
		return nil
	}, doctorView(&out))
	out.Position = pos
	return out, err
}
