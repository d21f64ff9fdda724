package analytics

import (
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// State is the part of the model an event is folded into: doctors and
// appointments by id. A store loads the entries a batch touches into one,
// folds, and writes back what changed.
type State struct {
	Doctors      map[string]*Doctor
	Appointments map[string]*Appointment
}

// NewState is an empty state.
func NewState() State {
	return State{Doctors: map[string]*Doctor{}, Appointments: map[string]*Appointment{}}
}

// Change is what folding an event did to an appointment: the appointment
// as it is now and, when it existed before, its day and counts before.
type Change struct {
	Appointment *Appointment
	Existed     bool
	WasDay      DayKey
	Was         Counts
}

// Apply folds e into s. An event already applied (at or below the
// position of the entry it changes) changes nothing, so a replay is a
// no-op; an event about an appointment s does not have is ignored, as the
// first reservation of an id stands. It returns the change to an
// appointment, if any; doctors change in place. Doctors are created as
// events name them (a registration may come after a replayed one of
// another generation of the log: Registered says which are real).
func (s State) Apply(e projections.Event) (Change, bool) {
	de, ok := e.Data.(doctor.DoctorEvent)
	if !ok {
		return Change{}, false
	}
	d := s.Doctors[de.DoctorRef()]
	if d == nil {
		d = &Doctor{ID: de.DoctorRef()}
		s.Doctors[d.ID] = d
	}
	switch ev := e.Data.(type) {
	case doctor.SlotReserved:
		if _, dup := s.Appointments[ev.AppointmentID]; dup {
			return Change{}, false
		}
		a := NewAppointment(ev, d.ZoneAt(e.Position), e.Position)
		s.Appointments[a.ID] = a
		return Change{Appointment: a}, true
	case doctor.AppointmentEvent:
		a := s.Appointments[ev.AppointmentRef()]
		if a == nil || e.Position <= a.Position {
			return Change{}, false
		}
		c := Change{Appointment: a, Existed: true, WasDay: a.Day(), Was: a.Counts()}
		a.Fold(ev, d.ZoneAt(e.Position), e.Position)
		return c, true
	}
	if e.Position > d.Position {
		FoldDoctor(d, e.Data, e.Position, e.RecordedAt)
	}
	return Change{}, false
}
