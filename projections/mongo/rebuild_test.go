package mongo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	pmongo "github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

// lives are the three models behind projections.Live, as the projector
// runs them.
type lives struct {
	dir   *projections.Live[*pmongo.Directory]
	slots *projections.Live[*pmongo.Slots]
	apps  *projections.Live[*pmongo.Appointments]
}

func liveModels(m *pmongo.Models) lives {
	return lives{
		dir:   projections.NewLive(func() *pmongo.Directory { return m.Directory }),
		slots: projections.NewLive(func() *pmongo.Slots { return m.Slots }),
		apps:  projections.NewLive(func() *pmongo.Appointments { return m.Appointments }),
	}
}

func (l lives) models() readmodeltest.Models {
	apps := projections.LiveAppointments[*pmongo.Appointments]{L: l.apps}
	return readmodeltest.Models{
		Directory: projections.LiveDirectory[*pmongo.Directory]{L: l.dir}, Slots: projections.LiveSlots[*pmongo.Slots]{L: l.slots},
		Appointments: apps, Dashboards: apps, Payments: apps,
		Projections: []projections.Projection{l.dir, l.slots, l.apps},
	}
}

func (l lives) rebuilders() []interface {
	Name() string
	Rebuild(context.Context, eventstore.Store, *domain.Registry) error
} {
	return []interface {
		Name() string
		Rebuild(context.Context, eventstore.Store, *domain.Registry) error
	}{l.dir, l.slots, l.apps}
}

// eventLog is an embedded event store holding a history, read back as the
// projector sees it (store positions).
type eventLog struct {
	store *sqlite.Store
	reg   *domain.Registry
	mu    sync.Mutex
	all   []projections.Event
}

func newEventLog(t *testing.T) *eventLog {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return &eventLog{store: s, reg: reg}
}

// append stores e and returns it as recorded (with its store position).
// It may run in a goroutine: a failure is reported with t.Error and
// returns the zero Event.
func (l *eventLog) append(t testing.TB, e projections.Event) projections.Event {
	t.Helper()
	rec, err := l.store1(e)
	if err != nil {
		t.Errorf("append %s: %v", e.Type, err)
	}
	return rec
}

func (l *eventLog) store1(e projections.Event) (projections.Event, error) {
	data, err := domain.Encode(e.Data)
	if err != nil {
		return projections.Event{}, err
	}
	md, err := json.Marshal(e.Metadata)
	if err != nil {
		return projections.Event{}, err
	}
	ctx := context.Background()
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.store.Append(ctx, e.StreamID, eventstore.Any, []eventstore.EventData{{ID: uuid.New(), Type: e.Type, Data: data, Metadata: md}})
	if err != nil {
		return projections.Event{}, err
	}
	recs, err := l.store.ReadAll(ctx, res.Position-1, 1)
	if err != nil || len(recs) != 1 {
		return projections.Event{}, fmt.Errorf("read back %d: %d records, %v", res.Position, len(recs), err)
	}
	rec, err := projections.Decode(l.reg, recs[0])
	if err != nil {
		return projections.Event{}, err
	}
	l.all = append(l.all, rec)
	return rec, nil
}

func (l *eventLog) events() []projections.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// apply feeds e to every projection, failing t on an error.
func apply(t testing.TB, ps []projections.Projection, e projections.Event) {
	for _, p := range ps {
		if err := p.Apply(context.Background(), e); err != nil {
			t.Errorf("%s.Apply(%s at %d): %v", p.Name(), e.Type, e.Position, err)
		}
	}
}

// counts is what a reader checks never shrinks during a rebuild.
type counts struct{ doctors, appointments, patients int }

func countsOf(ctx context.Context, m readmodeltest.Models) (counts, error) {
	ds, err := m.Directory.Doctors(ctx, projections.DoctorFilter{})
	if err != nil {
		return counts{}, err
	}
	ad, err := m.Dashboards.AdminDashboard(ctx)
	if err != nil {
		return counts{}, err
	}
	page, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{Limit: 100})
	if err != nil {
		return counts{}, err
	}
	if len(page.Appointments) < ad.Appointments && page.NextCursor == "" {
		return counts{}, fmt.Errorf("a list of %d appointments, the dashboard counts %d", len(page.Appointments), ad.Appointments)
	}
	if _, err := m.Slots.FreeSlots(ctx, "d1", projectionsDate(at(6, 12, 0)), 7, now); err != nil {
		return counts{}, err
	}
	return counts{doctors: len(ds), appointments: ad.Appointments, patients: ad.Patients}, nil
}

func (c counts) below(floor counts) bool {
	return c.doctors < floor.doctors || c.appointments < floor.appointments || c.patients < floor.patients
}

// readUntil reads m in a loop until stop is closed, failing t on an error
// or on fewer doctors, appointments or patients than floor.
func readUntil(t *testing.T, wg *sync.WaitGroup, stop <-chan struct{}, who string, m readmodeltest.Models, floor counts, reads *atomic.Int64) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := countsOf(context.Background(), m)
			if err != nil {
				t.Errorf("%s: a read during the rebuild failed: %v", who, err)
				return
			}
			if c.below(floor) {
				t.Errorf("%s: a read during the rebuild saw %+v, fewer than before it began (%+v)", who, c, floor)
				return
			}
			reads.Add(1)
			time.Sleep(3 * time.Millisecond)
		}
	}()
}

// laterEvents are events after history(): a new doctor, patients, bookings
// and changes, so that a rebuild has something to catch up with.
func laterEvents(base *log, n int) []projections.Event {
	l := &log{pos: base.pos, clock: base.clock, revs: base.revs}
	for i := range n {
		id := fmt.Sprintf("late-d%02d", i)
		p := doctor.Profile{Name: fmt.Sprintf("Dr. Late %02d", i), Speciality: "Dermatology", Fees: 700, Currency: "INR", Available: true}
		l.add(doctor.StreamID(id), doctor.DoctorRegistered{DoctorID: id, Profile: p, RegisteredAt: l.clock})
		start := at(8+i%5, 9, 0).Add(time.Duration(i/5) * 30 * time.Minute)
		l.add(doctor.StreamID("d1"), doctor.SlotReserved{DoctorID: "d1", AppointmentID: fmt.Sprintf("late-ap%02d", i), PatientID: "p1", PatientName: "Patient p1",
			Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed, Fees: 1000, Currency: "INR",
			PaymentStatus: doctor.PaymentPending, ReservedAt: l.clock})
		if i%3 == 0 {
			l.add(doctor.StreamID("d1"), doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: fmt.Sprintf("late-ap%02d", i), Reason: "late", CancelledBy: domain.RolePatient})
		}
	}
	return l.events
}

// fresh is the answer of a fresh replay of events into an empty database.
func fresh(t *testing.T, db *mongo.Database, events []projections.Event) string {
	t.Helper()
	m := models(open(t, db))
	feed(t, m, events...)
	return readmodeltest.Snapshot(context.Background(), t, m, probe())
}

// A rebuild of every model while events keep being applied and readers
// keep reading: every read succeeds and never sees fewer doctors,
// appointments or patients than before the rebuild; the rebuilt models
// answer exactly as a fresh replay into an empty database; a second
// Models on the same database (an api process) follows the switch without
// a restart; a restarted projector resumes the rebuilt generation.
func TestOnlineRebuild(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	ctx := context.Background()
	evlog := newEventLog(t)
	db := newDB(t)
	m := open(t, db)
	live := liveModels(m)
	lm := live.models()
	for _, e := range history().events {
		apply(t, lm.Projections, evlog.append(t, e))
	}
	api := models(open(t, db)) // another process: reads only
	floor, err := countsOf(ctx, lm)
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	var reads atomic.Int64
	for i := range 3 {
		readUntil(t, &readers, stop, fmt.Sprintf("projector reader %d", i), lm, floor, &reads)
	}
	readUntil(t, &readers, stop, "api reader", api, floor, &reads)

	// The writer: the projector keeps applying new events.
	later := laterEvents(history(), 30)
	var writer sync.WaitGroup
	var during atomic.Int64 // events applied while a rebuild ran
	writer.Add(1)
	go func() {
		defer writer.Done()
		for _, e := range later {
			rec := evlog.append(t, e)
			if rec.Position == 0 {
				return
			}
			apply(t, lm.Projections, rec)
			for _, l := range []interface{ State() (string, string) }{live.dir, live.slots, live.apps} {
				if st, _ := l.State(); st == "rebuilding" {
					during.Add(1)
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// Each model rebuilt twice while the writer runs.
	began := time.Now()
	var rebuilds sync.WaitGroup
	for _, r := range live.rebuilders() {
		rebuilds.Add(1)
		go func() {
			defer rebuilds.Done()
			for range 2 {
				if err := r.Rebuild(ctx, evlog.store, evlog.reg); err != nil {
					t.Errorf("rebuild %s: %v", r.Name(), err)
					return
				}
			}
		}()
	}
	rebuilds.Wait()
	writer.Wait()
	close(stop)
	readers.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d reads and %d of %d new events applied during the rebuilds (%s)", reads.Load(), during.Load(), len(later), time.Since(began))
	if during.Load() == 0 {
		t.Error("no event was applied while a rebuild ran")
	}

	// An event after the last switch reaches only the rebuilt generation.
	after := evlog.append(t, projections.Event{
		StreamID: doctor.StreamID("d2"), Type: doctor.ProfileUpdated{}.EventType(), Metadata: domain.Metadata{Actor: domain.System},
		Data: doctor.ProfileUpdated{DoctorID: "d2", Profile: doctor.Profile{Name: "Dr. Two After The Rebuild", Speciality: "ENT", Currency: "INR", Available: true}},
	})
	apply(t, lm.Projections, after)

	want := fresh(t, newDB(t), evlog.events())
	readmodeltest.SameSnapshot(t, "rebuilt while serving vs a fresh replay", readmodeltest.Snapshot(ctx, t, lm, probe()), want)
	for _, p := range lm.Projections {
		if c, err := p.Checkpoint(ctx); err != nil || c != after.Position {
			t.Errorf("%s: checkpoint %d, %v; want %d", p.Name(), c, err, after.Position)
		}
	}

	// The api process follows the switch without a restart.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := readmodeltest.Snapshot(ctx, t, api, probe())
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			readmodeltest.SameSnapshot(t, "a second Models on the database after the switch", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range api.Projections {
		if c, err := p.Checkpoint(ctx); err != nil || c != after.Position {
			t.Errorf("api %s: checkpoint %d, %v; want %d", p.Name(), c, err, after.Position)
		}
	}

	// A restarted projector resumes the rebuilt generation at its
	// checkpoint; the whole log again is a no-op.
	restarted := liveModels(open(t, db))
	for _, p := range restarted.models().Projections {
		if got := p.(interface{ Position() uint64 }).Position(); got != after.Position {
			t.Errorf("restarted %s starts at %d, want %d", p.Name(), got, after.Position)
		}
	}
	for _, e := range evlog.events() {
		apply(t, restarted.models().Projections, e)
	}
	readmodeltest.SameSnapshot(t, "restarted and replayed", readmodeltest.Snapshot(ctx, t, restarted.models(), probe()), want)
}

// A rebuild after a crashed one: whatever the crash left (a shadow
// generation with part of the log, a stray collection, a checkpoint
// without its collections) is dropped, and the result is a fresh replay.
func TestRebuildAfterCrashedRebuild(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	ctx := context.Background()
	evlog := newEventLog(t)
	db := newDB(t)
	live := liveModels(open(t, db))
	lm := live.models()
	for _, e := range history().events {
		apply(t, lm.Projections, evlog.append(t, e))
	}
	// The crashed rebuild: shadows with half of the log, never promoted.
	half := evlog.events()[:len(evlog.events())/2]
	dirShadow, err := live.dir.Current().NewShadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slotsShadow, err := live.slots.Current().NewShadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appsShadow, err := live.apps.Current().NewShadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, []projections.Projection{dirShadow, slotsShadow, appsShadow}, half[0])
	for _, e := range half {
		apply(t, []projections.Projection{dirShadow, slotsShadow, appsShadow}, e)
	}
	// Strays of an older crash: a collection of a higher generation with a
	// doctor nobody registered, and a checkpoint claiming a far position
	// for the generation the next rebuild will pick (8, above every
	// collection): were it kept, the shadow would skip the whole log.
	if _, err := db.Collection("doctors__g7").InsertOne(ctx, bson.D{{Key: "_id", Value: "ghost"}, {Key: "name", Value: "Ghost"}, {Key: "position", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection(pmongo.CollCheckpoints).InsertOne(ctx, bson.D{{Key: "_id", Value: "doctors__g8"}, {Key: "position", Value: int64(1 << 40)}}); err != nil {
		t.Fatal(err)
	}
	before := readmodeltest.Snapshot(ctx, t, lm, probe())
	for _, r := range live.rebuilders() {
		if err := r.Rebuild(ctx, evlog.store, evlog.reg); err != nil {
			t.Fatalf("rebuild %s: %v", r.Name(), err)
		}
	}
	want := fresh(t, newDB(t), evlog.events())
	if before != want {
		t.Fatal("the models before the rebuild differ from a fresh replay")
	}
	readmodeltest.SameSnapshot(t, "rebuilt after a crashed rebuild", readmodeltest.Snapshot(ctx, t, lm, probe()), want)
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "doctors__g7") {
		t.Errorf("the stray doctors__g7 is still there: %v", names)
	}
	if c, err := live.dir.Checkpoint(ctx); err != nil || c != evlog.events()[len(evlog.events())-1].Position {
		t.Errorf("the directory's checkpoint after the rebuild: %d, %v", c, err)
	}
	// The generation that was live before the rebuild is kept for readers
	// that resolved it just before the switch.
	if !slices.Contains(names, pmongo.CollDoctors) {
		t.Errorf("the retired generation was dropped at once: %v", names)
	}
	// A second rebuild (the first switch long past) drops it.
	if _, err := db.Collection(pmongo.CollGenerations).UpdateMany(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "promotedAt", Value: time.Now().Add(-time.Hour).UnixNano()}}}}); err != nil {
		t.Fatal(err)
	}
	for _, r := range live.rebuilders() {
		if err := r.Rebuild(ctx, evlog.store, evlog.reg); err != nil {
			t.Fatalf("second rebuild %s: %v", r.Name(), err)
		}
	}
	readmodeltest.SameSnapshot(t, "rebuilt twice", readmodeltest.Snapshot(ctx, t, lm, probe()), want)
	names, err = db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	// Left: the live generation and the one the second rebuild retired.
	for _, base := range []string{pmongo.CollDoctors, pmongo.CollFreeSlots, pmongo.CollAppointments, pmongo.CollAppointmentDoctors, pmongo.CollPatients} {
		var gens []string
		for _, n := range names {
			if n == base || strings.HasPrefix(n, base+"__g") {
				gens = append(gens, n)
			}
		}
		if len(gens) != 2 || slices.Contains(gens, base) {
			t.Errorf("%s after two rebuilds: %v, want two generations above 0", base, gens)
		}
	}
}

// A read or an Apply on a server that does not answer is
// domain.ErrUnavailable (503), a read whose own context ends returns that
// context's error, and the models' other errors are not made unavailable.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Nothing listens on the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr).
		SetTimeout(300 * time.Millisecond).SetServerSelectionTimeout(300 * time.Millisecond).SetConnectTimeout(300 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	if _, err := pmongo.New(ctx, client.Database("nowhere")); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("New on a closed port: %v, want domain.ErrUnavailable", err)
	}

	// Models opened while the server answered, then it goes away.
	srv := testenv.StartFerretDB(t)
	client, err = mongo.Connect(options.Client().ApplyURI(srv.URI()).
		SetTimeout(time.Second).SetServerSelectionTimeout(500 * time.Millisecond).SetConnectTimeout(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	m, err := pmongo.New(ctx, client.Database(testenv.MongoDatabase(t)))
	if err != nil {
		t.Fatal(err)
	}
	rm := models(m)
	l := history()
	feed(t, rm, l.events[:10]...)
	if _, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{Limit: 5, Cursor: "not a cursor"}); err == nil || errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("a bad cursor: %v, want an error that is not unavailability", err)
	}
	// No generation cache, so that every read asks the server (instead
	// of sleeping past generationTTL).
	pmongo.SetGenerationTTL(m, 0)
	srv.Stop()
	reads := map[string]func(context.Context) error{
		"doctors": func(ctx context.Context) error {
			_, err := m.Directory.Doctors(ctx, projections.DoctorFilter{})
			return err
		},
		"doctor": func(ctx context.Context) error { _, err := m.Directory.Doctor(ctx, "d1"); return err },
		"specialities": func(ctx context.Context) error {
			_, err := m.Directory.Specialities(ctx)
			return err
		},
		"free slots": func(ctx context.Context) error {
			_, err := m.Slots.FreeSlots(ctx, "d1", projectionsDate(at(7, 12, 0)), 3, now)
			return err
		},
		"appointment": func(ctx context.Context) error { _, err := m.Appointments.Appointment(ctx, "ap01"); return err },
		"appointments": func(ctx context.Context) error {
			_, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{Limit: 5})
			return err
		},
		"doctor dashboard": func(ctx context.Context) error { _, err := m.Appointments.DoctorDashboard(ctx, "d1"); return err },
		"admin dashboard": func(ctx context.Context) error {
			_, err := m.Appointments.AdminDashboard(ctx)
			return err
		},
		"checkpoint": func(ctx context.Context) error { _, err := m.Directory.Checkpoint(ctx); return err },
		"apply": func(ctx context.Context) error {
			for _, p := range rm.Projections {
				if err := p.Apply(ctx, l.events[10]); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, read := range reads {
		if err := read(ctx); !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want domain.ErrUnavailable", name, err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := read(cctx); !errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled only", name, err)
		}
	}
}

// The classification itself: unreachable servers and the driver's own
// timeouts are unavailability; the caller's ended context is its own error;
// anything else stays a plain error (a 500).
func TestFailClassification(t *testing.T) {
	t.Parallel()
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithTimeout(live, -time.Second)
	defer cancel2()
	for _, c := range []struct {
		name        string
		ctx         context.Context
		err         error
		unavailable bool
		ctxErr      error
	}{
		{"server selection", live, topology.ServerSelectionError{Wrapped: errors.New("no server")}, true, nil},
		{"the driver's own timeout", live, fmt.Errorf("find: %w", context.DeadlineExceeded), true, nil},
		{"a network error", live, mongo.CommandError{Labels: []string{"NetworkError"}, Message: "connection reset"}, true, nil},
		{"a disconnected client", live, mongo.ErrClientDisconnected, true, nil},
		{"a duplicate key", live, mongo.CommandError{Code: 11000, Message: "E11000"}, false, nil},
		{"a decode error", live, errors.New("cannot decode string into an integer type"), false, nil},
		{"a cancelled request", cancelled, errors.New("connection closed: operation was canceled"), false, context.Canceled},
		{"the request's own deadline", expired, fmt.Errorf("find: %w", context.DeadlineExceeded), false, context.DeadlineExceeded},
	} {
		err := pmongo.Fail(c.ctx, c.err, "doctors")
		if got := errors.Is(err, domain.ErrUnavailable); got != c.unavailable {
			t.Errorf("%s: %v: unavailable %v, want %v", c.name, err, got, c.unavailable)
		}
		if !strings.Contains(err.Error(), c.err.Error()) || !strings.HasPrefix(err.Error(), "mongo: doctors: ") {
			t.Errorf("%s: %v does not describe the driver's error", c.name, err)
		}
		if c.ctxErr != nil && !errors.Is(err, c.ctxErr) {
			t.Errorf("%s: %v, want %v", c.name, err, c.ctxErr)
		}
	}
	if pmongo.Fail(live, nil, "doctors") != nil {
		t.Error("fail(nil) is not nil")
	}
}
