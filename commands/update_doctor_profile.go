package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// ProfilePatch changes some profile fields; nil fields stay as they are.
type ProfilePatch struct {
	Name            *string
	Speciality      *string
	Degree          *string
	ExperienceYears *int
	About           *string
	Fees            *int64
	Currency        *string
	Address         *string
	ImageURL        *string
	Available       *bool
}

// Apply merges the patch into p.
func (pp ProfilePatch) Apply(p doctor.Profile) doctor.Profile {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&p.Name, pp.Name)
	set(&p.Speciality, pp.Speciality)
	set(&p.Degree, pp.Degree)
	set(&p.About, pp.About)
	set(&p.Currency, pp.Currency)
	set(&p.Address, pp.Address)
	set(&p.ImageURL, pp.ImageURL)
	if pp.ExperienceYears != nil {
		p.ExperienceYears = *pp.ExperienceYears
	}
	if pp.Fees != nil {
		p.Fees = *pp.Fees
	}
	if pp.Available != nil {
		p.Available = *pp.Available
	}
	return p
}

// UpdateDoctorProfile changes a doctor's profile.
type UpdateDoctorProfile struct {
	DoctorID string
	Patch    ProfilePatch
}

// UpdateDoctorProfile runs the command. Admins may change everything; the
// API restricts what a doctor may change of their own profile, and a doctor
// cannot make themselves available after an admin made them unavailable
// (doctor.ErrAvailabilityLocked).
func (h *Handler) UpdateDoctorProfile(ctx context.Context, m Meta, c UpdateDoctorProfile) (DoctorResult, error) {
	if err := mayManageDoctor(m, c.DoctorID); err != nil {
		return DoctorResult{}, err
	}
	var out DoctorResult
	pos, err := h.execDoctor(ctx, "UpdateDoctorProfile", c.DoctorID, m, request{body: c.Patch}, func(d *doctor.Doctor, _ time.Time) error {
		if !d.Registered() {
			return doctor.ErrDoctorNotFound
		}
		p := c.Patch.Apply(d.Profile())
		if m.Actor.Role == domain.RoleAdmin || m.Actor.Role == domain.RoleSystem {
			return d.AdminUpdateProfile(p, c.Patch.Available != nil)
		}
		return d.UpdateOwnProfile(p)
	}, doctorView(&out))
	out.Position = pos
	return out, err
}
