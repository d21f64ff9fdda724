package projections

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ApplyMetrics are what a Runner's projections do with the events they
// are given, for operators who ask why one lags:
//
//	prescripto_projection_batch_events{projection}   events per apply (1 when
//	                                                  applied one at a time)
//	prescripto_projection_apply_seconds{projection}  time per apply, from the
//	                                                  first try to success
//
// A projection that keeps up applies batches of one; one that falls
// behind gets what the log holds (up to RunnerConfig.MaxBatch): the ratio
// of the two histograms' sums is its time per event, and its throughput
// bound is the inverse.
type ApplyMetrics struct {
	events  *prometheus.HistogramVec
	seconds *prometheus.HistogramVec
}

// NewApplyMetrics creates the metrics and registers them on reg.
func NewApplyMetrics(reg prometheus.Registerer) (*ApplyMetrics, error) {
	if reg == nil {
		return nil, errors.New("projections: metrics need a registry")
	}
	m := &ApplyMetrics{
		events: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prescripto_projection_batch_events",
			Help:    "Events a projection applied at once (1: one at a time; more when it was behind).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}, []string{"projection"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prescripto_projection_apply_seconds",
			Help:    "Time a projection took to apply an event or a batch, retries included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"projection"}),
	}
	for _, c := range []prometheus.Collector{m.events, m.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("projections: register metrics: %w", err)
		}
	}
	return m, nil
}

// observe records an apply of n events by projection that took d (nothing
// on a nil m).
func (m *ApplyMetrics) observe(projection string, n int, d time.Duration) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(projection).Observe(float64(n))
	m.seconds.WithLabelValues(projection).Observe(d.Seconds())
}
