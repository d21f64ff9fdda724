package commands

import (
	"testing"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain/doctor"
)

func TestKeyedEventsKeepTheirAppointment(t *testing.T) {
	t.Parallel()
	k := newKeyedEvents()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	appt := uuid.NewString()
	k.put(a, 7, doctor.AppointmentCancelled{AppointmentID: appt})
	k.put(b, 8, doctor.AppointmentCancelled{AppointmentID: "legacy-42"})
	k.put(c, 9, doctor.ScheduleSet{})
	for _, w := range []struct {
		id   uuid.UUID
		pos  uint64
		appt string
	}{{a, 7, appt}, {b, 8, "legacy-42"}, {c, 9, ""}} {
		pos, got, ok := k.get(w.id)
		if !ok || pos != w.pos || got != w.appt {
			t.Errorf("get(%v) = %d %q %v; want %d %q", w.id, pos, got, ok, w.pos, w.appt)
		}
	}
	if _, _, ok := k.get(uuid.New()); ok {
		t.Error("an unknown id was found")
	}
}
