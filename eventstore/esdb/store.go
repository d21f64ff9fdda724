// Package esdb is the eventstore.Store adapter over EventStoreDB / KurrentDB,
// through github.com/EventStore/EventStore-Client-Go/v4/esdb.
//
// # Positions
//
// The port's global Position is the event's PREPARE position. In
// EventStoreDB every event's prepare record lives at its own log offset, so
// for non-transactional appends (the only kind this adapter makes; the gRPC
// API has no multi-stream transactions) prepare positions are unique and
// strictly increasing in $all order. Commit positions are not a safe key:
// an append's answer carries one commit position for its whole batch, and
// explicit transactions (TCP API only) give many events one commit.
//
// To resume $all strictly after port position p, the adapter reads or
// subscribes from esdb.Position{Commit: p, Prepare: p}: EventStoreDB starts
// reading at the physical log record at p, which is the event's own prepare
// record, and may or may not deliver that event again depending on whether
// the operation is inclusive (reads) or exclusive (subscriptions). The
// adapter therefore drops every event whose prepare position is <= p (and,
// within a subscription, <= the last delivered position), so nothing is ever
// delivered twice or out of order. Position 0 means "from the start" (no
// user event is ever at prepare position 0: a log starts with system
// records).
//
// # Idempotency and lost answers
//
// The adapter gives exactly the port's idempotency (see package
// eventstore), which is EventStoreDB's: a retry at the same exact or
// no-stream expectation is recognised from the stream itself, a retry with
// Any only while the server's cache of recently committed ids holds it;
// ids are not unique across the store. Ids inside one append are checked
// for duplicates here, before sending.
//
// An append whose answer is lost (the server answers Aborted "Operation
// timed out" when a commit outlives its write timeout, or the connection
// breaks under the call) may have been written. The adapter reads the
// stream back, for up to WithOutcomeTimeout, and answers the real outcome:
// the append's ids right after the expected revision (for Any and
// StreamExists, in order near the end of the stream) are a success with
// the result the append would have had; other events after an exact or
// no-stream expectation are a wrong expected version; otherwise the
// answer stays ErrUnavailable.
//
// # Errors
//
// PermissionDenied (the ACLs, or anonymous access to a secure server) and
// Unauthenticated (refused credentials) are ErrAccessDenied; Open says
// "access denied" then, not that the server does not answer. A tombstoned
// stream is ErrStreamDeleted. An append the server refuses as an invalid
// argument, which after the adapter's own validation can only be its size
// (MaxAppendSize, MaxAppendEventSize), is ErrAppendTooLarge.
//
// # Client workarounds
//
// The v4 client closes itself for good when a (re)discovery fails, and a
// call that was waiting for that discovery then never returns; closing the
// client under a running call panics. The store therefore runs each call in
// a goroutine it can walk away from (on ctx, Close, or the client's death),
// replaces a client that closed itself, and closes a client only once no
// call uses it. A call stuck in a dead client is leaked, not closed.
package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/prescripto/prescripto/eventstore"
)

// DefaultReadAllPage is the page ReadAll returns when limit <= 0.
const DefaultReadAllPage = 1000

// Option configures Open.
type Option func(*options)

type options struct {
	prefix         string
	outcomeTimeout time.Duration
}

// DefaultOutcomeTimeout bounds how long an append whose answer was lost
// reads its stream back to learn the outcome.
const DefaultOutcomeTimeout = 2 * time.Second

// WithOutcomeTimeout sets how long an append whose answer was lost (the
// server timed out, the connection broke) reads its stream back to learn
// whether it was written (default DefaultOutcomeTimeout).
func WithOutcomeTimeout(d time.Duration) Option { return func(o *options) { o.outcomeTimeout = d } }

// WithStreamPrefix confines the store to the streams whose names start with
// prefix: stream names are prefixed on the way in and stripped on the way
// out, and ReadAll, SubscribeAll and HeadPosition only see those streams.
// Tests use it to share one real server between isolated stores.
// ReadAll and HeadPosition still scan $all (filtering on the client), so on
// a large shared log they cost a scan of the other namespaces' events.
func WithStreamPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// Store is the EventStoreDB adapter. It is safe for concurrent use.
type Store struct {
	cfg            *esdb.Configuration
	addr           string // the server, for error messages (never the credentials)
	prefix         string
	outcomeTimeout time.Duration

	mu   sync.Mutex
	conn *conn

	closed    atomic.Bool
	closing   chan struct{}
	life      context.Context // cancelled by Close: ends in-flight calls
	kill      context.CancelFunc
	closeOnce sync.Once
}

// conn is one v4 client and the calls in flight on it. The v4 client's
// Close closes a channel that every call sends on (to get the connection,
// and to ask for a reconnect after an error), so closing it under a running
// call panics ("send on closed channel"): a conn is closed only once no call
// uses it.
type conn struct {
	c       *esdb.Client
	dead    chan struct{} // closed when the conn is replaced
	mu      sync.Mutex
	users   int
	closing bool
	closed  bool
}

func newConn(c *esdb.Client) *conn { return &conn{c: c, dead: make(chan struct{})} }

func (k *conn) acquire() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return false
	}
	k.users++
	return true
}

func (k *conn) release() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.users--
	k.closeIfIdle()
}

// shutdown closes the client as soon as no call uses it.
func (k *conn) shutdown() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closing = true
	k.closeIfIdle()
}

func (k *conn) closeIfIdle() {
	if k.closing && k.users == 0 && !k.closed {
		k.closed = true
		_ = k.c.Close()
	}
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the EventStoreDB server of connectionString (an esdb://
// or esdb+discover:// URL) and checks that it answers: a server that does
// not answer before ctx is done is an error that names it.
func Open(ctx context.Context, connectionString string, opts ...Option) (*Store, error) {
	o := options{outcomeTimeout: DefaultOutcomeTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := esdb.ParseConnectionString(connectionString)
	if err != nil {
		return nil, fmt.Errorf("esdb: parse ESDB connection string: %w", err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: EventStoreDB client: %w", err)
	}
	s := &Store{
		cfg:            cfg,
		addr:           serverName(cfg),
		prefix:         o.prefix,
		conn:           newConn(client),
		outcomeTimeout: o.outcomeTimeout,
		closing:        make(chan struct{}),
	}
	s.life, s.kill = context.WithCancel(context.Background())
	if err := s.Ping(ctx); err != nil {
		s.Close()
		if errors.Is(err, eventstore.ErrAccessDenied) {
			return nil, fmt.Errorf("esdb: EventStoreDB at %s (ESDB_URL): access denied (every role reads $all: the ESDB_URL user must be in $admins or be granted read on $all): %w", s.addr, err)
		}
		if !errors.Is(err, eventstore.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("esdb: EventStoreDB at %s (ESDB_URL) does not answer: %w", s.addr, err)
	}
	return s, nil
}

func serverName(cfg *esdb.Configuration) string {
	if len(cfg.GossipSeeds) > 0 {
		names := make([]string, len(cfg.GossipSeeds))
		for i, seed := range cfg.GossipSeeds {
			names[i] = seed.String()
		}
		return strings.Join(names, ",")
	}
	return cfg.Address
}

// Close closes the client and ends the running calls and subscriptions. It
// may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		s.kill()
		s.mu.Lock()
		k := s.conn
		s.mu.Unlock()
		k.shutdown()
	})
	return nil
}

// do runs f, a call on the current client, in its own goroutine, and
// returns its error; or returns early when ctx is done, the store is closed,
// or the client died under the call. The v4 client never answers calls
// that were waiting for a connection when its discovery failed (its
// connection goroutine is gone): such a call stays blocked, holding its
// conn, which is then never closed (closing it would make it panic).
func (s *Store) do(ctx context.Context, op string, f func(k *conn, ctx context.Context) error) error {
	k, err := s.acquire()
	if err != nil {
		return err
	}
	bctx, cancel := s.bind(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		defer k.release()
		errc <- f(k, bctx)
	}()
	select {
	case err := <-errc:
		return err
	case <-bctx.Done():
	case <-k.dead:
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	switch {
	case s.closed.Load():
		return eventstore.ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("esdb: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("esdb: %s: %w: %s: the client gave up connecting", op, eventstore.ErrUnavailable, s.addr)
}

// acquire returns the current conn, acquired: release it.
func (s *Store) acquire() (*conn, error) {
	for {
		if s.closed.Load() {
			return nil, eventstore.ErrClosed
		}
		s.mu.Lock()
		k := s.conn
		s.mu.Unlock()
		if k.acquire() {
			return k, nil
		}
		// being replaced, or the store is closing: look again
	}
}

// bind returns a context that also ends when the store is closed.
func (s *Store) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// renew replaces a client that closed itself. The v4 client closes itself
// for good when a discovery fails (the server was down when it needed to
// (re)connect); a new client rediscovers on its next call.
func (s *Store) renew(old *conn) {
	s.mu.Lock()
	if s.conn != old || s.closed.Load() {
		s.mu.Unlock()
		return
	}
	c, err := esdb.NewClient(s.cfg)
	if err != nil {
		s.mu.Unlock()
		return
	}
	s.conn = newConn(c)
	s.mu.Unlock()
	close(old.dead)
	old.shutdown()
}

// check is the common precondition of every operation.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return ctx.Err()
}

// mapErr maps a client error to the port's errors.
func (s *Store) mapErr(ctx context.Context, k *conn, op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if ctx.Err() != nil {
		return fmt.Errorf("esdb: %s: %w", op, ctx.Err())
	}
	esErr := asESDB(err)
	if strings.Contains(err.Error(), "maximum discovery attempt count reached") {
		// The client closed itself for good.
		s.renew(k)
		return fmt.Errorf("esdb: %s: %w: %s: %v", op, eventstore.ErrUnavailable, s.addr, err)
	}
	code := esdb.ErrorCodeUnknown
	if esErr != nil {
		code = esErr.Code()
	}
	switch code {
	case esdb.ErrorCodeResourceNotFound:
		return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrStreamNotFound)
	case esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("esdb: %s: %w", op, eventstore.ErrStreamDeleted)
	case esdb.ErrorCodeAccessDenied:
		// PermissionDenied: the user (or the anonymous user, when the URL
		// has no credentials) may not do this.
		return fmt.Errorf("esdb: %s: %w: %s", op, eventstore.ErrAccessDenied, s.who())
	case esdb.ErrorCodeUnauthenticated:
		// Unauthenticated: the server refused the credentials.
		return fmt.Errorf("esdb: %s: %w: %s refused by the server", op, eventstore.ErrAccessDenied, s.who())
	case esdb.ErrorCodeConnectionClosed:
		s.renew(k)
		return fmt.Errorf("esdb: %s: %w: %s: %v", op, eventstore.ErrUnavailable, s.addr, err)
	case esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded, esdb.ErrorCodeNotLeader, esdb.ErrorAborted:
		return fmt.Errorf("esdb: %s: %w: %s: %v", op, eventstore.ErrUnavailable, s.addr, err)
	}
	// A broken transport shows as io.EOF (a Send on a closed stream) or as
	// gRPC's Unavailable inside an "unknown" client error.
	if errors.Is(err, io.EOF) || grpcCode(err) == codes.Unavailable {
		return fmt.Errorf("esdb: %s: %w: %s: %v", op, eventstore.ErrUnavailable, s.addr, err)
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}

// who names the user of the connection string (never its password).
func (s *Store) who() string {
	if s.cfg.Username == "" {
		return "anonymous (ESDB_URL has no user)"
	}
	return "user " + strconv.Quote(s.cfg.Username)
}

// asESDB finds the client's *esdb.Error in err's chain (the client wraps
// some of them with fmt.Errorf, which esdb.FromError does not look through;
// and esdb.FromError(nil) answers ok=true). Nil if there is none.
func asESDB(err error) *esdb.Error {
	if err == nil {
		return nil
	}
	var esErr *esdb.Error
	if errors.As(err, &esErr) {
		return esErr
	}
	return nil
}

// grpcCode is the gRPC status code of the first error in err's chain that
// carries one (codes.Unknown if none does).
func grpcCode(err error) codes.Code {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, ok := status.FromError(e); ok && st.Code() != codes.Unknown {
			return st.Code()
		}
	}
	return codes.Unknown
}

// ---- Append ----

func toExpected(e eventstore.ExpectedRevision) (esdb.ExpectedRevision, bool) {
	switch {
	case e == eventstore.Any:
		return esdb.Any{}, true
	case e == eventstore.NoStream:
		return esdb.NoStream{}, true
	case e == eventstore.StreamExists:
		return esdb.StreamExists{}, true
	case e.IsExact():
		return esdb.Revision(uint64(e)), true
	}
	return nil, false
}

func validate(stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("esdb: append to %q: %w: %s", stream, eventstore.ErrInvalidAppend, fmt.Sprintf(format, args...))
	}
	if stream == "" {
		return invalid("empty stream name")
	}
	if len(events) == 0 {
		return invalid("no events")
	}
	if _, ok := toExpected(expected); !ok {
		return invalid("expected revision %d", int64(expected))
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		switch {
		case e.ID == uuid.Nil:
			return invalid("event %d has no id", i)
		case e.Type == "":
			return invalid("event %d has no type", i)
		case seen[e.ID]:
			return invalid("event id %s twice", e.ID)
		}
		seen[e.ID] = true
	}
	return nil
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	exp, _ := toExpected(expected)
	evs := make([]esdb.EventData, len(events))
	for i, e := range events {
		evs[i] = esdb.EventData{
			EventID:     e.ID,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        e.Data,
			Metadata:    e.Metadata,
		}
	}
	name := s.prefix + stream
	var out eventstore.AppendResult
	err := s.do(ctx, "append to "+strconv.Quote(stream), func(k *conn, ctx context.Context) error {
		res, err := k.c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
		if err != nil {
			if esErr := asESDB(err); esErr != nil && esErr.Code() == esdb.ErrorCodeWrongExpectedVersion {
				actual, perr := s.actualRevision(ctx, k, name, esErr)
				if perr != nil {
					return perr
				}
				return &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
			}
			err = s.mapErr(ctx, k, "append to "+strconv.Quote(stream), err)
			if errors.Is(err, eventstore.ErrUnavailable) && ctx.Err() == nil {
				// The append may have been written: learn its outcome.
				res, known, rerr := s.resolve(ctx, k, name, stream, expected, events)
				if !known {
					return err
				}
				out = res
				return rerr
			}
			if grpcCode(err) == codes.InvalidArgument {
				// Validated here, the append can only be refused for its
				// size (MaxAppendSize, or MaxAppendEventSize on KurrentDB
				// 25).
				return fmt.Errorf("esdb: append to %q: %w: %v", stream, eventstore.ErrAppendTooLarge, err)
			}
			return err
		}
		// A fresh single-event append answers with the event's own
		// position. A multi-event append shares one commit position and
		// the answer's prepare position is not documented to be the last
		// event's, nor is the position of an idempotent answer: read the
		// last event back.
		if len(events) == 1 && res.PreparePosition > 0 && res.CommitPosition == res.PreparePosition {
			out = eventstore.AppendResult{NextExpectedRevision: res.NextExpectedVersion, Position: res.PreparePosition}
			return nil
		}
		last, err := s.readStream(ctx, k, name, esdb.Revision(res.NextExpectedVersion), esdb.Backwards, 1)
		if err != nil {
			return fmt.Errorf("esdb: append to %q: reading the appended event back: %w", stream, err)
		}
		if len(last) != 1 || last[0].Revision != res.NextExpectedVersion {
			return fmt.Errorf("esdb: append to %q: appended event at revision %d not found", stream, res.NextExpectedVersion)
		}
		out = eventstore.AppendResult{NextExpectedRevision: res.NextExpectedVersion, Position: last[0].Position}
		return nil
	})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return out, nil
}

// resolve learns the outcome of an append whose answer was lost: the server
// timed out after the commit may have been made (it answers Aborted,
// "Operation timed out", when a commit outlives its write timeout), or the
// connection broke under the call. It reads the stream back, for up to
// outcomeTimeout, until it can tell: the append's events right after the
// expected revision (anywhere near the end of the stream for Any and
// StreamExists) mean it was written, and the answer is the result the
// append would have had; other events after an exact or no-stream
// expectation mean it can no longer be written, a wrong expected version.
// known is false when it still cannot tell (nothing after the expected
// revision, or the server does not answer): the caller then answers the
// original error.
func (s *Store) resolve(ctx context.Context, k *conn, name, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (res eventstore.AppendResult, known bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.outcomeTimeout)
	defer cancel()
	const poll = 100 * time.Millisecond
	for {
		res, known, retry, err := s.readBack(ctx, k, name, stream, expected, events)
		if known || !retry {
			return res, known, err
		}
		select {
		case <-ctx.Done():
			return eventstore.AppendResult{}, false, nil
		case <-time.After(poll):
		}
	}
}

// readBackWindow is how many of the last events of a stream resolve looks
// through for an append with Any or StreamExists.
const readBackWindow = 256

// readBack makes one attempt of resolve; retry reports that reading again
// may tell (the events were not found, and the read itself worked).
func (s *Store) readBack(ctx context.Context, k *conn, name, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (res eventstore.AppendResult, known, retry bool, err error) {
	n := len(events)
	if !expected.IsExact() && expected != eventstore.NoStream {
		// Any, StreamExists: look for the events, in order, in the tail.
		tail, rerr := s.readStream(ctx, k, name, esdb.End{}, esdb.Backwards, uint64(n+readBackWindow))
		if rerr != nil {
			return res, false, errors.Is(rerr, eventstore.ErrStreamNotFound), nil
		}
		slices.Reverse(tail)
		for i := range tail {
			if i+n > len(tail) {
				break
			}
			if sameIDs(tail[i:i+n], events) {
				last := tail[i+n-1]
				return eventstore.AppendResult{NextExpectedRevision: last.Revision, Position: last.Position}, true, false, nil
			}
		}
		return res, false, true, nil
	}
	after := int64(expected) // -1 for NoStream
	got, rerr := s.readStream(ctx, k, name, esdb.Revision(uint64(after+1)), esdb.Forwards, uint64(n))
	switch {
	case errors.Is(rerr, eventstore.ErrStreamNotFound), rerr == nil && len(got) == 0:
		return res, false, true, nil // nothing after the expected revision yet
	case rerr != nil:
		return res, false, false, nil
	case len(got) == n && sameIDs(got, events):
		return eventstore.AppendResult{NextExpectedRevision: got[n-1].Revision, Position: got[n-1].Position}, true, false, nil
	}
	// Other events follow the expected revision: the append cannot be
	// written any more.
	actual, aerr := s.headRevision(ctx, k, name)
	if aerr != nil {
		return res, false, false, nil
	}
	return res, true, false, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
}

func sameIDs(got []eventstore.RecordedEvent, events []eventstore.EventData) bool {
	if len(got) != len(events) {
		return false
	}
	for i := range got {
		if got[i].ID != events[i].ID {
			return false
		}
	}
	return true
}

// headRevision is the revision of the stream's last event, -1 if it has
// none.
func (s *Store) headRevision(ctx context.Context, k *conn, name string) (int64, error) {
	last, err := s.readStream(ctx, k, name, esdb.End{}, esdb.Backwards, 1)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return -1, nil
	case err != nil:
		return 0, err
	case len(last) == 0:
		return -1, nil
	}
	return int64(last[0].Revision), nil
}

var gotRevision = regexp.MustCompile(`but got '([^']*)'`)

// actualRevision extracts the stream's current revision from a
// wrong-expected-version error; the v4 client only gives it as text
// ("expecting 'x' but got 'y'"), so the stream head is read if the text
// cannot be parsed.
func (s *Store) actualRevision(ctx context.Context, k *conn, name string, esErr *esdb.Error) (int64, error) {
	if m := gotRevision.FindStringSubmatch(esErr.Error()); m != nil {
		if m[1] == "no_stream" {
			return -1, nil
		}
		if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			return n, nil
		}
	}
	return s.headRevision(ctx, k, name)
}

// ---- reads ----

func (s *Store) convert(e *esdb.RecordedEvent) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		ID:         e.EventID,
		StreamID:   strings.TrimPrefix(e.StreamID, s.prefix),
		Type:       e.EventType,
		Revision:   e.EventNumber,
		Position:   e.Position.Prepare,
		Data:       e.Data,
		Metadata:   e.UserMetadata,
		RecordedAt: e.CreatedDate.UTC(),
	}
}

// visible reports whether an event of $all belongs to this store's view:
// no system event ($ type or $ stream), and inside the prefix if any.
func (s *Store) visible(e *esdb.RecordedEvent) bool {
	if e == nil || strings.HasPrefix(e.EventType, "$") || strings.HasPrefix(e.StreamID, "$") {
		return false
	}
	return strings.HasPrefix(e.StreamID, s.prefix)
}

// drain reads a whole read stream.
func drain(rs *esdb.ReadStream, fn func(*esdb.RecordedEvent)) error {
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		fn(ev.OriginalEvent())
	}
}

func (s *Store) readStream(ctx context.Context, k *conn, name string, from esdb.StreamPosition, dir esdb.Direction, count uint64) ([]eventstore.RecordedEvent, error) {
	rs, err := k.c.ReadStream(ctx, name, esdb.ReadStreamOptions{Direction: dir, From: from}, count)
	if err != nil {
		return nil, s.mapErr(ctx, k, "read stream", err)
	}
	var out []eventstore.RecordedEvent
	// "stream not found" arrives on the first Recv.
	err = drain(rs, func(e *esdb.RecordedEvent) {
		if e != nil {
			out = append(out, s.convert(e))
		}
	})
	if err != nil {
		return nil, s.mapErr(ctx, k, "read stream", err)
	}
	return out, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if stream == "" {
		return nil, fmt.Errorf("esdb: read stream %q: %w", stream, eventstore.ErrStreamNotFound)
	}
	count := uint64(math.MaxInt64)
	if limit > 0 {
		count = uint64(limit)
	}
	name := s.prefix + stream
	var out []eventstore.RecordedEvent
	err := s.do(ctx, "read stream "+strconv.Quote(stream), func(k *conn, ctx context.Context) error {
		var evs []eventstore.RecordedEvent
		var err error
		switch {
		case dir == eventstore.Forward:
			evs, err = s.readStream(ctx, k, name, esdb.Revision(from), esdb.Forwards, count)
		case from == eventstore.EndOfStream:
			evs, err = s.readStream(ctx, k, name, esdb.End{}, esdb.Backwards, count)
		default:
			// From past the end, the server starts at the last event
			// (its backward reader pages on from the stream's last
			// event number), as the port does.
			evs, err = s.readStream(ctx, k, name, esdb.Revision(from), esdb.Backwards, count)
		}
		if err != nil {
			return wrapStream(err, stream)
		}
		out = evs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func wrapStream(err error, stream string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (stream %q)", err, stream)
}

func allFrom(after uint64) esdb.AllPosition {
	if after == 0 {
		return esdb.Start{}
	}
	return esdb.Position{Commit: after, Prepare: after}
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultReadAllPage
	}
	var res []eventstore.RecordedEvent
	err := s.do(ctx, "read $all", func(k *conn, ctx context.Context) error {
		out, err := s.readAll(ctx, k, after, limit)
		res = out
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Store) readAll(ctx context.Context, k *conn, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	from := allFrom(after)
	cursor := after // prepare position of the last raw event seen
	for len(out) < limit {
		page := uint64(limit-len(out)) + 1 // +1: the start may be delivered again
		if page < 32 {
			page = 32
		}
		rs, err := k.c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, page)
		if err != nil {
			return nil, s.mapErr(ctx, k, "read $all", err)
		}
		var raw uint64
		progressed := false
		var last *esdb.RecordedEvent
		err = drain(rs, func(e *esdb.RecordedEvent) {
			raw++
			if e == nil || e.Position.Prepare <= cursor {
				return
			}
			progressed = true
			cursor = e.Position.Prepare
			last = e
			if len(out) < limit && s.visible(e) {
				out = append(out, s.convert(e))
			}
		})
		if err != nil {
			return nil, s.mapErr(ctx, k, "read $all", err)
		}
		if raw < page || !progressed {
			break // the end of the log
		}
		from = esdb.Position{Commit: last.Position.Commit, Prepare: last.Position.Prepare}
	}
	return out, nil
}

// HeadPosition implements eventstore.Store: the prepare position of the
// last event of $all that is not a system event.
func (s *Store) HeadPosition(ctx context.Context) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var head uint64
	err := s.do(ctx, "read $all backwards", func(k *conn, ctx context.Context) error {
		h, err := s.headPosition(ctx, k)
		head = h
		return err
	})
	if err != nil {
		return 0, err
	}
	return head, nil
}

func (s *Store) headPosition(ctx context.Context, k *conn) (uint64, error) {
	var from esdb.AllPosition = esdb.End{}
	cursor := uint64(math.MaxUint64)
	const page = 64
	for {
		rs, err := k.c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, page)
		if err != nil {
			return 0, s.mapErr(ctx, k, "read $all backwards", err)
		}
		var raw int
		var head uint64
		var last *esdb.RecordedEvent
		err = drain(rs, func(e *esdb.RecordedEvent) {
			raw++
			if e == nil || e.Position.Prepare >= cursor || head != 0 {
				return
			}
			cursor, last = e.Position.Prepare, e
			if s.visible(e) {
				head = e.Position.Prepare
			}
		})
		if err != nil {
			return 0, s.mapErr(ctx, k, "read $all backwards", err)
		}
		if head != 0 || raw < page || last == nil {
			return head, nil
		}
		from = esdb.Position{Commit: last.Position.Commit, Prepare: last.Position.Prepare}
	}
}

// Ping implements eventstore.Store: it reads the last event of $all.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.do(ctx, "ping "+s.addr, func(k *conn, ctx context.Context) error {
		rs, err := k.c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
		if err == nil {
			err = drain(rs, func(*esdb.RecordedEvent) {})
		}
		return s.mapErr(ctx, k, "ping "+s.addr, err)
	})
}

// ---- SubscribeAll ----

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// SubscribeAll implements eventstore.Store with a catch-up subscription to
// $all filtered on the server (no system events; the prefix if any). When
// the subscription drops, it subscribes again with backoff from the last
// delivered position; events at or before that position are dropped, so
// none is delivered twice or out of order.
func (s *Store) SubscribeAll(ctx context.Context, after uint64, handle eventstore.Handler) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	filter := esdb.ExcludeSystemEventsFilter()
	if s.prefix != "" {
		filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.prefix}}
	}
	last := after
	backoff := minBackoff
	for {
		delivered, err := s.subscribeOnce(ctx, &last, filter, handle)
		if err != nil {
			return err
		}
		if delivered {
			backoff = minBackoff
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return eventstore.ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// handlerError marks the handler's error so it is returned as is.
type handlerError struct{ err error }

// subscribeOnce runs one subscription until it drops. It returns a non-nil
// error when SubscribeAll must end, and nil when it should resubscribe.
func (s *Store) subscribeOnce(ctx context.Context, last *uint64, filter *esdb.SubscriptionFilter, handle eventstore.Handler) (delivered bool, err error) {
	end := func(err error) error {
		var he handlerError
		switch {
		case errors.As(err, &he):
			return he.err
		case s.closed.Load():
			return eventstore.ErrClosed
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return nil
	}
	ctx, cancel := s.bind(ctx)
	defer cancel()
	var sub *esdb.Subscription
	err = s.do(ctx, "subscribe to $all", func(k *conn, _ context.Context) error {
		sb, err := k.c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: allFrom(*last), Filter: filter})
		if err != nil {
			return s.mapErr(ctx, k, "subscribe to $all", err)
		}
		sub = sb
		return nil
	})
	if err != nil {
		if e := end(nil); e != nil {
			return false, e
		}
		if errors.Is(err, eventstore.ErrAccessDenied) {
			return false, err // an operator must change the credentials or the ACLs
		}
		if esErr := asESDB(err); esErr != nil && esErr.Code() == esdb.ErrorCodeUnsupportedFeature {
			return false, err
		}
		return false, nil // resubscribe
	}
	// A subscription's Recv does not use the client's channel: the conn
	// may be closed under it (Recv then fails).
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-s.closing:
			sub.Close()
		case <-done:
		}
	}()
	defer sub.Close()
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return delivered, end(nil)
		case ev.EventAppeared != nil:
			e := ev.EventAppeared.OriginalEvent()
			if e == nil || e.Position.Prepare <= *last || !s.visible(e) {
				continue
			}
			if err := handle(ctx, s.convert(e)); err != nil {
				return delivered, end(handlerError{err})
			}
			*last = e.Position.Prepare
			delivered = true
			if err := end(nil); err != nil {
				return delivered, err
			}
		}
	}
}

func (h handlerError) Error() string { return h.err.Error() }
