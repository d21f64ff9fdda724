package projections_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/projections"
)

// counter is a tiny Persistent model: the sum of the positions applied.
type counter struct {
	projections.Progress
	mu    sync.Mutex
	sum   uint64
	shape uint32
	fail  bool // SaveState writes half and fails, as a crash mid-write
}

func (*counter) Name() string                                 { return "counter" }
func (c *counter) Checkpoint(context.Context) (uint64, error) { return c.Position(), nil }
func (c *counter) Apply(_ context.Context, e projections.Event) error {
	if e.Position <= c.Position() {
		return nil
	}
	c.mu.Lock()
	c.sum += e.Position
	c.mu.Unlock()
	c.Advance(e.Position)
	return nil
}
func (c *counter) StateShape() uint32 { return c.shape }
func (c *counter) SaveState(w io.Writer) error {
	sw := projections.NewStateWriter(w)
	c.mu.Lock()
	sum := c.sum
	c.mu.Unlock()
	if c.fail {
		sw.Uvarint(sum)
		_ = sw.Flush()
		return errors.New("disk full")
	}
	sw.Uvarint(sum)
	sw.String("end")
	return sw.Flush()
}
func (c *counter) LoadState(state []byte, pos uint64) error {
	r := projections.NewStateReader(state)
	c.sum = r.Uvarint()
	if r.String() != "end" {
		return errors.New("no end")
	}
	if err := r.Done(); err != nil {
		return err
	}
	c.Advance(pos)
	return nil
}

func applyN(t *testing.T, c *counter, from, to uint64) {
	t.Helper()
	for p := from; p <= to; p++ {
		if err := c.Apply(context.Background(), projections.Event{Position: p}); err != nil {
			t.Fatal(err)
		}
	}
}

// A save that fails half-way leaves the previous state whole; a state of
// another shape, or another model's, is not loaded; the temporary files a
// crash left are removed when the directory is opened again.
func TestStateDir(t *testing.T) {
	t.Parallel()
	path := t.TempDir()
	d, err := projections.OpenStateDir(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{shape: 1}
	applyN(t, c, 1, 10)
	if _, err := d.Save(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	applyN(t, c, 11, 20)
	c.fail = true
	if _, err := d.Save(context.Background(), c); err == nil {
		t.Fatal("a failed save reported no error")
	}
	if left, _ := filepath.Glob(filepath.Join(path, ".tmp-*")); len(left) != 0 {
		t.Errorf("a failed save left %v", left)
	}
	got := projections.Load(d, func() *counter { return &counter{shape: 1} })
	if got.Position() != 10 || got.sum != 55 {
		t.Errorf("loaded position %d, sum %d; want the state saved at 10 (55)", got.Position(), got.sum)
	}
	if p, ok := d.Saved("counter"); !ok || p != 10 {
		t.Errorf("Saved = %d, %v", p, ok)
	}
	if other := projections.Load(d, func() *counter { return &counter{shape: 2} }); other.Position() != 0 || other.sum != 0 {
		t.Errorf("a state of another shape was loaded: position %d", other.Position())
	}
	// A crash in the middle of a save leaves its temporary file.
	if err := os.WriteFile(filepath.Join(path, ".tmp-123"), []byte("PRSTATE1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.OpenStateDir(path, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(path, ".tmp-123")); !os.IsNotExist(err) {
		t.Errorf("the torn temporary file is still there: %v", err)
	}
}

// The keeper saves while the model applies (under -race), skips a model
// that has not moved far enough, and saves once more when it stops.
func TestStateKeeper(t *testing.T) {
	t.Parallel()
	path := t.TempDir()
	d, err := projections.OpenStateDir(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{shape: 1}
	l := projections.NewLiveFrom(c, func() *counter { return &counter{shape: 1} })
	var mu sync.Mutex
	var saves []uint64
	k := &projections.StateKeeper{Dir: d, Lives: []projections.Instance{l}, Events: 100, Log: zerolog.Nop(),
		Saved: func(_ string, s projections.SaveStats) { mu.Lock(); saves = append(saves, s.Position); mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- k.Run(ctx) }()
	for p := uint64(1); p <= 3000; p++ {
		if err := l.Apply(context.Background(), projections.Event{Position: p}); err != nil {
			t.Fatal(err)
		}
		if p%500 == 0 {
			k.SaveAll(context.Background(), 100)
		}
	}
	if k.SaveAll(context.Background(), 100) {
		t.Error("saved again with nothing new")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(saves) < 6 || saves[len(saves)-1] != 3000 {
		t.Errorf("saves at %v; want one per 500 events, the last at 3000", saves)
	}
	got := projections.Load(d, func() *counter { return &counter{shape: 1} })
	if got.Position() != 3000 || got.sum != 3000*3001/2 {
		t.Errorf("loaded %d (sum %d)", got.Position(), got.sum)
	}
}
