package idempotency_test

import (
	"flag"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/idempotency"
	"github.com/prescripto/prescripto/internal/goldentest"
)

// go test ./domain/idempotency -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

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

// TestTypesAreVersioned: every type is a versioned type of the category.
func TestTypesAreVersioned(t *testing.T) {
	t.Parallel()
	r := domain.NewEmptyRegistry()
	if err := r.Register(idempotency.Events()...); err != nil {
		t.Fatal(err)
	}
	for _, name := range r.Types() {
		if !strings.HasSuffix(name, ".v1") || !strings.HasPrefix(name, idempotency.Category+".") {
			t.Errorf("type %s is not a versioned %s type", name, idempotency.Category)
		}
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Run(t, reg, idempotency.Events(), goldenSamples(), *update)
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
