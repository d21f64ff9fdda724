package memory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"

	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
	"github.com/prescripto/prescripto/projections/analytics/analyticstest"
	"github.com/prescripto/prescripto/projections/memory"
)

func TestAnalytics(t *testing.T) {
	t.Parallel()
	analyticstest.Run(t, func(*testing.T) analyticstest.Models {
		m := memory.NewAnalytics()
		return analyticstest.Models{View: m, Projection: m}
	})
}

// The same suite through projections.Live, as the runner drives it.
func TestAnalyticsLive(t *testing.T) {
	t.Parallel()
	analyticstest.Run(t, func(*testing.T) analyticstest.Models {
		l := projections.NewLive(memory.NewAnalytics)
		return analyticstest.Models{View: analytics.LiveView[*memory.Analytics]{L: l}, Projection: l}
	})
}

// The totals equal a brute-force fold of random histories
// (PRESCRIPTO_ANALYTICS_HISTORIES asks for more than the default).
func TestAnalyticsProperty(t *testing.T) {
	t.Parallel()
	analyticstest.Property(t, func(*testing.T) analyticstest.Models {
		m := memory.NewAnalytics()
		return analyticstest.Models{View: m, Projection: m}
	}, analyticstest.Histories(t, 300))
}

// Questions asked while events are applied (run with -race): each answer
// is of some prefix of the log, none fails.
func TestAnalyticsConcurrentReads(t *testing.T) {
	t.Parallel()
	events := analyticstest.RealisticLog(6, 40, 4)
	m := memory.NewAnalytics()
	q := analytics.Query{From: doctor.Date{Year: 2026, Month: time.January, Day: 1}, To: doctor.Date{Year: 2026, Month: time.February, Day: 9}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := m.Bookings(context.Background(), q); err != nil {
					t.Error(err)
					return
				}
				if _, err := m.Utilisation(context.Background(), q); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for _, e := range events {
		if err := m.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	rows, err := m.Bookings(context.Background(), q)
	if err != nil || len(rows) == 0 {
		t.Fatalf("after the log: %v, %v", rows, err)
	}
}

// The analytics model saved while it applies a realistic log (payments,
// refunds, reschedules, schedule changes across zones; under -race),
// loaded into a new model and given the log after its checkpoint, answers
// every grouping as the model that applied the log once.
func TestAnalyticsStateSavedWhileApplying(t *testing.T) {
	t.Parallel()
	events := analyticstest.RealisticLog(6, 40, 4)
	from, to := doctor.Date{Year: 2025, Month: time.November, Day: 25}, doctor.Date{Year: 2026, Month: time.January, Day: 20}
	answersOf := func(m *memory.Analytics) map[string]string {
		out := map[string]string{}
		analyticsAnswers(t, m, from, to, func(k string, v any, err error) {
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			b, _ := json.Marshal(v)
			out[k] = string(b)
		})
		return out
	}
	want := memory.NewAnalytics()
	for _, e := range events {
		if err := want.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	wantAnswers := answersOf(want)
	if wantAnswers["bookings by day"] == "[]" {
		t.Fatal("the log books nothing in the range")
	}
	for _, cut := range []int{0, len(events) / 4, len(events) / 2, len(events) - 1} {
		src := memory.NewAnalytics()
		for _, e := range events[:cut] {
			if err := src.Apply(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		pos, _ := src.Checkpoint(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { // the projector goes on meanwhile
			for _, e := range events[cut:] {
				if err := src.Apply(context.Background(), e); err != nil {
					t.Error(err)
				}
			}
		})
		var b bytes.Buffer
		if err := src.SaveState(&b); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		got := memory.NewAnalytics()
		if err := got.LoadState(b.Bytes(), pos); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Position > pos {
				if err := got.Apply(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
		}
		gotAnswers := answersOf(got)
		for k, w := range wantAnswers {
			if g := gotAnswers[k]; g != w {
				t.Errorf("cut at %d: %s:\n got %s\nwant %s", cut, k, g, w)
			}
		}
	}
}
