// Package api is Prescripto's HTTP surface: the chi router and handlers,
// authentication, problem+json errors, request decoding, middleware, metrics
// and the OpenAPI document. It is the only package that knows HTTP: errors
// from the domain and the command handlers reach the client through one
// mapping, ProblemFor.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain"
)

// ProblemTypeBase prefixes a problem's code to make its type URI.
const ProblemTypeBase = "https://prescripto.dev/problems/"

// Problem media type (RFC 9457).
const problemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object. Code is Prescripto's stable
// machine string; Type is ProblemTypeBase + Code.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail"`
	Code     string       `json:"code"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// RequestID lets a client quote the request when it reports a problem.
	RequestID string `json:"requestId,omitempty"`
}

// FieldError names one offending field or query parameter of a 400.
type FieldError struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

// Stable codes of errors raised by package api itself. Domain errors carry
// their own codes (domain.CodeOf); these are the defaults per kind and the
// HTTP-level ones.
const (
	CodeInvalidInput        = "invalid_input"
	CodeUnauthorized        = "unauthorized"
	CodeInvalidToken        = "invalid_token"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeConflict            = "conflict"
	CodeBodyTooLarge        = "body_too_large"
	CodeUnsupportedMedia    = "unsupported_media_type"
	CodeUnprocessable       = "unprocessable"
	CodeRateLimited         = "rate_limited"
	CodeInternal            = "internal"
	CodeUnavailable         = "unavailable"
	CodeTimeout             = "timeout"
	CodeClientClosedRequest = "client_closed_request"
	CodeMalformedJSON       = "malformed_json"
	CodeUnknownField        = "unknown_field"
	CodeInvalidType         = "invalid_type"
	CodeEmptyBody           = "empty_body"
	CodeInvalidQuery        = "invalid_query"
)

// StatusClientClosedRequest is the non-standard status (nginx's 499) recorded
// when the client went away before the answer was ready. Nobody reads that
// response; the status exists so logs and metrics do not count it as a 5xx.
const StatusClientClosedRequest = 499

// HTTPError is an error raised by package api itself (decoding, auth,
// routing, rate limiting) with its exact status and code. Kind, when set, is
// the domain kind it belongs to, so errors.Is(err, domain.ErrInvalid) holds
// for a malformed body too. Header holds response headers that must travel
// with it (WWW-Authenticate, Retry-After, Allow).
//
// The exported Err* values are sentinels: match them with errors.Is (two
// *HTTPError match when status and code agree) and derive specific ones with
// WithDetail, never by mutating them.
type HTTPError struct {
	Status int
	Code   string
	Detail string
	Kind   error
	Errors []FieldError
	Header http.Header
	Err    error // underlying cause, for logs only; never shown to the client
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return e.Code + ": " + e.Detail
}

// Unwrap exposes the domain kind and the cause to errors.Is/As.
func (e *HTTPError) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Is makes a derived error match its sentinel.
func (e *HTTPError) Is(target error) bool {
	t, ok := target.(*HTTPError)
	return ok && t.Status == e.Status && t.Code == e.Code
}

// WithDetail returns a copy of e with a specific detail message.
func (e *HTTPError) WithDetail(format string, args ...any) *HTTPError {
	c := e.clone()
	c.Detail = fmt.Sprintf(format, args...)
	return c
}

// WithFields returns a copy of e listing offending fields.
func (e *HTTPError) WithFields(fields ...FieldError) *HTTPError {
	c := e.clone()
	c.Errors = append([]FieldError(nil), fields...)
	return c
}

// WithCause returns a copy of e that wraps cause (for logs and errors.Is).
func (e *HTTPError) WithCause(cause error) *HTTPError {
	c := e.clone()
	c.Err = cause
	return c
}

// WithHeader returns a copy of e that sets a response header.
func (e *HTTPError) WithHeader(key, value string) *HTTPError {
	c := e.clone()
	c.Header.Set(key, value)
	return c
}

func (e *HTTPError) clone() *HTTPError {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Errors = append([]FieldError(nil), e.Errors...)
	return &c
}

// wwwAuthenticate is the challenge sent with every 401 (RFC 6750).
const wwwAuthenticate = `Bearer realm="prescripto"`

// Errors raised by package api. Use them with WriteError, errors.Is and
// WithDetail.
var (
	// ErrBodyTooLarge: the request body exceeds MaxBodyBytes.
	ErrBodyTooLarge = &HTTPError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
		Detail: "The request body exceeds 1 MiB."}
	// ErrUnsupportedMediaType: a body that is not application/json.
	ErrUnsupportedMediaType = &HTTPError{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
		Detail: "The request body must be application/json."}
	// ErrMalformedJSON: the body is not one JSON value.
	ErrMalformedJSON = &HTTPError{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Kind: domain.ErrInvalid,
		Detail: "The request body is not valid JSON."}
	// ErrUnknownField: the body has a field the API does not know.
	ErrUnknownField = &HTTPError{Status: http.StatusBadRequest, Code: CodeUnknownField, Kind: domain.ErrInvalid,
		Detail: "The request body has an unknown field."}
	// ErrInvalidType: a field of the body has the wrong JSON type.
	ErrInvalidType = &HTTPError{Status: http.StatusBadRequest, Code: CodeInvalidType, Kind: domain.ErrInvalid,
		Detail: "A field of the request body has the wrong type."}
	// ErrEmptyBody: a body was required and none was sent.
	ErrEmptyBody = &HTTPError{Status: http.StatusBadRequest, Code: CodeEmptyBody, Kind: domain.ErrInvalid,
		Detail: "The request body is empty."}
	// ErrInvalidInput: the body parsed but a field is missing or wrong.
	ErrInvalidInput = &HTTPError{Status: http.StatusBadRequest, Code: CodeInvalidInput, Kind: domain.ErrInvalid,
		Detail: "The request is invalid."}
	// ErrInvalidQuery: a query parameter does not parse or is out of range.
	ErrInvalidQuery = &HTTPError{Status: http.StatusBadRequest, Code: CodeInvalidQuery, Kind: domain.ErrInvalid,
		Detail: "A query parameter is invalid."}
	// ErrTokenMissing: the route needs a bearer token and none was sent.
	ErrTokenMissing = &HTTPError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Kind: domain.ErrUnauthorized,
		Detail: "This route needs a bearer token.",
		Header: http.Header{"Www-Authenticate": {wwwAuthenticate}}}
	// ErrTokenInvalid: a token was sent and is malformed, expired, or not ours.
	ErrTokenInvalid = &HTTPError{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Kind: domain.ErrUnauthorized,
		Detail: "The bearer token is invalid or expired.",
		Header: http.Header{"Www-Authenticate": {wwwAuthenticate + `, error="invalid_token"`}}}
	// ErrWrongRole: authenticated, but the role may not use this route.
	ErrWrongRole = &HTTPError{Status: http.StatusForbidden, Code: CodeForbidden, Kind: domain.ErrForbidden,
		Detail: "Your role may not use this route."}
	// ErrRouteNotFound: no route has this path.
	ErrRouteNotFound = &HTTPError{Status: http.StatusNotFound, Code: CodeNotFound, Kind: domain.ErrNotFound,
		Detail: "No route matches this path."}
	// ErrMethodNotAllowed: the path exists, the method does not.
	ErrMethodNotAllowed = &HTTPError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
		Detail: "This route does not accept this method."}
	// ErrRateLimited: too many requests; see RateLimited for Retry-After.
	ErrRateLimited = &HTTPError{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
		Detail: "Too many requests; retry later."}
)

// RateLimited returns ErrRateLimited with a Retry-After of retryAfter
// (rounded up to whole seconds, at least 1).
func RateLimited(retryAfter time.Duration) *HTTPError {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return ErrRateLimited.WithHeader("Retry-After", strconv.Itoa(secs))
}

// kindMapping is the one table from domain kinds to HTTP.
var kindMapping = []struct {
	kind   error
	status int
	code   string
	detail string // shown when the error carries no *domain.Error message
}{
	{domain.ErrInvalid, http.StatusBadRequest, CodeInvalidInput, "The request is invalid."},
	{domain.ErrUnauthorized, http.StatusUnauthorized, CodeUnauthorized, "Authentication failed."},
	{domain.ErrForbidden, http.StatusForbidden, CodeForbidden, "You may not do this."},
	{domain.ErrNotFound, http.StatusNotFound, CodeNotFound, "The resource does not exist."},
	{domain.ErrConflict, http.StatusConflict, CodeConflict, "The request conflicts with the current state; reload and retry."},
	{domain.ErrUnprocessable, http.StatusUnprocessableEntity, CodeUnprocessable, "The request is well-formed but cannot be carried out."},
	{domain.ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable, "A dependency is unavailable; retry later."},
}

// internalDetail is all a client learns about an unexpected error.
const internalDetail = "An unexpected error occurred. It has been logged; quote the request id when reporting it."

// ProblemFor maps an error to a problem. It is the only place where errors
// become HTTP statuses, and it matches with errors.Is/As only:
//
//   - *HTTPError (raised by this package): its own status, code and detail.
//   - a domain kind (domain.ErrInvalid 400, ErrUnauthorized 401,
//     ErrForbidden 403, ErrNotFound 404, ErrConflict 409,
//     ErrUnprocessable 422, ErrUnavailable 503): code from domain.CodeOf,
//     else the kind's default; detail is the *domain.Error's message (domain
//     messages are written for users), else a generic sentence. The text of
//     any wrapping error is never shown.
//   - context.DeadlineExceeded: 503 "timeout" (a dependency or a bounded wait
//     took too long; retrying may succeed).
//   - context.Canceled: 499 "client_closed_request". In a handler this almost
//     always means the client disconnected; nobody reads the answer, and
//     using a 4xx keeps it out of the 5xx alerts. (WriteError turns a
//     cancellation that did not come from the request itself into a 503.)
//   - anything else: 500 "internal" with a generic detail that leaks nothing.
func ProblemFor(err error) Problem {
	if err == nil {
		return problem(http.StatusInternalServerError, CodeInternal, internalDetail)
	}
	var he *HTTPError
	if errors.As(err, &he) {
		p := problem(he.Status, he.Code, he.Detail)
		p.Errors = append([]FieldError(nil), he.Errors...)
		return p
	}
	var de *domain.Error
	hasDomain := errors.As(err, &de)
	for _, m := range kindMapping {
		var matched bool
		if hasDomain {
			matched = de.Kind != nil && errors.Is(de.Kind, m.kind)
		} else {
			matched = errors.Is(err, m.kind)
		}
		if !matched {
			continue
		}
		code, detail := m.code, m.detail
		if hasDomain {
			if de.Code != "" {
				code = de.Code
			}
			if de.Message != "" {
				detail = de.Message
			}
		}
		return problem(m.status, code, detail)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return problem(http.StatusServiceUnavailable, CodeTimeout, "The request took too long; retry later.")
	case errors.Is(err, context.Canceled):
		return problem(StatusClientClosedRequest, CodeClientClosedRequest, "The client closed the request.")
	}
	return problem(http.StatusInternalServerError, CodeInternal, internalDetail)
}

func problem(status int, code, detail string) Problem {
	return Problem{
		Type:   ProblemTypeBase + code,
		Title:  statusTitle(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

func statusTitle(status int) string {
	if status == StatusClientClosedRequest {
		return "Client Closed Request"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// WriteProblem writes p as application/problem+json. Empty Type, Title,
// Instance and RequestID are filled in from the code, the status and the
// request.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Code == "" {
		p.Code = CodeInternal
	}
	if p.Type == "" {
		p.Type = ProblemTypeBase + p.Code
	}
	if p.Title == "" {
		p.Title = statusTitle(p.Status)
	}
	if r != nil {
		if p.Instance == "" {
			p.Instance = r.URL.Path
		}
		if p.RequestID == "" {
			p.RequestID = RequestIDFrom(r.Context())
		}
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Problem has only strings and ints
		body = []byte(`{"type":"` + ProblemTypeBase + CodeInternal + `","title":"Internal Server Error","status":500,"code":"internal"}`)
	}
	h := w.Header()
	h.Set("Content-Type", problemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(p.Status)
	if r != nil && r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(append(body, '\n'))
}

// WriteError maps err with ProblemFor and writes it, with the headers an
// *HTTPError carries (and WWW-Authenticate on every 401). A 5xx is logged
// here, once, at error level with the request's logger (zerolog.Ctx); the
// client sees only the generic problem.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := ProblemFor(err)
	if p.Status == StatusClientClosedRequest && r.Context().Err() == nil {
		// Canceled, but not by this request's client: an internal
		// cancellation (shutdown, a dependency's context).
		p = problem(http.StatusServiceUnavailable, CodeUnavailable, "The request was cancelled; retry later.")
	}
	var he *HTTPError
	if errors.As(err, &he) {
		for k, vs := range he.Header {
			if w.Header().Get(k) == "" { // a middleware may have set a more precise value
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
		}
	}
	if p.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	}
	if p.Status >= 500 {
		zerolog.Ctx(r.Context()).Error().Err(err).
			Int("status", p.Status).Str("code", p.Code).
			Str("method", r.Method).Str("path", r.URL.Path).
			Msg("request failed")
	}
	WriteProblem(w, r, p)
}

// NotFound answers 404 not_found problem; install it with chi's
// Router.NotFound.
func NotFound(w http.ResponseWriter, r *http.Request) {
	// A miss under a mounted sub-router leaves its "/prefix/*" in the route
	// patterns; clear them so logs and metrics label the miss as unmatched.
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		rctx.RoutePatterns = rctx.RoutePatterns[:0]
	}
	WriteError(w, r, ErrRouteNotFound)
}

// MethodNotAllowed answers 405 method_not_allowed with an Allow header;
// install it with chi's Router.MethodNotAllowed. chi does not pass the
// allowed methods to a custom handler, so they are recomputed from the
// routing tree.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	err := ErrMethodNotAllowed
	if allow := allowedMethods(r); allow != "" {
		err = err.WithHeader("Allow", allow)
	}
	WriteError(w, r, err)
}

// allowedMethods lists the methods the router accepts for r's path.
func allowedMethods(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return ""
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if rctx.Routes.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}
