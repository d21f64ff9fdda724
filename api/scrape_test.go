package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Who may read /metrics, as MetricsAccess says, on the root and under
// /api/v1.
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	const token = "scrape-token-0123456789"
	tests := []struct {
		name   string
		access MetricsAccess
		auth   string // Authorization header
		want   int
		code   string
	}{
		{name: "open", want: http.StatusOK},
		{name: "off", access: MetricsAccess{Off: true}, want: http.StatusNotFound, code: CodeNotFound},
		{name: "off even with the token", access: MetricsAccess{Off: true, Token: token}, auth: "Bearer " + token, want: http.StatusNotFound, code: CodeNotFound},
		{name: "token missing", access: MetricsAccess{Token: token}, want: http.StatusUnauthorized, code: CodeInvalidToken},
		{name: "token wrong", access: MetricsAccess{Token: token}, auth: "Bearer " + token + "x", want: http.StatusUnauthorized, code: CodeInvalidToken},
		{name: "token right", access: MetricsAccess{Token: token}, auth: "Bearer " + token, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			h := NewOpsHandler(OpsConfig{Registry: prometheus.NewRegistry(), Logger: zerolog.New(&logs), MetricsAccess: tt.access})
			for _, path := range []string{"/metrics", "/api/v1/metrics", "/%6detrics"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
				rec := serve(h, req)
				want := tt.want
				if path == "/%6detrics" && want == http.StatusOK {
					want = http.StatusNotFound // not a route, but never served without the token
				}
				if rec.Code != want {
					t.Fatalf("%s: %d, want %d: %s", path, rec.Code, want, rec.Body)
				}
				if tt.code != "" && want == tt.want {
					if p := decodeProblem(t, rec); p.Code != tt.code {
						t.Errorf("%s: code %q, want %q", path, p.Code, tt.code)
					}
				}
			}
			if rec := serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil)); rec.Code != http.StatusOK {
				t.Errorf("/healthz %d", rec.Code)
			}
		})
	}
}
