package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
)

func limitedRouter(t *testing.T, perMinute int, clientIP ClientIPFunc, opts ...RateLimitOption) http.Handler {
	t.Helper()
	limit, err := NewRateLimit(perMinute, clientIP, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(RequestID)
	r.With(limit).Post("/api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	r.Get("/api/v1/doctors", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	return r
}

func login(h http.Handler, remote string, xff string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", nil)
	req.RemoteAddr = remote
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return serve(h, req)
}

func TestRateLimitPerClientIP(t *testing.T) {
	t.Parallel()
	const n = 5
	h := limitedRouter(t, n, ClientIP(false))
	for i := range n {
		// A rotating X-Forwarded-For does not buy fresh buckets when the proxy is not trusted.
		if rec := login(h, "192.0.2.1:1000", "10.9.9."+strconv.Itoa(i)); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, rec.Code)
		}
	}
	rec := login(h, "192.0.2.1:2000", "10.9.9.99")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request %d: %d, want 429", n+1, rec.Code)
	}
	p := decodeProblem(t, rec)
	if p.Code != "rate_limited" {
		t.Errorf("code %q", p.Code)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	if rec.Header().Get("X-RateLimit-Limit") != strconv.Itoa(n) {
		t.Errorf("X-RateLimit-Limit %q", rec.Header().Get("X-RateLimit-Limit"))
	}
	// Another client is not affected, nor are other routes.
	if rec := login(h, "198.51.100.2:1000", ""); rec.Code != http.StatusOK {
		t.Errorf("other IP: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/doctors", nil)
	req.RemoteAddr = "192.0.2.1:1000"
	if rec := serve(h, req); rec.Code != http.StatusOK {
		t.Errorf("unlimited route: %d", rec.Code)
	}
}

func TestRateLimitTrustedProxy(t *testing.T) {
	t.Parallel()
	h := limitedRouter(t, 1, ClientIP(true))
	if rec := login(h, "10.0.0.1:1", "203.0.113.1"); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	if rec := login(h, "10.0.0.1:1", "203.0.113.1"); rec.Code != 429 {
		t.Errorf("same client behind proxy: %d", rec.Code)
	}
	if rec := login(h, "10.0.0.1:1", "203.0.113.2"); rec.Code != 200 {
		t.Errorf("other client behind the same proxy: %d", rec.Code)
	}
}

func TestRateLimitIPv6Slash64(t *testing.T) {
	t.Parallel()
	h := limitedRouter(t, 1, ClientIP(false))
	if rec := login(h, "[2001:db8:1:2::1]:1", ""); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	if rec := login(h, "[2001:db8:1:2::ffff]:1", ""); rec.Code != 429 {
		t.Errorf("same /64: %d", rec.Code)
	}
}

func TestRateLimitShortWindowRetryAfter(t *testing.T) {
	t.Parallel()
	// httprate alone would say int(1.5) = 1 second; the answer rounds up.
	h := limitedRouter(t, 1, ClientIP(false), WithRateWindow(1500*time.Millisecond))
	login(h, "192.0.2.1:1", "")
	rec := login(h, "192.0.2.1:1", "")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("%d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// failingCounter is a LimitCounter whose store is down.
type failingCounter struct{}

func (failingCounter) Config(int, time.Duration) {}
func (failingCounter) Increment(string, time.Time) error {
	return errors.New("redis: connection refused")
}
func (failingCounter) IncrementBy(string, time.Time, int) error {
	return errors.New("redis: connection refused")
}
func (failingCounter) Get(string, time.Time, time.Time) (int, int, error) {
	return 0, 0, errors.New("redis: connection refused")
}

// recordingCounter wraps the local counter and records the keys it sees.
type recordingCounter struct {
	httprate.LimitCounter
	keys chan string
}

func (c recordingCounter) IncrementBy(key string, w time.Time, n int) error {
	c.keys <- key
	return c.LimitCounter.IncrementBy(key, w, n)
}

func TestRateLimitCounterSeam(t *testing.T) {
	t.Parallel()
	h := limitedRouter(t, 5, ClientIP(false), WithLimitCounter(failingCounter{}))
	rec := login(h, "192.0.2.1:1", "")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("counter down: %d", rec.Code)
	}
	if p := decodeProblem(t, rec); p.Code != "unavailable" || p.Detail == "" {
		t.Errorf("problem %+v", p)
	}
	if strings.Contains(rec.Body.String(), "redis") {
		t.Error("counter error leaked")
	}

	rc := recordingCounter{LimitCounter: httprate.NewLocalLimitCounter(time.Minute), keys: make(chan string, 4)}
	h = limitedRouter(t, 5, ClientIP(false), WithLimitCounter(rc), WithKeyPrefix("login"))
	if rec := login(h, "192.0.2.1:1", ""); rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	if k := <-rc.keys; k != "login:192.0.2.1:" {
		t.Errorf("counter key %q", k)
	}
}

func TestNewRateLimitValidation(t *testing.T) {
	t.Parallel()
	if _, err := NewRateLimit(0, ClientIP(false)); err == nil {
		t.Error("0 per minute accepted")
	}
	if _, err := NewRateLimit(20, nil); err == nil {
		t.Error("nil client IP accepted")
	}
	if _, err := NewRateLimit(20, ClientIP(false), WithRateWindow(0)); err == nil {
		t.Error("zero window accepted")
	}
}
