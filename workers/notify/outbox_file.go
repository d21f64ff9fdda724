package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/filelock"
)

// FileOutbox is the embedded default's Outbox: a journal of JSON lines
// (mail added, attempt marked) in a directory of the data dir, read back
// into memory when opened and compacted then, and the checkpoint in a file
// beside it, replaced atomically. Marks are fsynced before Mark returns
// (concurrent marks share one fsync); adds are fsynced by SaveCheckpoint,
// before the checkpoint that covers them. One process at a time holds the
// directory (an exclusive flock).
type FileOutbox struct {
	dir       string
	retention time.Duration
	lock      *filelock.Lock

	mu      sync.Mutex
	f       *os.File
	mails   map[string]*Mail
	leases  map[string]time.Time
	sent    map[string][]time.Time // recipient -> sent or leased at
	written uint64                 // journal writes so far

	syncMu sync.Mutex
	synced uint64

	// memory: no directory, nothing kept on disk (NewMemoryOutbox).
	memory   bool
	memPos   uint64
	memState []byte
}

// NewMemoryOutbox is an outbox that keeps nothing on disk: for a process
// without a data dir (tests, and a deployment that accepts to lose its
// queue and its sent markers with the process).
func NewMemoryOutbox() *FileOutbox {
	return &FileOutbox{memory: true, mails: map[string]*Mail{}, leases: map[string]time.Time{}, sent: map[string][]time.Time{}}
}

// journal lines: one of the fields is set.
type journalLine struct {
	Add  *Mail      `json:"add,omitempty"`
	Mark *markEntry `json:"mark,omitempty"`
}

type markEntry struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"nextAt"`
	LastError string    `json:"lastError,omitempty"`
	DoneAt    time.Time `json:"doneAt,omitzero"`
}

type checkpointFile struct {
	Position uint64 `json:"position"`
	State    []byte `json:"state,omitempty"`
}

// ErrOutboxLocked: another process holds the outbox.
var ErrOutboxLocked = errors.New("notify: the outbox is in use by another process")

// lockWait bounds the wait for a lock another holder is letting go of.
const lockWait = time.Second

// DefaultRetention is how long a sent, parked or dropped mail is kept in
// the outbox (its id guards against sending it again for as long).
const DefaultRetention = 8 * 24 * time.Hour

// OpenFileOutbox opens (creating it) the outbox in dir. Mails done more
// than retention (default DefaultRetention) before now are left out of the
// compacted journal.
func OpenFileOutbox(dir string, retention time.Duration, now time.Time) (*FileOutbox, error) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// A lock held for a moment is waited for, briefly (see filelock).
	lock, err := filelock.Acquire(filepath.Join(dir, "lock"), lockWait)
	if errors.Is(err, filelock.ErrHeld) {
		return nil, fmt.Errorf("%w: %s", ErrOutboxLocked, dir)
	}
	if err != nil {
		return nil, err
	}
	o := &FileOutbox{dir: dir, retention: retention, mails: map[string]*Mail{}, leases: map[string]time.Time{}, sent: map[string][]time.Time{}}
	if err := o.load(filepath.Join(dir, "journal.jsonl")); err != nil {
		_ = lock.Release()
		return nil, err
	}
	if err := o.compact(now); err != nil {
		_ = lock.Release()
		return nil, err
	}
	// The lock is held with the journal: closing the journal releases it.
	o.lock = lock
	return o, nil
}

func (o *FileOutbox) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			// A torn last line (a crash in the middle of a write): what it
			// said was not acknowledged, so it is as if never written.
			continue
		}
		switch {
		case l.Add != nil:
			if _, ok := o.mails[l.Add.ID]; !ok {
				m := *l.Add
				o.mails[m.ID] = &m
			}
		case l.Mark != nil:
			if m, ok := o.mails[l.Mark.ID]; ok {
				m.applyMark(*l.Mark)
			}
		}
	}
	return sc.Err()
}

func (m *Mail) applyMark(e markEntry) {
	m.Status, m.Attempts, m.NextAt, m.LastError, m.DoneAt = e.Status, e.Attempts, e.NextAt, e.LastError, e.DoneAt
}

// compact rewrites the journal with one line per mail kept, atomically,
// leaving out mails done longer than the retention ago.
func (o *FileOutbox) compact(now time.Time) error {
	for id, m := range o.mails {
		if m.Status != StatusPending && !m.DoneAt.IsZero() && now.Sub(m.DoneAt) > o.retention {
			delete(o.mails, id)
			continue
		}
		if m.Status == StatusSent {
			o.sent[m.To] = append(o.sent[m.To], m.DoneAt)
		}
	}
	return o.rewrite()
}

// rewrite replaces the journal with one line per mail, atomically (a new
// file, synced, renamed over the old: what the old held goes with it), and
// appends to the new one from then on (its lock held).
func (o *FileOutbox) rewrite() error {
	path := filepath.Join(o.dir, "journal.jsonl")
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, m := range o.mails {
		line, err := json.Marshal(journalLine{Add: m})
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			return err
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(o.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if o.f != nil {
		_ = o.f.Close()
	}
	o.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// write appends a journal line (its lock held) and returns its sequence.
func (o *FileOutbox) write(l journalLine) (uint64, error) {
	if o.memory {
		return 0, nil
	}
	if o.f == nil {
		return 0, os.ErrClosed
	}
	line, err := json.Marshal(l)
	if err != nil {
		return 0, err
	}
	if _, err := o.f.Write(append(line, '\n')); err != nil {
		return 0, err
	}
	o.written++
	return o.written, nil
}

// syncTo makes the journal durable up to write seq; concurrent callers
// share an fsync.
func (o *FileOutbox) syncTo(seq uint64) error {
	if o.memory {
		return nil
	}
	o.syncMu.Lock()
	defer o.syncMu.Unlock()
	if o.synced >= seq {
		return nil
	}
	o.mu.Lock()
	f, upto := o.f, o.written
	o.mu.Unlock()
	if f == nil {
		return os.ErrClosed
	}
	if err := f.Sync(); err != nil {
		return err
	}
	o.synced = upto
	return nil
}

// Add implements Outbox.
func (o *FileOutbox) Add(_ context.Context, mails ...Mail) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range mails {
		if _, ok := o.mails[m.ID]; ok {
			continue
		}
		if m.Status == "" {
			m.Status = StatusPending
		}
		if _, err := o.write(journalLine{Add: &m}); err != nil {
			return err
		}
		o.mails[m.ID] = &m
	}
	return nil
}

// Due implements Outbox.
func (o *FileOutbox) Due(_ context.Context, now time.Time, limit int, lease time.Duration) ([]Mail, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var due []*Mail
	for id, m := range o.mails {
		if m.Status != StatusPending || m.NextAt.After(now) {
			continue
		}
		if until, ok := o.leases[id]; ok && until.After(now) {
			continue
		}
		due = append(due, m)
	}
	slices.SortFunc(due, func(a, b *Mail) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]Mail, len(due))
	for i, m := range due {
		o.leases[m.ID] = now.Add(lease)
		out[i] = *m
	}
	return out, nil
}

// Mark implements Outbox.
func (o *FileOutbox) Mark(_ context.Context, m Mail) error {
	o.mu.Lock()
	cur, ok := o.mails[m.ID]
	if !ok {
		o.mu.Unlock()
		return ErrMailNotFound
	}
	e := markEntry{ID: m.ID, Status: m.Status, Attempts: m.Attempts, NextAt: m.NextAt, LastError: m.LastError, DoneAt: m.DoneAt}
	seq, err := o.write(journalLine{Mark: &e})
	if err != nil {
		o.mu.Unlock()
		return err
	}
	cur.applyMark(e)
	delete(o.leases, m.ID)
	if m.Status == StatusSent {
		o.sent[cur.To] = append(o.sent[cur.To], m.DoneAt)
	}
	o.mu.Unlock()
	return o.syncTo(seq)
}

// Erase implements Outbox: the mails to the address are scrubbed in memory
// and the journal is rewritten without what they held (a new file renamed
// over the old, which goes with its contents).
func (o *FileOutbox) Erase(_ context.Context, to, about string) error {
	o.syncMu.Lock() // no fsync of the old journal while it is replaced
	defer o.syncMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	changed := false
	for _, m := range o.mails {
		if (to == "" || m.To != to) && (about == "" || m.About != about) {
			continue
		}
		changed = true
		if m.Status == StatusPending {
			m.Status, m.LastError, m.DoneAt = StatusDropped, "the recipient's personal data was erased", m.NextAt
		}
		m.Message = Message{ID: m.ID, To: domain.Erased, ToName: domain.Erased, Subject: domain.Erased, Body: domain.Erased, Date: m.Date}
	}
	if to != "" {
		delete(o.sent, to)
	}
	if !changed || o.memory {
		return nil
	}
	if o.f == nil {
		return os.ErrClosed
	}
	if err := o.rewrite(); err != nil {
		return err
	}
	o.synced = o.written // all of it is in the synced new file
	return nil
}

// SentSince implements Outbox.
func (o *FileOutbox) SentSince(_ context.Context, to string, t time.Time) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	times := o.sent[to]
	keep := times[:0]
	for _, at := range times {
		if !at.Before(t) {
			keep = append(keep, at)
		}
	}
	if len(keep) == 0 {
		delete(o.sent, to)
	} else {
		o.sent[to] = keep
	}
	return len(keep), nil
}

// List implements Outbox: the newest first.
func (o *FileOutbox) List(_ context.Context, status Status, limit int) ([]Mail, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Mail
	for _, m := range o.mails {
		if status == "" || m.Status == status {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b Mail) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Get implements Outbox.
func (o *FileOutbox) Get(_ context.Context, id string) (Mail, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.mails[id]
	if !ok {
		return Mail{}, ErrMailNotFound
	}
	return *m, nil
}

// Retry implements Outbox.
func (o *FileOutbox) Retry(ctx context.Context, id string, now time.Time) (Mail, error) {
	o.mu.Lock()
	m, ok := o.mails[id]
	if !ok {
		o.mu.Unlock()
		return Mail{}, ErrMailNotFound
	}
	if m.Status != StatusFailed {
		o.mu.Unlock()
		return Mail{}, ErrNotFailed
	}
	next := *m
	o.mu.Unlock()
	next.Status, next.Attempts, next.NextAt, next.DoneAt = StatusPending, 0, now, time.Time{}
	if err := o.Mark(ctx, next); err != nil {
		return Mail{}, err
	}
	return o.Get(ctx, id)
}

// Pending implements Outbox.
func (o *FileOutbox) Pending(context.Context) (int, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, oldest := 0, time.Time{}
	for _, m := range o.mails {
		if m.Status == StatusPending {
			n++
			if oldest.IsZero() || m.CreatedAt.Before(oldest) {
				oldest = m.CreatedAt
			}
		}
	}
	return n, oldest, nil
}

// Checkpoint implements Outbox.
func (o *FileOutbox) Checkpoint(context.Context) (uint64, []byte, error) {
	if o.memory {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.memPos, o.memState, nil
	}
	raw, err := os.ReadFile(filepath.Join(o.dir, "checkpoint.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	var c checkpointFile
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, nil, fmt.Errorf("notify: checkpoint: %w", err)
	}
	return c.Position, c.State, nil
}

// SaveCheckpoint implements Outbox.
func (o *FileOutbox) SaveCheckpoint(_ context.Context, pos uint64, state []byte) error {
	if o.memory {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.memPos, o.memState = pos, state
		return nil
	}
	o.mu.Lock()
	seq := o.written
	o.mu.Unlock()
	if err := o.syncTo(seq); err != nil {
		return err
	}
	raw, err := json.Marshal(checkpointFile{Position: pos, State: state})
	if err != nil {
		return err
	}
	path := filepath.Join(o.dir, "checkpoint.json")
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(raw); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(o.dir)
}

// Close implements Outbox.
func (o *FileOutbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.memory || o.f == nil {
		return nil
	}
	err := errors.Join(o.f.Sync(), o.f.Close())
	o.f = nil
	err = errors.Join(err, o.lock.Release())
	o.lock = nil
	return err
}
