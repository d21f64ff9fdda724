package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/storetest"
)

func openTemp(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s, _ := openTemp(t)
		return s
	})
}

func ev(typ string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"x":1}`), Metadata: []byte(`{"m":2}`)}
}

func evs(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = ev(fmt.Sprintf("T%d", i))
	}
	return out
}

func readAllT(t *testing.T, s *Store) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	var after uint64
	for {
		page, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// checkContiguous checks positions are exactly 1..n, the SQLite store's
// stronger guarantee than the port's (strictly increasing).
func checkContiguous(t *testing.T, all []eventstore.RecordedEvent) {
	t.Helper()
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("event %d has position %d, want %d", i, e.Position, i+1)
		}
	}
}

func TestDurability(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(ctx, path, WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	first := evs(3)
	r1, err := s.Append(ctx, "a", eventstore.NoStream, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "b", eventstore.NoStream, evs(2)); err != nil {
		t.Fatal(err)
	}
	before := readAllT(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for range 2 { // reopening twice: schema creation is idempotent
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		after := readAllT(t, s)
		if len(after) != len(before) {
			t.Fatalf("after reopen: %d events, want %d", len(after), len(before))
		}
		for i := range after {
			a, b := after[i], before[i]
			if a.ID != b.ID || a.Position != b.Position || a.Revision != b.Revision || a.StreamID != b.StreamID ||
				string(a.Data) != string(b.Data) || string(a.Metadata) != string(b.Metadata) || !a.RecordedAt.Equal(b.RecordedAt) {
				t.Fatalf("event %d: %+v, want %+v", i, a, b)
			}
			if !a.RecordedAt.Equal(clock) || a.RecordedAt.Location() != time.UTC {
				t.Fatalf("RecordedAt = %v, want %v in UTC", a.RecordedAt, clock.UTC())
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The idempotent retry works against what was loaded from the file.
	if again, err := s.Append(ctx, "a", eventstore.NoStream, first); err != nil || again != r1 {
		t.Fatalf("retry after reopen = %+v, %v; want %+v", again, err, r1)
	}
	// Revisions and positions continue.
	if _, err := s.Append(ctx, "a", eventstore.NoStream, evs(1)); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("NoStream on reloaded stream: %v", err)
	}
	res, err := s.Append(ctx, "a", eventstore.Exact(2), evs(1))
	if err != nil {
		t.Fatal(err)
	}
	if res.NextExpectedRevision != 3 || res.Position != 6 {
		t.Fatalf("append after reopen = %+v, want revision 3 position 6", res)
	}
	checkContiguous(t, readAllT(t, s))

	var v int
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, schemaVersion)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(context.Background(), path); err == nil {
		s.Close()
		t.Fatal("Open accepted a newer schema version")
	}
}

func TestOpenInvalidPath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", ":memory:", "a?b", "file:x.db"} {
		if s, err := Open(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestGroupCommitBatches(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t)
	const goroutines, perG = 64, 10
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			<-start
			exp := eventstore.NoStream
			for range perG {
				res, err := s.Append(context.Background(), fmt.Sprintf("g-%d", g), exp, evs(1))
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				exp = eventstore.Exact(res.NextExpectedRevision)
			}
		})
	}
	close(start)
	wg.Wait()
	st := s.Stats()
	t.Logf("stats: %+v", st)
	if st.Appends != goroutines*perG || st.Events != goroutines*perG {
		t.Fatalf("stats %+v: want %d appends", st, goroutines*perG)
	}
	if st.Commits >= st.Appends {
		t.Fatalf("%d commits for %d appends: no group commit", st.Commits, st.Appends)
	}
	if st.LargestBatch < 2 {
		t.Fatalf("largest batch %d", st.LargestBatch)
	}
	all := readAllT(t, s)
	if len(all) != goroutines*perG {
		t.Fatalf("%d events", len(all))
	}
	checkContiguous(t, all)
}

// gate blocks the writer before its transactions until released.
type gate struct {
	mu      sync.Mutex
	blocked bool
	entered chan int      // batch sizes, as the writer reaches the gate
	release chan struct{} // one receive per blocked batch
}

func newGate() *gate {
	return &gate{entered: make(chan int, 16), release: make(chan struct{})}
}

func (g *gate) option() Option {
	return func(c *config) {
		c.beforeBatch = func(n int) {
			g.mu.Lock()
			blocked := g.blocked
			g.mu.Unlock()
			if blocked {
				g.entered <- n
				<-g.release
			}
		}
	}
}

func (g *gate) set(b bool) {
	g.mu.Lock()
	g.blocked = b
	g.mu.Unlock()
}

// waitQueued waits until n appends wait in the writer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing assertion
	for len(s.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", len(s.reqs), n)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

type asyncResult struct {
	res eventstore.AppendResult
	err error
}

func appendAsync(ctx context.Context, s *Store, stream string, exp eventstore.ExpectedRevision, events ...eventstore.EventData) chan asyncResult {
	ch := make(chan asyncResult, 1)
	go func() {
		res, err := s.Append(ctx, stream, exp, events)
		ch <- asyncResult{res, err}
	}()
	return ch
}

func TestBatchWithRejectedAppends(t *testing.T) {
	t.Parallel()
	g := newGate()
	s, _ := openTemp(t, g.option())
	ctx := context.Background()
	if _, err := s.Append(ctx, "z", eventstore.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	base := s.Stats()

	// Hold the writer on a first batch, queue the test batch behind it in a
	// known order, then let both go.
	g.set(true)
	hold := appendAsync(ctx, s, "hold", eventstore.NoStream, ev("Hold"))
	if n := <-g.entered; n != 1 {
		t.Fatalf("first batch holds %d appends", n)
	}
	a, c, d, e := ev("A"), ev("C"), ev("D"), ev("E")
	steps := []struct {
		stream string
		exp    eventstore.ExpectedRevision
		events []eventstore.EventData
	}{
		{"s1", eventstore.NoStream, []eventstore.EventData{a}},         // 0: ok, revision 0
		{"s1", eventstore.NoStream, evs(1)},                            // 1: sees 0: wrong version, actual 0
		{"s1", eventstore.Exact(0), []eventstore.EventData{c}},         // 2: sees 0: ok, revision 1
		{"s2", eventstore.NoStream, []eventstore.EventData{a}},         // 3: id written by 0: invalid
		{"s1", eventstore.Exact(0), []eventstore.EventData{c}},         // 4: retry of 2: idempotent
		{"s3", eventstore.Any, []eventstore.EventData{d, e}},           // 5: ok
		{"s1", eventstore.Exact(1), evs(1)},                            // 6: ok, revision 2
		{"z", eventstore.Exact(5), evs(1)},                             // 7: wrong version, actual 0
		{"s4", eventstore.NoStream, []eventstore.EventData{ev(""), a}}, // invalid before queueing
	}
	chans := make([]chan asyncResult, len(steps))
	for i, st := range steps[:len(steps)-1] {
		chans[i] = appendAsync(ctx, s, st.stream, st.exp, st.events...)
		waitQueued(t, s, i+1)
	}
	last := steps[len(steps)-1]
	if _, err := s.Append(ctx, last.stream, last.exp, last.events); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("empty type: %v", err)
	}
	g.set(false)
	g.release <- struct{}{}
	if r := <-hold; r.err != nil {
		t.Fatal(r.err)
	}
	got := make([]asyncResult, len(chans)-1)
	for i := range got {
		got[i] = <-chans[i]
	}

	expectOK := func(i int, rev, pos uint64) {
		t.Helper()
		if got[i].err != nil || got[i].res != (eventstore.AppendResult{NextExpectedRevision: rev, Position: pos}) {
			t.Fatalf("step %d = %+v, %v; want revision %d position %d", i, got[i].res, got[i].err, rev, pos)
		}
	}
	// Positions: z=1, hold=2, then the batch from 3.
	expectOK(0, 0, 3)
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(got[1].err, &wev) || wev.Actual != 0 {
		t.Fatalf("step 1: %v", got[1].err)
	}
	expectOK(2, 1, 4)
	if !errors.Is(got[3].err, eventstore.ErrInvalidAppend) {
		t.Fatalf("step 3: %v", got[3].err)
	}
	expectOK(4, 1, 4)
	expectOK(5, 1, 6)
	expectOK(6, 2, 7)
	if !errors.As(got[7].err, &wev) || wev.Actual != 0 || wev.Stream != "z" {
		t.Fatalf("step 7: %v", got[7].err)
	}

	st := s.Stats()
	if st.Commits-base.Commits != 2 {
		t.Fatalf("%d commits for the hold batch and the test batch, want 2", st.Commits-base.Commits)
	}
	if st.LargestBatch != 8 {
		t.Fatalf("largest batch %d, want 8", st.LargestBatch)
	}
	if st.Rejected-base.Rejected != 3 || st.Idempotent-base.Idempotent != 1 {
		t.Fatalf("stats %+v (base %+v)", st, base)
	}
	all := readAllT(t, s)
	checkContiguous(t, all)
	if len(all) != 7 {
		t.Fatalf("%d events, want 7", len(all))
	}
}

func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	g := newGate()
	s, _ := openTemp(t, g.option())
	ctx := context.Background()
	g.set(true)
	hold := appendAsync(ctx, s, "hold", eventstore.NoStream, ev("Hold"))
	<-g.entered

	// Queued behind the held batch, then cancelled: never written.
	cctx, cancel := context.WithCancel(ctx)
	queued := appendAsync(cctx, s, "cancelled", eventstore.NoStream, ev("X"))
	waitQueued(t, s, 1)
	cancel()
	if r := <-queued; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled while queued: %+v", r)
	}

	// Taken by the writer, then cancelled: the outcome is reported honestly.
	tctx, tcancel := context.WithCancel(ctx)
	taken := appendAsync(tctx, s, "taken", eventstore.NoStream, ev("Y"))
	waitQueued(t, s, 2) // the abandoned request is still in the queue
	g.release <- struct{}{}
	if n := <-g.entered; n != 1 {
		t.Fatalf("second batch holds %d appends, want 1 (the cancelled one skipped)", n)
	}
	tcancel()
	g.set(false)
	g.release <- struct{}{}
	if r := <-taken; r.err != nil || r.res.NextExpectedRevision != 0 {
		t.Fatalf("taken then cancelled: %+v, want success", r)
	}
	if r := <-hold; r.err != nil {
		t.Fatal(r.err)
	}
	if _, err := s.ReadStream(ctx, "cancelled", 0, eventstore.Forward, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("cancelled append was written: %v", err)
	}
	if evs, err := s.ReadStream(ctx, "taken", 0, eventstore.Forward, 0); err != nil || len(evs) != 1 {
		t.Fatalf("taken append: %d events, %v", len(evs), err)
	}
}

func TestLargeAppend(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t)
	ctx := context.Background()
	big := evs(1000) // several INSERT statements in a savepoint
	res, err := s.Append(ctx, "big", eventstore.NoStream, big)
	if err != nil {
		t.Fatal(err)
	}
	if res.NextExpectedRevision != 999 || res.Position != 1000 {
		t.Fatalf("result %+v", res)
	}
	if again, err := s.Append(ctx, "big", eventstore.NoStream, big); err != nil || again != res {
		t.Fatalf("retry = %+v, %v", again, err)
	}
	// A large append whose last event collides writes nothing.
	bad := append(evs(599), big[10])
	if _, err := s.Append(ctx, "big", eventstore.Exact(999), bad); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("colliding large append: %v", err)
	}
	res, err = s.Append(ctx, "big", eventstore.Exact(999), evs(300))
	if err != nil || res.NextExpectedRevision != 1299 || res.Position != 1300 {
		t.Fatalf("after rollback: %+v, %v", res, err)
	}
	all := readAllT(t, s)
	checkContiguous(t, all)
	if len(all) != 1300 {
		t.Fatalf("%d events", len(all))
	}
}

func TestCloseWithInFlightAppends(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[uuid.UUID]bool{}
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e := ev("X")
			_, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, []eventstore.EventData{e})
			switch {
			case err == nil:
				mu.Lock()
				ok[e.ID] = true
				mu.Unlock()
			case errors.Is(err, eventstore.ErrClosed):
			default:
				t.Errorf("append: %v", err)
			}
		})
	}
	close(start)
	runtime.Gosched()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all := readAllT(t, s)
	if len(all) != len(ok) {
		t.Fatalf("%d events stored, %d appends succeeded", len(all), len(ok))
	}
	for _, e := range all {
		if !ok[e.ID] {
			t.Fatalf("event %s stored but its append failed", e.ID)
		}
	}
	t.Logf("%d of %d appends landed before Close", len(ok), n)
}

func TestClockOption(t *testing.T) {
	t.Parallel()
	fixed := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("Y", -7*3600))
	s, _ := openTemp(t, WithClock(func() time.Time { return fixed }))
	if _, err := s.Append(context.Background(), "s", eventstore.NoStream, evs(2)); err != nil {
		t.Fatal(err)
	}
	for _, e := range readAllT(t, s) {
		if !e.RecordedAt.Equal(fixed) || e.RecordedAt.Location() != time.UTC || e.RecordedAt.Nanosecond() != 123456789 {
			t.Fatalf("RecordedAt = %v, want %v", e.RecordedAt, fixed.UTC())
		}
	}
}

func TestNoGroupCommitOption(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, WithMaxBatch(0), WithReadConns(1))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				if _, err := s.Append(context.Background(), fmt.Sprintf("s-%d", g), eventstore.Any, evs(1)); err != nil {
					t.Errorf("append %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.LargestBatch != 1 || st.Commits != 40 {
		t.Fatalf("stats %+v, want one commit per append", st)
	}
	checkContiguous(t, readAllT(t, s))
}

// TestFailedTransactionFailsBatchAndReloads makes a transaction fail for
// real: a row written behind the store's back (never do this) takes the
// position the writer assigns next. Every append of that batch must fail,
// and the writer must reload its heads and position from the file.
func TestFailedTransactionFailsBatchAndReloads(t *testing.T) {
	t.Parallel()
	g := newGate()
	s, path := openTemp(t, g.option())
	ctx := context.Background()
	if _, err := s.Append(ctx, "s", eventstore.NoStream, evs(1)); err != nil { // position 1, head of s cached
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "t", eventstore.NoStream, evs(1)); err != nil { // position 2
		t.Fatal(err)
	}

	g.set(true)
	hold := appendAsync(ctx, s, "hold", eventstore.NoStream, ev("Hold")) // will take position 3
	<-g.entered
	a1 := appendAsync(ctx, s, "x", eventstore.NoStream, ev("X"))
	waitQueued(t, s, 1)
	a2 := appendAsync(ctx, s, "y", eventstore.NoStream, ev("Y"))
	waitQueued(t, s, 2)

	raw, err := sql.Open("sqlite", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	id := uuid.New()
	if _, err := raw.Exec(`INSERT INTO events (position, stream, revision, id, type, recorded_at) VALUES (4, 's', 1, ?, 'Sneaky', 0)`, id[:]); err != nil {
		t.Fatal(err)
	}

	g.set(false)
	g.release <- struct{}{}
	if r := <-hold; r.err != nil || r.res.Position != 3 {
		t.Fatalf("hold: %+v", r)
	}
	for name, ch := range map[string]chan asyncResult{"x": a1, "y": a2} {
		r := <-ch
		t.Logf("%s: %v", name, r.err)
		if r.err == nil || errors.Is(r.err, eventstore.ErrWrongExpectedVersion) || errors.Is(r.err, eventstore.ErrInvalidAppend) {
			t.Fatalf("append to %s in the failed batch: %+v, want a transaction failure", name, r)
		}
	}
	if st := s.Stats(); st.Failed != 2 {
		t.Fatalf("stats %+v, want 2 failed appends", st)
	}

	// Reloaded: s's head is 1 now, and positions continue after 4.
	_, err = s.Append(ctx, "s", eventstore.Exact(0), evs(1))
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) || wev.Actual != 1 {
		t.Fatalf("append at the stale head: %v, want wrong version with actual 1", err)
	}
	res, err := s.Append(ctx, "x", eventstore.NoStream, evs(1))
	if err != nil || res.Position != 5 {
		t.Fatalf("append after reload: %+v, %v; want position 5", res, err)
	}
	checkContiguous(t, readAllT(t, s))
}

func TestSecondOpenOfTheSameFileIsRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v; want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	_ = s2.Close()
}

// Live subscribers are served from the in-memory tail of recent commits:
// what they receive must be exactly what the file holds.
func TestSubscriptionTailEqualsTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 8, 150
	total := writers * perWriter * 2
	got := make(chan eventstore.RecordedEvent, total)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subDone := make(chan error, 1)
	go func() {
		subDone <- s.SubscribeAll(ctx, 0, func(_ context.Context, e eventstore.RecordedEvent) error {
			got <- e
			if len(got) == total {
				cancel()
			}
			return nil
		})
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("tail-%d", w)
			for i := range perWriter {
				evs := []eventstore.EventData{
					{ID: uuid.New(), Type: "t.A.v1", Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Metadata: []byte(`{"m":1}`)},
					{ID: uuid.New(), Type: "t.B.v1", Data: []byte(`{}`)},
				}
				if _, err := s.Append(context.Background(), stream, eventstore.Any, evs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v", err)
	}
	close(got)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var want []eventstore.RecordedEvent
	for after := uint64(0); ; {
		page, err := s2.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		want = append(want, page...)
		after = page[len(page)-1].Position
	}
	if len(want) != total {
		t.Fatalf("file holds %d events; want %d", len(want), total)
	}
	i := 0
	for e := range got {
		w := want[i]
		if e.ID != w.ID || e.StreamID != w.StreamID || e.Type != w.Type || e.Revision != w.Revision || e.Position != w.Position ||
			string(e.Data) != string(w.Data) || string(e.Metadata) != string(w.Metadata) || !e.RecordedAt.Equal(w.RecordedAt) {
			t.Fatalf("event %d: subscription gave %+v, the file holds %+v", i, e, w)
		}
		i++
	}
}
