package snapshot_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prescripto/prescripto/eventstore/snapshot"
)

var t0 = time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC)

// suite is what every Store promises.
func suite(t *testing.T, st snapshot.Store) {
	ctx := context.Background()
	for _, s := range []snapshot.Snapshot{
		{Stream: "doctor-a", Revision: 999, Position: 1000, RecordedAt: t0, Shape: 1, Data: []byte("a999")},
		{Stream: "doctor-a", Revision: 1999, Position: 2500, RecordedAt: t0.Add(time.Hour), Shape: 1, Data: []byte("a1999")},
		{Stream: "doctor-a", Revision: 2999, Position: 4000, RecordedAt: t0.Add(2 * time.Hour), Shape: 2, Data: []byte("a2999 v2")},
		{Stream: "doctor-b", Revision: 5, Position: 7, RecordedAt: t0, Shape: 1, Data: []byte("b5")},
	} {
		if err := st.Save(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		stream string
		shape  int
		maxRev uint64
		until  time.Time
		want   string // "" for none
	}{
		{"newest of the shape", "doctor-a", 1, ^uint64(0), time.Time{}, "a1999"},
		{"newest of another shape", "doctor-a", 2, ^uint64(0), time.Time{}, "a2999 v2"},
		{"at most a revision", "doctor-a", 1, 1998, time.Time{}, "a999"},
		{"at the revision", "doctor-a", 1, 1999, time.Time{}, "a1999"},
		{"recorded by an instant", "doctor-a", 1, ^uint64(0), t0.Add(30 * time.Minute), "a999"},
		{"recorded at the instant", "doctor-a", 1, ^uint64(0), t0.Add(time.Hour), "a1999"},
		{"nothing that early", "doctor-a", 1, ^uint64(0), t0.Add(-time.Second), ""},
		{"nothing that low", "doctor-a", 1, 998, time.Time{}, ""},
		{"unknown stream", "doctor-c", 1, ^uint64(0), time.Time{}, ""},
		{"another stream", "doctor-b", 1, ^uint64(0), time.Time{}, "b5"},
	} {
		s, ok, err := st.Latest(ctx, c.stream, c.shape, c.maxRev, c.until)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := string(s.Data); !ok && got != "" || ok != (c.want != "") || got != c.want {
			t.Errorf("%s: %q %v, want %q", c.name, got, ok, c.want)
		}
		if ok && (s.Stream != c.stream || s.Position == 0 || s.RecordedAt.IsZero()) {
			t.Errorf("%s: %+v", c.name, s)
		}
	}
	// Saving a revision again replaces it.
	if err := st.Save(ctx, snapshot.Snapshot{Stream: "doctor-b", Revision: 5, Position: 7, RecordedAt: t0, Shape: 1, Data: []byte("b5 again")}); err != nil {
		t.Fatal(err)
	}
	if s, ok, _ := st.Latest(ctx, "doctor-b", 1, ^uint64(0), time.Time{}); !ok || string(s.Data) != "b5 again" {
		t.Errorf("replaced: %q %v", s.Data, ok)
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	suite(t, snapshot.NewMemory())
}

func TestDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := snapshot.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	suite(t, st)
}

// A damaged file reads as missing: the next older snapshot answers.
func TestDirSkipsDamagedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := snapshot.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, r := range []uint64{10, 20} {
		if err := st.Save(ctx, snapshot.Snapshot{Stream: "s", Revision: r, Position: r, RecordedAt: t0, Shape: 1, Data: []byte{byte(r)}}); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*20-*.snap"))
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	b[len(b)-6] ^= 0xff
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, ok, err := st.Latest(ctx, "s", 1, ^uint64(0), time.Time{}); err != nil || !ok || s.Revision != 10 {
		t.Fatalf("after damage: %+v %v %v", s, ok, err)
	}
	if err := os.WriteFile(files[0], []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, ok, err := st.Latest(ctx, "s", 1, ^uint64(0), time.Time{}); err != nil || !ok || s.Revision != 10 {
		t.Fatalf("after truncation: %+v %v %v", s, ok, err)
	}
}
