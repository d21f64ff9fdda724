package mongo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Slots is the free-slots read model ("free_slots"). It keeps what the
// doctor aggregate needs to answer which slots are free: whether the
// doctor is registered and available, the schedule, the time off and the
// intervals of the live (held or confirmed) appointments, with the expiry
// of each hold: a hold that ran out frees its slot at once, before any
// HoldExpired, for the question's now as for the aggregate. A question
// rebuilds a doctor.Doctor from events synthesized from that state and
// asks it, so the read side applies exactly the invariants the command
// side decides with (grid, zone and DST, notice, window, time off,
// overlaps), as the in-memory model does.
//
// Layout: a doctor's state is kept in documents of three kinds, in one
// collection, each read and written by _id alone (the one index both
// MongoDB and FerretDB use for every lookup):
//
//   - the doctor's, _id the doctor's id: registered, available, schedule,
//     time off;
//   - a day's, _id "<doctor>/d/<UTC date>": the live appointments that
//     start that UTC day, by start;
//   - a live appointment's, _id "<doctor>/a/<appointment>": its day and
//     interval, so that an event that does not say when the appointment
//     is (a confirmation, completion, no-show) finds its day; deleted when
//     the appointment stops being live.
//
// So an event rewrites one day's bookings, not the doctor's whole
// calendar, and a question for the dates [from, from+days) in the doctor's
// zone reads the doctor's document and the UTC days from-1 to from+days (a
// zone is within 14 h of UTC and an appointment lasts at most
// doctor.MaxSlotMinutes, 8 h, so every appointment that overlaps those
// dates starts in those days).
//
// Before day documents the doctor's document held every live appointment
// ("live"); readers still take them from there, and the first batch that
// touches such a doctor moves them into day and appointment documents. An
// api process that predates the day documents would read a converted
// doctor as having no bookings: upgrade the api processes before the
// projector.
type Slots struct {
	gen  *generations
	coll *mongo.Collection // in the generation the instance writes
	cp   *checkpoint

	// converted: doctors whose document this writer has seen in the day
	// layout (no need to read it for an appointment's event).
	converted map[string]bool
	// stop, when set (tests), is asked after each step of a batch's
	// writes ("days", "heads") and ends the batch with its error.
	stop func(step string) error
}

// NewSlots opens the free-slots model of db.
func NewSlots(ctx context.Context, db *mongo.Database) (*Slots, error) {
	g, err := openGenerations(ctx, db, "free_slots", CollFreeSlots)
	if err != nil {
		return nil, err
	}
	return openSlots(ctx, g)
}

func openSlots(ctx context.Context, g *generations) (*Slots, error) {
	s := &Slots{gen: g, coll: g.writes()[0], converted: map[string]bool{}}
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
// the one every reader uses.
func (s *Slots) Promote(ctx context.Context) (*Slots, error) {
	g, err := s.gen.promote(ctx, s.cp.last.Load())
	if err != nil {
		return nil, err
	}
	return &Slots{gen: g, coll: s.coll, cp: s.cp, converted: s.converted, stop: s.stop}, nil
}

// Reset empties the model and its checkpoint.
func (s *Slots) Reset(ctx context.Context) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{}); err != nil {
		return err
	}
	clear(s.converted)
	return s.cp.reset(ctx)
}

// slotsDoc is a doctor's document.
type slotsDoc struct {
	ID         string `bson:"_id"`
	Position   int64  `bson:"position"`
	Registered bool   `bson:"registered"`
	Available  bool   `bson:"available"`
	// Schedule is the JSON of the last valid schedule ("" before one).
	Schedule string       `bson:"schedule"`
	TimeOff  []timeOffDoc `bson:"timeOff"`
	// Live: the live appointments in the layout before day documents;
	// absent once converted.
	Live []liveDoc `bson:"live,omitempty"`
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

// slotsDay is a day's live appointments.
type slotsDay struct {
	ID       string   `bson:"_id"`
	Position int64    `bson:"position"`
	Live     liveList `bson:"live"` // by start
	at       int64    // the position this batch advanced it to
}

// liveRef is a live appointment's document.
type liveRef struct {
	ID       string  `bson:"_id"`
	Position int64   `bson:"position"`
	Day      string  `bson:"day"` // the day document's _id
	Entry    liveDoc `bson:"entry"`
}

// dayID is the _id of doctorID's day document for an appointment starting
// at start (Unix nanoseconds).
func dayID(doctorID string, start int64) string {
	return dayIDOf(doctorID, time.Unix(0, start).UTC().Format(time.DateOnly))
}

func dayIDOf(doctorID, date string) string { return doctorID + "/d/" + date }

// refID is the _id of an appointment's document.
func refID(doctorID, appointmentID string) string { return doctorID + "/a/" + appointmentID }

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

// appointmentOf names the appointment of an appointment's event and the
// starts (Unix nanoseconds) the event names.
func appointmentOf(ev domain.Event) (id string, starts []int64, ok bool) {
	switch e := ev.(type) {
	case doctor.SlotReserved:
		return e.AppointmentID, []int64{projections.Nanos(e.Start)}, true
	case doctor.AppointmentRescheduled:
		return e.AppointmentID, []int64{projections.Nanos(e.PreviousStart), projections.Nanos(e.Start)}, true
	case doctor.HoldExpired:
		return e.AppointmentID, []int64{projections.Nanos(e.Start)}, true
	case doctor.AppointmentCancelled:
		if e.Start.IsZero() {
			return e.AppointmentID, nil, true
		}
		return e.AppointmentID, []int64{projections.Nanos(e.Start)}, true
	case doctor.AppointmentConfirmed:
		return e.AppointmentID, nil, true
	case doctor.AppointmentCompleted:
		return e.AppointmentID, nil, true
	case doctor.AppointmentMarkedNoShow:
		return e.AppointmentID, nil, true
	}
	return "", nil, false
}

// foldDoctor applies a registration, profile, schedule or time-off event
// to the doctor's document as the aggregate would.
func (d *slotsDoc) foldDoctor(ev domain.Event) {
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
	}
}

func (d *slotsDay) remove(id string) {
	d.Live = slices.DeleteFunc(d.Live, func(l liveDoc) bool { return l.ID == id })
}

func (d *slotsDay) occupy(l liveDoc) {
	i := sort.Search(len(d.Live), func(i int) bool { return d.Live[i].Start >= l.Start })
	d.Live = slices.Insert(d.Live, i, l)
}

// slotsBatch is what one batch reads, changes and writes back. Each
// document carries the position of the last event applied to it, and an
// event is applied to a document only above it, so a batch applied again
// (after a failure half-way) changes only what it had not written.
type slotsBatch struct {
	heads map[string]*slotsDoc
	days  map[string]*slotsDay
	refs  map[string]*liveRef // nil: the appointment is not live
	// what was in the collection when read
	headsIn, daysIn, refsIn map[string]bool
	// what the batch changed, in the order first changed
	headOrder, dayOrder, refOrder []string
	touched                       map[string]bool
}

func (b *slotsBatch) touch(order *[]string, id string) {
	if !b.touched[id] {
		b.touched[id] = true
		*order = append(*order, id)
	}
}

func (b *slotsBatch) setRef(id string, r *liveRef) {
	b.refs[id] = r
	b.touch(&b.refOrder, id)
}

// edit applies f to day document id as the event at p, unless the
// document has it already; create makes the document if there is none
// (an edit that only removes needs none).
func (b *slotsBatch) edit(id string, p int64, create bool, f func(d *slotsDay)) {
	d := b.days[id]
	if d == nil {
		if !create {
			return
		}
		d = &slotsDay{ID: id, Live: liveList{}}
		b.days[id] = d
	}
	if d.Position >= p && d.at != p {
		return // applied already, or a newer event was
	}
	f(d)
	d.Position, d.at = p, p
	b.touch(&b.dayOrder, id)
}

// load reads the documents the events touch: the doctors' (for an
// appointment's event only while the doctor may still be in the old
// layout, which it converts first), the live appointments', and the days
// any of them names.
func (s *Slots) load(ctx context.Context, events []projections.Event) (*slotsBatch, error) {
	var headIDs, refIDs, dayIDs []string
	for _, e := range events {
		doc, ok := slotsRelevant(e.Data)
		if !ok {
			continue
		}
		appt, starts, isAppt := appointmentOf(e.Data)
		if !isAppt || !s.converted[doc] {
			headIDs = append(headIDs, doc)
		}
		if isAppt {
			refIDs = append(refIDs, refID(doc, appt))
			for _, st := range starts {
				dayIDs = append(dayIDs, dayID(doc, st))
			}
		}
	}
	heads, err := loadByID[slotsDoc](ctx, s.coll, headIDs)
	if err != nil {
		return nil, err
	}
	if err := s.convert(ctx, heads); err != nil {
		return nil, err
	}
	b := newSlotsBatch(heads)
	if b.refs, err = loadByID[liveRef](ctx, s.coll, refIDs); err != nil {
		return nil, err
	}
	for _, r := range b.refs {
		dayIDs = append(dayIDs, r.Day)
	}
	if b.days, err = loadByID[slotsDay](ctx, s.coll, dayIDs); err != nil {
		return nil, err
	}
	b.loaded()
	return b, nil
}

func newSlotsBatch(heads map[string]*slotsDoc) *slotsBatch {
	return &slotsBatch{heads: heads, days: map[string]*slotsDay{}, refs: map[string]*liveRef{},
		headsIn: map[string]bool{}, daysIn: map[string]bool{}, refsIn: map[string]bool{}, touched: map[string]bool{}}
}

// loaded records which documents are in the collection.
func (b *slotsBatch) loaded() {
	for id := range b.heads {
		b.headsIn[id] = true
	}
	for id := range b.days {
		b.daysIn[id] = true
	}
	for id := range b.refs {
		b.refsIn[id] = true
	}
}

// convert moves the live appointments of the doctors' documents in the
// old layout (see Slots) into day and appointment documents, as of each
// document's position, and writes them: the days, the appointments, then
// the doctors' documents without them (so a failure half-way leaves a
// document still in the old layout, converted again by the next batch).
func (s *Slots) convert(ctx context.Context, heads map[string]*slotsDoc) error {
	var old []*slotsDoc
	var refIDs, dayIDs []string
	for _, id := range slices.Sorted(maps.Keys(heads)) {
		if h := heads[id]; h.Live != nil {
			old = append(old, h)
			for _, l := range h.Live {
				refIDs = append(refIDs, refID(h.ID, l.ID))
				dayIDs = append(dayIDs, dayID(h.ID, l.Start))
			}
		}
	}
	if len(old) == 0 {
		return nil
	}
	b := newSlotsBatch(map[string]*slotsDoc{})
	var err error
	if b.refs, err = loadByID[liveRef](ctx, s.coll, refIDs); err != nil {
		return err
	}
	if b.days, err = loadByID[slotsDay](ctx, s.coll, dayIDs); err != nil {
		return err
	}
	for _, h := range old {
		b.heads[h.ID] = h
	}
	b.loaded()
	for _, h := range old {
		for _, l := range h.Live {
			day := dayID(h.ID, l.Start)
			b.edit(day, h.Position, true, func(d *slotsDay) { d.remove(l.ID); d.occupy(l) })
			rid := refID(h.ID, l.ID)
			if r := b.refs[rid]; r == nil || r.Position < h.Position {
				b.setRef(rid, &liveRef{ID: rid, Position: h.Position, Day: day, Entry: l})
			}
		}
		h.Live = nil
		b.touch(&b.headOrder, h.ID)
	}
	if err := b.writeDays(ctx, s.coll); err != nil {
		return err
	}
	if err := b.writeRefs(ctx, s.coll); err != nil {
		return err
	}
	return b.writeHeads(ctx, s.coll)
}

// fold applies one event, as the aggregate would, to the documents it
// concerns.
func (b *slotsBatch) fold(e projections.Event) {
	doc, ok := slotsRelevant(e.Data)
	if !ok {
		return
	}
	p := pos(e.Position)
	appt, _, isAppt := appointmentOf(e.Data)
	if !isAppt {
		h := b.heads[doc]
		if h == nil {
			h = &slotsDoc{ID: doc, TimeOff: []timeOffDoc{}}
			b.heads[doc] = h
		} else if h.Position >= p {
			return // applied already, or a newer event was
		}
		h.foldDoctor(e.Data)
		h.Position = p
		if h.TimeOff == nil {
			h.TimeOff = []timeOffDoc{}
		}
		b.touch(&b.headOrder, doc)
		return
	}
	rid := refID(doc, appt)
	r := b.refs[rid]
	switch ev := e.Data.(type) {
	case doctor.SlotReserved:
		if !ev.Status.Live() {
			return
		}
		l := liveDoc{ID: appt, Start: projections.Nanos(ev.Start), End: projections.Nanos(ev.End)}
		if ev.Status == doctor.StatusHeld && ev.HoldExpiresAt != nil {
			l.HoldUntil = new(projections.Nanos(*ev.HoldExpiresAt))
		}
		day := dayID(doc, l.Start)
		if r == nil || r.Position < p {
			if r != nil { // a reservation replaces an earlier one of the same id
				b.edit(r.Day, p, false, func(d *slotsDay) { d.remove(appt) })
			}
			b.setRef(rid, &liveRef{ID: rid, Position: p, Day: day, Entry: l})
		}
		b.edit(day, p, true, func(d *slotsDay) { d.remove(appt); d.occupy(l) })
	case doctor.AppointmentConfirmed:
		if r == nil {
			return // not live
		}
		if r.Position < p {
			r.Entry.HoldUntil, r.Position = nil, p
			b.touch(&b.refOrder, rid)
		}
		b.edit(r.Day, p, false, func(d *slotsDay) {
			if i := slices.IndexFunc(d.Live, func(l liveDoc) bool { return l.ID == appt }); i >= 0 {
				d.Live[i].HoldUntil = nil
			}
		})
	case doctor.AppointmentRescheduled:
		if r == nil {
			return // not live
		}
		from, to := dayID(doc, projections.Nanos(ev.PreviousStart)), dayID(doc, projections.Nanos(ev.Start))
		l := r.Entry
		l.Start, l.End = projections.Nanos(ev.Start), projections.Nanos(ev.End)
		if r.Position < p {
			from = r.Day
			r.Day, r.Entry, r.Position = to, l, p
			b.touch(&b.refOrder, rid)
		}
		b.edit(from, p, false, func(d *slotsDay) { d.remove(appt) })
		b.edit(to, p, true, func(d *slotsDay) { d.remove(appt); d.occupy(l) })
	default: // the appointment ends: expired, cancelled, completed, no-show
		if r == nil {
			return // not live
		}
		b.edit(r.Day, p, false, func(d *slotsDay) { d.remove(appt) })
		if r.Position <= p {
			b.setRef(rid, nil)
		}
	}
}

// write writes back what the batch changed: the days, the doctors' documents,
// then the live appointments' documents. They trail the days: a failure
// half-way leaves appointments' documents as of before the batch, which
// the batch applied again brings forward as it folds its events in order,
// finding each appointment's day as it was at each event; the days
// already written skip the events they have.
func (b *slotsBatch) write(ctx context.Context, coll *mongo.Collection, stop func(string) error) error {
	if stop == nil {
		stop = func(string) error { return nil }
	}
	if err := b.writeDays(ctx, coll); err != nil {
		return err
	}
	if err := stop("days"); err != nil {
		return err
	}
	if err := b.writeHeads(ctx, coll); err != nil {
		return err
	}
	if err := stop("heads"); err != nil {
		return err
	}
	return b.writeRefs(ctx, coll)
}

func (b *slotsBatch) writeDays(ctx context.Context, coll *mongo.Collection) error {
	var days changes[slotsDay]
	for _, id := range b.dayOrder {
		days.add(id, b.days[id], !b.daysIn[id])
	}
	return days.write(ctx, coll)
}

func (b *slotsBatch) writeHeads(ctx context.Context, coll *mongo.Collection) error {
	var heads changes[slotsDoc]
	for _, id := range b.headOrder {
		heads.add(id, b.heads[id], !b.headsIn[id])
	}
	return heads.write(ctx, coll)
}

// writeRefs writes the live appointments' documents that changed and
// deletes those of the appointments that ended.
func (b *slotsBatch) writeRefs(ctx context.Context, coll *mongo.Collection) error {
	var refs changes[liveRef]
	var ended []mongo.WriteModel
	for _, id := range b.refOrder {
		switch r := b.refs[id]; {
		case r != nil:
			refs.add(id, r, !b.refsIn[id])
		case b.refsIn[id]:
			ended = append(ended, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}))
		}
	}
	if err := refs.write(ctx, coll); err != nil {
		return err
	}
	if len(ended) > 0 {
		if _, err := coll.BulkWrite(ctx, ended, options.BulkWrite().SetOrdered(false)); err != nil {
			return err
		}
	}
	return nil
}

// Apply implements projections.Projection: a batch of one.
func (s *Slots) Apply(ctx context.Context, e projections.Event) error {
	return s.ApplyBatch(ctx, []projections.Event{e})
}

// ApplyBatch implements projections.BatchProjection (see batch.go): the
// documents the batch touches are read once, its events folded into them
// and the changed ones written back, then the checkpoint moves.
func (s *Slots) ApplyBatch(ctx context.Context, events []projections.Event) error {
	if events = pending(s.cp, events); len(events) == 0 {
		return nil
	}
	s.gen.sweep(ctx)
	what := fmt.Sprintf("free_slots: batch %d..%d", events[0].Position, events[len(events)-1].Position)
	b, err := s.load(ctx, events)
	if err != nil {
		return fail(ctx, err, what)
	}
	for _, e := range events {
		b.fold(e)
	}
	if err := b.write(ctx, s.coll, s.stop); err != nil {
		return fail(ctx, err, what)
	}
	for _, e := range events {
		if doc, ok := slotsRelevant(e.Data); ok {
			if h := b.heads[doc]; h == nil || h.Live == nil {
				s.converted[doc] = true
			}
		}
	}
	return s.cp.advance(ctx, events[len(events)-1].Position)
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

// freeSlots answers FreeSlots from the doctor's rebuilt aggregate (with
// the appointments of the days asked about), which it returns too.
func (s *Slots) freeSlots(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, *doctor.Doctor, error) {
	if days < 1 || days > 366 {
		return projections.FreeSlots{}, nil, domain.Invalid("days must be between 1 and 366")
	}
	agg, err := s.doctor(ctx, doctorID, from, days)
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

// doctor rebuilds the aggregate of a registered doctor with the live
// appointments that can overlap the dates [from, from+days) in any zone
// (see Slots).
func (s *Slots) doctor(ctx context.Context, id string, from doctor.Date, days int) (*doctor.Doctor, error) {
	gen, err := s.gen.reading(ctx)
	if err != nil {
		return nil, err
	}
	coll := s.gen.coll(CollFreeSlots, gen)
	var head slotsDoc
	err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&head)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, projections.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, err, "free slots of "+id)
	}
	if !head.Registered {
		return nil, projections.ErrNotFound
	}
	ids := make([]string, 0, days+2)
	for i := -1; i <= days; i++ {
		ids = append(ids, dayIDOf(id, from.AddDays(i).String()))
	}
	found, err := loadByID[slotsDay](ctx, coll, ids)
	if err != nil {
		return nil, fail(ctx, err, "free slots of "+id)
	}
	live := slices.Clone(head.Live)
	for _, did := range ids {
		if d := found[did]; d != nil {
			live = append(live, d.Live...)
		}
	}
	agg, err := head.aggregate(live)
	if err != nil {
		return nil, fmt.Errorf("mongo: free slots of %s: %w", id, err)
	}
	return agg, nil
}

// aggregate folds events synthesized from the doctor's document and the
// live appointments into a fresh doctor. An appointment listed twice (a
// reader that came between the writes of a batch that moved it) counts
// once, as listed last.
func (d *slotsDoc) aggregate(live []liveDoc) (*doctor.Doctor, error) {
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
	seen := make(map[string]bool, len(live))
	uniq := make([]liveDoc, 0, len(live))
	for _, l := range slices.Backward(live) {
		if !seen[l.ID] {
			seen[l.ID] = true
			uniq = append(uniq, l)
		}
	}
	slices.SortStableFunc(uniq, func(a, b liveDoc) int { return cmp.Compare(a.Start, b.Start) })
	for _, l := range uniq {
		r := doctor.SlotReserved{DoctorID: d.ID, AppointmentID: l.ID, Start: projections.FromNanos(l.Start), End: projections.FromNanos(l.End), Status: doctor.StatusConfirmed}
		if l.HoldUntil != nil {
			r.Status, r.HoldExpiresAt = doctor.StatusHeld, new(projections.FromNanos(*l.HoldUntil))
		}
		agg.Load(r)
	}
	return agg, nil
}
