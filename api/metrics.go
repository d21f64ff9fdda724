package api

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are Prescripto's Prometheus metrics, registered on a registry the
// caller owns (never the global default one). Commands and projections
// cannot import api: cmd/prescripto hands them these methods through small
// interfaces of their own.
type Metrics struct {
	// RequestDuration: http_request_duration_seconds{method,route,status}.
	// route is the chi pattern and status the class ("2xx"), so the label
	// set stays bounded whatever clients send.
	RequestDuration *prometheus.HistogramVec
	// CommandConflicts: prescripto_command_conflicts_total{command}, version
	// conflicts met while appending.
	CommandConflicts *prometheus.CounterVec
	// CommandRetries: prescripto_command_retries_total{command}, load-decide-
	// append rounds retried after a conflict.
	CommandRetries *prometheus.CounterVec
	// ProjectionLag: prescripto_projection_lag_positions{projection}, how
	// far the projection is behind the head of $all, in log positions.
	ProjectionLag *prometheus.GaugeVec
	// ProjectionPosition: prescripto_projection_position{projection}, the last
	// $all position applied.
	ProjectionPosition *prometheus.GaugeVec
	// Payments: prescripto_payment_requests_total{event}, what the payment
	// routes did: order_created, order_returned, verified, webhook_recorded,
	// webhook_duplicate, webhook_bad_signature.
	Payments *prometheus.CounterVec

	// observers caches RequestDuration's children by label values, so a
	// request costs one map lookup instead of WithLabelValues' hashing and
	// label checks. The label sets are bounded (methodLabel, chi patterns,
	// status classes). Deleting or resetting RequestDuration's children
	// would leave cached observers detached: nothing does.
	obsMu     sync.RWMutex
	observers map[observerKey]prometheus.Observer
}

type observerKey struct {
	method, route, class string
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("api: metrics need a registry")
	}
	m := &Metrics{
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Latency of HTTP requests by method, chi route pattern and status class.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		CommandConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescripto_command_conflicts_total",
			Help: "Expected-revision conflicts met by command handlers.",
		}, []string{"command"}),
		CommandRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescripto_command_retries_total",
			Help: "Command load-decide-append rounds retried after a conflict.",
		}, []string{"command"}),
		ProjectionLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prescripto_projection_lag_positions",
			Help: "Log positions between the head of $all and the last position a projection applied: events on the embedded store, transaction-log bytes on EventStoreDB; 0 when caught up.",
		}, []string{"projection"}),
		ProjectionPosition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prescripto_projection_position",
			Help: "Last $all position a projection has applied.",
		}, []string{"projection"}),
		Payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prescripto_payment_requests_total",
			Help: "What the payment routes did, by event.",
		}, []string{"event"}),
	}
	for _, c := range []prometheus.Collector{m.RequestDuration, m.CommandConflicts, m.CommandRetries, m.ProjectionLag, m.ProjectionPosition, m.Payments} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}

// RegisterRuntimeCollectors adds the Go runtime and process collectors to reg.
func RegisterRuntimeCollectors(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("api: register runtime collectors: %w", err)
		}
	}
	return nil
}

// Payment counts one event of the payment routes.
func (m *Metrics) Payment(event string) { m.Payments.WithLabelValues(event).Inc() }

// CommandConflict counts one conflict of command.
func (m *Metrics) CommandConflict(command string) { m.CommandConflicts.WithLabelValues(command).Inc() }

// CommandRetry counts one retry of command.
func (m *Metrics) CommandRetry(command string) { m.CommandRetries.WithLabelValues(command).Inc() }

// SetProjectionLag records how many events projection is behind.
func (m *Metrics) SetProjectionLag(projection string, lag int64) {
	m.ProjectionLag.WithLabelValues(projection).Set(float64(lag))
}

// SetProjectionPosition records the last position projection applied.
func (m *Metrics) SetProjectionPosition(projection string, position uint64) {
	m.ProjectionPosition.WithLabelValues(projection).Set(float64(position))
}

// unmatchedRoute labels requests that matched no route (404/405).
const unmatchedRoute = "unmatched"

// Middleware observes each request's latency under its chi route pattern
// (never the raw path). Mount it with Router.Use so the pattern is known
// when the request ends.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := wrapWriter(w, r)
		defer func() {
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			route := routeOf(r)
			if route == "" {
				route = unmatchedRoute
			}
			m.requestObserver(observerKey{methodLabel(r.Method), route, statusClass(status)}).
				Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}

// requestObserver is RequestDuration's child for k, cached.
func (m *Metrics) requestObserver(k observerKey) prometheus.Observer {
	m.obsMu.RLock()
	o, ok := m.observers[k]
	m.obsMu.RUnlock()
	if ok {
		return o
	}
	o = m.RequestDuration.WithLabelValues(k.method, k.route, k.class)
	m.obsMu.Lock()
	if m.observers == nil {
		m.observers = map[observerKey]prometheus.Observer{}
	}
	m.observers[k] = o
	m.obsMu.Unlock()
	return o
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return statusClasses[status/100-1]
}

var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg, // counts its own scrape errors
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
}
