// Package sqlite is the embedded, durable event store: a single SQLite file
// (pure Go, modernc.org/sqlite) in WAL mode with synchronous=FULL, so an
// append that returned success survives a crash or a power loss.
//
// # Writes: one writer, group commit
//
// Every Append is queued to one writer goroutine that owns the only write
// connection. The writer takes everything waiting (up to a bounded batch),
// checks each append's expected revision against an in-memory map of stream
// heads (loaded lazily from the file), writes all accepted appends in one
// transaction and commits once, so a batch costs one fsync however many
// appends it holds. Appends of one batch are checked in queue order and see
// each other's effect: a second append to the same stream expecting the
// revision the first one produced succeeds, one expecting the old revision
// fails. A rejected append does not affect the others of its batch. If the
// transaction itself fails, every append of the batch fails with that error
// and the writer reloads its stream heads from the file.
//
// # Reads
//
// Reads use a separate pool of read-only connections; in WAL mode they never
// block the writer nor each other, and every statement sees a committed
// snapshot.
//
// # Idempotency
//
// As in EventStoreDB, appending again events whose ids are already stored,
// exactly at the revisions the append would have produced, succeeds without
// writing anything and returns the original result. See [Store.Append] for
// the corner cases.
//
// The file must be opened by one Store at a time (one process): the writer
// keeps stream heads and the global position in memory.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/filelock"
)

const (
	// schemaVersion is the PRAGMA user_version this package writes and reads.
	schemaVersion = 1
	// defaultMaxBatch bounds how many appends one transaction holds.
	defaultMaxBatch = 512
	// defaultReadPage is the page of ReadAll when limit <= 0, and the page
	// of SubscribeAll.
	defaultReadPage = 512
	// busyTimeoutMillis is how long a connection waits on a locked file.
	busyTimeoutMillis = 5000
)

const schemaSQL = `CREATE TABLE IF NOT EXISTS events (
	position    INTEGER PRIMARY KEY,
	stream      TEXT    NOT NULL,
	revision    INTEGER NOT NULL CHECK (revision >= 0),
	id          BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
	type        TEXT    NOT NULL,
	data        BLOB,
	metadata    BLOB,
	recorded_at INTEGER NOT NULL,
	UNIQUE (stream, revision)
) STRICT`

// eventColumns is the column list every read selects, in scanEvents order.
const eventColumns = `position, stream, revision, id, type, data, metadata, recorded_at`

// Option configures a Store at Open.
type Option func(*config)

type config struct {
	clock     func() time.Time
	maxBatch  int
	readConns int

	beforeBatch func(n int) // test hook, run by the writer before each transaction
}

// WithClock sets the clock that stamps RecordedAt (converted to UTC). The
// default is time.Now. All events of one group commit share one timestamp.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.clock = now
		}
	}
}

// WithMaxBatch bounds how many appends the writer commits in one
// transaction (default 512; values below 1 mean 1, i.e. no group commit).
func WithMaxBatch(n int) Option {
	return func(c *config) {
		if n < 1 {
			n = 1
		}
		c.maxBatch = n
	}
}

// WithReadConns sets the size of the read connection pool (default
// 2×GOMAXPROCS, at least 4).
func WithReadConns(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.readConns = n
		}
	}
}

// Stats are counters of the writer since Open.
type Stats struct {
	// Commits is the number of transactions the writer committed; with
	// group commit it is lower than Appends under concurrent load.
	Commits uint64
	// Appends is the number of appends that wrote events.
	Appends uint64
	// Events is the number of events written.
	Events uint64
	// Idempotent is the number of appends answered as idempotent retries.
	Idempotent uint64
	// Rejected is the number of appends the writer refused (wrong expected
	// version, event id already used elsewhere). Appends rejected by
	// validation before reaching the writer are not counted.
	Rejected uint64
	// Failed is the number of appends failed by a failed transaction.
	Failed uint64
	// LargestBatch is the largest number of appends handled by one
	// transaction.
	LargestBatch uint64
}

// Store is the SQLite event store. It implements eventstore.Store and is
// safe for concurrent use.
type Store struct {
	cfg config

	wdb   *sql.DB        // one connection, owned by the writer goroutine
	wconn *sql.Conn      // the pinned write connection
	rdb   *sql.DB        // read-only pool
	lock  *filelock.Lock // advisory lock held while open

	readStreamFwd *sql.Stmt
	readStreamBwd *sql.Stmt
	streamExists  *sql.Stmt
	readAll       *sql.Stmt
	headPosition  *sql.Stmt

	w writer // writer-goroutine state

	reqs       chan *appendReq
	closing    chan struct{} // closed when Close starts
	writerDone chan struct{} // closed when the writer goroutine exits
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error

	sigMu sync.Mutex
	sig   chan struct{} // closed and replaced after every commit that wrote

	recent tail // the last committed events, for live subscribers

	commits, appends, events, idempotent, rejected, failed, largest atomic.Uint64
}

var _ eventstore.Store = (*Store)(nil)

// Open opens (creating it if needed) the event store in the SQLite file at
// path, sets WAL mode and synchronous=FULL, creates the schema if missing
// and starts the writer. path is a file name (not a URI, no '?', not
// ":memory:"). ctx bounds the opening only.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open: invalid path %q: want a plain file name", path)
	}
	cfg := config{
		clock:     time.Now,
		maxBatch:  defaultMaxBatch,
		readConns: max(4, 2*runtime.GOMAXPROCS(0)),
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}

	s := &Store{
		cfg:        cfg,
		reqs:       make(chan *appendReq, cfg.maxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		sig:        make(chan struct{}),
	}
	// A lock held for a moment is waited for, briefly (see filelock).
	lock, err := filelock.Acquire(path+".lock", lockWait)
	if errors.Is(err, filelock.ErrHeld) {
		err = fmt.Errorf("%w (%s.lock)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.lock = lock
	// The log holds password hashes and personal data: the file is the
	// owner's alone. SQLite gives its -wal and -shm files the database
	// file's mode, so creating it 0600 covers them.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		_ = lock.Release()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	_ = f.Close()
	if err := s.open(ctx, path); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

func (s *Store) open(ctx context.Context, path string) error {
	var err error
	wdsn := fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=FULL", path, busyTimeoutMillis)
	if s.wdb, err = sql.Open("sqlite", wdsn); err != nil {
		return err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		return err
	}
	var mode string
	if err = s.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err = migrate(ctx, s.wconn); err != nil {
		return err
	}
	if err = s.w.init(ctx, s.wconn); err != nil {
		return err
	}

	rdsn := fmt.Sprintf("%s?_busy_timeout=%d&_query_only=1", path, busyTimeoutMillis)
	if s.rdb, err = sql.Open("sqlite", rdsn); err != nil {
		return err
	}
	s.rdb.SetMaxOpenConns(s.cfg.readConns)
	s.rdb.SetMaxIdleConns(s.cfg.readConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if err = s.rdb.PingContext(ctx); err != nil {
		return err
	}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.readStreamFwd, `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND revision >= ? ORDER BY revision ASC LIMIT ?`},
		{&s.readStreamBwd, `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`},
		{&s.streamExists, `SELECT EXISTS (SELECT 1 FROM events WHERE stream = ?)`},
		{&s.readAll, `SELECT ` + eventColumns + ` FROM events WHERE position > ? ORDER BY position ASC LIMIT ?`},
		{&s.headPosition, `SELECT COALESCE(MAX(position), 0) FROM events`},
	} {
		if *p.dst, err = s.rdb.PrepareContext(ctx, p.query); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

// migrate creates the schema if missing; it is idempotent and refuses a file
// written by a newer schema version.
func migrate(ctx context.Context, c *sql.Conn) (err error) {
	if _, err = c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	var v int
	if err = c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: user_version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("migrate: schema version %d is newer than supported %d", v, schemaVersion)
	}
	if _, err = c.ExecContext(ctx, schemaSQL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if v < schemaVersion {
		if _, err = c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return fmt.Errorf("migrate: set user_version: %w", err)
		}
	}
	if _, err = c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:      s.commits.Load(),
		Appends:      s.appends.Load(),
		Events:       s.events.Load(),
		Idempotent:   s.idempotent.Load(),
		Rejected:     s.rejected.Load(),
		Failed:       s.failed.Load(),
		LargestBatch: s.largest.Load(),
	}
}

// clampRev maps a uint64 revision or position to the int64 SQLite stores.
func clampRev(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// ReadStream reads up to limit events (limit <= 0 means all) of stream from
// revision from, forward or backward. Backward from EndOfStream (or any
// revision past the end) starts at the last event. A stream without events
// is eventstore.ErrStreamNotFound; an existing stream read past its end
// gives an empty slice.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("sqlite: read stream: %w", eventstore.ErrClosed)
	}
	lim := int64(limit)
	if limit <= 0 {
		lim = -1 // no limit
	}
	var stmt *sql.Stmt
	switch dir {
	case eventstore.Forward:
		stmt = s.readStreamFwd
	case eventstore.Backward:
		stmt = s.readStreamBwd
	default:
		return nil, fmt.Errorf("sqlite: read stream: invalid direction %d", dir)
	}
	evs, err := s.queryStream(ctx, stmt, stream, from, lim)
	if err != nil || len(evs) > 0 {
		return evs, err
	}
	// Nothing in range: either no stream, or a range past its end. The
	// existence check is a later snapshot; if the stream appeared in
	// between, read again (streams only grow, so that answer is current).
	var exists bool
	if err := s.streamExists.QueryRowContext(ctx, stream).Scan(&exists); err != nil {
		return nil, s.readErr(ctx, "read stream", err)
	}
	if !exists {
		return nil, fmt.Errorf("sqlite: read stream %q: %w", stream, eventstore.ErrStreamNotFound)
	}
	return s.queryStream(ctx, stmt, stream, from, lim)
}

func (s *Store) queryStream(ctx context.Context, stmt *sql.Stmt, stream string, from uint64, lim int64) ([]eventstore.RecordedEvent, error) {
	rows, err := stmt.QueryContext(ctx, stream, clampRev(from), lim)
	if err != nil {
		return nil, s.readErr(ctx, "read stream", err)
	}
	evs, err := scanEvents(rows, 0)
	if err != nil {
		return nil, s.readErr(ctx, "read stream", err)
	}
	if evs == nil {
		evs = []eventstore.RecordedEvent{}
	}
	return evs, nil
}

// ReadAll reads up to limit events (limit <= 0 means 512) of the global log
// with Position strictly greater than after, in Position order.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("sqlite: read all: %w", eventstore.ErrClosed)
	}
	if limit <= 0 {
		limit = defaultReadPage
	}
	rows, err := s.readAll.QueryContext(ctx, clampRev(after), limit)
	if err != nil {
		return nil, s.readErr(ctx, "read all", err)
	}
	evs, err := scanEvents(rows, min(limit, 64))
	if err != nil {
		return nil, s.readErr(ctx, "read all", err)
	}
	return evs, nil
}

// HeadPosition is the Position of the last committed event (0 when empty).
func (s *Store) HeadPosition(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("sqlite: head position: %w", eventstore.ErrClosed)
	}
	var p int64
	if err := s.headPosition.QueryRowContext(ctx).Scan(&p); err != nil {
		return 0, s.readErr(ctx, "head position", err)
	}
	return uint64(p), nil
}

// Ping reports whether the store answers: it is open, its writer runs and a
// read connection answers.

func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: ping: %w", eventstore.ErrClosed)
	}
	select {
	case <-s.writerDone:
		return fmt.Errorf("sqlite: ping: writer stopped: %w", eventstore.ErrUnavailable)
	default:
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return s.readErr(ctx, "ping", err)
	}
	return nil
}

// readErr maps a read failure: ctx's own error if ctx is done, ErrClosed if
// the store was closed meanwhile, else the wrapped driver error.
func (s *Store) readErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if s.closed.Load() {
		return fmt.Errorf("sqlite: %s: %w", op, eventstore.ErrClosed)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// scanEvents reads and closes rows.
func scanEvents(rows *sql.Rows, capHint int) (evs []eventstore.RecordedEvent, err error) {
	defer func() {
		if cerr := rows.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if capHint > 0 {
		evs = make([]eventstore.RecordedEvent, 0, capHint)
	}
	for rows.Next() {
		var (
			e          eventstore.RecordedEvent
			pos, rev   int64
			id         sql.RawBytes
			recordedAt int64
		)
		if err := rows.Scan(&pos, &e.StreamID, &rev, &id, &e.Type, &e.Data, &e.Metadata, &recordedAt); err != nil {
			return nil, err
		}
		if e.ID, err = uuid.FromBytes(id); err != nil {
			return nil, fmt.Errorf("event at position %d: bad id: %w", pos, err)
		}
		e.Position = uint64(pos)
		e.Revision = uint64(rev)
		e.RecordedAt = time.Unix(0, recordedAt).UTC()
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// SubscribeAll delivers every event with Position > after, in order and
// without gaps or repeats: it reads pages of the log, and when caught up
// waits for the writer's commit signal (taken before each read, so no
// commit is missed). It returns ctx.Err() when ctx is done, the handler's
// error if it fails (unwrapped), or an error wrapping ErrClosed when the
// store is closed.
func (s *Store) SubscribeAll(ctx context.Context, after uint64, handle eventstore.Handler) error {
	if handle == nil {
		return errors.New("sqlite: subscribe all: nil handler")
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed.Load() {
			return fmt.Errorf("sqlite: subscribe all: %w", eventstore.ErrClosed)
		}
		wake := s.commitSignal() // before reading: a later commit closes it
		evs, ok := s.recent.after(after, defaultReadPage)
		var err error
		if !ok {
			evs, err = s.ReadAll(ctx, after, defaultReadPage)
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("sqlite: subscribe all: %w", err)
		}
		for _, e := range evs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := handle(ctx, e); err != nil {
				return err
			}
			after = e.Position
		}
		if len(evs) == defaultReadPage {
			continue // probably more to catch up
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return fmt.Errorf("sqlite: subscribe all: %w", eventstore.ErrClosed)
		}
	}
}

func (s *Store) commitSignal() <-chan struct{} {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	return s.sig
}

func (s *Store) broadcast() {
	s.sigMu.Lock()
	close(s.sig)
	s.sig = make(chan struct{})
	s.sigMu.Unlock()
}

// Close stops accepting appends, lets the writer finish the appends already
// queued, stops it and closes the file. Later calls of any method fail with
// ErrClosed; subscriptions end with ErrClosed. Close is idempotent: a second
// call returns the first one's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		<-s.writerDone
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.readStreamFwd, s.readStreamBwd, s.streamExists, s.readAll, s.headPosition} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.w.close())
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	errs = append(errs, s.lock.Release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}
