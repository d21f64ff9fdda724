// Package eventstore defines the event-store port that every adapter implements
// (the embedded SQLite store, EventStoreDB) and the types that cross it.
//
// Semantics follow EventStoreDB:
//   - a stream's revisions start at 0 and have no gaps;
//   - the global log ($all) is totally ordered by Position, which starts at 1;
//   - an append is atomic: all of its events are written or none;
//   - an append names the revision it expects the stream to be at (Any,
//     NoStream, StreamExists or an exact revision); a mismatch is
//     ErrWrongExpectedVersion.
//
// # Idempotency: what every adapter guarantees
//
// Appends are made idempotent by their event ids, within these limits and
// no further (they are what EventStoreDB guarantees; the SQLite store gives
// more, and nothing may rely on the more):
//
//   - Exact(r) and NoStream: appending again the same event ids, in the same
//     order, at the same expected revision succeeds without writing anything
//     and answers the original AppendResult (NextExpectedRevision r+n and
//     the original Position), however much was written since, as long as
//     those events are still in the stream (EventStoreDB compares the ids
//     with the events stored at r+1..r+n; stream deletion, $maxCount,
//     $maxAge or a scavenge remove them). Concurrent retries all answer
//     that same result.
//   - A retry that matches only in part (some ids stored at r+1.., others
//     not, or more events than were written) writes nothing and fails with
//     ErrWrongExpectedVersion or ErrInvalidAppend (adapters differ).
//   - Any and StreamExists: a retry of the same ids is recognised only
//     while the original is recent. EventStoreDB looks the ids up in an
//     in-memory cache of recently committed events (8 MiB, on the order of
//     100,000 events, emptied by a restart or a leader change); past that
//     window the retry writes the events again. Commands never append with
//     Any.
//   - Event ids are not unique across the store. An id already stored in
//     another stream, or elsewhere in the same stream, at a place an
//     append does not retry, may be written again (EventStoreDB) or
//     refused with ErrInvalidAppend (SQLite). Ids inside one append must
//     be distinct (ErrInvalidAppend).
//
// An append whose outcome the adapter cannot know (the server timed out
// after it may have committed) is resolved by the adapter before it
// answers: it reads the stream back and answers success if the events are
// there, ErrWrongExpectedVersion if other events are, and ErrUnavailable
// only if it still cannot tell. A caller that gets ErrUnavailable may retry
// with the same ids and expected revision.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ExpectedRevision is the revision an append expects the stream to be at:
// one of Any, NoStream, StreamExists, or Exact(n) for the revision of the
// stream's last event.
type ExpectedRevision int64

const (
	// Any appends whatever the stream's state. Commands never use it.
	Any ExpectedRevision = -2
	// NoStream requires that the stream has no events.
	NoStream ExpectedRevision = -1
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedRevision = -4
)

// Exact expects the stream's last event to be at revision rev.
func Exact(rev uint64) ExpectedRevision { return ExpectedRevision(rev) }

// IsExact reports whether e names a concrete revision.
func (e ExpectedRevision) IsExact() bool { return e >= 0 }

func (e ExpectedRevision) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no_stream"
	case StreamExists:
		return "stream_exists"
	}
	return fmt.Sprintf("%d", int64(e))
}

// EventData is an event to append. Commands derive ID deterministically so
// that a retried command appends the same ids at the same expected revision
// and is idempotent (see the package doc for the exact guarantee).
type EventData struct {
	ID       uuid.UUID
	Type     string
	Data     []byte // JSON
	Metadata []byte // JSON
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID         uuid.UUID
	StreamID   string
	Type       string
	Revision   uint64 // 0-based position inside the stream
	Position   uint64 // 1-based position in the global log
	Data       []byte
	Metadata   []byte
	RecordedAt time.Time // UTC, set by the store
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// NextExpectedRevision is the revision of the last event of the stream
	// after the append: pass Exact(NextExpectedRevision) to append next.
	NextExpectedRevision uint64
	// Position is the global position of the last appended event.
	Position uint64
}

// Direction of a stream read.
type Direction int

const (
	Forward Direction = iota
	Backward
)

// Handler receives events of a subscription, one at a time, in order.
// Returning an error ends the subscription with that error.
type Handler func(ctx context.Context, e RecordedEvent) error

// Store is the port every event-store adapter implements.
type Store interface {
	// Append writes events to the end of stream atomically if the stream is
	// at the expected revision. events must not be empty.
	Append(ctx context.Context, stream string, expected ExpectedRevision, events []EventData) (AppendResult, error)

	// ReadStream reads up to limit events (limit <= 0 means all) of stream,
	// starting at revision from and going in direction. Reading backward
	// from EndOfStream starts at the last event. A stream without events is
	// ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, from uint64, dir Direction, limit int) ([]RecordedEvent, error)

	// ReadAll reads up to limit events (limit <= 0 means a default page) of
	// the global log with Position strictly greater than after, in order.
	ReadAll(ctx context.Context, after uint64, limit int) ([]RecordedEvent, error)

	// SubscribeAll delivers every event with Position strictly greater than
	// after, in order, without gaps, first catching up and then following
	// new appends. It blocks until ctx is done (returning ctx.Err()) or
	// handle returns an error (returning that error).
	SubscribeAll(ctx context.Context, after uint64, handle Handler) error

	// HeadPosition is the Position of the last event in the global log (0
	// when the log is empty).
	HeadPosition(ctx context.Context) (uint64, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error

	Close() error
}

// EndOfStream as the from of a backward ReadStream starts at the last event.
const EndOfStream = ^uint64(0)

var (
	// ErrWrongExpectedVersion: the stream was not at the expected revision.
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrInvalidAppend: the append itself is malformed (no events, empty
	// stream name, nil or repeated event id...).
	ErrInvalidAppend = errors.New("eventstore: invalid append")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventstore: closed")
	// ErrUnavailable: the store's server does not answer, or an append's
	// outcome could not be learnt (it may have been written: retry it with
	// the same ids and expected revision).
	ErrUnavailable = errors.New("eventstore: unavailable")
	// ErrStreamDeleted: the stream was deleted for good (tombstoned): it
	// can be neither read nor appended to again. Nothing in Prescripto
	// deletes streams; an operator did.
	ErrStreamDeleted = errors.New("eventstore: stream deleted")
	// ErrAppendTooLarge: the append (or one of its events) exceeds the
	// store's size limit (EventStoreDB: MaxAppendSize, 1 MiB by default).
	// Retrying it cannot succeed.
	ErrAppendTooLarge = errors.New("eventstore: append too large")
	// ErrAccessDenied: the store refused the credentials, or the user they
	// name may not do this (EventStoreDB ACLs). Retrying cannot succeed
	// until an operator changes the credentials or the ACLs.
	ErrAccessDenied = errors.New("eventstore: access denied")
)

// WrongExpectedVersionError carries the detail of a version conflict and
// unwraps to ErrWrongExpectedVersion.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedRevision
	// Actual is the revision of the stream's last event, or -1 if the
	// stream has no events.
	Actual int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("eventstore: stream %q expected revision %s, actual %d", e.Stream, e.Expected, e.Actual)
}

func (e *WrongExpectedVersionError) Unwrap() error { return ErrWrongExpectedVersion }
