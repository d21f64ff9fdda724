package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"
)

// DefaultAuthRateLimit is AUTH_RATE_LIMIT's default: requests per minute per
// client IP on /auth/*.
const DefaultAuthRateLimit = 20

// RateLimitOption tunes NewRateLimit.
type RateLimitOption func(*rateLimitConfig)

type rateLimitConfig struct {
	counter  httprate.LimitCounter
	window   time.Duration
	prefix   string
	perUser  bool
	failOpen *zerolog.Logger
}

// WithLimitCounter stores the counters in c instead of process memory: the
// seam for a shared (Redis) counter, so that several API processes enforce
// one limit. httprate calls c.Config with the limit and window.
func WithLimitCounter(c httprate.LimitCounter) RateLimitOption {
	return func(cfg *rateLimitConfig) { cfg.counter = c }
}

// WithRateWindow changes the window (a minute by default); the limit stays
// "requests per window".
func WithRateWindow(d time.Duration) RateLimitOption {
	return func(cfg *rateLimitConfig) { cfg.window = d }
}

// FailOpen lets requests through when the counter store fails (Redis
// down): for a limit that slows abuse down, not one that guards a secret.
// Each failure is logged (warn) on logger.
func FailOpen(logger zerolog.Logger) RateLimitOption {
	return func(c *rateLimitConfig) { c.failOpen = &logger }
}

// PerUser counts per authenticated user (the token's subject) instead of
// per client IP; a request without a principal counts by its IP.
func PerUser() RateLimitOption {
	return func(c *rateLimitConfig) { c.perUser = true }
}

// WithKeyPrefix namespaces the counter keys (default "auth"), so that two
// limiters can share one counter store.
func WithKeyPrefix(p string) RateLimitOption {
	return func(cfg *rateLimitConfig) { cfg.prefix = p }
}

// NewRateLimit returns middleware allowing perMinute requests per client IP
// (per minute, sliding window), for the /auth routes. clientIP is
// ClientIP(trustProxy); IPv6 clients are bucketed by /64. Over the limit it
// answers 429 rate_limited with Retry-After (seconds) and the
// X-RateLimit-* headers; if the counter store fails it answers 503
// unavailable (failing closed: the limit guards password guessing).
func NewRateLimit(perMinute int, clientIP ClientIPFunc, opts ...RateLimitOption) (func(http.Handler) http.Handler, error) {
	if perMinute <= 0 {
		return nil, fmt.Errorf("api: rate limit %d per minute is not positive", perMinute)
	}
	if clientIP == nil {
		return nil, fmt.Errorf("api: rate limit needs a client IP function")
	}
	cfg := rateLimitConfig{window: time.Minute, prefix: "auth"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.window <= 0 {
		return nil, fmt.Errorf("api: rate limit window %v is not positive", cfg.window)
	}
	window := cfg.window
	onLimited := func(w http.ResponseWriter, r *http.Request) {
		// httprate set Retry-After to the window in whole seconds
		// (0 for a sub-second window); state it rounded up instead.
		err := RateLimited(window)
		w.Header().Set("Retry-After", err.Header.Get("Retry-After"))
		WriteError(w, r, err)
	}
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		WriteError(w, r, &HTTPError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Detail: "The rate limiter is unavailable; retry later.", Err: fmt.Errorf("rate limit counter: %w", err)})
	}
	options := []httprate.Option{httprate.WithLimitHandler(onLimited), httprate.WithErrorHandler(onError)}
	if cfg.failOpen != nil {
		// httprate's error handler writes the answer; failing open needs
		// the request served instead, so the counter's errors are swallowed
		// (and logged) before httprate sees them.
		if cfg.counter != nil {
			cfg.counter = failOpenCounter{LimitCounter: cfg.counter, log: *cfg.failOpen}
		}
	}
	if cfg.counter != nil {
		options = append(options, httprate.WithLimitCounter(cfg.counter))
	}
	prefix := cfg.prefix
	key := func(r *http.Request) (string, error) {
		return prefix + ":" + httprate.CanonicalizeIP(clientIP(r)), nil
	}
	if cfg.perUser {
		key = func(r *http.Request) (string, error) {
			if p, ok := PrincipalFrom(r.Context()); ok && p.UserID != "" {
				return prefix + ":user:" + p.UserID, nil
			}
			return prefix + ":" + httprate.CanonicalizeIP(clientIP(r)), nil
		}
	}
	if cfg.counter != nil {
		// A shared counter (Redis) is asked without httprate's
		// process-wide lock (see sharedLimit).
		return sharedLimit(perMinute, window, cfg.counter, httprate.JoinKeys(key), onLimited, onError), nil
	}
	limiter := httprate.NewRateLimiter(perMinute, window, append(options, httprate.WithKeyFuncs(key))...)
	return limiter.Handler, nil
}

// ContextLimitCounter is a LimitCounter whose calls can also be bounded by
// the request's context (RedisLimitCounter): the limiter then waits for the
// store as long as the request may.
type ContextLimitCounter interface {
	httprate.LimitCounter
	GetContext(ctx context.Context, key string, currentWindow, previousWindow time.Time) (int, int, error)
	IncrementByContext(ctx context.Context, key string, currentWindow time.Time, amount int) error
}

// getCount asks c for the counts of two windows, within ctx when c takes one.
func getCount(ctx context.Context, c httprate.LimitCounter, key string, current, previous time.Time) (int, int, error) {
	if cc, ok := c.(ContextLimitCounter); ok {
		return cc.GetContext(ctx, key, current, previous)
	}
	return c.Get(key, current, previous)
}

// incrementCount counts amount more in a window, within ctx when c takes one.
func incrementCount(ctx context.Context, c httprate.LimitCounter, key string, window time.Time, amount int) error {
	if cc, ok := c.(ContextLimitCounter); ok {
		return cc.IncrementByContext(ctx, key, window, amount)
	}
	return c.IncrementBy(key, window, amount)
}

// failOpenWait bounds a fail-open limiter's wait for its counter store
// (within the request's deadline): past it the request goes on unlimited
// rather than spend its own time on a limiter that would let it through
// anyway. A fail-closed limiter waits as long as the request may.
const failOpenWait = DefaultRedisLimitTimeout

// failOpenCounter reports a counter store's failures as an empty count
// (and a successful increment), so the limiter lets requests through
// while the store is down or slow (failOpenWait); each failure is logged.
type failOpenCounter struct {
	httprate.LimitCounter
	log zerolog.Logger
}

var _ ContextLimitCounter = failOpenCounter{}

func (c failOpenCounter) IncrementBy(key string, window time.Time, amount int) error {
	return c.IncrementByContext(context.Background(), key, window, amount)
}

func (c failOpenCounter) IncrementByContext(ctx context.Context, key string, window time.Time, amount int) error {
	ctx, cancel := context.WithTimeout(ctx, failOpenWait)
	defer cancel()
	if err := incrementCount(ctx, c.LimitCounter, key, window, amount); err != nil {
		c.log.Warn().Err(err).Str("key", key).Msg("rate limit counter unavailable: letting the request through")
	}
	return nil
}

func (c failOpenCounter) Increment(key string, window time.Time) error {
	return c.IncrementBy(key, window, 1)
}

func (c failOpenCounter) Get(key string, current, previous time.Time) (int, int, error) {
	return c.GetContext(context.Background(), key, current, previous)
}

func (c failOpenCounter) GetContext(ctx context.Context, key string, current, previous time.Time) (int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, failOpenWait)
	defer cancel()
	cur, prev, err := getCount(ctx, c.LimitCounter, key, current, previous)
	if err != nil {
		c.log.Warn().Err(err).Str("key", key).Msg("rate limit counter unavailable: letting the request through")
		return 0, 0, nil
	}
	return cur, prev, nil
}
