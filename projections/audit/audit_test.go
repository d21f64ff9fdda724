package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/snapshot"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/projections/audit"
)

// clock is the store's clock: each append is recorded at the time set.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// fixture is an embedded store with its clock and an audit reader of it.
type fixture struct {
	t     testing.TB
	store eventstore.Store
	clock *clock
	log   *audit.Log
	revs  map[string]int64
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), sqlite.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(st, reg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, store: st, clock: c, log: l, revs: map[string]int64{}}
}

// append stores events on stream at the clock's time at, with metadata
// naming an actor and a correlation id.
func (f *fixture) append(at time.Time, stream string, evs ...domain.Event) eventstore.AppendResult {
	f.t.Helper()
	f.clock.set(at)
	data := make([]eventstore.EventData, len(evs))
	for i, e := range evs {
		b, err := domain.Encode(e)
		if err != nil {
			f.t.Fatal(err)
		}
		id := uuid.New()
		md, _ := json.Marshal(domain.Metadata{EventID: id, Actor: domain.Actor{UserID: "u1", Role: domain.RoleAdmin},
			CorrelationID: "corr-" + e.EventType(), CausationID: "cause", RequestID: "req", OccurredAt: at})
		data[i] = eventstore.EventData{ID: id, Type: e.EventType(), Data: b, Metadata: md}
	}
	exp := eventstore.NoStream
	if r, ok := f.revs[stream]; ok {
		exp = eventstore.Exact(uint64(r))
	}
	res, err := f.store.Append(context.Background(), stream, exp, data)
	if err != nil {
		f.t.Fatal(err)
	}
	f.revs[stream] = int64(res.NextExpectedRevision)
	return res
}

const doc = "d1"

var (
	t0    = time.Date(2031, 3, 1, 8, 0, 0, 0, time.UTC)
	slot9 = time.Date(2031, 3, 3, 9, 0, 0, 0, time.UTC) // Monday 09:00 UTC
)

func schedule() doctor.Schedule {
	s := doctor.Schedule{Timezone: "UTC", SlotMinutes: 60, BookingWindowDays: 30, MinNoticeMinutes: 0, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "09:00", End: "12:00"})
	}
	return s
}

func reserve(id string, start time.Time, at time.Time) doctor.SlotReserved {
	return doctor.SlotReserved{DoctorID: doc, AppointmentID: id, PatientID: "p-" + id, PatientName: "Pat " + id,
		Start: start, End: start.Add(time.Hour), Status: doctor.StatusConfirmed, Fees: 50000, Currency: "INR",
		PaymentStatus: doctor.PaymentNotRequired, ReservedAt: at}
}

// history: a doctor registered at t0, schedule set, a1 booked at t0+1h, a2
// booked at t0+2h, a1 cancelled at t0+3h.
func (f *fixture) history() {
	f.append(t0, doctor.StreamID(doc),
		doctor.DoctorRegistered{DoctorID: doc, Profile: doctor.Profile{Name: "Dr One", Speciality: "General physician", Fees: 50000, Currency: "INR", Available: true}, RegisteredAt: t0},
		doctor.ScheduleSet{DoctorID: doc, Schedule: schedule()})
	f.append(t0.Add(time.Hour), doctor.StreamID(doc), reserve("a1", slot9, t0.Add(time.Hour)))
	f.append(t0.Add(2*time.Hour), doctor.StreamID(doc), reserve("a2", slot9.Add(time.Hour), t0.Add(2*time.Hour)))
	f.append(t0.Add(3*time.Hour), doctor.StreamID(doc), doctor.AppointmentCancelled{DoctorID: doc, AppointmentID: "a1",
		Start: slot9, End: slot9.Add(time.Hour), Reason: "ill", CancelledBy: domain.RolePatient, CancelledAt: t0.Add(3 * time.Hour)})
}

func TestStreamEventsAreTheStoredEventsPagedByRevision(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.history()
	ctx := context.Background()
	evs, err := f.log.StreamEvents(ctx, doctor.StreamID(doc), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Revision != 1 || evs[1].Revision != 2 || evs[0].Type != doctor.TypeScheduleSet || evs[1].Type != doctor.TypeSlotReserved {
		t.Fatalf("page: %+v", evs)
	}
	e := evs[1]
	if e.Stream != doctor.StreamID(doc) || e.Position != 3 || !e.RecordedAt.Equal(t0.Add(time.Hour)) ||
		e.Actor.UserID != "u1" || e.CorrelationID != "corr-"+doctor.TypeSlotReserved || e.CausationID != "cause" || e.RequestID != "req" || e.Hash != nil {
		t.Fatalf("event: %+v", e)
	}
	var data doctor.SlotReserved
	if err := json.Unmarshal(e.Data, &data); err != nil || data.AppointmentID != "a1" {
		t.Fatalf("data %s: %v", e.Data, err)
	}
	if evs, err := f.log.StreamEvents(ctx, doctor.StreamID(doc), 99, 10); err != nil || len(evs) != 0 {
		t.Fatalf("past the end: %v %v", evs, err)
	}
	if _, err := f.log.StreamEvents(ctx, "doctor-none", 0, 10); !errors.Is(err, audit.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	if _, err := f.log.StreamEvents(ctx, "bad\x00stream", 0, 10); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("bad stream: %v", err)
	}
}

func TestAppointmentHistoryListsOnlyItsEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.history()
	ctx := context.Background()
	evs, err := f.log.AppointmentHistory(ctx, doc, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Type != doctor.TypeSlotReserved || evs[1].Type != doctor.TypeAppointmentCancelled {
		t.Fatalf("a1: %+v", evs)
	}
	if evs, err := f.log.AppointmentHistory(ctx, doc, "a2"); err != nil || len(evs) != 1 {
		t.Fatalf("a2: %+v %v", evs, err)
	}
	if _, err := f.log.AppointmentHistory(ctx, doc, "a"); !errors.Is(err, doctor.ErrAppointmentNotFound) {
		t.Fatalf("a prefix of an id is not that appointment: %v", err)
	}
	if d, err := f.log.FindAppointment(ctx, "a2"); err != nil || d != doc {
		t.Fatalf("find a2: %q %v", d, err)
	}
	if _, err := f.log.FindAppointment(ctx, "zz"); !errors.Is(err, doctor.ErrAppointmentNotFound) {
		t.Fatalf("find zz: %v", err)
	}
}

func TestScheduleAsOfReplaysTheStreamUpToTheInstant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.history()
	ctx := context.Background()
	ask := func(at time.Time) audit.Schedule {
		t.Helper()
		s, err := f.log.ScheduleAsOf(ctx, audit.ScheduleQuery{DoctorID: doc, AsOf: at, From: doctor.DateOf(slot9), Days: 1})
		if err != nil {
			t.Fatalf("as of %s: %v", at, err)
		}
		return s
	}
	free := func(s audit.Schedule) []string {
		var out []string
		for _, sl := range s.Days[0].Slots {
			out = append(out, sl.Start.Format("15:04"))
		}
		return out
	}
	ids := func(s audit.Schedule) []string {
		var out []string
		for _, a := range s.Appointments {
			out = append(out, a.ID)
		}
		return out
	}
	for _, c := range []struct {
		name      string
		at        time.Time
		rev       int64
		free, ids string
	}{
		{"registered", t0.Add(30 * time.Minute), 1, "[09:00 10:00 11:00]", "[]"},
		{"a1 booked, at the instant", t0.Add(time.Hour), 2, "[10:00 11:00]", "[a1]"},
		{"a2 booked", t0.Add(2*time.Hour + time.Minute), 3, "[11:00]", "[a1 a2]"},
		{"a1 cancelled", t0.Add(3 * time.Hour), 4, "[09:00 11:00]", "[a2]"},
		{"after the slots began", slot9.Add(90 * time.Minute), 4, "[11:00]", "[a2]"},
	} {
		s := ask(c.at)
		if s.Revision != c.rev || fmt.Sprint(free(s)) != c.free || fmt.Sprint(ids(s)) != c.ids || !s.AsOf.Equal(c.at) {
			t.Errorf("%s: revision %d free %v appointments %v, want %d %s %s", c.name, s.Revision, free(s), ids(s), c.rev, c.free, c.ids)
		}
	}
	if _, err := f.log.ScheduleAsOf(ctx, audit.ScheduleQuery{DoctorID: doc, AsOf: t0.Add(-time.Second), Days: 1}); !errors.Is(err, doctor.ErrDoctorNotFound) {
		t.Fatalf("before the doctor existed: %v", err)
	}
	if _, err := f.log.ScheduleAsOf(ctx, audit.ScheduleQuery{DoctorID: "nobody", AsOf: t0, Days: 1}); !errors.Is(err, doctor.ErrDoctorNotFound) {
		t.Fatalf("unknown doctor: %v", err)
	}
	if s := ask(t0.Add(time.Hour)); s.Appointments[0].PatientName != "Pat a1" || s.Timezone != "UTC" || s.Appointments[0].DoctorName != "Dr One" {
		t.Fatalf("appointment: %+v", s.Appointments[0])
	}
}

// pages counts the events each read of the log returned: the export holds
// one page at a time.
type pages struct {
	eventstore.Store
	mu      sync.Mutex
	biggest int
	reads   int
}

func (p *pages) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := p.Store.ReadAll(ctx, after, limit)
	p.mu.Lock()
	p.reads++
	p.biggest = max(p.biggest, len(evs))
	p.mu.Unlock()
	return evs, err
}

func TestExportWalksTheLogAPageAtATime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 2600
	for i := range n / 100 {
		evs := make([]domain.Event, 100)
		for j := range evs {
			evs[j] = doctor.ProfileUpdated{DoctorID: doc, Profile: doctor.Profile{Name: fmt.Sprint(i*100 + j)}}
		}
		f.append(t0, doctor.StreamID(doc), evs...)
	}
	f.append(t0, doctor.StreamID("d2"), doctor.ProfileUpdated{DoctorID: "d2"})
	reg, _ := catalog.NewRegistry()
	p := &pages{Store: f.store}
	l, _ := audit.New(p, reg)
	var got []uint64
	if err := l.Export(context.Background(), "", 0, func(e audit.Event) error { got = append(got, e.Position); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n+1 || got[0] != 1 || got[n] != n+1 {
		t.Fatalf("exported %d events", len(got))
	}
	for i := range got {
		if got[i] != uint64(i+1) {
			t.Fatalf("event %d at position %d: out of order", i, got[i])
		}
	}
	if p.biggest > 1000 || p.reads < n/1000 {
		t.Fatalf("the export read %d events at once in %d reads: not a page at a time", p.biggest, p.reads)
	}
	got = got[:0]
	if err := l.Export(context.Background(), "", 2600, func(e audit.Event) error { got = append(got, e.Position); return nil }); err != nil || fmt.Sprint(got) != "[2600 2601]" {
		t.Fatalf("from 2600: %v %v", got, err)
	}
	got = got[:0]
	if err := l.Export(context.Background(), doctor.StreamID("d2"), 0, func(e audit.Event) error { got = append(got, e.Position); return nil }); err != nil || fmt.Sprint(got) != "[2601]" {
		t.Fatalf("stream d2: %v %v", got, err)
	}
}

// events counts the events stream reads returned.
type events struct {
	eventstore.Store
	n atomic.Int64
}

func (c *events) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := c.Store.ReadStream(ctx, stream, from, dir, limit)
	c.n.Add(int64(len(evs)))
	return evs, err
}

// Replays that start from snapshots answer exactly what a replay from the
// first event answers, at every instant, and read at most
// AsOfSnapshotEvery events past the snapshot.
func TestScheduleAsOfFromSnapshotsEqualsTheFullReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t0, doctor.StreamID(doc),
		doctor.DoctorRegistered{DoctorID: doc, Profile: doctor.Profile{Name: "Dr One", Currency: "INR", Available: true}, RegisteredAt: t0},
		doctor.ScheduleSet{DoctorID: doc, Schedule: schedule()})
	// 4,200 more events, 50 an append, each append a minute after the
	// last: reservations of hourly slots, every third cancelled.
	const n = 4200
	at := t0
	var batch []domain.Event
	for i := 0; len(batch) < n; i++ {
		id := fmt.Sprintf("a%d", i)
		start := slot9.Add(time.Duration(i/3)*24*time.Hour + time.Duration(i%3)*time.Hour)
		batch = append(batch, reserve(id, start, at))
		if i%3 == 2 {
			batch = append(batch, doctor.AppointmentCancelled{DoctorID: doc, AppointmentID: id, Start: start, End: start.Add(time.Hour), CancelledBy: domain.RoleAdmin, CancelledAt: at})
		}
	}
	for i := 0; i < len(batch); i += 50 {
		at = at.Add(time.Minute)
		f.append(at, doctor.StreamID(doc), batch[i:min(i+50, len(batch))]...)
	}
	reg, _ := catalog.NewRegistry()
	snaps := snapshot.NewMemory()
	counted := &events{Store: f.store}
	withSnaps, _ := audit.New(counted, reg, audit.WithSnapshots(snaps))
	ctx := context.Background()
	ask := func(l *audit.Log, asOf time.Time) string {
		t.Helper()
		s, err := l.ScheduleAsOf(ctx, audit.ScheduleQuery{DoctorID: doc, AsOf: asOf, From: doctor.DateOf(slot9), Days: 31})
		if err != nil {
			t.Fatalf("as of %s: %v", asOf, err)
		}
		b, _ := json.Marshal(s)
		return string(b)
	}
	last := at
	if got, want := ask(withSnaps, last), ask(f.log, last); got != want {
		t.Fatal("the first replay (saving snapshots) differs from the full replay")
	}
	if snaps.Len() != (n+2)/audit.AsOfSnapshotEvery {
		t.Fatalf("%d snapshots after replaying %d events, want %d", snaps.Len(), n+2, (n+2)/audit.AsOfSnapshotEvery)
	}
	for i := range 6 {
		asOf := t0.Add(time.Duration(i*37%85) * time.Minute).Add(time.Duration(i%2) * 30 * time.Second)
		counted.n.Store(0)
		if got, want := ask(withSnaps, asOf), ask(f.log, asOf); got != want {
			t.Fatalf("as of %s: the replay from a snapshot differs from the full replay", asOf)
		}
		if read := counted.n.Load(); read > audit.AsOfSnapshotEvery+500+1 {
			t.Errorf("as of %s: read %d events", asOf, read)
		}
	}
	// Auditors asking at once, with no snapshot yet, save the same
	// snapshots concurrently into one directory: every answer is the full
	// replay's, and so is the one read from the snapshots they left.
	dir, err := snapshot.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared, _ := audit.New(f.store, reg, audit.WithSnapshots(dir))
	want := ask(f.log, last)
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Go(func() {
			s, err := shared.ScheduleAsOf(ctx, audit.ScheduleQuery{DoctorID: doc, AsOf: last, From: doctor.DateOf(slot9), Days: 31})
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := json.Marshal(s)
			got[i] = string(b)
		})
	}
	wg.Wait()
	for i, g := range got {
		if g != want {
			t.Fatalf("concurrent auditor %d: answer differs from the full replay", i)
		}
	}
	if ask(shared, last) != want {
		t.Fatal("the replay from the concurrently saved snapshots differs")
	}
}

// An auditor sees that a password was set, never its hash.
func TestSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	e := audit.FromRecorded(eventstore.RecordedEvent{ID: uuid.New(), StreamID: "account-1", Type: "account.Opened.v1",
		Data: []byte(`{"accountId":"1","passwordHash":"$2a$11$abc","nested":{"tokenHash":"kept: not top level"}}`), Metadata: []byte(`{}`)})
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatal(err)
	}
	if m["passwordHash"] != audit.Redacted || m["accountId"] != "1" {
		t.Fatalf("data: %s", e.Data)
	}
	plain := `{"doctorId":"d1"}`
	if e := audit.FromRecorded(eventstore.RecordedEvent{ID: uuid.New(), Data: []byte(plain)}); string(e.Data) != plain || string(e.Metadata) != "{}" {
		t.Fatalf("untouched: %s %s", e.Data, e.Metadata)
	}
}
