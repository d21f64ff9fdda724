package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func TestMetricsMiddlewareUsesRoutePattern(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(m.Middleware)
	r.NotFound(NotFound)
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/doctors/{id}", func(w http.ResponseWriter, r *http.Request) {})
		r.Post("/appointments", func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, errSlotTaken) })
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	for _, id := range []string{"a", "b", "c"} {
		serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/doctors/"+id, nil))
	}
	serve(r, httptest.NewRequest(http.MethodPost, "/api/v1/appointments", nil))
	serve(r, httptest.NewRequest(http.MethodGet, "/nowhere/1", nil))
	serve(r, httptest.NewRequest(http.MethodGet, "/nowhere/2", nil))
	serve(r, httptest.NewRequest("BREW", "/healthz", nil))

	want := map[[3]string]uint64{
		{"GET", "/api/v1/doctors/{id}", "2xx"}:  3,
		{"POST", "/api/v1/appointments", "4xx"}: 1,
		{"GET", "unmatched", "4xx"}:             2,
		{"OTHER", "unmatched", "4xx"}:           1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[[3]string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "http_request_duration_seconds" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			var key [3]string
			for _, l := range metric.GetLabel() {
				switch l.GetName() {
				case "method":
					key[0] = l.GetValue()
				case "route":
					key[1] = l.GetValue()
				case "status":
					key[2] = l.GetValue()
				}
			}
			got[key] = metric.GetHistogram().GetSampleCount()
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v: %d observations, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

func TestMetricsCountersAndHandler(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterRuntimeCollectors(reg); err != nil {
		t.Fatal(err)
	}
	m.CommandConflict("BookAppointment")
	m.CommandRetry("BookAppointment")
	m.CommandRetry("BookAppointment")
	m.SetProjectionLag("appointments", 12)
	m.SetProjectionPosition("appointments", 4096)
	if v := testutil.ToFloat64(m.CommandRetries.WithLabelValues("BookAppointment")); v != 2 {
		t.Errorf("retries %v", v)
	}
	if v := testutil.ToFloat64(m.CommandConflicts.WithLabelValues("BookAppointment")); v != 1 {
		t.Errorf("conflicts %v", v)
	}

	rec := serve(MetricsHandler(reg), httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`prescripto_command_conflicts_total{command="BookAppointment"} 1`,
		`prescripto_command_retries_total{command="BookAppointment"} 2`,
		`prescripto_projection_lag_positions{projection="appointments"} 12`,
		`prescripto_projection_position{projection="appointments"} 4096`,
		"go_goroutines",
		"process_",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
	}
	// Nothing leaked into the global registry.
	if mfs, _ := prometheus.DefaultGatherer.Gather(); hasMetric(mfs, "prescripto_command_retries_total") {
		t.Error("metrics registered on the default registry")
	}
	// Registering twice on one registry is an error, not a panic.
	if _, err := NewMetrics(reg); err == nil {
		t.Error("second NewMetrics on one registry succeeded")
	}
	if _, err := NewMetrics(nil); err == nil {
		t.Error("nil registry accepted")
	}
}

func hasMetric(mfs []*dto.MetricFamily, name string) bool {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}
