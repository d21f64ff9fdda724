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
}

// NewOpsHandler serves /healthz, /readyz and /metrics (also under
// /api/v1, as the API does), and problem+json 404 for anything else.
func NewOpsHandler(cfg OpsConfig) http.Handler {
	r := chi.NewRouter()
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Use(RequestID, Logger(cfg.Logger), Recoverer)
	ops := func(r chi.Router) {
		r.Get("/healthz", healthz)
		r.Get("/readyz", readyz(cfg.Ready))
		r.Handle("/metrics", MetricsHandler(cfg.Registry))
	}
	ops(r)
	r.Route("/api/v1", ops)
	return r
}
