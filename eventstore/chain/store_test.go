package chain_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/chain"
	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/eventstore/storetest"
)

func openSQLite(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openESDB(t testing.TB, cs string) *esdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, cs)
	if err != nil {
		t.Fatalf("esdb open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sameAudited: the decorated store keeps the caller's metadata as the
// audited metadata (an empty or null one as {}).
func sameAudited(stored, appended []byte) bool {
	audited, hashed := chain.Audited(stored)
	if m := bytes.TrimSpace(appended); len(m) == 0 || string(m) == "null" {
		appended = []byte("{}")
	}
	return hashed && bytes.Equal(audited, appended)
}

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return chain.Wrap(openSQLite(t, filepath.Join(t.TempDir(), "events.db")))
	}, storetest.WithMetadata(sameAudited))
}

func TestConformanceESDB(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return chain.Wrap(openESDB(t, esdbtest.Start(t)))
	}, storetest.WithMetadata(sameAudited))
}

func TestWrapTwiceIsOnce(t *testing.T) {
	t.Parallel()
	inner := openSQLite(t, filepath.Join(t.TempDir(), "events.db"))
	c := chain.Wrap(inner)
	if chain.Wrap(c) != c || c.Unwrap() != inner {
		t.Fatal("a chained store was chained again")
	}
}

func evt(typ string, n int) eventstore.EventData {
	return eventstore.EventData{ID: uuid.Must(uuid.NewV7()), Type: typ, Data: fmt.Appendf(nil, `{"n":%d}`, n), Metadata: fmt.Appendf(nil, `{"actor":{"userId":"u%d"}}`, n)}
}

func mustAppend(t testing.TB, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs)
	if err != nil {
		t.Fatalf("append to %s at %s: %v", stream, exp, err)
	}
	return res
}

func verify(t testing.TB, s eventstore.Store, o chain.Options) chain.Report {
	t.Helper()
	rep, err := chain.Verify(context.Background(), s, o)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func mustVerifyOK(t testing.TB, s eventstore.Store) chain.Report {
	t.Helper()
	rep := verify(t, s, chain.Options{})
	if !rep.OK || len(rep.Broken) != 0 || !rep.Complete {
		t.Fatalf("verify: %+v", rep)
	}
	return rep
}

// counting counts the reads that reach a store.
type counting struct {
	eventstore.Store
	reads atomic.Int64
}

func (c *counting) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	c.reads.Add(1)
	return c.Store.ReadStream(ctx, stream, from, dir, limit)
}

// TestAppendChainsEveryExpectedRevision appends with every kind of expected
// revision and checks each event's prevHash is its predecessor's hash.
func TestAppendChainsEveryExpectedRevision(t *testing.T) {
	t.Parallel()
	s := chain.Wrap(openSQLite(t, filepath.Join(t.TempDir(), "events.db")))
	mustAppend(t, s, "doctor-1", eventstore.NoStream, evt("A", 0), evt("B", 1))
	mustAppend(t, s, "doctor-1", eventstore.Exact(1), evt("C", 2))
	mustAppend(t, s, "doctor-1", eventstore.Any, evt("D", 3))
	mustAppend(t, s, "doctor-1", eventstore.StreamExists, evt("E", 4), evt("F", 5))
	mustAppend(t, s, "account-1", eventstore.Any, evt("G", 6))
	if _, err := s.Append(t.Context(), "missing", eventstore.StreamExists, []eventstore.EventData{evt("H", 7)}); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("StreamExists on a missing stream: %v", err)
	}
	if _, err := s.Append(t.Context(), "doctor-1", eventstore.Exact(9), []eventstore.EventData{evt("I", 8)}); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("Exact past the head: %v", err)
	}
	evs, err := s.ReadStream(t.Context(), "doctor-1", 0, eventstore.Forward, 0)
	if err != nil || len(evs) != 6 {
		t.Fatalf("read: %d events, %v", len(evs), err)
	}
	prev := chain.Zero
	for _, e := range evs {
		l, ok := chain.ParseLink(e.Metadata)
		if !ok || l.Prev != prev || l.Hash != chain.Compute(prev, e) {
			t.Fatalf("revision %d: link %+v (%v), prev %s", e.Revision, l, ok, prev)
		}
		prev = l.Hash
	}
	rep := mustVerifyOK(t, s)
	if rep.Streams != 2 || rep.Events != 7 || rep.Unhashed != 0 || rep.Position != 7 {
		t.Fatalf("report %+v", rep)
	}
}

// TestCommandPathReadsNothingMore: a stream read (as the command path loads
// it) and appends through the same Store need no read of their own.
func TestCommandPathReadsNothingMore(t *testing.T) {
	t.Parallel()
	inner := &counting{Store: openSQLite(t, filepath.Join(t.TempDir(), "events.db"))}
	s := chain.Wrap(inner)
	mustAppend(t, s, "doctor-1", eventstore.NoStream, evt("A", 0))
	mustAppend(t, s, "doctor-1", eventstore.Exact(0), evt("B", 1))
	mustAppend(t, s, "doctor-1", eventstore.Exact(1), evt("C", 2))
	if n := inner.reads.Load(); n != 0 {
		t.Fatalf("own appends read %d times", n)
	}
	// Another process (another Store) loads the stream, then appends.
	other := chain.Wrap(inner)
	if _, err := other.ReadStream(t.Context(), "doctor-1", 0, eventstore.Forward, 0); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, other, "doctor-1", eventstore.Exact(2), evt("D", 3))
	if n := inner.reads.Load(); n != 1 {
		t.Fatalf("load then append read %d times, want the load's 1", n)
	}
	// The first Store's cache is stale: one read of the head, the right link.
	mustAppend(t, s, "doctor-1", eventstore.Exact(3), evt("E", 4))
	if n := inner.reads.Load(); n != 2 {
		t.Fatalf("append after another's read %d times, want 2", n)
	}
	// Keyed (deterministic) ids may be an idempotent retry of someone
	// else's events: their hash is not trusted, the next append reads.
	keyed := evt("F", 5)
	keyed.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte("key"))
	mustAppend(t, s, "doctor-1", eventstore.Exact(4), keyed)
	mustAppend(t, s, "doctor-1", eventstore.Exact(5), evt("G", 6))
	if n := inner.reads.Load(); n != 3 {
		t.Fatalf("append after a keyed one read %d times, want 3", n)
	}
	mustVerifyOK(t, s)
}

// TestIdempotentRetryKeepsTheStoredChain: a retry of keyed events by
// another process, with other metadata, is answered from the stored events;
// the next append chains to what is stored.
func TestIdempotentRetryKeepsTheStoredChain(t *testing.T) {
	t.Parallel()
	inner := openSQLite(t, filepath.Join(t.TempDir(), "events.db"))
	a, b := chain.Wrap(inner), chain.Wrap(inner)
	mustAppend(t, a, "doctor-1", eventstore.NoStream, evt("A", 0))
	if _, err := b.ReadStream(t.Context(), "doctor-1", 0, eventstore.Forward, 0); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("key"))
	first, second := evt("B", 1), evt("B", 1)
	first.ID, second.ID = id, id
	second.Metadata = []byte(`{"actor":{"userId":"retry"}}`)
	r1 := mustAppend(t, a, "doctor-1", eventstore.Exact(0), first)
	r2 := mustAppend(t, b, "doctor-1", eventstore.Exact(0), second)
	if r1 != r2 {
		t.Fatalf("retry answered %+v, first %+v", r2, r1)
	}
	mustAppend(t, b, "doctor-1", eventstore.Exact(1), evt("C", 2))
	mustAppend(t, b, "doctor-1", eventstore.Any, evt("D", 3))
	mustVerifyOK(t, a)
	// An Any retry of stored events is recognised, not written again.
	again := evt("E", 4)
	mustAppend(t, a, "doctor-1", eventstore.Any, again)
	res := mustAppend(t, b, "doctor-1", eventstore.Any, again)
	if res.NextExpectedRevision != 4 {
		t.Fatalf("Any retry: %+v", res)
	}
	mustVerifyOK(t, a)
}

// TestConcurrentAppendsKeepChains races appenders through two Stores over
// one store (two processes): Any appends, and load-decide-append loops with
// Exact, on a few streams. Every chain stays whole.
func TestConcurrentAppendsKeepChains(t *testing.T) {
	t.Parallel()
	inner := openSQLite(t, filepath.Join(t.TempDir(), "events.db"))
	procs := []*chain.Store{chain.Wrap(inner), chain.Wrap(inner)}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range workers {
		wg.Go(func() {
			s := procs[w%2]
			for i := range each {
				stream := fmt.Sprintf("doctor-%d", i%3)
				if w%4 < 2 {
					mustAppend(t, s, stream, eventstore.Any, evt("Any", w*1000+i))
					written.Add(1)
					continue
				}
				for {
					exp := eventstore.NoStream
					evs, err := s.ReadStream(context.Background(), stream, eventstore.EndOfStream, eventstore.Backward, 1)
					if err == nil {
						exp = eventstore.Exact(evs[0].Revision)
					} else if !errors.Is(err, eventstore.ErrStreamNotFound) {
						t.Error(err)
						return
					}
					_, err = s.Append(context.Background(), stream, exp, []eventstore.EventData{evt("Exact", w*1000+i), evt("Exact", w*1000+i)})
					if err == nil {
						written.Add(2)
						break
					}
					if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	rep := mustVerifyOK(t, inner)
	if int64(rep.Events) != written.Load() || rep.Streams != 3 {
		t.Fatalf("verified %d events in %d streams, wrote %d", rep.Events, rep.Streams, written.Load())
	}
}

// TestLegacyEvents: events written without the chain are unhashed; the
// chain covers them from revision 0 and starts being stored at the first
// append through the chain.
func TestLegacyEvents(t *testing.T) {
	t.Parallel()
	inner := &counting{Store: openSQLite(t, filepath.Join(t.TempDir(), "events.db"))}
	for i := range 3 {
		exp := eventstore.NoStream
		if i > 0 {
			exp = eventstore.Exact(uint64(i - 1))
		}
		mustAppend(t, inner, "doctor-old", exp, evt("Old", i))
	}
	mustAppend(t, inner, "account-old", eventstore.NoStream, evt("Old", 9))
	rep := mustVerifyOK(t, inner)
	if rep.Unhashed != 4 || rep.LegacyStreams != 2 || rep.Legacy[0].ChainFrom != nil {
		t.Fatalf("legacy report %+v", rep)
	}
	s := chain.Wrap(inner)
	mustAppend(t, s, "doctor-old", eventstore.Exact(2), evt("New", 3))
	mustAppend(t, s, "doctor-old", eventstore.Exact(3), evt("New", 4))
	evs, _ := inner.ReadStream(t.Context(), "doctor-old", 0, eventstore.Forward, 0)
	prev := chain.Zero
	for _, e := range evs[:3] {
		prev = chain.Compute(prev, e)
	}
	if l, ok := chain.ParseLink(evs[3].Metadata); !ok || l.Prev != prev {
		t.Fatalf("first hashed event's prevHash %s, want the value over the legacy events %s", l.Prev, prev)
	}
	rep = mustVerifyOK(t, inner)
	if rep.Unhashed != 4 || rep.LegacyStreams != 2 {
		t.Fatalf("report %+v", rep)
	}
	byStream := map[string]chain.Legacy{}
	for _, l := range rep.Legacy {
		byStream[l.Stream] = l
	}
	if l := byStream["doctor-old"]; l.Unhashed != 3 || l.ChainFrom == nil || *l.ChainFrom != 3 {
		t.Fatalf("doctor-old: %+v", l)
	}
	if l := byStream["account-old"]; l.Unhashed != 1 || l.ChainFrom != nil {
		t.Fatalf("account-old: %+v", l)
	}
	anchor := chain.Anchor{Position: rep.Position}
	anchor.Root, _ = chain.ParseHash(rep.Root)
	// An unhashed event written after the chain started is a broken link.
	mustAppend(t, inner, "doctor-old", eventstore.Exact(4), evt("Bypass", 5))
	rep = verify(t, inner, chain.Options{Anchor: &anchor})
	if rep.OK || len(rep.Broken) != 1 || rep.Broken[0].Revision != 5 || rep.Broken[0].Reason != chain.ReasonUnhashed {
		t.Fatalf("bypass: %+v", rep)
	}
	if !rep.Anchor.Matches {
		t.Fatalf("anchor before the bypass: %+v", rep.Anchor)
	}
}

// TestVerifyBounds: UpTo stops at a position (its root is the anchor taken
// there); a spent time budget answers what was checked, incomplete and not
// ok, its anchor unchecked.
func TestVerifyBounds(t *testing.T) {
	t.Parallel()
	s := chain.Wrap(openSQLite(t, filepath.Join(t.TempDir(), "events.db")))
	for i := range 10 {
		exp := eventstore.NoStream
		if i > 0 {
			exp = eventstore.Exact(uint64(i - 1))
		}
		mustAppend(t, s, "doctor-1", exp, evt("T", i))
	}
	at5 := verify(t, s, chain.Options{UpTo: 5})
	if !at5.OK || at5.Events != 5 || at5.Position != 5 || at5.Head != 5 {
		t.Fatalf("up to 5: %+v", at5)
	}
	anchor := chain.Anchor{Position: 5}
	anchor.Root, _ = chain.ParseHash(at5.Root)
	if rep := verify(t, s, chain.Options{Anchor: &anchor}); !rep.OK || !rep.Anchor.Matches || rep.Events != 10 {
		t.Fatalf("anchored: %+v", rep)
	}
	beyond := chain.Anchor{Root: anchor.Root, Position: 11}
	if rep := verify(t, s, chain.Options{Anchor: &beyond}); rep.OK || rep.Anchor.Matches || rep.Anchor.Reason == "" {
		t.Fatalf("anchor beyond the head: %+v", rep.Anchor)
	}
	rep := verify(t, s, chain.Options{Budget: time.Nanosecond, Page: 3, Anchor: &anchor})
	if rep.OK || rep.Complete || rep.Events == 10 || rep.Head != 10 || rep.Anchor.Matches || rep.Anchor.Reason == "" {
		t.Fatalf("out of budget: %+v %+v", rep, rep.Anchor)
	}
}
