package idempotency_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/idempotency"
)

// go test ./domain/idempotency -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const goldenDir = "testdata/golden"

// goldenSamples is one instance of every idempotency event type, every
// field set.
func goldenSamples() []domain.Event {
	return []domain.Event{
		idempotency.KeyClaimed{
			KeyID: "6f1c8a52-3b0e-5d4f-9a61-2c7e8b9d0f13", Command: "ReserveSlot", Stream: "doctor-doc-1", Target: "appt-1",
			RequestHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			IDs:         map[string]string{"appointment": "appt-1"},
			ClaimedAt:   time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC),
		},
	}
}

func registry(t *testing.T) *domain.Registry {
	t.Helper()
	r := domain.NewEmptyRegistry()
	if err := r.Register(idempotency.Events()...); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGolden(t *testing.T) {
	t.Parallel()
	reg := registry(t)
	names := reg.Types()
	sort.Strings(names)
	samples := map[string]domain.Event{}
	for _, e := range goldenSamples() {
		samples[e.EventType()] = e
	}
	if len(names) != len(samples) {
		t.Errorf("%d registered types, %d samples", len(names), len(samples))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e, ok := samples[name]
			if !ok {
				t.Fatalf("no golden sample for registered type %s", name)
			}
			if !strings.HasSuffix(name, ".v1") || !strings.HasPrefix(name, idempotency.Category+".") {
				t.Errorf("type %s is not a versioned %s type", name, idempotency.Category)
			}
			data, err := domain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join(goldenDir, name+".json")
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("missing golden file (run with -update to create): %v", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, golden); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact.Bytes(), data) {
				t.Errorf("the stored shape of %s changed (add a new version and an upcaster, or run -update if intended)\n got  %s\n want %s",
					name, data, compact.Bytes())
			}
			for _, in := range [][]byte{golden, data} {
				back, err := reg.Decode(name, in)
				if err != nil {
					t.Fatal(err)
				}
				if reflect.TypeOf(back) != reflect.TypeOf(e) || !reflect.DeepEqual(back, e) {
					t.Errorf("decodes to %T %#v, want %#v", back, back, e)
				}
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !slices.Contains(names, name) {
			t.Errorf("golden file %s has no registered type", f)
		}
	}
}

// TestInCatalog: every stored event type is in the catalog, so readers of
// $all decode key claims (and ignore them) instead of warning about an
// unknown type.
func TestInCatalog(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if !reg.Known(idempotency.TypeKeyClaimed) {
		t.Errorf("the catalog does not register %s", idempotency.TypeKeyClaimed)
	}
}

func TestSameRequest(t *testing.T) {
	t.Parallel()
	base := goldenSamples()[0].(idempotency.KeyClaimed)
	later := base
	later.ClaimedAt = base.ClaimedAt.Add(time.Hour)
	later.IDs = map[string]string{"appointment": "appt-1"}
	for _, c := range []struct {
		name   string
		change func(*idempotency.KeyClaimed)
		same   bool
	}{
		{"a retry, later", func(*idempotency.KeyClaimed) {}, true},
		{"another key", func(k *idempotency.KeyClaimed) { k.KeyID = "other" }, false},
		{"another command", func(k *idempotency.KeyClaimed) { k.Command = "CancelAppointment" }, false},
		{"another doctor", func(k *idempotency.KeyClaimed) { k.Stream = "doctor-doc-2" }, false},
		{"another appointment", func(k *idempotency.KeyClaimed) { k.Target = "appt-2" }, false},
		{"another body", func(k *idempotency.KeyClaimed) { k.RequestHash = "00" }, false},
		{"other ids", func(k *idempotency.KeyClaimed) { k.IDs = map[string]string{"appointment": "appt-2"} }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := later
			o.IDs = maps.Clone(later.IDs)
			c.change(&o)
			if got := base.SameRequest(o); got != c.same {
				t.Errorf("SameRequest = %v, want %v", got, c.same)
			}
		})
	}
}
