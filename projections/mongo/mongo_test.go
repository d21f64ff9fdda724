package mongo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics/analyticstest"
	"github.com/prescripto/prescripto/projections/memory"
	pmongo "github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

// server connects to the test's MongoDB-compatible server (one FerretDB per
// top-level test) and returns a function that opens a fresh database.
func server(t testing.TB) func(t testing.TB) *mongo.Database {
	t.Helper()
	uri := testenv.MongoURI(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(60 * time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return func(t testing.TB) *mongo.Database {
		t.Helper()
		db := client.Database(testenv.MongoDatabase(t))
		t.Cleanup(func() { _ = db.Drop(context.Background()) })
		return db
	}
}

func open(t testing.TB, db *mongo.Database) *pmongo.Models {
	t.Helper()
	m, err := pmongo.New(context.Background(), db)
	if err != nil {
		t.Fatalf("mongo.New: %v", err)
	}
	return m
}

func models(m *pmongo.Models) readmodeltest.Models {
	return readmodeltest.Models{
		Directory: m.Directory, Slots: m.Slots, Appointments: m.Appointments, Dashboards: m.Appointments, Payments: m.Appointments,
		// The models readmodeltest asks (analytics has its own suite).
		Projections: []projections.Projection{m.Directory, m.Slots, m.Appointments},
	}
}

func memoryModels() readmodeltest.Models {
	dir, slots, apps := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
	return readmodeltest.Models{
		Directory: dir, Slots: slots, Appointments: apps, Dashboards: apps, Payments: apps,
		Projections: []projections.Projection{dir, slots, apps},
	}
}

func TestReadModels(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	readmodeltest.Run(t, func(t *testing.T) readmodeltest.Models { return models(open(t, newDB(t))) })
}

// The same suite with the events applied in batches (ApplyBatch), of a
// size that splits every story across batches.
func TestReadModelsBatched(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	readmodeltest.Run(t, func(t *testing.T) readmodeltest.Models {
		m := models(open(t, newDB(t)))
		m.Batch = 7
		return m
	})
}

// The same suite through projections.Live, as the runner uses them.
func TestReadModelsLive(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	readmodeltest.Run(t, func(t *testing.T) readmodeltest.Models {
		m := open(t, newDB(t))
		dir := projections.NewLive(func() *pmongo.Directory { return m.Directory })
		slots := projections.NewLive(func() *pmongo.Slots { return m.Slots })
		apps := projections.NewLive(func() *pmongo.Appointments { return m.Appointments })
		return readmodeltest.Models{
			Directory: projections.LiveDirectory[*pmongo.Directory]{L: dir}, Slots: projections.LiveSlots[*pmongo.Slots]{L: slots},
			Appointments: projections.LiveAppointments[*pmongo.Appointments]{L: apps}, Dashboards: projections.LiveAppointments[*pmongo.Appointments]{L: apps}, Payments: projections.LiveAppointments[*pmongo.Appointments]{L: apps},
			Projections: []projections.Projection{dir, slots, apps},
		}
	})
}

// The ports the API uses.
var (
	_ projections.Directory       = (*pmongo.Directory)(nil)
	_ projections.Slots           = (*pmongo.Slots)(nil)
	_ projections.SlotsJSON       = (*pmongo.Slots)(nil)
	_ projections.Appointments    = (*pmongo.Appointments)(nil)
	_ projections.Dashboards      = (*pmongo.Appointments)(nil)
	_ projections.Projection      = (*pmongo.Directory)(nil)
	_ projections.Projection      = (*pmongo.Slots)(nil)
	_ projections.Projection      = (*pmongo.Appointments)(nil)
	_ projections.BatchProjection = (*pmongo.Directory)(nil)
	_ projections.BatchProjection = (*pmongo.Slots)(nil)
	_ projections.BatchProjection = (*pmongo.Appointments)(nil)
	_ projections.SlotsJSON       = projections.LiveSlots[*pmongo.Slots]{}
	_ projections.Dashboards      = projections.LiveAppointments[*pmongo.Appointments]{}
	_ projections.Directory       = projections.LiveDirectory[*pmongo.Directory]{}
)

// ---- a log of every event type ----

type log struct {
	pos    uint64
	clock  time.Time
	revs   map[string]uint64
	events []projections.Event
}

func (l *log) add(stream string, data domain.Event) {
	l.pos += 1 + uint64(len(l.events)%2) // gaps, as other streams interleave
	l.clock = l.clock.Add(time.Minute + 123456789*time.Nanosecond)
	rev := l.revs[stream]
	l.revs[stream] = rev + 1
	l.events = append(l.events, projections.Event{
		Position: l.pos, StreamID: stream, Revision: rev, Type: data.EventType(), Data: data,
		Metadata: domain.Metadata{Actor: domain.System, OccurredAt: l.clock}, RecordedAt: l.clock,
	})
}

var kolkata = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at is h:m on 2030-01-<day> in Kolkata.
func at(day, h, m int) time.Time {
	return time.Date(2030, time.January, day, h, m, 0, 0, kolkata).UTC()
}

// now is Monday 2030-01-07 07:00 in Kolkata.
var now = at(7, 7, 0)

func history() *log {
	l := &log{clock: time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), revs: map[string]uint64{}}
	sched := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 10, MinNoticeMinutes: 30,
		PaymentPolicy: doctor.PaymentRequired, HoldMinutes: 10}
	for wd := 1; wd <= 6; wd++ {
		sched.Weekly = append(sched.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "09:00", End: "13:00"})
	}
	docs := []struct{ id, name, spec string }{{"d1", "Dr. One", "ENT"}, {"d2", "Dr. Two", "ent"}, {"d3", "Dr. Three", "Oncology"}}
	for i, d := range docs {
		p := doctor.Profile{Name: d.name, Speciality: d.spec, Degree: "MD", Fees: int64(1000 * (i + 1)), Currency: "INR", Available: i != 2}
		l.add(doctor.StreamID(d.id), doctor.DoctorRegistered{DoctorID: d.id, Profile: p, RegisteredAt: l.clock})
		l.add(doctor.StreamID(d.id), doctor.ScheduleSet{DoctorID: d.id, Schedule: sched})
	}
	l.add(doctor.StreamID("d4"), doctor.ScheduleSet{DoctorID: "d4", Schedule: sched}) // before its registration
	l.add(doctor.StreamID("d4"), doctor.DoctorRegistered{DoctorID: "d4", Profile: doctor.Profile{Name: "Dr. Four", Speciality: "ENT", Available: true}})
	for i := range 4 {
		id := fmt.Sprintf("p%d", i)
		l.add(account.StreamID(domain.RolePatient, id), account.Registered{AccountID: id, Name: "Patient " + id, Role: domain.RolePatient, RegisteredAt: l.clock})
	}
	l.add(account.StreamID(domain.RoleDoctor, "acc-d1"), account.Registered{AccountID: "acc-d1", Name: "Dr. One", Role: domain.RoleDoctor, DoctorID: "d1"})
	n := 0
	reserve := func(doc, pat string, start time.Time, held bool) string {
		n++
		id := fmt.Sprintf("ap%02d", n)
		e := doctor.SlotReserved{DoctorID: doc, AppointmentID: id, PatientID: pat, PatientName: "Patient " + pat, Start: start, End: start.Add(30 * time.Minute),
			Status: doctor.StatusConfirmed, Fees: 1000, Currency: "INR", PaymentStatus: doctor.PaymentPending, ReservedAt: l.clock}
		if held {
			until := l.clock.Add(10 * time.Minute)
			e.Status, e.HoldExpiresAt = doctor.StatusHeld, &until
		}
		l.add(doctor.StreamID(doc), e)
		return id
	}
	for day := 7; day <= 12; day++ {
		for k, doc := range []string{"d1", "d2"} {
			a := reserve(doc, fmt.Sprintf("p%d", (day+k)%4), at(day, 9+k, 30), day%2 == 0)
			b := reserve(doc, fmt.Sprintf("p%d", (day+k+1)%4), at(day, 11, 0), false)
			switch day % 4 {
			case 0:
				l.add(doctor.StreamID(doc), doctor.PaymentOrderCreated{DoctorID: doc, AppointmentID: a, OrderID: "o-" + a})
				l.add(doctor.StreamID(doc), doctor.PaymentCaptured{DoctorID: doc, AppointmentID: a, PaymentID: "pay-" + a, OrderID: "o-" + a, Amount: 1000})
				l.add(doctor.StreamID(doc), doctor.AppointmentConfirmed{DoctorID: doc, AppointmentID: a, PaymentID: "pay-" + a})
				l.add(doctor.StreamID(doc), doctor.PaymentCaptured{DoctorID: doc, AppointmentID: a, PaymentID: "pay2-" + a, Amount: 1000, RefundDue: true})
				l.add(doctor.StreamID(doc), doctor.RefundIssued{DoctorID: doc, AppointmentID: a, PaymentID: "pay2-" + a, RefundID: "r2-" + a, Amount: 1000})
				l.add(doctor.StreamID(doc), doctor.AppointmentRescheduled{DoctorID: doc, AppointmentID: b, Start: at(day, 12, 0), End: at(day, 12, 30)})
			case 1:
				l.add(doctor.StreamID(doc), doctor.AppointmentCancelled{DoctorID: doc, AppointmentID: a, Reason: "busy", CancelledBy: domain.RolePatient})
				l.add(doctor.StreamID(doc), doctor.AppointmentCompleted{DoctorID: doc, AppointmentID: b})
			case 2:
				l.add(doctor.StreamID(doc), doctor.PaymentFailed{DoctorID: doc, AppointmentID: a, OrderID: "o", PaymentID: "x"})
				l.add(doctor.StreamID(doc), doctor.HoldExpired{DoctorID: doc, AppointmentID: a})
				l.add(doctor.StreamID(doc), doctor.AppointmentMarkedNoShow{DoctorID: doc, AppointmentID: b})
				l.add(doctor.StreamID(doc), doctor.AppointmentRescheduled{DoctorID: doc, AppointmentID: b, Start: at(day, 12, 0), End: at(day, 12, 30)})
			case 3:
				l.add(doctor.StreamID(doc), doctor.PaymentCaptured{DoctorID: doc, AppointmentID: b, PaymentID: "pay-" + b, Amount: 1000})
				l.add(doctor.StreamID(doc), doctor.RefundIssued{DoctorID: doc, AppointmentID: b, PaymentID: "pay-" + b, RefundID: "r-" + b, Amount: 1000})
			}
		}
	}
	l.add(doctor.StreamID("d1"), doctor.TimeOffAdded{DoctorID: "d1", TimeOffID: "t1", From: at(9, 10, 0), To: at(10, 10, 0), Reason: "away"})
	l.add(doctor.StreamID("d2"), doctor.ProfileUpdated{DoctorID: "d2", Profile: doctor.Profile{Name: "Dr. Two Renamed", Speciality: "Oncology", Currency: "EUR", Available: true}})
	l.add(doctor.StreamID("d3"), doctor.ProfileUpdated{DoctorID: "d3", Profile: doctor.Profile{Name: "Dr. Three", Speciality: "Oncology", Currency: "INR", Available: true}})
	l.add(doctor.StreamID("d9"), doctor.ProfileUpdated{DoctorID: "d9", Profile: doctor.Profile{Name: "Never registered"}})
	l.add(doctor.StreamID("d1"), doctor.AppointmentCompleted{DoctorID: "d1", AppointmentID: "ghost"})
	return l
}

func probe() readmodeltest.Probe {
	var appts []string
	for i := 1; i <= 26; i++ {
		appts = append(appts, fmt.Sprintf("ap%02d", i))
	}
	return readmodeltest.Probe{
		DoctorIDs: []string{"d1", "d2", "d3", "d4", "d9"}, PatientIDs: []string{"p0", "p1", "p2", "p3"}, AppointmentIDs: appts,
		From: projectionsDate(at(6, 12, 0)), Days: 12, Now: now, PageSize: 4,
	}
}

func projectionsDate(t time.Time) doctor.Date { return doctor.DateOf(t.In(kolkata)) }

func feed(t *testing.T, m readmodeltest.Models, events ...projections.Event) {
	t.Helper()
	for _, e := range events {
		for _, p := range m.Projections {
			if err := p.Apply(context.Background(), e); err != nil {
				t.Fatalf("%s.Apply(%s at %d): %v", p.Name(), e.Type, e.Position, err)
			}
		}
	}
}

func checkpoints(t *testing.T, m readmodeltest.Models, want uint64) {
	t.Helper()
	for _, p := range m.Projections {
		c, err := p.Checkpoint(context.Background())
		if err != nil {
			t.Fatalf("%s.Checkpoint: %v", p.Name(), err)
		}
		if c != want {
			t.Errorf("%s: checkpoint %d, want %d", p.Name(), c, want)
		}
	}
}

// Every answer equals the in-memory model's, and a replay of the whole log
// (twice, and every event twice in a row) changes nothing.
func TestReplayTwiceMatchesMemory(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	ctx := context.Background()
	l := history()
	ref := memoryModels()
	feed(t, ref, l.events...)
	want := readmodeltest.Snapshot(ctx, t, ref, probe())

	db := newDB(t)
	m := models(open(t, db))
	feed(t, m, l.events...)
	readmodeltest.SameSnapshot(t, "mongo vs memory", readmodeltest.Snapshot(ctx, t, m, probe()), want)
	feed(t, m, l.events...)
	feed(t, m, l.events...)
	readmodeltest.SameSnapshot(t, "the log replayed twice", readmodeltest.Snapshot(ctx, t, m, probe()), want)
	checkpoints(t, m, l.pos)

	// A fresh instance on the same database starts at the stored
	// checkpoint: the replay is a no-op. (The document guards alone are
	// exercised by TestRestartFromCheckpoint, with the checkpoints lost.)
	again := models(open(t, db))
	feed(t, again, l.events...)
	readmodeltest.SameSnapshot(t, "replayed through a new instance", readmodeltest.Snapshot(ctx, t, again, probe()), want)

	// Each event delivered twice in a row into a fresh database.
	dup := models(open(t, newDB(t)))
	for _, e := range l.events {
		feed(t, dup, e, e)
	}
	readmodeltest.SameSnapshot(t, "every event twice", readmodeltest.Snapshot(ctx, t, dup, probe()), want)
}

// A projector that stops half-way resumes from its stored checkpoint; a
// redelivery of what it had applied is a no-op, even with the checkpoints
// lost (the data documents remember their positions).
func TestRestartFromCheckpoint(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	ctx := context.Background()
	l := history()
	ref := memoryModels()
	feed(t, ref, l.events...)
	want := readmodeltest.Snapshot(ctx, t, ref, probe())

	db := newDB(t)
	half := len(l.events) / 2
	first := models(open(t, db))
	feed(t, first, l.events[:half]...)
	checkpoints(t, first, l.events[half-1].Position)

	// Restart: a new instance reads the checkpoints from the database.
	second := models(open(t, db))
	checkpoints(t, second, l.events[half-1].Position)
	live := projections.NewLive(func() *pmongo.Directory { return second.Projections[0].(*pmongo.Directory) })
	if got := live.Position(); got != l.events[half-1].Position {
		t.Errorf("projections.Live starts at %d, want the stored checkpoint %d", got, l.events[half-1].Position)
	}
	// The forwarder resumes after the checkpoint; at-least-once delivery
	// may repeat a few events before it.
	feed(t, second, l.events[half-3:]...)
	checkpoints(t, second, l.pos)
	readmodeltest.SameSnapshot(t, "resumed from the checkpoint", readmodeltest.Snapshot(ctx, t, second, probe()), want)

	// Checkpoints lost (say a partial restore): the whole log again.
	if _, err := db.Collection(pmongo.CollCheckpoints).DeleteMany(ctx, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	third := models(open(t, db))
	checkpoints(t, third, 0)
	feed(t, third, l.events...)
	checkpoints(t, third, l.pos)
	readmodeltest.SameSnapshot(t, "replayed without checkpoints", readmodeltest.Snapshot(ctx, t, third, probe()), want)

	// Reset then rebuild from the start.
	m := open(t, db)
	if err := m.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	empty := models(m)
	checkpoints(t, empty, 0)
	if ds, err := m.Directory.Doctors(ctx, projections.DoctorFilter{}); err != nil || len(ds) != 0 {
		t.Fatalf("after Reset: %d doctors, %v", len(ds), err)
	}
	feed(t, empty, l.events...)
	readmodeltest.SameSnapshot(t, "rebuilt after Reset", readmodeltest.Snapshot(ctx, t, empty, probe()), want)
}

func TestAnalytics(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	analyticstest.Run(t, func(t *testing.T) analyticstest.Models {
		m := open(t, newDB(t))
		return analyticstest.Models{View: m.Analytics, Projection: m.Analytics}
	})
}

// The same suite in batches that split the story.
func TestAnalyticsBatched(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	analyticstest.Run(t, func(t *testing.T) analyticstest.Models {
		m := open(t, newDB(t))
		return analyticstest.Models{View: m.Analytics, Projection: m.Analytics, Batch: 5}
	})
}

// The property on MongoDB, for a few histories (a database each), in
// batches of 3.
func TestAnalyticsProperty(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	analyticstest.Property(t, func(t *testing.T) analyticstest.Models {
		m := open(t, newDB(t))
		return analyticstest.Models{View: m.Analytics, Projection: m.Analytics, Batch: 3}
	}, analyticstest.Histories(t, 8))
}

// TestServerTakesABulkReplaceOfManyDocuments: ApplyBatch writes a batch's
// documents of a collection with one unordered bulk write of replacements
// by _id, a few hundred after a backlog. FerretDB v1.24.2 kept every
// update of an update command's query open until the command ended, each
// holding one of the database's 100 SQLite connections, so a bulk write of
// 100 replacements waited for ever for a 101st (and so did everything
// after it on that database); scripts/ferretdb.sh patches that. On MongoDB
// this is an ordinary write.
func TestServerTakesABulkReplaceOfManyDocuments(t *testing.T) {
	t.Parallel()
	coll := server(t)(t).Collection("bulk")
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	docs := make([]any, n)
	writes := make([]mongo.WriteModel, n)
	for i := range n {
		id := fmt.Sprintf("doc-%04d", i)
		docs[i] = map[string]any{"_id": id, "v": 0}
		writes[i] = mongo.NewReplaceOneModel().SetFilter(map[string]any{"_id": id}).SetReplacement(map[string]any{"_id": id, "v": 1})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	res, err := coll.BulkWrite(ctx, writes, options.BulkWrite().SetOrdered(false))
	if err != nil {
		t.Fatalf("a bulk write of %d replacements: %v (FerretDB without scripts/ferretdb.sh's third patch waits for ever)", n, err)
	}
	if res.ModifiedCount != n {
		t.Fatalf("modified %d of %d", res.ModifiedCount, n)
	}
	// The database still answers afterwards.
	if c, err := coll.CountDocuments(ctx, map[string]any{"v": 1}); err != nil || c != n {
		t.Fatalf("count after the bulk write = %d, %v; want %d", c, err, n)
	}
}
