package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Slots is the free-slots read model ("free_slots"). Its collection keeps,
// per doctor, what the doctor aggregate needs to answer which slots are
// free: whether the doctor is registered and available, the schedule, the
// time off and the intervals of the live (held or confirmed) appointments,
// with the expiry of each hold: a hold that ran out frees its slot at once,
// before any HoldExpired, for the question's now as for the aggregate.
// A question rebuilds a doctor.Doctor from events synthesized from that
// state and asks it, so the read side applies exactly the invariants the
// command side decides with (grid, zone and DST, notice, window, time off,
// overlaps), as the in-memory model does.
type Slots struct {
	gen  *generations
	coll *mongo.Collection // in the generation the instance writes
	cp   *checkpoint

	// Rebuilt aggregates by doctor, valid while the document's generation
	// and position are the same (the aggregate is only read once built).
	mu   sync.Mutex
	aggs map[string]cachedDoctor
}

type cachedDoctor struct {
	generation int64
	position   int64
	agg        *doctor.Doctor
}

const maxCachedDoctors = 10_000

// NewSlots opens the free-slots model of db.
func NewSlots(ctx context.Context, db *mongo.Database) (*Slots, error) {
	g, err := openGenerations(ctx, db, "free_slots", CollFreeSlots)
	if err != nil {
		return nil, err
	}
	return openSlots(ctx, g)
}

func openSlots(ctx context.Context, g *generations) (*Slots, error) {
	s := &Slots{gen: g, coll: g.writes()[0], aggs: map[string]cachedDoctor{}}
	// Documents are read by _id only, which is always indexed.
	cp, err := newCheckpoint(ctx, g.db, checkpointID(s.Name(), g.write))
	if err != nil {
		return nil, err
	}
	s.cp = cp
	return s, nil
}

// Name implements projections.Projection.
func (*Slots) Name() string { return "free_slots" }

// Checkpoint implements projections.Projection: the position of the
// generation readers see.
func (s *Slots) Checkpoint(ctx context.Context) (uint64, error) { return s.gen.checkpoint(ctx, s.cp) }

// NewShadow implements projections.Shadower: an empty model in a new
// generation that nobody reads, to rebuild into.
func (s *Slots) NewShadow(ctx context.Context) (*Slots, error) {
	g, err := s.gen.shadow(ctx)
	if err != nil {
		return nil, err
	}
	return openSlots(ctx, g)
}

// Promote implements projections.Promoter: the shadow's generation becomes
// the one every reader uses; the instance returned serves it, with an
// empty aggregate cache.
func (s *Slots) Promote(ctx context.Context) (*Slots, error) {
	g, err := s.gen.promote(ctx, s.cp.last.Load())
	if err != nil {
		return nil, err
	}
	return &Slots{gen: g, coll: s.coll, cp: s.cp, aggs: map[string]cachedDoctor{}}, nil
}

// Reset empties the model and its checkpoint.
func (s *Slots) Reset(ctx context.Context) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{}); err != nil {
		return err
	}
	s.mu.Lock()
	clear(s.aggs)
	s.mu.Unlock()
	return s.cp.reset(ctx)
}

type slotsDoc struct {
	ID         string `bson:"_id"`
	Position   int64  `bson:"position"`
	Registered bool   `bson:"registered"`
	Available  bool   `bson:"available"`
	// Schedule is the JSON of the last valid schedule ("" before one).
	Schedule string       `bson:"schedule"`
	TimeOff  []timeOffDoc `bson:"timeOff"`
	// Live are the live appointments' intervals, by start.
	Live []liveDoc `bson:"live"`
}

type timeOffDoc struct {
	ID     string `bson:"id"`
	From   int64  `bson:"from"`
	To     int64  `bson:"to"`
	Reason string `bson:"reason"`
}

type liveDoc struct {
	ID    string `bson:"id"`
	Start int64  `bson:"start"`
	End   int64  `bson:"end"`
	// HoldUntil is the hold's expiry while the appointment is held (absent
	// once confirmed).
	HoldUntil *int64 `bson:"holdUntil,omitempty"`
}

// slotsRelevant reports whether an event can change a doctor's free slots
// (and the doctor id). Payment facts cannot; a confirmation can: it ends a
// hold, whose slot would otherwise be free once the hold runs out.
func slotsRelevant(ev domain.Event) (string, bool) {
	switch e := ev.(type) {
	case doctor.DoctorRegistered:
		return e.DoctorID, true
	case doctor.ProfileUpdated:
		return e.DoctorID, true
	case doctor.ScheduleSet:
		return e.DoctorID, true
	case doctor.TimeOffAdded:
		return e.DoctorID, true
	case doctor.SlotReserved:
		return e.DoctorID, true
	case doctor.AppointmentConfirmed:
		return e.DoctorID, true
	case doctor.HoldExpired:
		return e.DoctorID, true
	case doctor.AppointmentCancelled:
		return e.DoctorID, true
	case doctor.AppointmentRescheduled:
		return e.DoctorID, true
	case doctor.AppointmentCompleted:
		return e.DoctorID, true
	case doctor.AppointmentMarkedNoShow:
		return e.DoctorID, true
	}
	return "", false
}

// fold applies ev to the state as the aggregate would.
func (d *slotsDoc) fold(ev domain.Event) {
	release := func(id string) {
		d.Live = slices.DeleteFunc(d.Live, func(l liveDoc) bool { return l.ID == id })
	}
	occupy := func(l liveDoc) {
		i := sort.Search(len(d.Live), func(i int) bool { return d.Live[i].Start >= l.Start })
		d.Live = slices.Insert(d.Live, i, l)
	}
	switch e := ev.(type) {
	case doctor.DoctorRegistered:
		d.Registered, d.Available = true, e.Profile.Available
	case doctor.ProfileUpdated:
		d.Available = e.Profile.Available
	case doctor.ScheduleSet:
		if _, err := e.Schedule.Compile(); err == nil { // as the aggregate: an invalid one is ignored
			b, _ := json.Marshal(e.Schedule)
			d.Schedule = string(b)
		}
	case doctor.TimeOffAdded:
		d.TimeOff = append(d.TimeOff, timeOffDoc{ID: e.TimeOffID, From: projections.Nanos(e.From), To: projections.Nanos(e.To), Reason: e.Reason})
	case doctor.SlotReserved:
		if e.Status.Live() {
			release(e.AppointmentID) // a reservation replaces an earlier one of the same id
			l := liveDoc{ID: e.AppointmentID, Start: projections.Nanos(e.Start), End: projections.Nanos(e.End)}
			if e.Status == doctor.StatusHeld && e.HoldExpiresAt != nil {
				l.HoldUntil = new(projections.Nanos(*e.HoldExpiresAt))
			}
			occupy(l)
		}
	case doctor.AppointmentConfirmed:
		if i := slices.IndexFunc(d.Live, func(l liveDoc) bool { return l.ID == e.AppointmentID }); i >= 0 {
			d.Live[i].HoldUntil = nil
		}
	case doctor.HoldExpired:
		release(e.AppointmentID)
	case doctor.AppointmentCancelled:
		release(e.AppointmentID)
	case doctor.AppointmentCompleted:
		release(e.AppointmentID)
	case doctor.AppointmentMarkedNoShow:
		release(e.AppointmentID)
	case doctor.AppointmentRescheduled:
		if i := slices.IndexFunc(d.Live, func(l liveDoc) bool { return l.ID == e.AppointmentID }); i >= 0 {
			l := d.Live[i]
			release(e.AppointmentID)
			l.Start, l.End = projections.Nanos(e.Start), projections.Nanos(e.End)
			occupy(l)
		}
	}
}

// Apply implements projections.Projection. A doctor's document is read,
// folded and written back only if it still stands where it was read
// (position equal to the one read, which is below the event's), retrying
// otherwise; a document at or beyond the event's position is left alone.
func (s *Slots) Apply(ctx context.Context, e projections.Event) error {
	if s.cp.applied(e.Position) {
		return nil
	}
	s.gen.sweep(ctx)
	if id, ok := slotsRelevant(e.Data); ok {
		if err := s.applyTo(ctx, id, e); err != nil {
			return fail(ctx, err, fmt.Sprintf("free_slots: %s at %d", e.Type, e.Position))
		}
	}
	return s.cp.advance(ctx, e.Position)
}

func (s *Slots) applyTo(ctx context.Context, id string, e projections.Event) error {
	p := pos(e.Position)
	for attempt := 0; ; attempt++ {
		if attempt == 100 {
			return errors.New("too many concurrent updates")
		}
		var doc slotsDoc
		err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
		found := err == nil
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			doc = slotsDoc{ID: id}
		case err != nil:
			return err
		}
		if found && doc.Position >= p {
			return nil // applied already, or a newer event was
		}
		prev := doc.Position
		doc.fold(e.Data)
		doc.Position = p
		if doc.TimeOff == nil {
			doc.TimeOff = []timeOffDoc{}
		}
		if doc.Live == nil {
			doc.Live = []liveDoc{}
		}
		if !found {
			_, err := s.coll.InsertOne(ctx, doc)
			if mongo.IsDuplicateKeyError(err) {
				continue // created meanwhile: fold into that one
			}
			return err
		}
		res, err := s.coll.ReplaceOne(ctx, bson.D{
			{Key: "_id", Value: id},
			{Key: "position", Value: bson.D{{Key: "$eq", Value: prev}, {Key: "$lt", Value: p}}},
		}, doc)
		if err != nil {
			return err
		}
		if res.MatchedCount == 1 {
			return nil
		}
	}
}

// ApplyBatch implements projections.BatchProjection (see batch.go): each
// doctor's document is read once, the batch's events newer than it are
// folded into it, and it is written back once.
func (s *Slots) ApplyBatch(ctx context.Context, events []projections.Event) error {
	if events = pending(s.cp, events); len(events) == 0 {
		return nil
	}
	s.gen.sweep(ctx)
	first, last := events[0].Position, events[len(events)-1].Position
	var ids []string
	for _, e := range events {
		if id, ok := slotsRelevant(e.Data); ok {
			ids = append(ids, id)
		}
	}
	docs, err := loadByID[slotsDoc](ctx, s.coll, ids)
	if err != nil {
		return fail(ctx, err, fmt.Sprintf("free_slots: batch %d..%d", first, last))
	}
	var ch changes[slotsDoc]
	created := map[string]bool{}
	for _, e := range events {
		id, ok := slotsRelevant(e.Data)
		if !ok {
			continue
		}
		doc := docs[id]
		if doc == nil {
			doc = &slotsDoc{ID: id, TimeOff: []timeOffDoc{}, Live: []liveDoc{}}
			docs[id] = doc
			created[id] = true
		} else if doc.Position >= pos(e.Position) {
			continue // applied already, or a newer event was
		}
		doc.fold(e.Data)
		doc.Position = pos(e.Position)
		if doc.TimeOff == nil {
			doc.TimeOff = []timeOffDoc{}
		}
		if doc.Live == nil {
			doc.Live = []liveDoc{}
		}
		ch.add(id, doc, created[id])
	}
	if err := ch.write(ctx, s.coll); err != nil {
		return fail(ctx, err, fmt.Sprintf("free_slots: batch %d..%d", first, last))
	}
	return s.cp.advance(ctx, last)
}

// FreeSlots implements projections.Slots.
func (s *Slots) FreeSlots(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, error) {
	fs, _, err := s.freeSlots(ctx, doctorID, from, days, now)
	return fs, err
}

// FreeSlotsAnswer implements projections.SlotsAnswers.
func (s *Slots) FreeSlotsAnswer(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.SlotsAnswer, error) {
	fs, agg, err := s.freeSlots(ctx, doctorID, from, days, now)
	if err != nil {
		return projections.SlotsAnswer{}, err
	}
	a := projections.SlotsAnswer{JSON: fs.AppendJSON(nil)}
	a.HoldsFrom, a.HoldsUntil = projections.HoldWindow(agg, now)
	return a, nil
}

// freeSlots answers FreeSlots from the doctor's rebuilt aggregate, which
// it returns too.
func (s *Slots) freeSlots(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, *doctor.Doctor, error) {
	if days < 1 || days > 366 {
		return projections.FreeSlots{}, nil, domain.Invalid("days must be between 1 and 366")
	}
	agg, err := s.doctor(ctx, doctorID)
	if err != nil {
		return projections.FreeSlots{}, nil, err
	}
	out := projections.FreeSlots{DoctorID: doctorID, Days: make([]projections.DaySlots, 0, days)}
	if g := agg.Grid(); g != nil {
		out.Timezone = g.Schedule().Timezone
	}
	for i := range days {
		date := from.AddDays(i)
		slots := agg.FreeSlots(date, now)
		if slots == nil {
			slots = []doctor.Slot{}
		}
		out.Days = append(out.Days, projections.DaySlots{Date: date.String(), Slots: slots})
	}
	return out, agg, nil
}

// FreeSlotsJSON implements projections.SlotsJSON.
func (s *Slots) FreeSlotsJSON(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) ([]byte, error) {
	fs, err := s.FreeSlots(ctx, doctorID, from, days, now)
	if err != nil {
		return nil, err
	}
	return fs.AppendJSON(nil), nil
}

// doctor rebuilds (or finds cached) the aggregate of a registered doctor.
func (s *Slots) doctor(ctx context.Context, id string) (*doctor.Doctor, error) {
	gen, err := s.gen.reading(ctx)
	if err != nil {
		return nil, err
	}
	var doc slotsDoc
	err = s.gen.coll(CollFreeSlots, gen).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, projections.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, err, "free slots of "+id)
	}
	if !doc.Registered {
		return nil, projections.ErrNotFound
	}
	s.mu.Lock()
	c, ok := s.aggs[id]
	s.mu.Unlock()
	if ok && c.generation == gen && c.position == doc.Position {
		return c.agg, nil
	}
	agg, err := doc.aggregate()
	if err != nil {
		return nil, fmt.Errorf("mongo: free slots of %s: %w", id, err)
	}
	s.mu.Lock()
	if len(s.aggs) >= maxCachedDoctors {
		clear(s.aggs)
	}
	if c, ok := s.aggs[id]; !ok || c.generation < gen || (c.generation == gen && c.position < doc.Position) {
		s.aggs[id] = cachedDoctor{gen, doc.Position, agg}
	}
	s.mu.Unlock()
	return agg, nil
}

// aggregate folds events synthesized from the state into a fresh doctor.
func (d *slotsDoc) aggregate() (*doctor.Doctor, error) {
	agg := doctor.New(d.ID)
	agg.Load(doctor.DoctorRegistered{DoctorID: d.ID, Profile: doctor.Profile{Available: d.Available}})
	if d.Schedule != "" {
		var sch doctor.Schedule
		if err := json.Unmarshal([]byte(d.Schedule), &sch); err != nil {
			return nil, fmt.Errorf("stored schedule: %w", err)
		}
		agg.Load(doctor.ScheduleSet{DoctorID: d.ID, Schedule: sch})
	}
	for _, t := range d.TimeOff {
		agg.Load(doctor.TimeOffAdded{DoctorID: d.ID, TimeOffID: t.ID, From: projections.FromNanos(t.From), To: projections.FromNanos(t.To), Reason: t.Reason})
	}
	for _, l := range d.Live {
		r := doctor.SlotReserved{DoctorID: d.ID, AppointmentID: l.ID, Start: projections.FromNanos(l.Start), End: projections.FromNanos(l.End), Status: doctor.StatusConfirmed}
		if l.HoldUntil != nil {
			r.Status, r.HoldExpiresAt = doctor.StatusHeld, new(projections.FromNanos(*l.HoldUntil))
		}
		agg.Load(r)
	}
	return agg, nil
}
