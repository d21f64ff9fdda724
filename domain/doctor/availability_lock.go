package doctor

import "github.com/prescripto/prescripto/domain"

// ErrAvailabilityLocked: the doctor tried to become available again after
// an admin made them unavailable; only an admin can undo that.
var ErrAvailabilityLocked = domain.NewError(domain.ErrForbidden, "availability_locked", "an admin made this doctor unavailable; only an admin can make them available again")

// Event types of the admin's availability lock.
const (
	TypeAvailabilityLocked   = "doctor.AvailabilityLocked.v1"
	TypeAvailabilityUnlocked = "doctor.AvailabilityUnlocked.v1"
)

// AvailabilityLocked: an admin set the doctor unavailable; the doctor's own
// profile changes cannot set available again until AvailabilityUnlocked.
type AvailabilityLocked struct {
	DoctorID string `json:"doctorId"`
}

// AvailabilityUnlocked: an admin set the doctor available again.
type AvailabilityUnlocked struct {
	DoctorID string `json:"doctorId"`
}

func (AvailabilityLocked) EventType() string     { return TypeAvailabilityLocked }
func (AvailabilityUnlocked) EventType() string   { return TypeAvailabilityUnlocked }
func (e AvailabilityLocked) DoctorRef() string   { return e.DoctorID }
func (e AvailabilityUnlocked) DoctorRef() string { return e.DoctorID }

// AvailabilityLockedByAdmin reports whether an admin made the doctor
// unavailable (and has not made them available since).
func (d *Doctor) AvailabilityLockedByAdmin() bool { return d.availabilityLocked }

// UpdateOwnProfile is the doctor's own profile change: as UpdateProfile,
// except that it cannot make the doctor available while an admin's lock
// stands (ErrAvailabilityLocked).
func (d *Doctor) UpdateOwnProfile(p Profile) error {
	if d.registered && d.availabilityLocked && p.Available {
		return ErrAvailabilityLocked
	}
	return d.UpdateProfile(p)
}

// AdminUpdateProfile is an admin's profile change. When the admin set
// availability (setsAvailability), unavailable locks it against the
// doctor's own changes and available lifts the lock.
func (d *Doctor) AdminUpdateProfile(p Profile, setsAvailability bool) error {
	if err := d.UpdateProfile(p); err != nil {
		return err
	}
	switch {
	case !setsAvailability:
	case !p.Available && !d.availabilityLocked:
		d.record(AvailabilityLocked{DoctorID: d.id})
	case p.Available && d.availabilityLocked:
		d.record(AvailabilityUnlocked{DoctorID: d.id})
	}
	return nil
}
