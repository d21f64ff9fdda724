package projections

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
)

// Persistent is implemented by an in-memory read model that can write its
// state to a file and read it back, so that a restart replays only the
// log after the saved state instead of all of it. A model that does not
// implement it is rebuilt from the start of the log at every start, as
// before; one that does opts in with these three methods and nothing else
// (StateDir does the files, the checksum and the schedule).
//
// The saved state need not be one instant's: SaveState may run while the
// model applies events, and the state it writes may already hold some of
// the events after the checkpoint the file records. That is safe when the
// model ignores, on each document, an event at or below the position it
// last applied to that document (the projection rule of this package): the
// events after the checkpoint are applied again at the next start and
// change only what they had not changed yet. Everything at or below the
// checkpoint must be in the state.
//
// What a model saves must not hold personal data in the clear: save the
// sealed form the log holds (see domain.Personal) and open it when read,
// so that an erasure (the key shredded) also makes the saved files
// unreadable.
type Persistent interface {
	Projection
	// StateShape names the encoding SaveState writes: change it whenever
	// the encoding, or what the model derives from events, changes. A file
	// of another shape is ignored and the model replays the log instead.
	StateShape() uint32
	// SaveState writes the model's state, holding at least every event at
	// or below its checkpoint as of the call. It runs beside Apply and the
	// reads: it should hold the model's lock only briefly at a time (a
	// few thousand documents), so that the projector is never held up for
	// long.
	SaveState(w io.Writer) error
	// LoadState sets an empty model (fresh from its constructor) to a
	// state SaveState wrote, as of checkpoint pos. The model may keep
	// pieces of state (nobody writes to it afterwards). An error leaves
	// the model unusable: the caller throws it away and replays the log.
	LoadState(state []byte, pos uint64) error
}

// StateDir keeps the saved state of Persistent read models, one file
// each (NAME.state), written whole to a temporary file, synced and renamed
// over the old one, so a crash at any point leaves the previous file or
// the new one. A file that is missing, damaged, truncated or of another
// shape is ignored (logged) and the model replays the log from the start:
// like the doctor snapshots, these files are disposable.
type StateDir struct {
	path string
	log  zerolog.Logger
	mu   sync.Mutex // one save at a time

	pmu sync.Mutex
	pos map[string]uint64 // by model: the checkpoint of its file, as loaded or last saved
}

// OpenStateDir opens (creating it) the directory path.
func OpenStateDir(path string, log zerolog.Logger) (*StateDir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("projections: state dir: %w", err)
	}
	// Temporary files of a save that a crash interrupted.
	if old, err := filepath.Glob(filepath.Join(path, ".tmp-*")); err == nil {
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	return &StateDir{path: path, log: log, pos: map[string]uint64{}}, nil
}

// Saved is the checkpoint of the state on file for the model name, as
// this process loaded or last saved it (false: none).
func (d *StateDir) Saved(name string) (uint64, bool) {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	p, ok := d.pos[name]
	return p, ok
}

func (d *StateDir) setSaved(name string, pos uint64) {
	d.pmu.Lock()
	d.pos[name] = pos
	d.pmu.Unlock()
}

// stateMagic starts every state file; then the model's name, the shape and
// the checkpoint (uvarints), the model's state, and last the CRC-32
// (Castagnoli) of everything before it.
const stateMagic = "PRSTATE1\n"

var stateCRC = crc32.MakeTable(crc32.Castagnoli)

func (d *StateDir) file(name string) string { return filepath.Join(d.path, name+".state") }

// SaveStats describes one save.
type SaveStats struct {
	Position uint64
	Bytes    int64
	Took     time.Duration
}

// Save writes p's state. Saves of one directory run one at a time.
func (d *StateDir) Save(ctx context.Context, p Persistent) (SaveStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	pos, err := p.Checkpoint(ctx)
	if err != nil {
		return SaveStats{}, err
	}
	f, err := os.CreateTemp(d.path, ".tmp-*")
	if err != nil {
		return SaveStats{}, fmt.Errorf("projections: save %s: %w", p.Name(), err)
	}
	tmp := f.Name()
	cw := &countingWriter{w: f, h: crc32.New(stateCRC)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	head := []byte(stateMagic)
	head = binary.AppendUvarint(head, uint64(len(p.Name())))
	head = append(head, p.Name()...)
	head = binary.AppendUvarint(head, uint64(p.StateShape()))
	head = binary.AppendUvarint(head, pos)
	_, werr := bw.Write(head)
	if werr == nil {
		werr = p.SaveState(bw)
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if werr == nil {
		_, werr = f.Write(binary.BigEndian.AppendUint32(nil, cw.h.Sum32()))
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, d.file(p.Name()))
	}
	if werr == nil {
		werr = syncDir(d.path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return SaveStats{}, fmt.Errorf("projections: save %s: %w", p.Name(), werr)
	}
	d.setSaved(p.Name(), pos)
	return SaveStats{Position: pos, Bytes: cw.n + 4, Took: time.Since(start)}, nil
}

type countingWriter struct {
	w io.Writer
	h hash.Hash32
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.h.Write(b)
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// errStateShape: a state file that is not of the model's shape, or is
// damaged.
var errStateShape = errors.New("not a state of this shape (damaged, truncated or older)")

// read returns the state and checkpoint saved for p, ok false when there
// is no usable one.
func (d *StateDir) read(p Persistent) (state []byte, pos uint64, err error) {
	b, err := os.ReadFile(d.file(p.Name()))
	if err != nil {
		return nil, 0, err
	}
	if len(b) < len(stateMagic)+4 || !bytes.HasPrefix(b, []byte(stateMagic)) {
		return nil, 0, errStateShape
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, stateCRC) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, 0, errStateShape
	}
	r := StateReader{b: body[len(stateMagic):]}
	name, shape, pos := r.String(), r.Uvarint(), r.Uvarint()
	if r.Err() != nil || name != p.Name() || shape != uint64(p.StateShape()) {
		return nil, 0, errStateShape
	}
	return r.b, pos, nil
}

// Load returns a new instance from factory holding the state saved for
// it, or an empty one (which replays the log) when there is no usable
// state or the model is not Persistent.
func Load[T Projection](d *StateDir, factory func() T) T {
	m := factory()
	p, ok := any(m).(Persistent)
	if !ok || d == nil {
		return m
	}
	start := time.Now()
	state, pos, err := d.read(p)
	if errors.Is(err, os.ErrNotExist) {
		return m
	}
	if err == nil {
		err = loadState(p, state, pos)
	}
	if err != nil {
		d.log.Warn().Err(err).Str("projection", p.Name()).Msg("saved read-model state not used; replaying the log from the start")
		return factory()
	}
	d.setSaved(p.Name(), pos)
	d.log.Info().Str("projection", p.Name()).Uint64("position", pos).Int("bytes", len(state)).Dur("took", time.Since(start)).Msg("read model loaded from its saved state")
	return m
}

// loadState loads, turning a decoder's panic on bytes it did not expect
// into an error: a state file is only ever a cache.
func loadState(p Persistent, state []byte, pos uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loading the state: %v", r)
		}
	}()
	return p.LoadState(state, pos)
}

// Instance is a live projection's current instance (Live.Instance).
type Instance interface {
	Name() string
	Instance() Projection
}

// StateKeeper saves the state of live projections whose instances are
// Persistent: after Events new events, or Every after the last save when
// anything changed, and once more when Run ends (a clean stop restarts
// with nothing to replay). A rebuild's new instance is saved like the one
// it replaced.
type StateKeeper struct {
	Dir    *StateDir
	Lives  []Instance
	Every  time.Duration // default 1 minute
	Events uint64        // default 50,000
	// Saved, when set, is told of every save (metrics, tests).
	Saved func(name string, s SaveStats)
	Log   zerolog.Logger
}

// Run saves on the schedule until ctx ends, then once more.
func (k *StateKeeper) Run(ctx context.Context) error {
	every, events := k.Every, k.Events
	if every <= 0 {
		every = time.Minute
	}
	if events == 0 {
		events = 50_000
	}
	tick := time.NewTicker(min(every, time.Second))
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			k.SaveAll(sctx, 1)
			return nil
		case <-tick.C:
		}
		ahead := events
		if due := time.Since(last) >= every; due {
			ahead, last = 1, time.Now()
		}
		if k.SaveAll(ctx, ahead) {
			last = time.Now()
		}
	}
}

// SaveAll saves every persistent instance whose checkpoint has moved at
// least ahead positions past the state on file (1: at all), and reports
// whether it saved any.
func (k *StateKeeper) SaveAll(ctx context.Context, ahead uint64) bool {
	saved := false
	for _, l := range k.Lives {
		p, ok := l.Instance().(Persistent)
		if !ok {
			continue
		}
		pos, err := p.Checkpoint(ctx)
		prev, _ := k.Dir.Saved(l.Name())
		if err != nil || pos <= prev || pos-prev < ahead {
			continue
		}
		st, err := k.Dir.Save(ctx, p)
		if err != nil {
			k.Log.Error().Err(err).Str("projection", l.Name()).Msg("saving the read model's state failed (the next start replays more of the log)")
			continue
		}
		saved = true
		k.Log.Debug().Str("projection", l.Name()).Uint64("position", st.Position).Int64("bytes", st.Bytes).Dur("took", st.Took).Msg("read model state saved")
		if k.Saved != nil {
			k.Saved(l.Name(), st)
		}
	}
	return saved
}

// StateWriter encodes a model's state compactly: unsigned and signed
// varints, length-prefixed strings, instants. It buffers; Flush (or the
// last call) returns the first write error.
type StateWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// NewStateWriter writes to w.
func NewStateWriter(w io.Writer) *StateWriter { return NewStateWriterSize(w, 64<<10) }

// NewStateWriterSize writes to w, starting with a buffer of size bytes
// (for small values: a NewStateWriter's buffer is 64 KiB).
func NewStateWriterSize(w io.Writer, size int) *StateWriter {
	return &StateWriter{w: w, buf: make([]byte, 0, size)}
}

func (s *StateWriter) spill() {
	if len(s.buf) >= 60<<10 {
		s.Flush()
	}
}

// Uvarint writes v.
func (s *StateWriter) Uvarint(v uint64) { s.buf = binary.AppendUvarint(s.buf, v); s.spill() }

// Varint writes v.
func (s *StateWriter) Varint(v int64) { s.buf = binary.AppendVarint(s.buf, v); s.spill() }

// String writes v.
func (s *StateWriter) String(v string) {
	s.buf = binary.AppendUvarint(s.buf, uint64(len(v)))
	s.buf = append(s.buf, v...)
	s.spill()
}

// Bytes writes v.
func (s *StateWriter) Bytes(v []byte) {
	s.buf = binary.AppendUvarint(s.buf, uint64(len(v)))
	s.buf = append(s.buf, v...)
	s.spill()
}

// Time writes t (the zero time, or an instant to the nanosecond, read back
// in UTC).
func (s *StateWriter) Time(t time.Time) {
	if t.IsZero() {
		s.Uvarint(0)
		return
	}
	s.Uvarint(1)
	s.Varint(t.UnixNano())
}

// Flush writes what is buffered and returns the first error.
func (s *StateWriter) Flush() error {
	if s.err == nil && len(s.buf) > 0 {
		_, s.err = s.w.Write(s.buf)
	}
	s.buf = s.buf[:0]
	return s.err
}

// StateReader decodes what a StateWriter wrote. Strings are slices of one
// copy of the state (one allocation for all of them). Reading past the end
// or a length beyond it sets Err and returns zero values from then on.
type StateReader struct {
	b   []byte
	all string // the state as one string (strings are cut from it)
	off int    // of b in all
	err error
}

// NewStateReader reads state, which must not change afterwards: the
// strings it returns share its bytes (LoadState's state is never written
// again).
func NewStateReader(state []byte) *StateReader {
	if len(state) == 0 {
		return &StateReader{}
	}
	return &StateReader{b: state, all: unsafe.String(&state[0], len(state))}
}

// Err is the first decoding error.
func (r *StateReader) Err() error { return r.err }

// Done reports an error unless everything was read without one.
func (r *StateReader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("projections: trailing bytes after the state")
	}
	return r.err
}

func (r *StateReader) fail() {
	if r.err == nil {
		r.err = errors.New("projections: state truncated or damaged")
	}
	r.b = nil
}

func (r *StateReader) advance(n int) { r.b = r.b[n:]; r.off += n }

// Uvarint reads an unsigned varint.
func (r *StateReader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.advance(n)
	return v
}

// Varint reads a signed varint.
func (r *StateReader) Varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.advance(n)
	return v
}

// Count reads a length or a number of items, each at least one byte: more
// than what is left is an error (so a damaged count never allocates much).
func (r *StateReader) Count() int {
	n := r.Uvarint()
	if n > uint64(len(r.b)) || n > math.MaxInt32 {
		r.fail()
		return 0
	}
	return int(n)
}

// String reads a string.
func (r *StateReader) String() string {
	n := r.Count()
	if r.all == "" { // a reader made by hand on a part of the state
		s := string(r.b[:n])
		r.advance(n)
		return s
	}
	s := r.all[r.off : r.off+n]
	r.advance(n)
	return s
}

// Bytes reads a byte string (a slice of the state).
func (r *StateReader) Bytes() []byte {
	n := r.Count()
	p := r.b[:n:n]
	r.advance(n)
	return p
}

// Time reads an instant (UTC) or the zero time.
func (r *StateReader) Time() time.Time {
	if r.Uvarint() == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.Varint()).UTC()
}
