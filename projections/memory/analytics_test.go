package memory_test

import (
	"testing"

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
