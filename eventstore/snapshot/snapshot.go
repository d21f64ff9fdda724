// Package snapshot keeps snapshots of streams' folded state outside the
// event log: a state and the revision, position and recording time of the
// last event folded into it. Snapshots are disposable: the log stays the
// only source of truth, a snapshot that is missing, damaged or of an older
// shape is read as missing and its reader folds the stream instead (and
// may save a new one). Deleting every snapshot is always safe.
package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Snapshot is one stream's folded state after the event at Revision.
type Snapshot struct {
	Stream string
	// Revision, Position and RecordedAt are those of the last event folded.
	Revision   uint64
	Position   uint64
	RecordedAt time.Time
	// Shape is the version of Data's encoding (the aggregate's snapshot
	// version): a reader asks for the shape it can read.
	Shape int
	Data  []byte
}

// Store keeps snapshots. Implementations are safe for concurrent use.
type Store interface {
	// Save stores s (replacing one of the same stream and revision).
	Save(ctx context.Context, s Snapshot) error
	// Latest returns the snapshot of stream with the highest revision that
	// is of shape, at most maxRev, and recorded at or before until (zero:
	// any time); false when there is none.
	Latest(ctx context.Context, stream string, shape int, maxRev uint64, until time.Time) (Snapshot, bool, error)
}

// Memory is a Store in process memory.
type Memory struct {
	mu sync.Mutex
	m  map[string][]Snapshot // by stream, by revision
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{m: map[string][]Snapshot{}} }

// Save implements Store.
func (m *Memory) Save(_ context.Context, s Snapshot) error {
	s.Data = bytes.Clone(s.Data)
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.m[s.Stream]
	i, found := slices.BinarySearchFunc(l, s.Revision, func(x Snapshot, r uint64) int { return cmpU(x.Revision, r) })
	if found {
		l[i] = s
	} else {
		l = slices.Insert(l, i, s)
	}
	m.m[s.Stream] = l
	return nil
}

// Latest implements Store.
func (m *Memory) Latest(_ context.Context, stream string, shape int, maxRev uint64, until time.Time) (Snapshot, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.m[stream]
	for i := len(l) - 1; i >= 0; i-- {
		if s := l[i]; s.Revision <= maxRev && s.Shape == shape && (until.IsZero() || !s.RecordedAt.After(until)) {
			return s, true, nil
		}
	}
	return Snapshot{}, false, nil
}

// Len is how many snapshots the store holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, l := range m.m {
		n += len(l)
	}
	return n
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Dir is a Store of files in a directory (0700; files 0600, as the log:
// a state holds what the events hold): one directory per stream, named by
// the stream's hex and one below it per shape, one file per revision
// (named by its revision and recording time), written to a temporary file and
// renamed, so a reader never sees half a snapshot.
type Dir struct {
	path string
}

// OpenDir opens (creating it) the snapshot directory path.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &Dir{path: path}, nil
}

// fileMagic starts every snapshot file; its header follows, then Data,
// then the CRC-32 (Castagnoli) of everything before it.
const fileMagic = "PSNAP1\n"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// streamDir holds stream's snapshots of one shape.
func (d *Dir) streamDir(stream string, shape int) string {
	return filepath.Join(d.path, hex.EncodeToString([]byte(stream)), strconv.Itoa(shape))
}

// Save implements Store.
func (d *Dir) Save(_ context.Context, s Snapshot) error {
	dir := d.streamDir(s.Stream, s.Shape)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	b := make([]byte, 0, len(fileMagic)+48+len(s.Data))
	b = append(b, fileMagic...)
	b = binary.AppendUvarint(b, s.Revision)
	b = binary.AppendUvarint(b, s.Position)
	b = binary.AppendVarint(b, s.RecordedAt.UnixNano())
	b = binary.AppendVarint(b, int64(s.Shape))
	b = append(b, s.Data...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("snapshot: %w", err)
	}
	// A snapshot of the same revision saved before is replaced (its
	// recording time may be another).
	old, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%020d-*.snap", s.Revision)))
	if err := os.Rename(tmp, filepath.Join(dir, fileName(s.Revision, s.RecordedAt))); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("snapshot: %w", err)
	}
	for _, o := range old {
		if filepath.Base(o) != fileName(s.Revision, s.RecordedAt) {
			_ = os.Remove(o)
		}
	}
	return nil
}

// fileName names a snapshot file by its revision and recording time, so
// that Latest picks one without reading the others.
func fileName(rev uint64, recordedAt time.Time) string {
	return fmt.Sprintf("%020d-%020d.snap", rev, recordedAt.UnixNano())
}

// parseName reads a file name of fileName.
func parseName(name string) (rev uint64, recordedAt int64, ok bool) {
	base, ok := strings.CutSuffix(name, ".snap")
	if !ok {
		return 0, 0, false
	}
	r, t, ok := strings.Cut(base, "-")
	if !ok {
		return 0, 0, false
	}
	rev, err1 := strconv.ParseUint(r, 10, 64)
	recordedAt, err2 := strconv.ParseInt(t, 10, 64)
	return rev, recordedAt, err1 == nil && err2 == nil
}

// Latest implements Store. A damaged file or one of another shape is
// skipped (it is replaced when a snapshot of its revision is saved again).
func (d *Dir) Latest(_ context.Context, stream string, shape int, maxRev uint64, until time.Time) (Snapshot, bool, error) {
	dir := d.streamDir(stream, shape)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("snapshot: %w", err)
	}
	type candidate struct {
		rev  uint64
		name string
	}
	var cands []candidate
	for _, e := range ents {
		rev, at, ok := parseName(e.Name())
		if ok && rev <= maxRev && (until.IsZero() || at <= until.UnixNano()) {
			cands = append(cands, candidate{rev, e.Name()})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int { return cmpU(a.rev, b.rev) })
	for i := len(cands) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(dir, cands[i].name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Snapshot{}, false, fmt.Errorf("snapshot: %w", err)
		}
		s, ok := decodeFile(stream, b)
		if !ok || s.Revision != cands[i].rev || s.Shape != shape || (!until.IsZero() && s.RecordedAt.After(until)) {
			continue
		}
		return s, true, nil
	}
	return Snapshot{}, false, nil
}

func decodeFile(stream string, b []byte) (Snapshot, bool) {
	if len(b) < len(fileMagic)+4 || !bytes.HasPrefix(b, []byte(fileMagic)) {
		return Snapshot{}, false
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return Snapshot{}, false
	}
	p := body[len(fileMagic):]
	s := Snapshot{Stream: stream}
	var n int
	if s.Revision, n = binary.Uvarint(p); n <= 0 {
		return s, false
	}
	p = p[n:]
	if s.Position, n = binary.Uvarint(p); n <= 0 {
		return s, false
	}
	p = p[n:]
	ns, n := binary.Varint(p)
	if n <= 0 {
		return s, false
	}
	p = p[n:]
	s.RecordedAt = time.Unix(0, ns).UTC()
	shape, n := binary.Varint(p)
	if n <= 0 || shape < math.MinInt32 || shape > math.MaxInt32 {
		return s, false
	}
	s.Shape, s.Data = int(shape), p[n:]
	return s, true
}
