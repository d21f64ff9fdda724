package payments

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the payments worker.
type Metrics struct {
	// Events: prescripto_payments_total{event}: captured (payments settled),
	// failed_payment, refund_issued, expired (holds), reconciled (orders
	// asked about), action_error (an action that will be retried), and
	// ignored_* (webhooks or payments the worker had nothing to do with).
	Events *prometheus.CounterVec
	// Lag: prescripto_payments_reconcile_lag_seconds, how late the oldest
	// due work was when the worker last looked.
	Lag prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("payments: metrics need a registry")
	}
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescripto_payments_total",
			Help: "What the payments worker did, by event.",
		}, []string{"event"}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prescripto_payments_reconcile_lag_seconds",
			Help: "How late the oldest due payment work was when the worker last looked.",
		}),
	}
	for _, c := range []prometheus.Collector{m.Events, m.Lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) inc(event string) {
	if m != nil {
		m.Events.WithLabelValues(event).Inc()
	}
}

func (m *Metrics) captured()      { m.inc("captured") }
func (m *Metrics) failedPayment() { m.inc("failed_payment") }
func (m *Metrics) refunded()      { m.inc("refund_issued") }
func (m *Metrics) expired()       { m.inc("expired") }
func (m *Metrics) reconciled()    { m.inc("reconciled") }
func (m *Metrics) failure()       { m.inc("action_error") }

// ignored counts what the worker left alone; kind is bounded (webhook
// event types are limited to the known ones plus "other").
func (m *Metrics) ignored(kind string) {
	switch kind {
	case "orphan", "unsettleable", "refund":
	default:
		kind = "webhook"
	}
	m.inc("ignored_" + kind)
}

func (m *Metrics) lag(d time.Duration) {
	if m != nil {
		m.Lag.Set(d.Seconds())
	}
}
