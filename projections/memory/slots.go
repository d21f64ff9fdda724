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
//
// The model keeps of each doctor only what bears on free slots from now
// on (see doctor.Forget): appointments that no longer occupy their slot
// are dropped as they end, and confirmed ones a day after they ended, as
// the log tells time (the latest decision it applied, doctor.DecidedAt).
// Its answers are those of the whole history for every now no earlier
// than a day before that; the day covers the clocks of several api
// processes, and nobody asks for free slots in the past.
//
// Answers are cached per (doctor, from, days) until the doctor's next event
// or the first instant at which the passing of time alone would change them
// (a listed slot coming within the minimum notice, a new day entering the
// booking window, or a hold running out: its slot is free from then on,
// before any HoldExpired), whichever comes first.
type Slots struct {
	projections.Progress
	mu      sync.RWMutex
	doctors map[string]*slotDoctor
	// horizon is the latest decision time applied; keepEnded how long
	// before it an ended appointment is kept (negative: forever).
	horizon   time.Time
	keepEnded time.Duration

	cmu   sync.Mutex
	cache map[slotKey]*slotAnswer
}

type slotDoctor struct {
	agg     *doctor.Doctor
	version uint64 // bumped by every applied event
	pos     uint64 // of the last event applied (see SaveState)
	// forgotTo: what ended at or before it was dropped (ForgetEnded).
	forgotTo time.Time
}

type slotKey struct {
	doctor string
	from   doctor.Date
	days   int
}

type slotAnswer struct {
	version    uint64
	computedAt time.Time // valid for now in [computedAt, validUntil)
	validUntil time.Time
	val        projections.FreeSlots
	json       []byte // val.AppendJSON, made once per answer
	// holdsFrom, holdsUntil: see projections.SlotsAnswer (at computedAt).
	holdsFrom, holdsUntil time.Time
}

// maxCachedAnswers bounds the cache; it is emptied when full.
const maxCachedAnswers = 10_000

// keepEnded is how long a confirmed appointment stays after its end (see
// Slots), and forgetStep how far the horizon moves between two sweeps of
// one doctor's ended appointments.
const (
	keepEnded  = 24 * time.Hour
	forgetStep = time.Hour
)

// NewSlots returns an empty free-slots model.
func NewSlots() *Slots { return newSlots(keepEnded) }

func newSlots(keep time.Duration) *Slots {
	return &Slots{doctors: map[string]*slotDoctor{}, cache: map[slotKey]*slotAnswer{}, keepEnded: keep}
}

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
		if t := doctor.DecidedAt(e.Data); t.After(s.horizon) {
			s.horizon = t
		}
		d := s.doctors[id]
		if d == nil {
			d = &slotDoctor{agg: doctor.New(id)}
			s.doctors[id] = d
		}
		if e.Position > d.pos {
			d.agg.Load(e.Data)
			s.forget(d, e.Data)
			d.version++
			d.pos = e.Position
		}
		s.mu.Unlock()
	}
	s.Advance(e.Position)
	return nil
}

// forget drops from d what e ended, and what ended a day before the
// horizon once it moved forgetStep since d's last sweep. The caller holds
// the write lock.
func (s *Slots) forget(d *slotDoctor, e domain.Event) int {
	if s.keepEnded < 0 {
		return 0
	}
	n := 0
	if ae, ok := e.(doctor.AppointmentEvent); ok && d.agg.Forget(ae.AppointmentRef()) {
		n++
	}
	if to := s.horizon.Add(-s.keepEnded); to.Sub(d.forgotTo) >= forgetStep {
		n += d.agg.ForgetEnded(to)
		d.forgotTo = to
	}
	return n
}

// doctorOf returns the doctor id of a doctor-stream event.
func doctorOf(e domain.Event) (string, bool) {
	if de, ok := e.(doctor.DoctorEvent); ok {
		return de.DoctorRef(), true
	}
	return "", false
}

// FreeSlots implements projections.Slots. The answer may be shared with
// other callers: do not modify it.
func (s *Slots) FreeSlots(_ context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, error) {
	a, err := s.answer(doctorID, from, days, now)
	if err != nil {
		return projections.FreeSlots{}, err
	}
	return a.val, nil
}

// FreeSlotsJSON implements projections.SlotsJSON: the same answer, already
// encoded (the bytes are shared: do not modify them).
func (s *Slots) FreeSlotsJSON(_ context.Context, doctorID string, from doctor.Date, days int, now time.Time) ([]byte, error) {
	a, err := s.answer(doctorID, from, days, now)
	if err != nil {
		return nil, err
	}
	return a.json, nil
}

// FreeSlotsAnswer implements projections.SlotsAnswers (the bytes are
// shared: do not modify them).
func (s *Slots) FreeSlotsAnswer(_ context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.SlotsAnswer, error) {
	a, err := s.answer(doctorID, from, days, now)
	if err != nil {
		return projections.SlotsAnswer{}, err
	}
	return projections.SlotsAnswer{JSON: a.json, HoldsFrom: a.holdsFrom, HoldsUntil: a.holdsUntil}, nil
}

func (s *Slots) answer(doctorID string, from doctor.Date, days int, now time.Time) (*slotAnswer, error) {
	if days < 1 || days > 366 {
		return nil, domain.Invalid("days must be between 1 and 366")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.doctors[doctorID]
	if d == nil || !d.agg.Registered() {
		return nil, projections.ErrNotFound
	}
	key := slotKey{doctorID, from, days}
	s.cmu.Lock()
	a := s.cache[key]
	s.cmu.Unlock()
	if a != nil && a.version == d.version && !now.Before(a.computedAt) && now.Before(a.validUntil) {
		return a, nil
	}
	a = compute(d, doctorID, from, days, now)
	s.cmu.Lock()
	if len(s.cache) >= maxCachedAnswers {
		clear(s.cache)
	}
	s.cache[key] = a
	s.cmu.Unlock()
	return a, nil
}

func compute(d *slotDoctor, doctorID string, from doctor.Date, days int, now time.Time) *slotAnswer {
	out := projections.FreeSlots{DoctorID: doctorID, Days: make([]projections.DaySlots, 0, days)}
	// With no schedule nothing is free until an event changes the version.
	validUntil := now.Add(24 * time.Hour)
	g := d.agg.Grid()
	if g != nil {
		out.Timezone = g.Schedule().Timezone
		// A new day enters the booking window at the next local midnight.
		validUntil = g.DateIn(now).AddDays(1).StartIn(g.Location())
	}
	holdsFrom, holdsUntil := projections.HoldWindow(d.agg, now)
	if !holdsUntil.IsZero() && holdsUntil.Before(validUntil) {
		validUntil = holdsUntil
	}
	notice := time.Duration(0)
	if g != nil {
		notice = time.Duration(g.Schedule().MinNoticeMinutes) * time.Minute
	}
	for i := range days {
		date := from.AddDays(i)
		slots := d.agg.FreeSlots(date, now)
		if slots == nil {
			slots = []doctor.Slot{}
		}
		if len(slots) > 0 {
			// The earliest listed slot leaves the answer once it is within notice.
			if drop := slots[0].Start.Add(-notice); drop.Before(validUntil) {
				validUntil = drop
			}
		}
		out.Days = append(out.Days, projections.DaySlots{Date: date.String(), Slots: slots})
	}
	return &slotAnswer{
		version: d.version, computedAt: now, validUntil: validUntil, val: out, json: out.AppendJSON(nil),
		holdsFrom: holdsFrom, holdsUntil: holdsUntil,
	}
}
