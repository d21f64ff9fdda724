package mongo

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// Collections of the analytics model.
const (
	CollAnalyticsDays         = "analytics_days"
	CollAnalyticsAppointments = "analytics_appointments"
	CollAnalyticsDoctors      = "analytics_doctors"
)

// Analytics is the analysts' read model ("analytics", see
// projections/analytics) in three collections of one generation:
//
//	analytics_days          one document per doctor and local date: each
//	                        appointment's counts on that day (by appointment
//	                        id) and their totals per currency
//	analytics_appointments  what moving an appointment's counts needs: its
//	                        day, status, payments and refunds (no patient)
//	analytics_doctors       name, speciality, schedule history, time off
//
// Every write goes through ApplyBatch, which folds the documents a batch
// touches in Go (analytics.State) and writes the days first, then the
// appointments and doctors, then the checkpoint. A day keeps each
// appointment's counts by id rather than only sums, so writing it is
// setting (not adding) values: a batch applied again after a crash sets
// the same values. Until the appointments are written, a replay folds the
// same events from the same documents and reaches the same days; after,
// the events are no-ops and the days already hold their result.
type Analytics struct {
	gen *generations
	analyticsColls
	cp *checkpoint
	// offered caches offered slots per doctor (the doctors are read on
	// every question; their schedules are folded into counts once).
	offered *analytics.Offered
}

type analyticsColls struct {
	days, appts, doctors *mongo.Collection
}

func analyticsCollsOf(c []*mongo.Collection) analyticsColls {
	return analyticsColls{days: c[0], appts: c[1], doctors: c[2]}
}

// NewAnalytics opens the analytics model of db.
func NewAnalytics(ctx context.Context, db *mongo.Database) (*Analytics, error) {
	g, err := openGenerations(ctx, db, analytics.Name, CollAnalyticsDays, CollAnalyticsAppointments, CollAnalyticsDoctors)
	if err != nil {
		return nil, err
	}
	return openAnalytics(ctx, g)
}

func openAnalytics(ctx context.Context, g *generations) (*Analytics, error) {
	m := &Analytics{gen: g, analyticsColls: analyticsCollsOf(g.writes()), offered: analytics.NewOffered()}
	if err := createIndexes(ctx, m.days, asc("date")); err != nil {
		return nil, err
	}
	// The other two collections have no index of their own: create them
	// now rather than by a first write (FerretDB v1 creates a collection
	// in two steps that a stop between them leaves half done, and every
	// later implicit creation then fails).
	if err := createCollections(ctx, m.appts, m.doctors); err != nil {
		return nil, err
	}
	cp, err := newCheckpoint(ctx, g.db, checkpointID(m.Name(), g.write))
	if err != nil {
		return nil, err
	}
	m.cp = cp
	return m, nil
}

// Name implements projections.Projection.
func (*Analytics) Name() string { return analytics.Name }

// Checkpoint implements projections.Projection.
func (m *Analytics) Checkpoint(ctx context.Context) (uint64, error) {
	return m.gen.checkpoint(ctx, m.cp)
}

// NewShadow implements projections.Shadower.
func (m *Analytics) NewShadow(ctx context.Context) (*Analytics, error) {
	g, err := m.gen.shadow(ctx)
	if err != nil {
		return nil, err
	}
	return openAnalytics(ctx, g)
}

// Promote implements projections.Promoter.
func (m *Analytics) Promote(ctx context.Context) (*Analytics, error) {
	g, err := m.gen.promote(ctx, m.cp.last.Load())
	if err != nil {
		return nil, err
	}
	return &Analytics{gen: g, analyticsColls: m.analyticsColls, cp: m.cp, offered: m.offered}, nil
}

// Reset empties the model and its checkpoint.
func (m *Analytics) Reset(ctx context.Context) error {
	for _, c := range []*mongo.Collection{m.days, m.appts, m.doctors} {
		if _, err := c.DeleteMany(ctx, bson.D{}); err != nil {
			return err
		}
	}
	return m.cp.reset(ctx)
}

// dayDoc is one doctor's day.
type dayDoc struct {
	ID       string      `bson:"_id"`
	DoctorID string      `bson:"doctorId"`
	Date     string      `bson:"date"` // YYYY-MM-DD: ordered as text
	Counts   countsList  `bson:"counts"`
	Totals   []countsDoc `bson:"totals"`
}

// countsDoc is one appointment's counts (ID its id) or a currency's
// totals (ID "").
type countsDoc struct {
	ID       string           `bson:"id,omitempty"`
	Currency string           `bson:"currency"`
	Counts   analytics.Counts `bson:"c"`
}

// set makes the day hold c as appointment id's counts, or drop them
// (drop), and recomputes the totals.
func (d *dayDoc) set(id, currency string, c analytics.Counts, drop bool) {
	d.Counts = slices.DeleteFunc(d.Counts, func(x countsDoc) bool { return x.ID == id })
	if !drop {
		d.Counts = append(d.Counts, countsDoc{ID: id, Currency: currency, Counts: c})
	}
	totals := map[string]analytics.Counts{}
	for _, x := range d.Counts {
		t := totals[x.Currency]
		t.Add(x.Counts, 1)
		totals[x.Currency] = t
	}
	d.Totals = d.Totals[:0]
	for cur, t := range totals {
		d.Totals = append(d.Totals, countsDoc{Currency: cur, Counts: t})
	}
	slices.SortFunc(d.Totals, func(a, b countsDoc) int { return cmp.Compare(a.Currency, b.Currency) })
}

// Apply implements projections.Projection.
func (m *Analytics) Apply(ctx context.Context, e projections.Event) error {
	return m.ApplyBatch(ctx, []projections.Event{e})
}

// ApplyBatch implements projections.BatchProjection (see the type's doc).
func (m *Analytics) ApplyBatch(ctx context.Context, events []projections.Event) error {
	if events = pending(m.cp, events); len(events) == 0 {
		return nil
	}
	m.gen.sweep(ctx)
	what := fmt.Sprintf("analytics: batch %d..%d", events[0].Position, events[len(events)-1].Position)
	var doctorIDs, apptIDs []string
	for _, e := range events {
		de, ok := e.Data.(doctor.DoctorEvent)
		if !ok {
			continue
		}
		doctorIDs = append(doctorIDs, de.DoctorRef())
		if ae, ok := e.Data.(doctor.AppointmentEvent); ok {
			apptIDs = append(apptIDs, ae.AppointmentRef())
		}
	}
	if len(doctorIDs) == 0 {
		return m.cp.advance(ctx, events[len(events)-1].Position)
	}
	var (
		docs  map[string]*analytics.Doctor
		appts map[string]*analytics.Appointment
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { docs, err = loadByID[analytics.Doctor](gctx, m.doctors, doctorIDs); return err })
	g.Go(func() (err error) { appts, err = loadByID[analytics.Appointment](gctx, m.appts, apptIDs); return err })
	if err := g.Wait(); err != nil {
		return fail(ctx, err, what)
	}
	// Where each stored appointment stood before the batch, and each
	// doctor's position, to know what changed.
	wasDay := map[string]analytics.DayKey{}
	for id, a := range appts {
		wasDay[id] = a.Day()
	}
	docPos := map[string]uint64{}
	for id, d := range docs {
		docPos[id] = d.Position
	}
	st := analytics.State{Doctors: docs, Appointments: appts}
	for _, e := range events {
		st.Apply(e)
	}
	// Every appointment the batch names is set on its day (also one whose
	// events were applied already: see the type's doc) and dropped from
	// the day it left.
	type op struct {
		day  string
		appt *analytics.Appointment
		drop bool
	}
	var ops []op
	var dayIDs []string
	var chA changes[analytics.Appointment]
	for _, id := range apptIDs {
		a := appts[id]
		if a == nil || chA.docs[id] != nil {
			continue
		}
		_, stored := wasDay[id]
		chA.add(id, a, !stored)
		now := a.Day().ID()
		if was, ok := wasDay[id]; ok && was.ID() != now {
			ops = append(ops, op{day: was.ID(), appt: a, drop: true})
			dayIDs = append(dayIDs, was.ID())
		}
		ops = append(ops, op{day: now, appt: a})
		dayIDs = append(dayIDs, now)
	}
	var chD changes[analytics.Doctor]
	for _, id := range doctorIDs {
		d := docs[id]
		if was, stored := docPos[id]; !stored || d.Position != was {
			chD.add(id, d, !stored)
		}
	}
	if len(ops) > 0 {
		days, err := loadByID[dayDoc](ctx, m.days, dayIDs)
		if err != nil {
			return fail(ctx, err, what)
		}
		var chDay changes[dayDoc]
		for _, o := range ops {
			d := days[o.day]
			if d == nil {
				k := o.appt.Day()
				if o.drop {
					continue // nothing to drop from a day never written
				}
				d = &dayDoc{ID: o.day, DoctorID: k.DoctorID, Date: k.Date.String()}
				days[o.day] = d
			}
			d.set(o.appt.ID, o.appt.Currency, o.appt.Counts(), o.drop)
			chDay.add(o.day, d, false)
		}
		// Days first: see the type's doc.
		if err := chDay.write(ctx, m.days); err != nil {
			return fail(ctx, err, what)
		}
	}
	// The documents the batch created go in with one InsertMany per
	// collection (one SQLite transaction on FerretDB, where a replacement
	// with upsert is a transaction of its own: a batch of 256 bookings was
	// 256 of them). One created meanwhile fails the insert with a duplicate
	// key: the batch fails, and its events, applied again, find it.
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() error { return chA.write(gctx, m.appts) })
	g.Go(func() error { return chD.write(gctx, m.doctors) })
	if err := g.Wait(); err != nil {
		return fail(ctx, err, what)
	}
	return m.cp.advance(ctx, events[len(events)-1].Position)
}

// read is the model's collections in the generation readers use.
func (m *Analytics) read(ctx context.Context) (analyticsColls, error) {
	colls, err := m.gen.reads(ctx)
	if err != nil {
		return analyticsColls{}, err
	}
	return analyticsCollsOf(colls), nil
}

// summaries reads the day totals of the query's dates (not the
// per-appointment counts) and every doctor.
func (m *Analytics) summaries(ctx context.Context, q *analytics.Query) (map[string]*analytics.Doctor, []analytics.DaySummary, error) {
	if err := q.Validate(); err != nil {
		return nil, nil, err
	}
	r, err := m.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	cur, err := r.days.Find(ctx, bson.D{{Key: "date", Value: bson.D{
		{Key: "$gte", Value: q.From.String()}, {Key: "$lte", Value: q.To.String()},
	}}}, options.Find().SetProjection(bson.D{{Key: "counts", Value: 0}}))
	if err != nil {
		return nil, nil, fail(ctx, err, "analytics days")
	}
	var days []dayDoc
	if err := cur.All(ctx, &days); err != nil {
		return nil, nil, fail(ctx, err, "analytics days")
	}
	out := make([]analytics.DaySummary, 0, len(days))
	for _, d := range days {
		date, err := doctor.ParseDate(d.Date)
		if err != nil {
			return nil, nil, fmt.Errorf("mongo: analytics day %s: %w", d.ID, err)
		}
		t := make(map[string]analytics.Counts, len(d.Totals))
		for _, x := range d.Totals {
			t[x.Currency] = x.Counts
		}
		out = append(out, analytics.DaySummary{Key: analytics.DayKey{DoctorID: d.DoctorID, Date: date}, Totals: t})
	}
	dc, err := r.doctors.Find(ctx, bson.D{})
	if err != nil {
		return nil, nil, fail(ctx, err, "analytics doctors")
	}
	var list []analytics.Doctor
	if err := dc.All(ctx, &list); err != nil {
		return nil, nil, fail(ctx, err, "analytics doctors")
	}
	docs := make(map[string]*analytics.Doctor, len(list))
	for i := range list {
		docs[list[i].ID] = &list[i]
	}
	return docs, out, nil
}

// Bookings implements analytics.View.
func (m *Analytics) Bookings(ctx context.Context, q analytics.Query) ([]analytics.BookingRow, error) {
	docs, days, err := m.summaries(ctx, &q)
	if err != nil {
		return nil, err
	}
	return analytics.BookingRows(q, docs, analytics.Slice(days)), nil
}

// Utilisation implements analytics.View.
func (m *Analytics) Utilisation(ctx context.Context, q analytics.Query) ([]analytics.UtilisationRow, error) {
	docs, days, err := m.summaries(ctx, &q)
	if err != nil {
		return nil, err
	}
	return analytics.UtilisationRows(q, docs, analytics.Slice(days), m.offered), nil
}
