package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

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

// TestRedisRateLimitWaitsAsLongAsTheRequest: a burst queues on the Redis
// client's pool; a request whose deadline allows the wait is counted, not
// refused because the counter's own (short) timeout ran out first. Here the
// pool's one connection is busy for 1 s (BLPOP's least), against a counter
// timeout of 50 ms. A call without a deadline keeps the counter's timeout;
// a fail-open limiter keeps its own bound.
func TestRedisRateLimitWaitsAsLongAsTheRequest(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize, opts.ContextTimeoutEnabled = 1, true
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	counter, err := api.NewRedisLimitCounter(client, "test:ratelimit-wait", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	limit, err := api.NewRateLimit(100, api.ClientIP(false), api.WithLimitCounter(counter), api.WithRateWindow(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	login := func(h http.Handler, ctx context.Context) int {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/auth/login", nil)
		req.RemoteAddr = "192.0.2.9:1000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}

	done := holdPool(t, client, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if code := login(h, ctx); code != http.StatusOK {
		t.Errorf("a request with 5 s to go, the pool busy for 1 s: %d, want 200", code)
	}
	<-done

	done = holdPool(t, client, time.Second)
	if code := login(h, context.Background()); code != http.StatusServiceUnavailable {
		t.Errorf("a call without a deadline, the pool busy for 1 s: %d, want 503 after the counter's 50 ms", code)
	}
	<-done

	// A fail-open limiter (bookings) does not spend the request's time on
	// a limiter that would let it through anyway: past its own bound (2 s)
	// it lets the request through, and logs that it did.
	var logged bytes.Buffer
	open, err := api.NewRateLimit(100, api.ClientIP(false), api.WithLimitCounter(counter), api.WithRateWindow(time.Hour),
		api.WithKeyPrefix("booking"), api.FailOpen(zerolog.New(&logged)))
	if err != nil {
		t.Fatal(err)
	}
	ho := open(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	done = holdPool(t, client, 3*time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := login(ho, ctx); code != http.StatusOK {
		t.Errorf("fail-open, the pool busy for 3 s: %d, want 200", code)
	}
	if !strings.Contains(logged.String(), "rate limit counter unavailable") {
		t.Errorf("fail-open, the pool busy for 3 s: the request waited for the counter (nothing logged: %q)", logged.String())
	}
	<-done
}

// holdPool makes the one connection of client's pool busy for d (a BLPOP
// on a key nobody pushes to) and returns once it is: the channel closes
// when the connection is free again.
func holdPool(t *testing.T, client *redis.Client, d time.Duration) chan struct{} {
	t.Helper()
	if err := client.Ping(context.Background()).Err(); err != nil { // the connection exists
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.BLPop(context.Background(), d, "test:ratelimit-wait:nothing")
	}()
	for client.PoolStats().IdleConns != 0 {
		select {
		case <-done:
			t.Fatal("the BLPOP ended before it was seen holding the connection")
		case <-time.After(time.Millisecond):
		}
	}
	return done
}
