package doctor_test

import (
	"testing"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

func TestAvailabilityLock(t *testing.T) {
	t.Parallel()
	off := profile()
	off.Available = false
	edited := off
	edited.About = "Edited."
	locked := []domain.Event{registered(), doctor.ProfileUpdated{DoctorID: docID, Profile: off}, doctor.AvailabilityLocked{DoctorID: docID}}
	run(t, []scenario{
		{
			name: "an admin's unavailable locks", given: []domain.Event{registered()},
			when: func(d *doctor.Doctor) error { return d.AdminUpdateProfile(off, true) },
			then: []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: off}, doctor.AvailabilityLocked{DoctorID: docID}},
		},
		{
			name: "the doctor cannot undo it", given: locked,
			when: func(d *doctor.Doctor) error { return d.UpdateOwnProfile(profile()) },
			err:  doctor.ErrAvailabilityLocked, kind: domain.ErrForbidden,
		},
		{
			name: "the doctor may still edit other fields", given: locked,
			when: func(d *doctor.Doctor) error { return d.UpdateOwnProfile(edited) },
			then: []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: edited}},
		},
		{
			name: "an admin edit without availability keeps the lock", given: locked,
			when: func(d *doctor.Doctor) error { return d.AdminUpdateProfile(edited, false) },
			then: []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: edited}},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if !d.AvailabilityLockedByAdmin() {
					t.Error("the lock went")
				}
			},
		},
		{
			name: "the admin lifts it", given: locked,
			when: func(d *doctor.Doctor) error { return d.AdminUpdateProfile(profile(), true) },
			then: []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: profile()}, doctor.AvailabilityUnlocked{DoctorID: docID}},
		},
		{
			name: "the doctor's own unavailable does not lock", given: []domain.Event{registered(), doctor.ProfileUpdated{DoctorID: docID, Profile: off}},
			when: func(d *doctor.Doctor) error { return d.UpdateOwnProfile(profile()) },
			then: []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: profile()}},
		},
	})
}
