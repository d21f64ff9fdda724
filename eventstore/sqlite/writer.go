package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/prescripto/prescripto/eventstore"
)

const (
	// maxRowsPerInsert bounds the rows of one INSERT statement (8 bound
	// parameters per row). An append of up to that many events is one
	// statement, atomic by itself; a larger one runs in a savepoint.
	maxRowsPerInsert = 256
	// maxCachedHeads bounds the writer's map of stream heads; past it the
	// map is dropped and reloaded lazily.
	maxCachedHeads = 1 << 17
	// columnsPerRow is the number of bound parameters of one inserted row.
	columnsPerRow = 8
)

// Request states: a queued request is taken by the writer or abandoned by
// its caller, whichever comes first.
const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedRevision
	events   []eventstore.EventData
	state    atomic.Int32
	done     chan appendResp // buffered (1): the writer never blocks
}

type appendResp struct {
	res eventstore.AppendResult
	err error
}

func (r *appendReq) reply(res eventstore.AppendResult, err error) {
	r.done <- appendResp{res: res, err: err}
}

// Append appends events to stream if it is at the expected revision.
//
// Validation (before queueing): an empty stream name, no events, a nil event
// id, an empty event type, the same id twice in the append or an expected
// revision that is none of Any, NoStream, StreamExists or Exact(n) is an
// error wrapping eventstore.ErrInvalidAppend.
//
// Expected revision mismatch: a *eventstore.WrongExpectedVersionError
// (Actual = -1 when the stream has no events), unless the append is an
// idempotent retry.
//
// Idempotent retry: if the append's ids are all stored, in order, in the
// same stream at consecutive revisions starting where the append would have
// started (right after the expected revision for Exact(n), at 0 for
// NoStream, anywhere in the stream for Any and StreamExists), Append writes
// nothing and returns the result of the original write: the revision and
// position of the stored event matching the append's last one. A retry of a
// prefix of an original append is therefore idempotent too.
//
// An id already stored elsewhere (another stream, another place, or only
// some of the append's ids stored): if the expected revision matches the
// stream, an error wrapping ErrInvalidAppend; if it does not, the
// WrongExpectedVersionError (the revision check comes first, as in
// EventStoreDB; re-reading and retrying then yields ErrInvalidAppend).
//
// Cancellation: if ctx is done before the writer takes the append, Append
// returns ctx.Err() and the append is never written. Once the writer has
// taken it (it is in the transaction being built or committed), Append
// waits for and reports the real outcome, success included, even if ctx is
// done meanwhile; that wait is bounded by one batch. After Close, Append
// returns an error wrapping ErrClosed; appends queued before Close are
// still processed.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.closed.Load() {
		return eventstore.AppendResult{}, fmt.Errorf("sqlite: append: %w", eventstore.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	r := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan appendResp, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.closing:
		return eventstore.AppendResult{}, fmt.Errorf("sqlite: append: %w", eventstore.ErrClosed)
	}
	var resp appendResp
	select {
	case resp = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(stateQueued, stateAbandoned) {
			return eventstore.AppendResult{}, ctx.Err()
		}
		resp = <-r.done // taken: report the real outcome
	case <-s.writerDone:
		// Queued after the writer's last drain: it will never be taken.
		if r.state.CompareAndSwap(stateQueued, stateAbandoned) {
			return eventstore.AppendResult{}, fmt.Errorf("sqlite: append: %w", eventstore.ErrClosed)
		}
		resp = <-r.done
	}
	return resp.res, resp.err
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("sqlite: append: %w: %s", eventstore.ErrInvalidAppend, fmt.Sprintf(format, args...))
}

func validate(stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) error {
	if stream == "" {
		return invalid("empty stream name")
	}
	switch {
	case expected.IsExact(), expected == eventstore.Any, expected == eventstore.NoStream, expected == eventstore.StreamExists:
	default:
		return invalid("stream %q: invalid expected revision %d", stream, int64(expected))
	}
	if len(events) == 0 {
		return invalid("stream %q: no events", stream)
	}
	var seen map[uuid.UUID]struct{}
	if len(events) > 1 {
		seen = make(map[uuid.UUID]struct{}, len(events))
	}
	for i, e := range events {
		if e.ID == uuid.Nil {
			return invalid("stream %q: event %d has a nil id", stream, i)
		}
		if e.Type == "" {
			return invalid("stream %q: event %d (%s) has an empty type", stream, i, e.ID)
		}
		if seen != nil {
			if _, dup := seen[e.ID]; dup {
				return invalid("stream %q: event id %s appears twice", stream, e.ID)
			}
			seen[e.ID] = struct{}{}
		}
	}
	return nil
}

// writer is the state owned by the writer goroutine (and by Open/Close
// before it starts and after it stops).
type writer struct {
	conn *sql.Conn

	written []eventstore.RecordedEvent // this batch's events, for the tail

	begin, commit, rollback         *sql.Stmt
	headOf, eventByID, lastPosition *sql.Stmt
	inserts                         map[int]*sql.Stmt // by row count

	heads    map[string]int64 // committed head revision by stream, -1: none
	lastPos  int64            // committed last position
	posKnown bool

	// per-batch scratch
	overlay map[string]int64
	outs    []appendResp
	args    []any
}

func (w *writer) init(ctx context.Context, c *sql.Conn) error {
	w.conn = c
	w.inserts = make(map[int]*sql.Stmt)
	w.heads = make(map[string]int64)
	w.overlay = make(map[string]int64)
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.headOf, "SELECT MAX(revision) FROM events WHERE stream = ?"},
		{&w.eventByID, "SELECT stream, revision, position FROM events WHERE id = ?"},
		{&w.lastPosition, "SELECT COALESCE(MAX(position), 0) FROM events"},
	} {
		var err error
		if *p.dst, err = c.PrepareContext(ctx, p.query); err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
	}
	return w.loadPos(ctx)
}

func (w *writer) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.headOf, w.eventByID, w.lastPosition} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range w.inserts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

func (w *writer) loadPos(ctx context.Context) error {
	if err := w.lastPosition.QueryRowContext(ctx).Scan(&w.lastPos); err != nil {
		return fmt.Errorf("load head position: %w", err)
	}
	w.posKnown = true
	return nil
}

// reset forgets everything cached; it is reloaded from the file lazily.
func (w *writer) reset() {
	clear(w.heads)
	w.posKnown = false
}

// head is the revision of stream's last event as seen inside the current
// transaction: this batch's writes first, then the cache, then the file.
func (w *writer) head(ctx context.Context, stream string) (int64, error) {
	if h, ok := w.overlay[stream]; ok {
		return h, nil
	}
	if h, ok := w.heads[stream]; ok {
		return h, nil
	}
	var h sql.NullInt64
	if err := w.headOf.QueryRowContext(ctx, stream).Scan(&h); err != nil {
		return 0, fmt.Errorf("load head of %q: %w", stream, err)
	}
	rev := int64(-1)
	if h.Valid {
		rev = h.Int64
	}
	w.heads[stream] = rev // no write to stream in this batch yet: committed state
	return rev, nil
}

// insertStmt returns the cached INSERT of n rows.
func (w *writer) insertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st, ok := w.inserts[n]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO events (" + eventColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	st, err := w.conn.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("prepare insert of %d rows: %w", n, err)
	}
	w.inserts[n] = st
	return st, nil
}

// insert writes events at revisions head+1... and positions pos+1...
// atomically: one statement, or a savepoint when they need several. A
// constraint violation leaves nothing written and the transaction usable.
func (w *writer) insert(ctx context.Context, stream string, events []eventstore.EventData, head, pos, now int64) error {
	if len(events) <= maxRowsPerInsert {
		return w.insertRows(ctx, stream, events, head, pos, now)
	}
	if _, err := w.conn.ExecContext(ctx, "SAVEPOINT big_append"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	var err error
	for off := 0; off < len(events) && err == nil; off += maxRowsPerInsert {
		chunk := events[off:min(off+maxRowsPerInsert, len(events))]
		err = w.insertRows(ctx, stream, chunk, head+int64(off), pos+int64(off), now)
	}
	if err != nil {
		if _, rbErr := w.conn.ExecContext(ctx, "ROLLBACK TO big_append"); rbErr != nil {
			return fmt.Errorf("rollback to savepoint after %v: %w", err, rbErr) // not a constraint error: fatal
		}
	}
	if _, relErr := w.conn.ExecContext(ctx, "RELEASE big_append"); relErr != nil {
		return fmt.Errorf("release savepoint: %w", relErr)
	}
	return err
}

func (w *writer) insertRows(ctx context.Context, stream string, events []eventstore.EventData, head, pos, now int64) error {
	st, err := w.insertStmt(ctx, len(events))
	if err != nil {
		return err
	}
	args := w.args[:0]
	for i, e := range events {
		id := e.ID // copy: the slice below must not alias the caller's array
		args = append(args, pos+int64(i)+1, stream, head+int64(i)+1, id[:], e.Type, e.Data, e.Metadata, now)
	}
	w.args = args[:0]
	_, err = st.ExecContext(ctx, args...)
	clear(args) // do not retain the caller's data
	return err
}

type idemStatus int

const (
	idemNone     idemStatus = iota // none of the ids is stored
	idemMatch                      // an idempotent retry
	idemConflict                   // some ids stored, but not as this append would have
)

// idempotency tells whether r's ids are stored exactly where r would have
// written them (see Append), and if so the original result. When the first
// id is not stored, the answer is idemNone unless full is set, in which case
// the other ids are looked up too (idemConflict if one of them is stored).
func (w *writer) idempotency(ctx context.Context, r *appendReq, full bool) (idemStatus, eventstore.AppendResult, string, error) {
	var first, last struct {
		stream        string
		revision, pos int64
	}
	for i, e := range r.events {
		var cur = &last
		if i == 0 {
			cur = &first
		}
		err := w.eventByID.QueryRowContext(ctx, e.ID[:]).Scan(&cur.stream, &cur.revision, &cur.pos)
		if errors.Is(err, sql.ErrNoRows) {
			if i == 0 {
				return w.anyStored(ctx, r, full)
			}
			return idemConflict, eventstore.AppendResult{}, fmt.Sprintf("event %s is new but event %s is already stored", e.ID, r.events[0].ID), nil
		}
		if err != nil {
			return 0, eventstore.AppendResult{}, "", fmt.Errorf("look up event %s: %w", e.ID, err)
		}
		if i == 0 {
			last = first
		}
		if cur.stream != r.stream || cur.revision != first.revision+int64(i) {
			return idemConflict, eventstore.AppendResult{}, fmt.Sprintf("event id %s is already stored in stream %q at revision %d", e.ID, cur.stream, cur.revision), nil
		}
	}
	switch {
	case r.expected.IsExact() && first.revision != int64(r.expected)+1,
		r.expected == eventstore.NoStream && first.revision != 0:
		return idemConflict, eventstore.AppendResult{}, fmt.Sprintf("event id %s is already stored in stream %q at revision %d, not right after expected revision %s", r.events[0].ID, first.stream, first.revision, r.expected), nil
	}
	return idemMatch, eventstore.AppendResult{NextExpectedRevision: uint64(last.revision), Position: uint64(last.pos)}, "", nil
}

// anyStored reports idemConflict if one of r's ids but the first is stored
// (looked up only if full), else idemNone.
func (w *writer) anyStored(ctx context.Context, r *appendReq, full bool) (idemStatus, eventstore.AppendResult, string, error) {
	if !full {
		return idemNone, eventstore.AppendResult{}, "", nil
	}
	for _, e := range r.events[1:] {
		var stream string
		var rev, pos int64
		err := w.eventByID.QueryRowContext(ctx, e.ID[:]).Scan(&stream, &rev, &pos)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, eventstore.AppendResult{}, "", fmt.Errorf("look up event %s: %w", e.ID, err)
		}
		return idemConflict, eventstore.AppendResult{}, fmt.Sprintf("event id %s is already stored in stream %q at revision %d", e.ID, stream, rev), nil
	}
	return idemNone, eventstore.AppendResult{}, "", nil
}

func matches(expected eventstore.ExpectedRevision, head int64) bool {
	switch expected {
	case eventstore.Any:
		return true
	case eventstore.NoStream:
		return head < 0
	case eventstore.StreamExists:
		return head >= 0
	}
	return int64(expected) == head
}

func isConstraint(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// run is the writer goroutine.
func (s *Store) run() {
	defer close(s.writerDone)
	batch := make([]*appendReq, 0, s.cfg.maxBatch)
	for {
		select {
		case r := <-s.reqs:
			// Let appenders that are ready to run queue their appends
			// before draining: without it, with few Ps and a fast fsync,
			// the writer and one appender can hand the processor back and
			// forth and every batch holds one append.
			runtime.Gosched()
			s.process(s.drain(append(batch[:0], r)))
		case <-s.closing:
			// Finish what was queued before Close, then stop. An append
			// queued after the last drain sees writerDone and gives up.
			for {
				b := s.drain(batch[:0])
				if len(b) == 0 {
					return
				}
				s.process(b)
			}
		}
	}
}

// drain adds to batch whatever is waiting, up to the batch bound.
func (s *Store) drain(batch []*appendReq) []*appendReq {
	for len(batch) < s.cfg.maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// process handles one batch in one transaction.
func (s *Store) process(batch []*appendReq) {
	ctx := context.Background() // the writer's work is never cancelled halfway
	live := batch[:0]
	for _, r := range batch {
		if !r.state.CompareAndSwap(stateQueued, stateTaken) {
			continue // its caller gave up before we took it
		}
		if err := r.ctx.Err(); err != nil {
			r.reply(eventstore.AppendResult{}, err) // never written
			continue
		}
		live = append(live, r)
	}
	clear(batch[len(live):]) // drop references to requests already answered
	if len(live) == 0 {
		return
	}
	if s.cfg.beforeBatch != nil {
		s.cfg.beforeBatch(len(live)) // test hook: the batch's appends are taken
	}
	w := &s.w
	if len(w.heads) > maxCachedHeads {
		clear(w.heads)
	}
	if !w.posKnown {
		if err := w.loadPos(ctx); err != nil {
			s.fail(live, err)
			return
		}
	}
	if _, err := w.begin.ExecContext(ctx); err != nil {
		s.fail(live, fmt.Errorf("begin: %w", err))
		return
	}
	now := s.cfg.clock().UTC().UnixNano()
	clear(w.overlay)
	w.written = w.written[:0]
	pos := w.lastPos
	outs := w.outs[:0]
	var appends, events, idem, rejected uint64
	for _, r := range live {
		res, kind, err, fatal := s.appendOne(ctx, r, &pos, now)
		if fatal != nil {
			s.abort(live, fatal)
			return
		}
		switch kind {
		case outcomeWritten:
			appends++
			events += uint64(len(r.events))
		case outcomeIdempotent:
			idem++
		case outcomeRejected:
			rejected++
		}
		outs = append(outs, appendResp{res: res, err: err})
	}
	w.outs = outs
	if _, err := w.commit.ExecContext(ctx); err != nil {
		s.abort(live, fmt.Errorf("commit: %w", err))
		return
	}
	for stream, h := range w.overlay {
		w.heads[stream] = h
	}
	wrote := pos > w.lastPos
	w.lastPos = pos
	s.commits.Add(1)
	s.appends.Add(appends)
	s.events.Add(events)
	s.idempotent.Add(idem)
	s.rejected.Add(rejected)
	for n := uint64(len(live)); ; {
		cur := s.largest.Load()
		if n <= cur || s.largest.CompareAndSwap(cur, n) {
			break
		}
	}
	if wrote {
		s.recent.add(w.written)
		w.written = nil // the tail owns them now
		s.broadcast()
	}
	for i, r := range live {
		r.reply(outs[i].res, outs[i].err)
		outs[i] = appendResp{}
	}
	clear(live)
}

type outcome int

const (
	outcomeWritten outcome = iota
	outcomeIdempotent
	outcomeRejected
)

// appendOne checks and writes one append inside the batch's transaction.
// err is the append's own outcome; fatal fails the whole batch.
func (s *Store) appendOne(ctx context.Context, r *appendReq, pos *int64, now int64) (res eventstore.AppendResult, kind outcome, err, fatal error) {
	w := &s.w
	head, fatal := w.head(ctx, r.stream)
	if fatal != nil {
		return res, 0, nil, fatal
	}
	if !matches(r.expected, head) {
		st, orig, _, fatal := w.idempotency(ctx, r, false)
		if fatal != nil {
			return res, 0, nil, fatal
		}
		if st == idemMatch {
			return orig, outcomeIdempotent, nil, nil
		}
		return res, outcomeRejected, &eventstore.WrongExpectedVersionError{Stream: r.stream, Expected: r.expected, Actual: head}, nil
	}
	ierr := w.insert(ctx, r.stream, r.events, head, *pos, now)
	if ierr == nil {
		at := time.Unix(0, now).UTC()
		for i, e := range r.events {
			w.written = append(w.written, eventstore.RecordedEvent{
				ID: e.ID, StreamID: r.stream, Type: e.Type, Revision: uint64(head + 1 + int64(i)), Position: uint64(*pos + 1 + int64(i)),
				Data: slices.Clone(e.Data), Metadata: slices.Clone(e.Metadata), RecordedAt: at,
			})
		}
		n := int64(len(r.events))
		w.overlay[r.stream] = head + n
		*pos += n
		return eventstore.AppendResult{NextExpectedRevision: uint64(head + n), Position: uint64(*pos)}, outcomeWritten, nil, nil
	}
	if !isConstraint(ierr) {
		return res, 0, nil, fmt.Errorf("insert into %q: %w", r.stream, ierr)
	}
	st, orig, why, fatal := w.idempotency(ctx, r, true)
	switch {
	case fatal != nil:
		return res, 0, nil, fatal
	case st == idemMatch:
		return orig, outcomeIdempotent, nil, nil
	case st == idemConflict:
		return res, outcomeRejected, invalid("stream %q: %s", r.stream, why), nil
	}
	// No id is stored, yet a constraint failed: the cached state is wrong.
	return res, 0, nil, fmt.Errorf("insert into %q: unexpected constraint failure: %w", r.stream, ierr)
}

// abort rolls the batch back, fails all its appends and forgets the cache.
func (s *Store) abort(live []*appendReq, cause error) {
	_, _ = s.w.rollback.ExecContext(context.Background()) // may fail if SQLite already rolled back
	s.fail(live, cause)
}

func (s *Store) fail(live []*appendReq, cause error) {
	s.w.reset()
	s.failed.Add(uint64(len(live)))
	for _, r := range live {
		r.reply(eventstore.AppendResult{}, fmt.Errorf("sqlite: append to %q: transaction failed: %w", r.stream, cause))
	}
	clear(live)
}
