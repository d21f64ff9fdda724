package api

import (
	"context"
	"net/http"
	"time"
)

// DefaultRequestTimeout bounds the work of one request when Config leaves
// RequestTimeout at zero (see requestTimeout): the production HTTP server's
// write timeout, past which the client would get no answer at all. A
// deployment that wants faster 503s sets a shorter one (the fault tests
// use 5 s).
const DefaultRequestTimeout = 30 * time.Second

// requestTimeout gives every request a deadline: a dependency that stops
// answering without an error (a network partition, a half-open
// connection) must turn into a prompt 503 "timeout", never a request that
// hangs until the client or the HTTP server gives up. Every store, read
// model and cache call takes the request's context, and the command loop
// lets a caller go at its deadline (commands.run), so the deadline bounds
// the answer. A bounded X-Min-Position wait (MaxWait) gets its full length
// plus a margin to answer after it.
func requestTimeout(d, maxWait time.Duration) func(http.Handler) http.Handler {
	if d <= 0 {
		d = max(DefaultRequestTimeout, maxWait+5*time.Second)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
