package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// OpsConfig wires the operations endpoints of a process that serves no
// API (the projector and worker roles).
type OpsConfig struct {
	Registry *prometheus.Registry
	Logger   zerolog.Logger
	Ready    []Check
	// MetricsAccess says who may read /metrics here.
	MetricsAccess MetricsAccess
}

// NewOpsHandler serves /healthz, /readyz and /metrics (also under
// /api/v1, as the API does; /metrics as cfg.MetricsAccess says), and
// problem+json 404 for anything else. It is the API port of a process
// without the API, and the ops listener (PRESCRIPTO_OPS_ADDR) of every
// process.
func NewOpsHandler(cfg OpsConfig) http.Handler {
	r := chi.NewRouter()
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Use(RequestID, Logger(cfg.Logger), Recoverer, cfg.MetricsAccess.scrapeToken)
	ops := func(r chi.Router) {
		r.Get("/healthz", healthz)
		r.Get("/readyz", readyz(cfg.Ready))
		cfg.MetricsAccess.mountMetrics(r, cfg.Registry)
	}
	ops(r)
	r.Route("/api/v1", ops)
	return r
}
