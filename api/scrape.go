package api

import (
	"crypto/subtle"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// MetricsAccess says who may read /metrics on a listener. The metrics name
// routes, counts and timings of the whole engine: reconnaissance for an
// attacker, so they are kept off the public API port.
//
//   - Off: the listener does not serve /metrics at all; it answers 404
//     not_found as for any unknown route (an operator set
//     PRESCRIPTO_OPS_ADDR and scrapes the ops listener instead). 404, not
//     403: the public port does not even say that metrics exist.
//   - Token: a scraper must send "Authorization: Bearer <Token>"
//     (METRICS_TOKEN; Prometheus' authorization.credentials); anything
//     else is 401 invalid_token.
//   - neither: public, as before (the risk is stated in docs/deploy.md).
type MetricsAccess struct {
	Off   bool
	Token string
}

// mountMetrics routes /metrics on r as access says.
func (access MetricsAccess) mountMetrics(r chi.Router, reg *prometheus.Registry) {
	if access.Off {
		return
	}
	r.Handle("/metrics", MetricsHandler(reg))
}

// scrapeToken guards /metrics with access.Token. It sits before
// Tokens.Authenticate, which would refuse the token as a malformed JWT: a
// request for /metrics (under the root or /api/v1, matched on the raw and
// the decoded path, so no encoding slips past) must carry the token, and
// the header is then taken away from the request so Authenticate lets it
// through as anonymous. Every other request is untouched.
func (access MetricsAccess) scrapeToken(next http.Handler) http.Handler {
	if access.Off || access.Token == "" {
		return next
	}
	want := []byte(access.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !metricsPath(r.URL.Path) && !metricsPath(r.URL.RawPath) {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := bearerToken(r.Header.Values("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			WriteError(w, r, ErrTokenInvalid.WithDetail("/metrics needs the METRICS_TOKEN bearer token."))
			return
		}
		r = r.Clone(r.Context())
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

func metricsPath(p string) bool { return p == "/metrics" || p == "/api/v1/metrics" }
