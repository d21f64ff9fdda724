package chain

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
)

// Store is an eventstore.Store that chains every event it appends: it
// writes prevHash and hash at the head of each event's metadata (see the
// package doc) and is otherwise the store it wraps. Reads, subscriptions
// and the rest pass through unchanged.
//
// # Where prevHash comes from
//
// Appending needs the hash of the event the append follows. Store keeps a
// bounded cache stream -> (revision, hash), learnt from the stream reads
// that pass through it (the last event a read returns) and from its own
// appends, so the command path, which reads a stream before it appends to
// it, pays no extra read. On a miss it reads that one event (a backward
// read of 1). The hash of an unhashed event (written before the chain) is
// computed from the stream's events since its last hashed one, once.
//
// # Expected revisions
//
//   - Exact(r): the event at r gives prevHash; the store's own revision
//     check guarantees nobody appended in between, so two appends never
//     chain to the same predecessor.
//   - NoStream: prevHash is Zero.
//   - Any and StreamExists: Store reads the stream's head and appends with
//     Exact(head) (NoStream when there is none), again on a version
//     conflict, so that these appends are chained too. A retry of an Any
//     append whose first event is among the stream's last 32, or whose
//     Exact append is refused for reusing ids (SQLite), is passed to the
//     wrapped store as it was asked, which recognises it as a retry. An
//     older retry on EventStoreDB is written again, as EventStoreDB itself
//     does past its window of recent ids (see eventstore's package doc),
//     but chained.
//
// # What it trusts
//
// An append the wrapped store answers as an idempotent retry writes
// nothing: the hashes stored are the first attempt's. Store therefore
// remembers the hash of its own append only when that append cannot have
// been such a retry: its event ids are random (UUID versions 4 and 7) and
// no earlier append of this Store to the stream ended in an unknown
// outcome. Otherwise the next append reads the stored head.
//
// Several Stores may wrap one event store (several processes): each one's
// cache holds only hashes that are stored, and a stale entry costs an
// append a version conflict, never a wrong link.
type Store struct {
	eventstore.Store

	mu    sync.Mutex
	heads map[string]head
	max   int

	hashers sync.Pool
}

type head struct {
	rev  uint64
	hash Hash
	// suspect: an append to the stream ended in an unknown outcome; the
	// next successful one may have been answered as its retry.
	suspect bool
	known   bool // rev and hash are set
}

var _ eventstore.Store = (*Store)(nil)

// DefaultCacheSize bounds the streams whose head hash a Store remembers
// (about 150 bytes each).
const DefaultCacheSize = 100_000

// anyRetries bounds the head reads of an Any or StreamExists append that
// keeps losing races.
const anyRetries = 64

// Wrap returns inner chained. A store that is already a *Store is returned
// as it is (never chained twice).
func Wrap(inner eventstore.Store) *Store {
	if s, ok := inner.(*Store); ok {
		return s
	}
	s := &Store{Store: inner, heads: map[string]head{}, max: DefaultCacheSize}
	s.hashers.New = func() any { return newHasher() }
	return s
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() eventstore.Store { return s.Store }

func (s *Store) hasher() *hasher   { return s.hashers.Get().(*hasher) }
func (s *Store) release(x *hasher) { s.hashers.Put(x) }

// Append implements eventstore.Store: it chains the events, then appends
// them (see the type's doc).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if len(events) == 0 || stream == "" {
		return s.Store.Append(ctx, stream, expected, events) // the store's own refusal
	}
	switch {
	case expected == eventstore.NoStream:
		return s.appendAt(ctx, stream, expected, Zero, 0, events)
	case expected.IsExact():
		r := uint64(expected)
		prev, err := s.hashAt(ctx, stream, r, expected)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		return s.appendAt(ctx, stream, expected, prev, r+1, events)
	case expected == eventstore.Any, expected == eventstore.StreamExists:
		return s.appendAnywhere(ctx, stream, expected, events)
	}
	return s.Store.Append(ctx, stream, expected, events) // an invalid expected revision
}

// appendAnywhere appends an Any or StreamExists append at the head it
// reads, as Exact(head), again on conflict.
func (s *Store) appendAnywhere(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	for attempt := 0; ; attempt++ {
		rev, prev, found, retry, err := s.headOf(ctx, stream, events[0].ID)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if retry {
			// A retry of events stored lately: the wrapped store
			// recognises it (as it would without the chain).
			sealed, _, serr := s.seal(stream, prev, rev+1, events)
			if serr != nil {
				return eventstore.AppendResult{}, serr
			}
			return s.Store.Append(ctx, stream, expected, sealed)
		}
		exp, first := eventstore.NoStream, uint64(0)
		switch {
		case found:
			exp, first = eventstore.Exact(rev), rev+1
		case expected == eventstore.StreamExists:
			return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: -1}
		}
		res, err := s.appendAt(ctx, stream, exp, prev, first, events)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, eventstore.ErrInvalidAppend) && !errors.Is(err, errMetadata):
			// Perhaps a retry of events already stored: the wrapped store
			// recognises it, or refuses it again.
			sealed, _, serr := s.seal(stream, prev, first, events)
			if serr != nil {
				return eventstore.AppendResult{}, serr
			}
			return s.Store.Append(ctx, stream, expected, sealed)
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion) || attempt >= anyRetries:
			return res, err
		}
		t := time.NewTimer(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return eventstore.AppendResult{}, ctx.Err()
		}
	}
}

func (s *Store) seal(stream string, prev Hash, first uint64, events []eventstore.EventData) ([]eventstore.EventData, Hash, error) {
	x := s.hasher()
	defer s.release(x)
	sealed := make([]eventstore.EventData, len(events))
	for i, e := range events {
		var err error
		if sealed[i], prev, err = x.seal(prev, stream, first+uint64(i), e); err != nil {
			return nil, Hash{}, err
		}
	}
	return sealed, prev, nil
}

// appendAt appends events at revisions first... chained to prev.
func (s *Store) appendAt(ctx context.Context, stream string, exp eventstore.ExpectedRevision, prev Hash, first uint64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	sealed, last, err := s.seal(stream, prev, first, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res, err := s.Store.Append(ctx, stream, exp, sealed)
	switch {
	case err == nil:
		s.appended(stream, res.NextExpectedRevision == first+uint64(len(events))-1 && randomIDs(events), res.NextExpectedRevision, last)
	case errors.Is(err, eventstore.ErrWrongExpectedVersion), errors.Is(err, eventstore.ErrInvalidAppend),
		errors.Is(err, eventstore.ErrAppendTooLarge), errors.Is(err, eventstore.ErrAccessDenied):
		// Refused: nothing was written.
	default:
		s.mu.Lock()
		h := s.heads[stream]
		h.suspect = true
		s.heads[stream] = h
		s.mu.Unlock()
	}
	return res, err
}

// randomIDs reports whether every id is random (UUID versions 4 and 7):
// no other append can have stored it before.
func randomIDs(events []eventstore.EventData) bool {
	for _, e := range events {
		if v := e.ID.Version(); v != 4 && v != 7 {
			return false
		}
	}
	return true
}

// appended records a successful append: its head when trusted (see the
// type's doc), otherwise it forgets the stream.
func (s *Store) appended(stream string, trusted bool, rev uint64, h Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.heads[stream]; !trusted || old.suspect {
		delete(s.heads, stream)
		return
	}
	s.putLocked(stream, head{rev: rev, hash: h, known: true})
}

func (s *Store) putLocked(stream string, h head) {
	if _, ok := s.heads[stream]; !ok && len(s.heads) >= s.max {
		n := s.max / 10
		for k, v := range s.heads {
			if n <= 0 {
				break
			}
			if !v.suspect {
				delete(s.heads, k)
				n--
			}
		}
	}
	s.heads[stream] = h
}

// learn records the stored hash of stream's revision rev, read from the
// store (keeping the newer of what it knew and this).
func (s *Store) learn(stream string, rev uint64, h Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.heads[stream]
	if ok && old.known && old.rev > rev {
		return
	}
	s.putLocked(stream, head{rev: rev, hash: h, known: true, suspect: old.suspect})
}

// cached returns the hash of stream's revision rev if known.
func (s *Store) cached(stream string, rev uint64) (Hash, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[stream]
	if !ok || !h.known || h.rev != rev {
		return Hash{}, false
	}
	return h.hash, true
}

// hashAt returns the chain value of stream's event at revision r. When
// the stream has no event at r, the append expecting r cannot succeed:
// the answer is its WrongExpectedVersionError.
func (s *Store) hashAt(ctx context.Context, stream string, r uint64, expected eventstore.ExpectedRevision) (Hash, error) {
	if h, ok := s.cached(stream, r); ok {
		return h, nil
	}
	evs, err := s.Store.ReadStream(ctx, stream, r, eventstore.Backward, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return Hash{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: -1}
	}
	if err != nil {
		return Hash{}, fmt.Errorf("chain: read the head of %q: %w", stream, err)
	}
	if len(evs) == 0 || evs[0].Revision != r {
		actual := int64(-1)
		if len(evs) > 0 {
			actual = int64(evs[0].Revision)
		}
		return Hash{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	return s.valueOf(ctx, &evs[0])
}

// retryWindow is how many of a stream's last events an Any or
// StreamExists append looks among for its own ids (a retry).
const retryWindow = 32

// headOf returns the revision and chain value of stream's last event
// (found is false when the stream has none), and whether the event id
// first is among its last retryWindow events.
func (s *Store) headOf(ctx context.Context, stream string, first uuid.UUID) (rev uint64, h Hash, found, retry bool, err error) {
	evs, err := s.Store.ReadStream(ctx, stream, eventstore.EndOfStream, eventstore.Backward, retryWindow)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0, Zero, false, false, nil
	}
	if err != nil {
		return 0, Hash{}, false, false, fmt.Errorf("chain: read the head of %q: %w", stream, err)
	}
	if len(evs) == 0 {
		return 0, Zero, false, false, nil
	}
	for _, e := range evs {
		retry = retry || e.ID == first
	}
	h, err = s.valueOf(ctx, &evs[0])
	return evs[0].Revision, h, err == nil, retry, err
}

// valueOf returns the chain value of a stored event: its stored hash, or,
// unhashed, the value computed over the stream since its last hashed
// event (see legacyValue). It caches what it found.
func (s *Store) valueOf(ctx context.Context, e *eventstore.RecordedEvent) (Hash, error) {
	if l, ok := ParseLink(e.Metadata); ok {
		s.learn(e.StreamID, e.Revision, l.Hash)
		return l.Hash, nil
	}
	h, err := s.legacyValue(ctx, e.StreamID, e.Revision)
	if err != nil {
		return Hash{}, err
	}
	s.learn(e.StreamID, e.Revision, h)
	return h, nil
}

// legacyPage is the page of legacyValue's reads.
const legacyPage = 512

// legacyValue computes the chain value of stream's unhashed event at
// revision r: from the last hashed event before it (its stored hash) or
// from Zero at revision 0, over the unhashed events after that. It reads
// those events twice (backward to find where to start, forward to hash),
// a page at a time; it runs once a stream, for the first append after the
// upgrade that introduced the chain.
func (s *Store) legacyValue(ctx context.Context, stream string, r uint64) (Hash, error) {
	start, prev := uint64(0), Zero
	for from := r; ; {
		evs, err := s.Store.ReadStream(ctx, stream, from, eventstore.Backward, legacyPage)
		if err != nil {
			return Hash{}, fmt.Errorf("chain: read %q: %w", stream, err)
		}
		found := false
		for _, e := range evs {
			if l, ok := ParseLink(e.Metadata); ok {
				start, prev, found = e.Revision+1, l.Hash, true
				break
			}
		}
		if found || len(evs) < legacyPage || evs[len(evs)-1].Revision == 0 {
			break
		}
		from = evs[len(evs)-1].Revision - 1
	}
	x := s.hasher()
	defer s.release(x)
	for next := start; next <= r; {
		evs, err := s.Store.ReadStream(ctx, stream, next, eventstore.Forward, int(min(uint64(legacyPage), r-next+1)))
		if err != nil {
			return Hash{}, fmt.Errorf("chain: read %q: %w", stream, err)
		}
		if len(evs) == 0 {
			return Hash{}, fmt.Errorf("chain: read %q: revisions %d..%d are missing", stream, next, r)
		}
		for i := range evs {
			if evs[i].Revision != next {
				return Hash{}, fmt.Errorf("chain: read %q: revision %d is missing", stream, next)
			}
			prev, _, _ = x.value(prev, &evs[i])
			next++
		}
	}
	return prev, nil
}

// ReadStream implements eventstore.Store: it reads through and remembers
// the hash of the newest event read.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := s.Store.ReadStream(ctx, stream, from, dir, limit)
	if err == nil && len(evs) > 0 {
		newest := &evs[len(evs)-1]
		if dir == eventstore.Backward {
			newest = &evs[0]
		}
		if l, ok := ParseLink(newest.Metadata); ok {
			s.learn(stream, newest.Revision, l.Hash)
		}
	}
	return evs, err
}
