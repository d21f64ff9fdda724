package memory

import (
	"context"
	"sync"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Slots is the free-slots read model ("free_slots"). It folds each doctor's
// events into the doctor aggregate itself and asks it which slots are free,
// so the read side applies exactly the invariants the command side decides
// with (grid, zone and DST, notice, window, time off, overlaps).
type Slots struct {
	projections.Progress
	mu      sync.RWMutex
	doctors map[string]*doctor.Doctor
}

// NewSlots returns an empty free-slots model.
func NewSlots() *Slots { return &Slots{doctors: map[string]*doctor.Doctor{}} }

// Name implements projections.Projection.
func (*Slots) Name() string { return "free_slots" }

// Checkpoint implements projections.Projection.
func (s *Slots) Checkpoint(context.Context) (uint64, error) { return s.Position(), nil }

// Apply implements projections.Projection.
func (s *Slots) Apply(_ context.Context, e projections.Event) error {
	if e.Position <= s.Position() {
		return nil
	}
	if id, ok := doctorOf(e.Data); ok {
		s.mu.Lock()
		d := s.doctors[id]
		if d == nil {
			d = doctor.New(id)
			s.doctors[id] = d
		}
		d.Load(e.Data)
		s.mu.Unlock()
	}
	s.Advance(e.Position)
	return nil
}

// doctorOf returns the doctor id of a doctor-stream event.
func doctorOf(e domain.Event) (string, bool) {
	if de, ok := e.(doctor.DoctorEvent); ok {
		return de.DoctorRef(), true
	}
	return "", false
}

// FreeSlots implements projections.Slots.
func (s *Slots) FreeSlots(_ context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, error) {
	if days < 1 || days > 366 {
		return projections.FreeSlots{}, domain.Invalid("days must be between 1 and 366")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.doctors[doctorID]
	if d == nil || !d.Registered() {
		return projections.FreeSlots{}, projections.ErrNotFound
	}
	out := projections.FreeSlots{DoctorID: doctorID, Days: make([]projections.DaySlots, 0, days)}
	if g := d.Grid(); g != nil {
		out.Timezone = g.Schedule().Timezone
	}
	for i := range days {
		date := from.AddDays(i)
		slots := d.FreeSlots(date, now)
		if slots == nil {
			slots = []doctor.Slot{}
		}
		out.Days = append(out.Days, projections.DaySlots{Date: date.String(), Slots: slots})
	}
	return out, nil
}
