package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain"
)

// Headers carrying the ids of a request.
const (
	HeaderRequestID     = "X-Request-ID"
	HeaderCorrelationID = "X-Correlation-ID"
)

// The id headers in canonical form (textproto.CanonicalMIMEHeaderKey), to
// index an http.Header directly: Get and Set with "X-Request-ID" would
// canonicalize, and allocate, on every request. The wire name is the same.
const (
	canonRequestID     = "X-Request-Id"
	canonCorrelationID = "X-Correlation-Id"
)

// maxIDLen bounds a client-supplied request or correlation id (bytes).
const maxIDLen = 128

// ctxKey is the type of this package's context keys (never strings).
type ctxKey int

const (
	keyPrincipal ctxKey = iota
	keyRequestID
	keyCorrelationID
	keyClientRequestID
	keyRequestInfo
)

// The recommended order of the middleware on the root router (outermost
// first):
//
//	r.Use(api.RequestID, api.Logger(base), api.AccessLog(clientIP),
//		api.Recoverer, api.SecurityHeaders, metrics.Middleware, tokens.Authenticate)
//	r.NotFound(api.NotFound)
//	r.MethodNotAllowed(api.MethodNotAllowed)
//
// RequestID first so every log line and problem has the id; Logger before
// anything that logs; AccessLog outside Recoverer so a panic is logged as a
// 500; Authenticate last so the access log (through a shared per-request
// record) still learns the user.

// RequestID gives every request a server-made id (UUIDv7), never the
// client's: a client's X-Request-ID would otherwise become the id of our log
// lines, problems and stored events, so one client could forge, collide with
// or poison another request's trail. A client's X-Request-ID that is a valid
// client id (clientID: 1 to 128 bytes of printable ASCII) is kept apart, as
// the client request id (ClientRequestIDFrom; logged as client_request_id and
// stored as event metadata clientRequestId), so support can still find a
// client's call by its own id.
//
// The correlation id is meant to span systems, so a client's valid
// X-Correlation-ID is carried as this request's correlation id (event
// metadata correlationId); an invalid or absent one is the request id.
// The server's request id and the correlation id are echoed in the response.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := newID()
		cid := firstValue(r.Header[canonCorrelationID])
		if !clientID(cid) {
			cid = rid
		}
		ids := []string{rid, cid} // one allocation for both header values
		h := w.Header()
		h[canonRequestID] = ids[0:1:1]
		h[canonCorrelationID] = ids[1:2:2]
		ctx := context.WithValue(r.Context(), keyRequestID, rid)
		ctx = context.WithValue(ctx, keyCorrelationID, cid)
		if crid := firstValue(r.Header[canonRequestID]); clientID(crid) {
			ctx = context.WithValue(ctx, keyClientRequestID, crid)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// firstValue is what http.Header.Get returns for a header's values.
func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// RequestIDFrom is the request id of ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

// CorrelationIDFrom is the correlation id of ctx, or "". Commands copy it
// (and the request id, as causation) into event metadata.
func CorrelationIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyCorrelationID).(string)
	return s
}

// ClientRequestIDFrom is the X-Request-ID the client sent, if it was a
// valid client id, or "". It is never the server's request id.
func ClientRequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(keyClientRequestID).(string)
	return s
}

// clientID reports whether a client-supplied id may be kept: 1 to maxIDLen
// bytes of printable ASCII (no control characters to forge log lines or
// headers with).
func clientID(s string) bool {
	return s != "" && len(s) <= maxIDLen && printable(s)
}

func newID() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	return uuid.NewString() // v4 if the v7 clock source failed
}

// Logger puts a per-request child of base in the context (read it with
// zerolog.Ctx) carrying request_id and correlation_id (and
// client_request_id when the client sent one). Mount it after
// RequestID.
func Logger(base zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := base.With()
			if id := RequestIDFrom(r.Context()); id != "" {
				c = c.Str("request_id", id)
			}
			if id := CorrelationIDFrom(r.Context()); id != "" {
				c = c.Str("correlation_id", id)
			}
			if id := ClientRequestIDFrom(r.Context()); id != "" {
				c = c.Str("client_request_id", id)
			}
			l := c.Logger()
			next.ServeHTTP(w, r.WithContext(l.WithContext(r.Context())))
		})
	}
}

// requestInfo is filled in by inner middleware (Authenticate) for the
// access log, which runs outside them and cannot see their contexts. route
// caches the chi route pattern once routing is done (routeOf), so that the
// metrics and the access log build it once per request.
type requestInfo struct {
	userID string
	role   domain.Role
	route  string
	routed bool
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(keyRequestInfo).(*requestInfo)
	return info
}

// ClientIPFunc returns the client address of a request.
type ClientIPFunc func(*http.Request) string

// ClientIP returns the function that finds a request's client IP. With
// trustProxy false it is the TCP peer (r.RemoteAddr), which a client cannot
// forge. With trustProxy true (only behind a reverse proxy that every request
// passes through) it is the rightmost valid X-Forwarded-For entry, the one
// the proxy directly in front of us appended, else X-Real-IP, else the peer.
// Headers are spoofable by any client that reaches the server directly,
// so never enable trustProxy on a server exposed without the proxy.
func ClientIP(trustProxy bool) ClientIPFunc {
	return func(r *http.Request) string {
		if trustProxy {
			if ip, ok := lastForwardedFor(r.Header.Values("X-Forwarded-For")); ok {
				return ip
			}
			if ip, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
				return ip.Unmap().WithZone("").String()
			}
		}
		return remoteIP(r.RemoteAddr)
	}
}

func lastForwardedFor(values []string) (string, bool) {
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			p := strings.TrimSpace(parts[j])
			if p == "" {
				continue
			}
			ip, err := netip.ParseAddr(p)
			if err != nil {
				return "", false // garbage at the trusted end: trust nothing
			}
			return ip.Unmap().WithZone("").String(), true
		}
	}
	return "", false
}

func remoteIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().WithZone("").String()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// AccessLog logs one line per request when it ends: method, chi route
// pattern, path, status, bytes, duration, remote ip and, if authenticated,
// user id and role. Info below 500, error from 500. clientIP may be nil
// (r.RemoteAddr).
func AccessLog(clientIP ClientIPFunc) func(http.Handler) http.Handler {
	if clientIP == nil {
		clientIP = ClientIP(false)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			info := &requestInfo{}
			r = r.WithContext(context.WithValue(r.Context(), keyRequestInfo, info))
			ww := wrapWriter(w, r)
			defer func() {
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				log := zerolog.Ctx(r.Context())
				ev := log.Info()
				if status >= 500 {
					ev = log.Error()
				}
				ev = ev.Str("method", r.Method).
					Str("route", routeOf(r)).
					Str("path", r.URL.Path).
					Int("status", status).
					Int("bytes", ww.BytesWritten()).
					Dur("duration", time.Since(start)).
					Str("remote_ip", clientIP(r))
				if info.userID != "" {
					ev = ev.Str("user_id", info.userID).Str("role", string(info.role))
				}
				ev.Msg("request")
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// routeOf is RoutePattern(r), computed once per request when AccessLog's
// record is in the context. Call it only after routing is done.
func routeOf(r *http.Request) string {
	info := requestInfoFrom(r.Context())
	if info == nil {
		return RoutePattern(r)
	}
	if !info.routed {
		info.route, info.routed = RoutePattern(r), true
	}
	return info.route
}

// wrapWriter returns w if it already records the status and size (an
// outer AccessLog, Recoverer or Metrics wrapped it: every write of the
// inner handlers passes through it), else a new wrapper.
func wrapWriter(w http.ResponseWriter, r *http.Request) middleware.WrapResponseWriter {
	if ww, ok := w.(middleware.WrapResponseWriter); ok {
		return ww
	}
	return middleware.NewWrapResponseWriter(w, r.ProtoMajor)
}

// RoutePattern is the chi route pattern that served r ("/api/v1/doctors/{id}"),
// or "" when no route matched. It is complete once routing is done, i.e.
// after next.ServeHTTP in a middleware mounted with Router.Use.
func RoutePattern(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		return rctx.RoutePattern()
	}
	return ""
}

// Recoverer turns a panic into a logged 500 internal problem; the server
// keeps running. A panic is a bug: it is logged at error level with its
// stack. http.ErrAbortHandler is re-panicked (net/http's way to abort a
// response). If the handler already started its response, the status cannot
// change any more and only the log records the panic.
func Recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := wrapWriter(w, r)
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(rec)
			}
			zerolog.Ctx(r.Context()).Error().
				Str("panic", fmt.Sprint(rec)).
				Bytes("stack", debug.Stack()).
				Str("method", r.Method).Str("path", r.URL.Path).
				Msg("panic while serving request (bug)")
			if ww.Status() == 0 { // nothing sent yet
				WriteProblem(w, r, problem(http.StatusInternalServerError, CodeInternal, internalDetail))
			}
		}()
		next.ServeHTTP(ww, r)
	})
}

// SecurityHeaders sets headers every API response carries:
// X-Content-Type-Options: nosniff, Cache-Control: no-store (a handler may
// override it for a cacheable public read), Referrer-Policy: no-referrer,
// X-Frame-Options: DENY and a Content-Security-Policy that forbids
// everything (JSON is never a document to render).
//
// The keys are canonical and set directly, the five values in one
// allocation (each a slice of capacity 1, so that an Add appends to a copy).
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := new([5]string)
		*v = securityValues
		h := w.Header()
		h["X-Content-Type-Options"] = v[0:1:1]
		h["Cache-Control"] = v[1:2:2]
		h["Referrer-Policy"] = v[2:3:3]
		h["X-Frame-Options"] = v[3:4:4]
		h["Content-Security-Policy"] = v[4:5:5]
		next.ServeHTTP(w, r)
	})
}

var securityValues = [5]string{"nosniff", "no-store", "no-referrer", "DENY", "default-src 'none'; frame-ancestors 'none'"}
