package memory_test

import (
	"context"
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
