// Package storetest is the conformance suite of the eventstore port: every
// adapter runs [Run] against a fresh, empty store per subtest.
//
// The suite checks EventStoreDB semantics: expected revisions, contiguous
// stream revisions, a totally ordered global log, idempotent retries,
// malformed appends, reads, catch-up subscriptions and concurrency. It makes
// no wall-clock assertions (waits are bounded only to turn a deadlock into a
// failure) and runs under -race.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
)

// waitLimit bounds every wait of the suite, to turn a hang into a failure.
// It is not a performance assertion.
const waitLimit = 60 * time.Second

// Run runs the conformance suite. newStore must return a fresh, empty store
// for the calling (sub)test and register its cleanup (Close) with
// t.Cleanup; it is called concurrently, as the subtests run in parallel.
// Subtests may Close the store themselves, so Close must tolerate being
// called twice.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store, opts ...Option) {
	cfg := config{sameMetadata: bytes.Equal}
	for _, o := range opts {
		o(&cfg)
	}
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Append", appendCases()},
		{"WrongExpectedVersion", wrongVersionCases()},
		{"Idempotency", idempotencyCases()},
		{"Invalid", invalidCases()},
		{"Read", readCases(cfg)},
		{"Subscribe", subscribeCases()},
		{"Concurrency", concurrencyCases()},
		{"Lifecycle", lifecycleCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, newStore(t))
				})
			}
		})
	}
}

// Option adapts the suite to a store that legitimately changes what it
// is given (a decorator).
type Option func(*config)

type config struct {
	sameMetadata func(stored, appended []byte) bool
}

// WithMetadata replaces the byte-for-byte comparison of stored metadata
// with the metadata appended: for a store that adds fields to it.
func WithMetadata(same func(stored, appended []byte) bool) Option {
	return func(c *config) { c.sameMetadata = same }
}

type testCase struct {
	name string
	fn   func(t *testing.T, s eventstore.Store)
}

// ---- helpers ----

func newEvent(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     typ,
		Data:     fmt.Appendf(nil, `{"n":%d}`, n),
		Metadata: []byte(`{"actor":"storetest"}`),
	}
}

func newEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = newEvent("Tested", i)
	}
	return evs
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, exp, evs)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, exp, len(evs), err)
	}
	return res
}

// readAll reads the whole global log, in pages.
func readAll(t *testing.T, s eventstore.Store) []eventstore.RecordedEvent {
	t.Helper()
	var all []eventstore.RecordedEvent
	var after uint64
	for {
		page, err := s.ReadAll(t.Context(), after, 100)
		if err != nil {
			t.Fatalf("ReadAll(%d, 100): %v", after, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

func readStream(t *testing.T, s eventstore.Store, stream string, from uint64, dir eventstore.Direction, limit int) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(t.Context(), stream, from, dir, limit)
	if err != nil {
		t.Fatalf("ReadStream(%q, %d, %d, %d): %v", stream, from, dir, limit, err)
	}
	return evs
}

func revisions(evs []eventstore.RecordedEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Revision
	}
	return out
}

func seq(from, to uint64) []uint64 { // inclusive, either direction
	var out []uint64
	if from <= to {
		for r := from; r <= to; r++ {
			out = append(out, r)
		}
		return out
	}
	for r := from; ; r-- {
		out = append(out, r)
		if r == to {
			return out
		}
	}
}

func equalUints(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func expectCount(t *testing.T, s eventstore.Store, want int) {
	t.Helper()
	if got := len(readAll(t, s)); got != want {
		t.Fatalf("global log holds %d events, want %d", got, want)
	}
}

func expectWrongVersion(t *testing.T, err error, stream string, expected eventstore.ExpectedRevision, actual int64) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("err = %v, want ErrWrongExpectedVersion", err)
	}
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("err = %v (%T), want a *WrongExpectedVersionError", err, err)
	}
	if wev.Stream != stream || wev.Expected != expected || wev.Actual != actual {
		t.Fatalf("WrongExpectedVersionError = {%q %s %d}, want {%q %s %d}", wev.Stream, wev.Expected, wev.Actual, stream, expected, actual)
	}
}

// checkLog checks the global log's invariants: positions strictly
// increasing and, per stream, revisions contiguous from 0.
func checkLog(t *testing.T, all []eventstore.RecordedEvent) {
	t.Helper()
	next := map[string]uint64{}
	for i, e := range all {
		if i == 0 && e.Position < 1 {
			t.Fatalf("first position is %d, want >= 1", e.Position)
		}
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("position %d follows %d", e.Position, all[i-1].Position)
		}
		if e.Revision != next[e.StreamID] {
			t.Fatalf("stream %q: revision %d at position %d, want %d", e.StreamID, e.Revision, e.Position, next[e.StreamID])
		}
		next[e.StreamID]++
	}
}

func sameEvents(t *testing.T, got, want []eventstore.RecordedEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Position != w.Position || g.StreamID != w.StreamID || g.Revision != w.Revision {
			t.Fatalf("event %d = {%s %d %q@%d}, want {%s %d %q@%d}", i, g.ID, g.Position, g.StreamID, g.Revision, w.ID, w.Position, w.StreamID, w.Revision)
		}
	}
}

// ---- Append ----

func appendCases() []testCase {
	return []testCase{
		{"NoStreamOnNewStream", func(t *testing.T, s eventstore.Store) {
			res := mustAppend(t, s, "order-1", eventstore.NoStream, newEvent("Created", 0))
			if res.NextExpectedRevision != 0 {
				t.Fatalf("NextExpectedRevision = %d, want 0", res.NextExpectedRevision)
			}
			if res.Position < 1 {
				t.Fatalf("Position = %d, want >= 1", res.Position)
			}
			evs := readStream(t, s, "order-1", 0, eventstore.Forward, 0)
			if len(evs) != 1 || evs[0].Revision != 0 || evs[0].Position != res.Position {
				t.Fatalf("stream = %+v", evs)
			}
		}},
		{"AnyOnNewStream", func(t *testing.T, s eventstore.Store) {
			res := mustAppend(t, s, "order-1", eventstore.Any, newEvents(2)...)
			if res.NextExpectedRevision != 1 {
				t.Fatalf("NextExpectedRevision = %d, want 1", res.NextExpectedRevision)
			}
			res = mustAppend(t, s, "order-1", eventstore.Any, newEvents(1)...)
			if res.NextExpectedRevision != 2 {
				t.Fatalf("NextExpectedRevision = %d, want 2", res.NextExpectedRevision)
			}
		}},
		{"ExactChain", func(t *testing.T, s eventstore.Store) {
			res := mustAppend(t, s, "order-1", eventstore.NoStream, newEvents(1)...)
			res = mustAppend(t, s, "order-1", eventstore.Exact(res.NextExpectedRevision), newEvents(1)...)
			if res.NextExpectedRevision != 1 {
				t.Fatalf("NextExpectedRevision = %d, want 1", res.NextExpectedRevision)
			}
			res = mustAppend(t, s, "order-1", eventstore.Exact(1), newEvents(3)...)
			if res.NextExpectedRevision != 4 {
				t.Fatalf("NextExpectedRevision = %d, want 4", res.NextExpectedRevision)
			}
			if got := revisions(readStream(t, s, "order-1", 0, eventstore.Forward, 0)); !equalUints(got, seq(0, 4)) {
				t.Fatalf("revisions = %v", got)
			}
		}},
		{"StreamExistsOnExisting", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "order-1", eventstore.NoStream, newEvents(2)...)
			res := mustAppend(t, s, "order-1", eventstore.StreamExists, newEvents(1)...)
			if res.NextExpectedRevision != 2 {
				t.Fatalf("NextExpectedRevision = %d, want 2", res.NextExpectedRevision)
			}
		}},
		{"RevisionsContiguous", func(t *testing.T, s eventstore.Store) {
			next := eventstore.NoStream
			total := 0
			for i, n := range []int{1, 3, 1, 5, 2} {
				res := mustAppend(t, s, "doc-1", next, newEvents(n)...)
				total += n
				if res.NextExpectedRevision != uint64(total-1) {
					t.Fatalf("append %d: NextExpectedRevision = %d, want %d", i, res.NextExpectedRevision, total-1)
				}
				next = eventstore.Exact(res.NextExpectedRevision)
			}
			if got := revisions(readStream(t, s, "doc-1", 0, eventstore.Forward, 0)); !equalUints(got, seq(0, uint64(total-1))) {
				t.Fatalf("revisions = %v", got)
			}
		}},
		{"PositionsIncreaseAcrossStreams", func(t *testing.T, s eventstore.Store) {
			var last uint64
			for i := range 12 {
				stream := fmt.Sprintf("s-%d", i%3)
				res := mustAppend(t, s, stream, eventstore.Any, newEvents(1+i%2)...)
				if res.Position <= last {
					t.Fatalf("append %d: Position %d not after %d", i, res.Position, last)
				}
				last = res.Position
			}
			all := readAll(t, s)
			checkLog(t, all)
			if all[len(all)-1].Position != last {
				t.Fatalf("last position in log %d, last AppendResult %d", all[len(all)-1].Position, last)
			}
		}},
		{"ResultPointsAtLastEvent", func(t *testing.T, s eventstore.Store) {
			evs := newEvents(3)
			res := mustAppend(t, s, "s", eventstore.NoStream, evs...)
			got := readStream(t, s, "s", eventstore.EndOfStream, eventstore.Backward, 1)
			if len(got) != 1 || got[0].ID != evs[2].ID || got[0].Position != res.Position || got[0].Revision != res.NextExpectedRevision {
				t.Fatalf("last event %+v, result %+v", got, res)
			}
		}},
	}
}

// ---- WrongExpectedVersion ----

func wrongVersionCases() []testCase {
	return []testCase{
		{"NoStreamOnExisting", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			_, err := s.Append(t.Context(), "s", eventstore.NoStream, newEvents(1))
			expectWrongVersion(t, err, "s", eventstore.NoStream, 0)
			expectCount(t, s, 1)
		}},
		{"ExactStale", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(3)...)
			_, err := s.Append(t.Context(), "s", eventstore.Exact(1), newEvents(1))
			expectWrongVersion(t, err, "s", eventstore.Exact(1), 2)
			expectCount(t, s, 3)
		}},
		{"ExactAhead", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			_, err := s.Append(t.Context(), "s", eventstore.Exact(5), newEvents(1))
			expectWrongVersion(t, err, "s", eventstore.Exact(5), 0)
			expectCount(t, s, 1)
		}},
		{"ExactOnMissing", func(t *testing.T, s eventstore.Store) {
			_, err := s.Append(t.Context(), "s", eventstore.Exact(0), newEvents(1))
			expectWrongVersion(t, err, "s", eventstore.Exact(0), -1)
			expectCount(t, s, 0)
		}},
		{"StreamExistsOnMissing", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "other", eventstore.NoStream, newEvents(1)...)
			_, err := s.Append(t.Context(), "s", eventstore.StreamExists, newEvents(1))
			expectWrongVersion(t, err, "s", eventstore.StreamExists, -1)
			expectCount(t, s, 1)
		}},
	}
}

// ---- Idempotency ----

func idempotencyCases() []testCase {
	return []testCase{
		{"ExactRetry", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			batch := newEvents(2)
			orig := mustAppend(t, s, "s", eventstore.Exact(0), batch...)
			again := mustAppend(t, s, "s", eventstore.Exact(0), batch...)
			if again != orig {
				t.Fatalf("immediate retry = %+v, want %+v", again, orig)
			}
			mustAppend(t, s, "s", eventstore.Exact(2), newEvents(2)...) // the stream moves on
			mustAppend(t, s, "other", eventstore.Any, newEvents(1)...)
			again = mustAppend(t, s, "s", eventstore.Exact(0), batch...)
			if again != orig {
				t.Fatalf("late retry = %+v, want %+v", again, orig)
			}
			expectCount(t, s, 6)
		}},
		{"NoStreamRetryMultiEvent", func(t *testing.T, s eventstore.Store) {
			batch := newEvents(3)
			orig := mustAppend(t, s, "s", eventstore.NoStream, batch...)
			if orig.NextExpectedRevision != 2 {
				t.Fatalf("NextExpectedRevision = %d", orig.NextExpectedRevision)
			}
			again := mustAppend(t, s, "s", eventstore.NoStream, batch...)
			if again != orig {
				t.Fatalf("retry = %+v, want %+v", again, orig)
			}
			mustAppend(t, s, "s", eventstore.Exact(2), newEvents(1)...)
			again = mustAppend(t, s, "s", eventstore.NoStream, batch...)
			if again != orig {
				t.Fatalf("late retry = %+v, want %+v", again, orig)
			}
			expectCount(t, s, 4)
		}},
		{"AnyRetry", func(t *testing.T, s eventstore.Store) {
			// A recent retry with Any: inside EventStoreDB's window of
			// recently committed ids, the only one the port promises.
			mustAppend(t, s, "s", eventstore.Any, newEvents(1)...)
			batch := newEvents(2)
			orig := mustAppend(t, s, "s", eventstore.Any, batch...)
			mustAppend(t, s, "s", eventstore.Any, newEvents(1)...)
			again := mustAppend(t, s, "s", eventstore.Any, batch...)
			if again != orig {
				t.Fatalf("retry = %+v, want %+v", again, orig)
			}
			expectCount(t, s, 4)
		}},
		{"ResultIsOriginalNotHead", func(t *testing.T, s eventstore.Store) {
			batch := newEvents(1)
			orig := mustAppend(t, s, "s", eventstore.NoStream, batch...)
			head := mustAppend(t, s, "s", eventstore.Exact(0), newEvents(5)...)
			again := mustAppend(t, s, "s", eventstore.NoStream, batch...)
			if again != orig || again == head {
				t.Fatalf("retry = %+v, want original %+v (head %+v)", again, orig, head)
			}
		}},
		{"PartialRetry", func(t *testing.T, s eventstore.Store) {
			batch := newEvents(2)
			mustAppend(t, s, "a", eventstore.NoStream, batch...)
			// A retry that adds a new event to the original ones is not a
			// retry; neither is one whose second event differs.
			for i, evs := range [][]eventstore.EventData{
				{batch[0], batch[1], newEvent("X", 0)},
				{batch[0], newEvent("X", 1)},
			} {
				_, err := s.Append(t.Context(), "a", eventstore.NoStream, evs)
				if !errors.Is(err, eventstore.ErrInvalidAppend) && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
					t.Fatalf("partial retry %d: err = %v, want ErrInvalidAppend or ErrWrongExpectedVersion", i, err)
				}
			}
			expectCount(t, s, 2)
		}},
		{"ConcurrentRetries", func(t *testing.T, s eventstore.Store) {
			batch := newEvents(2)
			const n = 10
			results := make([]eventstore.AppendResult, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					results[i], errs[i] = s.Append(t.Context(), "s", eventstore.NoStream, batch)
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("retry %d: %v", i, errs[i])
				}
				if results[i] != results[0] {
					t.Fatalf("retry %d = %+v, want %+v", i, results[i], results[0])
				}
			}
			expectCount(t, s, 2)
		}},
	}
}

// ---- Invalid ----

func invalidCases() []testCase {
	return []testCase{
		{"Malformed", func(t *testing.T, s eventstore.Store) {
			e := newEvent("Created", 0)
			cases := []struct {
				name   string
				stream string
				exp    eventstore.ExpectedRevision
				evs    []eventstore.EventData
			}{
				{"EmptyStream", "", eventstore.Any, []eventstore.EventData{newEvent("X", 0)}},
				{"NilEvents", "s", eventstore.Any, nil},
				{"NoEvents", "s", eventstore.Any, []eventstore.EventData{}},
				{"NilID", "s", eventstore.Any, []eventstore.EventData{{Type: "X", Data: []byte(`{}`)}}},
				{"EmptyType", "s", eventstore.Any, []eventstore.EventData{{ID: uuid.New(), Data: []byte(`{}`)}}},
				{"DuplicateIDs", "s", eventstore.NoStream, []eventstore.EventData{e, newEvent("X", 1), e}},
				{"BadExpected", "s", eventstore.ExpectedRevision(-3), []eventstore.EventData{newEvent("X", 0)}},
			}
			for _, c := range cases {
				_, err := s.Append(t.Context(), c.stream, c.exp, c.evs)
				if !errors.Is(err, eventstore.ErrInvalidAppend) {
					t.Errorf("%s: err = %v, want ErrInvalidAppend", c.name, err)
				}
			}
			expectCount(t, s, 0)
			if _, err := s.ReadStream(t.Context(), "s", 0, eventstore.Forward, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Fatalf("stream s after invalid appends: err = %v, want ErrStreamNotFound", err)
			}
		}},
		{"CancelledContext", func(t *testing.T, s eventstore.Store) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.Append(ctx, "s", eventstore.Any, newEvents(1))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			expectCount(t, s, 0)
		}},
	}
}

// ---- Read ----

func tenEvents(t *testing.T, s eventstore.Store) {
	t.Helper()
	mustAppend(t, s, "s", eventstore.NoStream, newEvents(4)...)
	mustAppend(t, s, "other", eventstore.NoStream, newEvents(2)...)
	mustAppend(t, s, "s", eventstore.Exact(3), newEvents(6)...)
}

func readCases(cfg config) []testCase {
	return []testCase{
		{"Forward", func(t *testing.T, s eventstore.Store) {
			tenEvents(t, s)
			for _, c := range []struct {
				from  uint64
				limit int
				want  []uint64
			}{
				{0, 0, seq(0, 9)},
				{0, -1, seq(0, 9)},
				{3, 4, seq(3, 6)},
				{8, 5, seq(8, 9)},
				{9, 1, seq(9, 9)},
				{10, 0, nil},
				{1000, 3, nil},
			} {
				evs, err := s.ReadStream(t.Context(), "s", c.from, eventstore.Forward, c.limit)
				if err != nil {
					t.Fatalf("from %d limit %d: %v", c.from, c.limit, err)
				}
				if got := revisions(evs); !equalUints(got, c.want) {
					t.Fatalf("from %d limit %d: revisions %v, want %v", c.from, c.limit, got, c.want)
				}
				for _, e := range evs {
					if e.StreamID != "s" {
						t.Fatalf("event of stream %q in stream s", e.StreamID)
					}
				}
			}
		}},
		{"Backward", func(t *testing.T, s eventstore.Store) {
			tenEvents(t, s)
			for _, c := range []struct {
				from  uint64
				limit int
				want  []uint64
			}{
				{eventstore.EndOfStream, 0, seq(9, 0)},
				{eventstore.EndOfStream, 3, seq(9, 7)},
				{5, 0, seq(5, 0)},
				{5, 2, seq(5, 4)},
				{0, 5, seq(0, 0)},
				{100, 2, seq(9, 8)},
			} {
				if got := revisions(readStream(t, s, "s", c.from, eventstore.Backward, c.limit)); !equalUints(got, c.want) {
					t.Fatalf("from %d limit %d: revisions %v, want %v", c.from, c.limit, got, c.want)
				}
			}
		}},
		{"NotFound", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "other", eventstore.NoStream, newEvents(1)...)
			for _, dir := range []eventstore.Direction{eventstore.Forward, eventstore.Backward} {
				from := uint64(0)
				if dir == eventstore.Backward {
					from = eventstore.EndOfStream
				}
				_, err := s.ReadStream(t.Context(), "missing", from, dir, 0)
				if !errors.Is(err, eventstore.ErrStreamNotFound) {
					t.Fatalf("direction %d: err = %v, want ErrStreamNotFound", dir, err)
				}
			}
		}},
		{"RoundTrip", func(t *testing.T, s eventstore.Store) {
			big := bytes.Repeat([]byte(`{"k":"vé\u2603"},`), 5000)
			big = append(append([]byte(`[`), big...), []byte(`{}]`)...)
			in := []eventstore.EventData{
				{ID: uuid.New(), Type: "Booked", Data: []byte(` { "a" : 1 ,"b":[true,null] } `), Metadata: []byte(`{"actor":"doc-7","correlation":"c1"}`)},
				{ID: uuid.New(), Type: "Big", Data: big, Metadata: []byte(`{}`)},
				{ID: uuid.New(), Type: "Bytes", Data: []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}, Metadata: nil},
				{ID: uuid.New(), Type: "type with spaces/and.dots", Data: []byte(`"é"`), Metadata: []byte(`null`)},
			}
			res := mustAppend(t, s, "stream-é/1", eventstore.NoStream, in...)
			out := readStream(t, s, "stream-é/1", 0, eventstore.Forward, 0)
			all := readAll(t, s)
			if len(out) != len(in) || len(all) != len(in) {
				t.Fatalf("read %d and %d events, want %d", len(out), len(all), len(in))
			}
			for i := range in {
				for _, got := range []eventstore.RecordedEvent{out[i], all[i]} {
					if got.ID != in[i].ID || got.Type != in[i].Type || got.StreamID != "stream-é/1" || got.Revision != uint64(i) {
						t.Fatalf("event %d = %+v", i, got)
					}
					if !bytes.Equal(got.Data, in[i].Data) {
						t.Fatalf("event %d: data %q, want %q", i, trunc(got.Data), trunc(in[i].Data))
					}
					if !cfg.sameMetadata(got.Metadata, in[i].Metadata) {
						t.Fatalf("event %d: metadata %q, want %q", i, got.Metadata, in[i].Metadata)
					}
				}
			}
			if out[len(out)-1].Position != res.Position {
				t.Fatalf("last position %d, result %d", out[len(out)-1].Position, res.Position)
			}
		}},
		{"RecordedAtUTC", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(2)...)
			for _, e := range readStream(t, s, "s", 0, eventstore.Forward, 0) {
				if e.RecordedAt.IsZero() {
					t.Fatalf("RecordedAt is zero")
				}
				if e.RecordedAt.Location() != time.UTC {
					t.Fatalf("RecordedAt location = %v, want UTC", e.RecordedAt.Location())
				}
			}
		}},
		{"ReadAll", func(t *testing.T, s eventstore.Store) {
			if evs, err := s.ReadAll(t.Context(), 0, 0); err != nil || len(evs) != 0 {
				t.Fatalf("empty store: %d events, err %v", len(evs), err)
			}
			tenEvents(t, s)
			all := readAll(t, s)
			if len(all) != 12 {
				t.Fatalf("log holds %d events, want 12", len(all))
			}
			checkLog(t, all)
			page, err := s.ReadAll(t.Context(), 0, 0) // default page
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, page, all)
			p := all[4].Position
			after, err := s.ReadAll(t.Context(), p, 0)
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, after, all[5:])
			limited, err := s.ReadAll(t.Context(), p, 3)
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, limited, all[5:8])
			end, err := s.ReadAll(t.Context(), all[11].Position, 10)
			if err != nil || len(end) != 0 {
				t.Fatalf("after the head: %d events, err %v", len(end), err)
			}
		}},
		{"HeadPosition", func(t *testing.T, s eventstore.Store) {
			head, err := s.HeadPosition(t.Context())
			if err != nil || head != 0 {
				t.Fatalf("empty store: head %d, err %v", head, err)
			}
			mustAppend(t, s, "a", eventstore.NoStream, newEvents(2)...)
			res := mustAppend(t, s, "b", eventstore.NoStream, newEvents(3)...)
			head, err = s.HeadPosition(t.Context())
			if err != nil || head != res.Position {
				t.Fatalf("head %d, err %v; want %d", head, err, res.Position)
			}
		}},
		{"Ping", func(t *testing.T, s eventstore.Store) {
			if err := s.Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// ---- Subscribe ----

// collector gathers the events of a subscription.
type collector struct {
	mu     sync.Mutex
	evs    []eventstore.RecordedEvent
	notify chan struct{}
	errc   chan error
	cancel context.CancelFunc
}

func subscribe(t *testing.T, s eventstore.Store, after uint64) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{notify: make(chan struct{}, 1), errc: make(chan error, 1), cancel: cancel}
	go func() {
		c.errc <- s.SubscribeAll(ctx, after, func(_ context.Context, e eventstore.RecordedEvent) error {
			c.mu.Lock()
			c.evs = append(c.evs, e)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// wait waits until n events arrived and returns them.
func (c *collector) wait(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	timeout := time.NewTimer(waitLimit)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		got := len(c.evs)
		c.mu.Unlock()
		if got >= n {
			c.mu.Lock()
			defer c.mu.Unlock()
			return append([]eventstore.RecordedEvent(nil), c.evs...)
		}
		select {
		case <-c.notify:
		case err := <-c.errc:
			c.errc <- err
			t.Fatalf("subscription ended after %d of %d events: %v", got, n, err)
		case <-timeout.C:
			t.Fatalf("subscription delivered %d of %d events", got, n)
		}
	}
}

// stop cancels the subscription and checks it ended with context.Canceled.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.errc:
		c.errc <- err
		if !errors.Is(err, context.Canceled) {
			t.Errorf("subscription ended with %v, want context.Canceled", err)
		}
	case <-time.After(waitLimit):
		t.Errorf("subscription did not end after cancel")
	}
}

// appendConcurrently makes goroutines×perG single-event appends, one new
// stream per goroutine (named prefix-i), and fails on any error.
func appendConcurrently(t *testing.T, s eventstore.Store, prefix string, goroutines, perG int) []eventstore.AppendResult {
	t.Helper()
	results := make([]eventstore.AppendResult, goroutines*perG)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			stream := fmt.Sprintf("%s-%d", prefix, g)
			exp := eventstore.NoStream
			for i := range perG {
				res, err := s.Append(t.Context(), stream, exp, []eventstore.EventData{newEvent("Concurrent", i)})
				if err != nil {
					t.Errorf("append %s #%d: %v", stream, i, err)
					return
				}
				results[g*perG+i] = res
				exp = eventstore.Exact(res.NextExpectedRevision)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return results
}

func subscribeCases() []testCase {
	return []testCase{
		{"CatchUpThenLive", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "early", eventstore.NoStream, newEvents(5)...)
			c := subscribe(t, s, 0)
			c.wait(t, 5)
			appendConcurrently(t, s, "live", 4, 25)
			got := c.wait(t, 105)
			all := readAll(t, s)
			checkLog(t, all)
			sameEvents(t, got, all)
			c.stop(t)
		}},
		{"LiveWhileCatchingUp", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "early", eventstore.NoStream, newEvents(30)...)
			c := subscribe(t, s, 0)
			appendConcurrently(t, s, "live", 5, 20)
			got := c.wait(t, 130)
			sameEvents(t, got, readAll(t, s))
		}},
		{"ResumeFromCheckpoint", func(t *testing.T, s eventstore.Store) {
			tenEvents(t, s)
			all := readAll(t, s)
			checkpoint := all[3].Position
			c := subscribe(t, s, checkpoint)
			sameEvents(t, c.wait(t, 8), all[4:])
			mustAppend(t, s, "s", eventstore.Exact(9), newEvents(2)...)
			all = readAll(t, s)
			sameEvents(t, c.wait(t, 10), all[4:])
			// Subscribing from the head only sees what comes next.
			head := all[len(all)-1].Position
			c2 := subscribe(t, s, head)
			res := mustAppend(t, s, "z", eventstore.NoStream, newEvents(1)...)
			got := c2.wait(t, 1)
			if len(got) != 1 || got[0].Position != res.Position {
				t.Fatalf("from head: got %+v, want position %d", got, res.Position)
			}
		}},
		{"ManySubscribers", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "early", eventstore.NoStream, newEvents(3)...)
			subs := make([]*collector, 8)
			for i := range subs {
				subs[i] = subscribe(t, s, 0)
			}
			appendConcurrently(t, s, "live", 4, 10)
			all := readAll(t, s)
			for i, c := range subs {
				got := c.wait(t, len(all))
				if len(got) != len(all) {
					t.Fatalf("subscriber %d: %d events, want %d", i, len(got), len(all))
				}
				sameEvents(t, got, all)
			}
		}},
		{"HandlerError", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(5)...)
			boom := errors.New("boom")
			calls := 0
			err := s.SubscribeAll(t.Context(), 0, func(context.Context, eventstore.RecordedEvent) error {
				calls++
				if calls == 3 {
					return boom
				}
				return nil
			})
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the handler's error", err)
			}
			if calls != 3 {
				t.Fatalf("handler called %d times, want 3", calls)
			}
		}},
		{"HandlerErrorOnLiveEvent", func(t *testing.T, s eventstore.Store) {
			boom := errors.New("boom")
			errc := make(chan error, 1)
			go func() {
				errc <- s.SubscribeAll(t.Context(), 0, func(context.Context, eventstore.RecordedEvent) error { return boom })
			}()
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			select {
			case err := <-errc:
				if !errors.Is(err, boom) {
					t.Fatalf("err = %v, want the handler's error", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("subscription did not end on handler error")
			}
		}},
		{"CancelWhileWaiting", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			c := subscribe(t, s, 0)
			c.wait(t, 1)
			c.stop(t) // checks context.Canceled
		}},
		{"CancelledContext", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := s.SubscribeAll(ctx, 0, func(context.Context, eventstore.RecordedEvent) error { return nil })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		}},
		{"CancelFromHandler", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(5)...)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			calls := 0
			err := s.SubscribeAll(ctx, 0, func(context.Context, eventstore.RecordedEvent) error {
				calls++
				if calls == 2 {
					cancel()
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if calls < 2 {
				t.Fatalf("handler called %d times, want at least 2", calls)
			}
		}},
	}
}

// ---- Concurrency ----

func concurrencyCases() []testCase {
	return []testCase{
		{"SameExpectedRevisionOneWins", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			const n = 50
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = s.Append(t.Context(), "s", eventstore.Exact(0), []eventstore.EventData{newEvent("Race", i)})
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
				case errors.Is(err, eventstore.ErrWrongExpectedVersion):
					var wev *eventstore.WrongExpectedVersionError
					if !errors.As(err, &wev) || wev.Actual != 1 {
						t.Fatalf("append %d: %v, want Actual 1", i, err)
					}
				default:
					t.Fatalf("append %d: %v", i, err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d appends won, want exactly 1", wins)
			}
			if got := revisions(readStream(t, s, "s", 0, eventstore.Forward, 0)); !equalUints(got, seq(0, 1)) {
				t.Fatalf("revisions = %v", got)
			}
		}},
		{"DistinctStreams", func(t *testing.T, s eventstore.Store) {
			results := appendConcurrently(t, s, "d", 20, 50)
			all := readAll(t, s)
			if len(all) != 1000 {
				t.Fatalf("log holds %d events, want 1000", len(all))
			}
			checkLog(t, all)
			byPos := make(map[uint64]bool, len(all))
			for _, e := range all {
				byPos[e.Position] = true
			}
			seen := make(map[uint64]bool, len(results))
			for _, r := range results {
				if seen[r.Position] {
					t.Fatalf("position %d returned twice", r.Position)
				}
				seen[r.Position] = true
				if !byPos[r.Position] {
					t.Fatalf("position %d returned but not in the log", r.Position)
				}
			}
			for g := range 20 {
				stream := fmt.Sprintf("d-%d", g)
				if got := revisions(readStream(t, s, stream, 0, eventstore.Forward, 0)); !equalUints(got, seq(0, 49)) {
					t.Fatalf("%s: revisions %v", stream, got)
				}
			}
		}},
		{"OptimisticRetryLoop", func(t *testing.T, s eventstore.Store) {
			// Writers read the stream head and append at Exact, retrying on
			// conflict, while readers check every read is consistent.
			const writers, perWriter = 4, 25
			streams := []string{"shared-a", "shared-b"}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var readers sync.WaitGroup
			for r := range 4 {
				readers.Go(func() {
					for ctx.Err() == nil {
						stream := streams[r%2]
						evs, err := s.ReadStream(ctx, stream, 0, eventstore.Forward, 0)
						if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) && ctx.Err() == nil {
							t.Errorf("read %s: %v", stream, err)
							return
						}
						for i, e := range evs {
							if e.Revision != uint64(i) {
								t.Errorf("read %s: revision %d at index %d", stream, e.Revision, i)
								return
							}
						}
						page, err := s.ReadAll(ctx, 0, 50)
						if err != nil && ctx.Err() == nil {
							t.Errorf("read all: %v", err)
							return
						}
						for i := 1; i < len(page); i++ {
							if page[i].Position <= page[i-1].Position {
								t.Errorf("read all: position %d after %d", page[i].Position, page[i-1].Position)
								return
							}
						}
						// Pace the readers so that, on few cores, they do not
						// starve the writers of CPU (not a timing assertion).
						time.Sleep(time.Millisecond)
					}
				})
			}
			var writersWG sync.WaitGroup
			for w := range writers {
				writersWG.Go(func() {
					stream := streams[w%2]
					for i := 0; i < perWriter; {
						exp := eventstore.NoStream
						last, err := s.ReadStream(t.Context(), stream, eventstore.EndOfStream, eventstore.Backward, 1)
						switch {
						case err == nil && len(last) == 0:
							t.Errorf("read head of %s: no event and no error", stream)
							return
						case err == nil:
							exp = eventstore.Exact(last[0].Revision)
						case !errors.Is(err, eventstore.ErrStreamNotFound):
							t.Errorf("read head of %s: %v", stream, err)
							return
						}
						_, err = s.Append(t.Context(), stream, exp, []eventstore.EventData{newEvent("Opt", i)})
						switch {
						case err == nil:
							i++
						case errors.Is(err, eventstore.ErrWrongExpectedVersion):
						default:
							t.Errorf("append to %s: %v", stream, err)
							return
						}
					}
				})
			}
			writersWG.Wait()
			cancel()
			readers.Wait()
			if t.Failed() {
				return
			}
			for _, stream := range streams {
				want := writers / 2 * perWriter
				if got := revisions(readStream(t, s, stream, 0, eventstore.Forward, 0)); !equalUints(got, seq(0, uint64(want-1))) {
					t.Fatalf("%s: revisions %v, want 0..%d", stream, got, want-1)
				}
			}
			checkLog(t, readAll(t, s))
		}},
	}
}

// ---- Lifecycle ----

func lifecycleCases() []testCase {
	return []testCase{
		{"UseAfterClose", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := s.Append(t.Context(), "s", eventstore.Any, newEvents(1)); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Append after Close: %v, want ErrClosed", err)
			}
			if _, err := s.ReadStream(t.Context(), "s", 0, eventstore.Forward, 0); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("ReadStream after Close: %v, want ErrClosed", err)
			}
			if _, err := s.ReadAll(t.Context(), 0, 0); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("ReadAll after Close: %v, want ErrClosed", err)
			}
			if _, err := s.HeadPosition(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("HeadPosition after Close: %v, want ErrClosed", err)
			}
			if err := s.Ping(t.Context()); err == nil {
				t.Errorf("Ping after Close succeeded")
			}
			err := s.SubscribeAll(t.Context(), 0, func(context.Context, eventstore.RecordedEvent) error { return nil })
			if !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("SubscribeAll after Close: %v, want ErrClosed", err)
			}
		}},
		{"CloseEndsSubscription", func(t *testing.T, s eventstore.Store) {
			mustAppend(t, s, "s", eventstore.NoStream, newEvents(1)...)
			got := make(chan struct{}, 1)
			errc := make(chan error, 1)
			go func() {
				errc <- s.SubscribeAll(t.Context(), 0, func(context.Context, eventstore.RecordedEvent) error {
					got <- struct{}{}
					return nil
				})
			}()
			select {
			case <-got:
			case <-time.After(waitLimit):
				t.Fatal("no event delivered")
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("subscription ended without error on Close")
				}
			case <-time.After(waitLimit):
				t.Fatal("subscription did not end on Close")
			}
		}},
	}
}
