package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/internal/testenv"
)

// replica is one API process's /auth/login behind a limiter counting in
// the shared Redis.
func replica(t *testing.T, url string, perWindow int) http.Handler {
	t.Helper()
	client := testenv.RedisClient(t, url)
	counter, err := api.NewRedisLimitCounter(client, "test:ratelimit", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// An hour's window: the test never straddles a window boundary.
	limit, err := api.NewRateLimit(perWindow, api.ClientIP(false), api.WithLimitCounter(counter), api.WithRateWindow(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
}

func loginFrom(h http.Handler, remote string) int {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", nil)
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestRedisRateLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := testenv.RedisURL(t)
	const n = 5
	a, b := replica(t, url, n), replica(t, url, n)
	for i := range n {
		h := a
		if i%2 == 1 {
			h = b
		}
		if code := loginFrom(h, "192.0.2.7:1000"); code != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, code)
		}
	}
	for _, h := range []http.Handler{a, b} {
		if code := loginFrom(h, "192.0.2.7:1000"); code != http.StatusTooManyRequests {
			t.Fatalf("request over the limit: %d, want 429", code)
		}
	}
	// Another client has its own budget on either replica.
	if code := loginFrom(b, "198.51.100.3:1000"); code != http.StatusOK {
		t.Fatalf("another client: %d", code)
	}
}

func TestRedisRateLimitFailsClosed(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	h := replica(t, srv.URL(), 5)
	if code := loginFrom(h, "192.0.2.8:1000"); code != http.StatusOK {
		t.Fatalf("with redis up: %d", code)
	}
	srv.Stop()
	if code := loginFrom(h, "192.0.2.8:1000"); code != http.StatusServiceUnavailable {
		t.Fatalf("with redis down: %d, want 503", code)
	}
	srv.Start()
	if code := loginFrom(h, "192.0.2.8:1000"); code != http.StatusOK {
		t.Fatalf("with redis back: %d", code)
	}
}
