package api

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"
)

// sharedLimit is httprate's sliding-window limit on a shared counter store
// (Redis), without httprate's lock. httprate's RateLimiter holds one
// process-wide mutex across the counter's Get and IncrementBy: with a
// counter in memory that costs nothing, but with Redis every limited
// request of the process waits in line for two network round trips of
// every request before it. 500 ms of latency to Redis then let through one
// request a second for the whole process, and requests queued on the mutex
// (which no deadline can interrupt) hung far past the request timeout (the
// network-fault test found it). Across api processes the shared counter
// was never atomic anyway, so dropping the in-process lock loses no
// guarantee: concurrent requests of one key may both pass at the limit's
// edge, as requests on two processes always could.
//
// The answers are httprate's: the same rate (the previous window's count
// weighted by the part of it still inside the sliding window, plus the
// current window's), the same headers, increment only when let through.
func sharedLimit(limit int, window time.Duration, counter httprate.LimitCounter, key httprate.KeyFunc,
	onLimited http.HandlerFunc, onError func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	counter.Config(limit, window)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, err := key(r)
			if err != nil {
				onError(w, r, err)
				return
			}
			now := time.Now().UTC()
			current := now.Truncate(window)
			h := w.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(current.Add(window).Unix(), 10))
			cur, prev, err := getCount(r.Context(), counter, k, current, current.Add(-window))
			if err != nil {
				onError(w, r, err)
				return
			}
			elapsed := now.Sub(current)
			rate := int(math.Round(float64(prev)*(float64(window)-float64(elapsed))/float64(window) + float64(cur)))
			if rate+1 > limit {
				h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-rate, 0)))
				onLimited(w, r) // sets Retry-After (the window, rounded up)
				return
			}
			if err := incrementCount(r.Context(), counter, k, current, 1); err != nil {
				onError(w, r, err)
				return
			}
			h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-rate-1))
			next.ServeHTTP(w, r)
		})
	}
}
