package doctor_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// An aggregate that forgot what ended keeps what occupies a slot from the
// instant it was given on (a live appointment, a hold even once ended),
// answers the free slots as the whole history does, and ignores later
// events about what it forgot.
func TestForgetEnded(t *testing.T) {
	t.Parallel()
	past := confirmed("a-past", "p1", at(1, 9, 0))         // ends 09:30 on the 1st
	ongoing := confirmed("a-ongoing", "p2", at(1, 11, 30)) // ends 12:00 on the 1st
	lapsed := held("a-lapsed", "p3", at(1, 10, 0))         // its hold ran out, not expired yet
	gone := confirmed("a-gone", "p4", at(2, 9, 0))
	future := confirmed("a-future", "p5", at(3, 9, 0))
	history := setup(doctor.PaymentRequired, past, ongoing, lapsed, gone, future, cancelled(gone, domain.RoleAdmin, "", false, now0))
	full, slim := given(history...), given(history...)

	if !slim.Forget("a-gone") || slim.Forget("a-future") || slim.Forget("a-lapsed") || slim.Forget("nobody") {
		t.Fatal("Forget dropped a live appointment or kept a cancelled one")
	}
	horizon := at(1, 11, 45)
	if n := slim.ForgetEnded(horizon); n != 1 {
		t.Fatalf("ForgetEnded dropped %d, want 1 (a-past)", n)
	}
	for _, id := range []string{"a-past", "a-gone"} {
		if _, ok := slim.Appointment(id); ok {
			t.Errorf("%s is still there", id)
		}
	}
	for _, id := range []string{"a-ongoing", "a-lapsed", "a-future"} {
		if _, ok := slim.Appointment(id); !ok {
			t.Errorf("%s was forgotten", id)
		}
	}

	// Later events about forgotten appointments change nothing.
	late := []domain.Event{
		doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a-past", CompletedAt: at(2, 8, 0)},
		cancelled(future, domain.RoleAdmin, "", false, at(2, 8, 0)),
		expired(lapsed, at(2, 8, 0)),
	}
	full.Load(late...)
	slim.Load(late...)
	for _, now := range []time.Time{horizon, at(1, 13, 0), at(2, 8, 30), at(3, 8, 0)} {
		for day := 1; day <= 4; day++ {
			date := doctor.DateOf(time.Date(2026, time.June, day, 0, 0, 0, 0, time.UTC))
			if g, w := slim.FreeSlots(date, now), full.FreeSlots(date, now); !slices.Equal(g, w) {
				t.Errorf("free slots of %s at %s: %v, want %v", date, now, g, w)
			}
		}
		if g, w := slim.LiveAppointments(), full.LiveAppointments(); len(g) != len(w) {
			t.Errorf("at %s: %d live appointments, want %d", now, len(g), len(w))
		}
	}
}
