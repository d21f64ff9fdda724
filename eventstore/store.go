// Package eventstore defines the event-store port that every adapter implements
// (the embedded SQLite store, EventStoreDB) and the types that cross it.
//
// Semantics follow EventStoreDB:
//   - a stream's revisions start at 0 and have no gaps;
//   - the global log ($all) is totally ordered by Position, which starts at 1;
//   - an append is atomic: all of its events are written or none;
//   - an append names the revision it expects the stream to be at (Any,
//     NoStream, StreamExists or an exact revision); a mismatch is
//     ErrWrongExpectedVersion;
//   - appending again the same event ids at the same expected revision
//     succeeds without writing anything (idempotent retry).
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

// EventData is an event to append. ID must be unique in the whole store;
// commands derive it deterministically so a retried command is idempotent.
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
	// stream name, nil event id, an id used elsewhere in the store...).
	ErrInvalidAppend = errors.New("eventstore: invalid append")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventstore: closed")
	// ErrUnavailable: the store's server does not answer.
	ErrUnavailable = errors.New("eventstore: unavailable")
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

// UniqueEventIDs is implemented by a store that refuses an event id already
// stored in any stream (outside an idempotent retry of the same append).
// EventStoreDB does not guarantee it; commands that rely on it for
// idempotency ask.
type UniqueEventIDs interface {
	RefusesReusedEventIDs() bool
}
