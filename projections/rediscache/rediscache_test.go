package rediscache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/readmodeltest"
	"github.com/prescripto/prescripto/projections/rediscache"
)

// backing is a read model under the test's control: it counts reads and
// can hold them at a gate.
type backing struct {
	mu      sync.Mutex
	doctors map[string]projections.Doctor
	slots   map[string][]byte
	holds   map[string][2]time.Time // the answers' projections.SlotsAnswer span
	pos     uint64                  // the slots model's checkpoint

	doctorCalls atomic.Int64
	slotCalls   atomic.Int64
	delay       time.Duration
	gate        chan struct{} // when set, reads wait for it after signalling entered
	entered     chan struct{}
}

func newBacking() *backing {
	return &backing{doctors: map[string]projections.Doctor{}, slots: map[string][]byte{}, holds: map[string][2]time.Time{}}
}

func (b *backing) wait() {
	b.mu.Lock()
	gate, entered, delay := b.gate, b.entered, b.delay
	b.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	time.Sleep(delay)
}

func (b *backing) setDoctor(d projections.Doctor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.doctors[d.ID] = d
}

func (b *backing) setSlots(id string, js string, pos uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slots[id], b.pos = []byte(js), pos
}

func (b *backing) Doctor(_ context.Context, id string) (projections.Doctor, error) {
	b.doctorCalls.Add(1)
	b.mu.Lock()
	d, ok := b.doctors[id]
	b.mu.Unlock()
	b.wait() // read, then take long to answer: the late fill
	if !ok {
		return projections.Doctor{}, projections.ErrNotFound
	}
	return d, nil
}

func (b *backing) Doctors(context.Context, projections.DoctorFilter) ([]projections.Doctor, error) {
	return nil, nil
}

func (b *backing) Specialities(context.Context) ([]projections.Speciality, error) { return nil, nil }

// setHolds sets the span of the doctor's holds the answers report.
func (b *backing) setHolds(id string, from, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holds[id] = [2]time.Time{from, until}
}

func (b *backing) FreeSlotsAnswer(_ context.Context, id string, _ doctor.Date, _ int, _ time.Time) (projections.SlotsAnswer, error) {
	b.slotCalls.Add(1)
	b.mu.Lock()
	s, ok := b.slots[id]
	h := b.holds[id]
	b.mu.Unlock()
	b.wait()
	if !ok {
		return projections.SlotsAnswer{}, projections.ErrNotFound
	}
	return projections.SlotsAnswer{JSON: s, HoldsFrom: h[0], HoldsUntil: h[1]}, nil
}

func (b *backing) position(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pos, nil
}

type fixture struct {
	b     *backing
	cache *rediscache.Cache
	inv   *rediscache.Invalidation
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	client := testenv.RedisClient(t, url)
	prefix := "test:" + uuid.NewString()
	b := newBacking()
	c, err := rediscache.New(rediscache.Config{
		Client: client, Prefix: prefix, Directory: b, Slots: b, SlotsPosition: b.position,
		Timeout: time.Second, Backoff: 50 * time.Millisecond, Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{b: b, cache: c, inv: rediscache.NewInvalidation(client, prefix)}
}

func (f *fixture) apply(t *testing.T, pos uint64, ev doctor.DoctorEvent) {
	t.Helper()
	if err := f.inv.Apply(context.Background(), projections.Event{Position: pos, Data: ev, StreamID: doctor.StreamID(ev.DoctorRef())}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) doctor(t *testing.T, id string) projections.Doctor {
	t.Helper()
	d, err := f.cache.Doctor(context.Background(), id)
	if err != nil {
		t.Fatalf("Doctor(%s): %v", id, err)
	}
	return d
}

// now is inside a minute (an instant on a minute boundary bypasses the cache).
var now = time.Date(2031, 3, 3, 4, 0, 30, 0, time.UTC)

func (f *fixture) slots(t *testing.T, id string, at time.Time) string {
	t.Helper()
	b, err := f.cache.FreeSlotsJSON(context.Background(), id, doctor.DateOf(at), 7, at)
	if err != nil {
		t.Fatalf("FreeSlotsJSON(%s): %v", id, err)
	}
	return string(b)
}

func doc(id, name string, pos uint64) projections.Doctor {
	return projections.Doctor{ID: id, Name: name, Speciality: "Dermatology", Fees: 50000, Currency: "INR", Available: true, Position: pos}
}

func TestDoctorHitAndMiss(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	f.b.setDoctor(doc("d1", "Dr. Kavya Iyer", 7))
	for range 3 {
		if got := f.doctor(t, "d1"); got != doc("d1", "Dr. Kavya Iyer", 7) {
			t.Fatalf("got %+v", got)
		}
	}
	if n := f.b.doctorCalls.Load(); n != 1 {
		t.Fatalf("%d backing reads for 3 reads, want 1", n)
	}
	// A miss of the backing store is not cached and stays a miss.
	for range 2 {
		if _, err := f.cache.Doctor(context.Background(), "nobody"); !projections.IsNotFound(err) {
			t.Fatalf("unknown doctor: %v", err)
		}
	}
	if n := f.b.doctorCalls.Load(); n != 3 {
		t.Fatalf("%d backing reads, want 3", n)
	}
}

func TestStampedeFillsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	f.b.setDoctor(doc("d1", "Dr. Rohan Das", 3))
	f.b.setSlots("d1", `{"doctorId":"d1"}`, 3)
	f.b.delay = 50 * time.Millisecond
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	start := make(chan struct{})
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			if d, err := f.cache.Doctor(context.Background(), "d1"); err != nil || d.Name != "Dr. Rohan Das" {
				errs <- fmt.Errorf("doctor %+v, %v", d, err)
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			if b, err := f.cache.FreeSlotsJSON(context.Background(), "d1", doctor.DateOf(now), 7, now); err != nil || string(b) != `{"doctorId":"d1"}` {
				errs <- fmt.Errorf("slots %s, %v", b, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d, s := f.b.doctorCalls.Load(), f.b.slotCalls.Load(); d != 1 || s != 1 {
		t.Fatalf("backing reads under a stampede of %d: doctor %d, slots %d; want 1 each", n, d, s)
	}
}

func TestInvalidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	f.b.setDoctor(doc("d1", "Dr. Emma Stone", 5))
	f.b.setSlots("d1", `{"v":1}`, 5)
	f.doctor(t, "d1")
	f.slots(t, "d1", now)

	// A booking changes the slots, not the profile.
	f.b.setSlots("d1", `{"v":2}`, 6)
	f.apply(t, 6, doctor.SlotReserved{DoctorID: "d1"})
	if got := f.slots(t, "d1", now); got != `{"v":2}` {
		t.Fatalf("slots after SlotReserved %s", got)
	}
	if got := f.doctor(t, "d1"); got.Name != "Dr. Emma Stone" || f.b.doctorCalls.Load() != 1 {
		t.Fatalf("profile re-read after a booking: %+v, %d reads", got, f.b.doctorCalls.Load())
	}

	// A profile change invalidates both.
	f.b.setDoctor(doc("d1", "Dr. Emma Stone-Lee", 7))
	f.b.setSlots("d1", `{"v":3}`, 7)
	f.apply(t, 7, doctor.ProfileUpdated{DoctorID: "d1"})
	if got := f.doctor(t, "d1"); got != doc("d1", "Dr. Emma Stone-Lee", 7) {
		t.Fatalf("doctor after ProfileUpdated %+v", got)
	}
	if got := f.slots(t, "d1", now); got != `{"v":3}` {
		t.Fatalf("slots after ProfileUpdated %s", got)
	}
	// Replaying old events (redelivery, rebuild) invalidates nothing.
	before := f.b.doctorCalls.Load()
	f.apply(t, 6, doctor.ProfileUpdated{DoctorID: "d1"})
	f.doctor(t, "d1")
	if f.b.doctorCalls.Load() != before {
		t.Fatal("an old event invalidated the profile")
	}
	// Another doctor's events leave d1 cached.
	f.apply(t, 8, doctor.ProfileUpdated{DoctorID: "d2"})
	f.doctor(t, "d1")
	if f.b.doctorCalls.Load() != before {
		t.Fatal("another doctor's event invalidated d1")
	}
	// The checkpoint is kept in Redis.
	if cp, err := f.inv.Checkpoint(context.Background()); err != nil || cp != 8 {
		t.Fatalf("checkpoint %d, %v", cp, err)
	}
}

func TestSlotsKeyedByMinute(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	f.b.setSlots("d1", `{"v":1}`, 1)
	f.slots(t, "d1", now)
	f.slots(t, "d1", now.Add(20*time.Second)) // same minute: a hit
	if n := f.b.slotCalls.Load(); n != 1 {
		t.Fatalf("%d backing reads within one minute, want 1", n)
	}
	f.slots(t, "d1", now.Add(40*time.Second)) // the next minute: its own answer
	if n := f.b.slotCalls.Load(); n != 2 {
		t.Fatalf("%d backing reads over two minutes, want 2", n)
	}
	boundary := now.Truncate(time.Minute).Add(2 * time.Minute)
	f.slots(t, "d1", boundary)
	f.slots(t, "d1", boundary)
	if n := f.b.slotCalls.Load(); n != 4 {
		t.Fatalf("%d backing reads, want 4: an instant on a minute boundary is not cached", n)
	}
}

// A held slot is free from its hold's expiry on, before any event says so:
// an answer is not served past the earliest hold expiry it counted, nor
// before the latest one it counted as run out.
func TestSlotsNotServedAcrossAHoldExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	expiry := now.Add(10 * time.Second) // inside now's minute
	f.b.setSlots("d1", `{"held":true}`, 1)
	f.b.setHolds("d1", time.Time{}, expiry)
	calls := func(want int64, what string) {
		t.Helper()
		if n := f.b.slotCalls.Load(); n != want {
			t.Fatalf("%s: %d backing reads, want %d", what, n, want)
		}
	}
	f.slots(t, "d1", now)
	f.slots(t, "d1", expiry.Add(-time.Nanosecond))
	calls(1, "before the expiry")

	// The hold ran out: no event, the same minute, but another answer.
	f.b.setSlots("d1", `{"held":false}`, 1)
	f.b.setHolds("d1", expiry, time.Time{})
	if got := f.slots(t, "d1", expiry); got != `{"held":false}` {
		t.Fatalf("at the hold's expiry: %s", got)
	}
	calls(2, "at the expiry")
	if got := f.slots(t, "d1", expiry.Add(5*time.Second)); got != `{"held":false}` {
		t.Fatalf("after the hold's expiry: %s", got)
	}
	calls(2, "after the expiry: the new answer is cached")

	// A replica whose clock is behind asks before the expiry: not the
	// answer filled after it.
	f.b.setSlots("d1", `{"held":true}`, 1)
	f.b.setHolds("d1", time.Time{}, expiry)
	if got := f.slots(t, "d1", now); got != `{"held":true}` {
		t.Fatalf("before the expiry, after a fill past it: %s", got)
	}
	calls(3, "before the expiry again")
}

func TestLateFillDoesNotOverwrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	f.b.setDoctor(doc("d1", "Old Name", 3))
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	f.b.mu.Lock()
	f.b.gate, f.b.entered = gate, entered
	f.b.mu.Unlock()

	late := make(chan projections.Doctor, 1)
	go func() {
		d, _ := f.cache.Doctor(context.Background(), "d1")
		late <- d
	}()
	<-entered // the fill has read "Old Name" at position 3 and stalls
	f.b.mu.Lock()
	f.b.gate, f.b.entered = nil, nil
	f.b.mu.Unlock()
	f.b.setDoctor(doc("d1", "New Name", 9))
	f.apply(t, 9, doctor.ProfileUpdated{DoctorID: "d1"})
	close(gate)
	if d := <-late; d.Name != "Old Name" {
		t.Fatalf("the stalled read answered %+v", d)
	}
	// The late fill was refused: the next read sees the new profile.
	if d := f.doctor(t, "d1"); d != doc("d1", "New Name", 9) {
		t.Fatalf("after a late fill: %+v", d)
	}
	if d := f.doctor(t, "d1"); d.Name != "New Name" || f.b.doctorCalls.Load() != 2 {
		t.Fatalf("new profile not cached: %+v after %d reads", d, f.b.doctorCalls.Load())
	}
}

func TestFillBehindInvalidationIsNotStored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testenv.RedisURL(t))
	// The invalidation projection has seen position 9; the read models have not.
	f.b.setDoctor(doc("d1", "Old Name", 3))
	f.b.setSlots("d1", `{"v":"old"}`, 8)
	f.apply(t, 9, doctor.ProfileUpdated{DoctorID: "d1"})
	for range 2 {
		if d := f.doctor(t, "d1"); d.Name != "Old Name" {
			t.Fatalf("%+v", d)
		}
		f.slots(t, "d1", now)
	}
	if d, s := f.b.doctorCalls.Load(), f.b.slotCalls.Load(); d != 2 || s != 2 {
		t.Fatalf("answers older than the invalidation were cached (reads: doctor %d, slots %d; want 2, 2)", d, s)
	}
	// Once caught up, answers are cached again.
	f.b.setDoctor(doc("d1", "New Name", 9))
	f.b.setSlots("d1", `{"v":"new"}`, 9)
	for range 2 {
		if d := f.doctor(t, "d1"); d.Name != "New Name" {
			t.Fatalf("%+v", d)
		}
		if s := f.slots(t, "d1", now); s != `{"v":"new"}` {
			t.Fatalf("%s", s)
		}
	}
	if d, s := f.b.doctorCalls.Load(), f.b.slotCalls.Load(); d != 3 || s != 3 {
		t.Fatalf("reads: doctor %d, slots %d; want 3, 3", d, s)
	}
}

func TestRedisDownReadsFromBackingStore(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	f := newFixture(t, srv.URL())
	f.b.setDoctor(doc("d1", "Dr. Arjun Mehta", 4))
	f.b.setSlots("d1", `{"v":1}`, 4)
	f.doctor(t, "d1")
	f.slots(t, "d1", now)

	srv.Stop()
	for i := range 5 {
		if d := f.doctor(t, "d1"); d != doc("d1", "Dr. Arjun Mehta", 4) {
			t.Fatalf("read %d with redis down: %+v", i, d)
		}
		if s := f.slots(t, "d1", now); s != `{"v":1}` {
			t.Fatalf("slots read %d with redis down: %s", i, s)
		}
	}
	if n := f.b.doctorCalls.Load(); n != 6 {
		t.Fatalf("%d backing reads, want 6 (1 fill + 5 with redis down)", n)
	}
	err := f.inv.Apply(context.Background(), projections.Event{Position: 5, Data: doctor.ProfileUpdated{DoctorID: "d1"}})
	if err == nil {
		t.Fatal("invalidation with redis down did not fail (the runner would not retry it)")
	}

	srv.Start() // empty: it kept nothing
	deadline := time.Now().Add(10 * time.Second)
	for !cachedAgain(t, f) {
		if time.Now().After(deadline) {
			t.Fatal("the cache did not come back with redis")
		}
		time.Sleep(60 * time.Millisecond) // past the back-off
	}
}

// cachedAgain reads twice and reports whether the second read was a hit.
func cachedAgain(t *testing.T, f *fixture) bool {
	f.doctor(t, "d1")
	n := f.b.doctorCalls.Load()
	f.doctor(t, "d1")
	return f.b.doctorCalls.Load() == n
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	b := newBacking()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for name, cfg := range map[string]rediscache.Config{
		"no client":            {Directory: b},
		"no directory":         {Client: client},
		"slots w/o position":   {Client: client, Directory: b, Slots: b},
		"jitter out of bounds": {Client: client, Directory: b, Jitter: 1},
	} {
		if _, err := rediscache.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := rediscache.New(rediscache.Config{Client: client, Directory: b}); err != nil {
		t.Fatal(err)
	}
}

// The read-model conformance suite with the directory read through the
// cache and the invalidation projection fed beside the read models: every
// answer must be the uncached one.
func TestReadModelSuiteThroughCache(t *testing.T) {
	t.Parallel()
	client := testenv.RedisClient(t, testenv.RedisURL(t))
	readmodeltest.Run(t, func(t *testing.T) readmodeltest.Models {
		prefix := "suite:" + uuid.NewString()
		dir, slots, apps := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
		c, err := rediscache.New(rediscache.Config{
			Client: client, Prefix: prefix, Directory: dir, Slots: slots, SlotsPosition: slots.Checkpoint,
			Timeout: 5 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return readmodeltest.Models{
			Directory: c, Slots: c, Appointments: apps, Dashboards: apps, Payments: apps,
			Projections: []projections.Projection{dir, slots, apps, rediscache.NewInvalidation(client, prefix)},
		}
	})
}
