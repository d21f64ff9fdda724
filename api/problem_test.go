package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/domain"
)

var (
	errSlotTaken = domain.NewError(domain.ErrConflict, "slot_unavailable", "the slot is already taken")
	errOutside   = domain.NewError(domain.ErrUnprocessable, "outside_schedule", "the slot is not on the doctor's schedule")
	errBadCreds  = domain.NewError(domain.ErrUnauthorized, "invalid_credentials", "invalid email or password")
)

func TestProblemFor(t *testing.T) {
	t.Parallel()
	secret := "dial tcp 10.0.0.7:27017: password=hunter2"
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		detail     string // exact, if set
		notContain string
	}{
		{"invalid kind", domain.ErrInvalid, 400, "invalid_input", "The request is invalid.", ""},
		{"unauthorized kind", domain.ErrUnauthorized, 401, "unauthorized", "", ""},
		{"forbidden kind", domain.ErrForbidden, 403, "forbidden", "", ""},
		{"not found kind", domain.ErrNotFound, 404, "not_found", "", ""},
		{"conflict kind", domain.ErrConflict, 409, "conflict", "", ""},
		{"unprocessable kind", domain.ErrUnprocessable, 422, "unprocessable", "", ""},
		{"unavailable kind", domain.ErrUnavailable, 503, "unavailable", "", ""},
		{"kind wrapped with internals", fmt.Errorf("load stream doctor-1: %w: %s", domain.ErrUnavailable, secret), 503, "unavailable", "", "hunter2"},
		{"domain error", errSlotTaken, 409, "slot_unavailable", "the slot is already taken", ""},
		{"domain error wrapped twice", fmt.Errorf("book: %w", fmt.Errorf("append: %w", errSlotTaken)), 409, "slot_unavailable", "the slot is already taken", "append"},
		{"domain detail", domain.Detail(errOutside, "no hours on Sunday"), 422, "outside_schedule", "no hours on Sunday", ""},
		{"domain invalid helper", domain.Invalid("start must be RFC 3339"), 400, "invalid_input", "start must be RFC 3339", ""},
		{"invalid credentials", errBadCreds, 401, "invalid_credentials", "", ""},
		{"domain error without code", &domain.Error{Kind: domain.ErrNotFound, Message: "no such doctor"}, 404, "not_found", "no such doctor", ""},
		{"domain error without kind", &domain.Error{Code: "weird", Message: secret}, 500, "internal", internalDetail, "hunter2"},
		{"joined", errors.Join(errors.New("x"), domain.ErrNotFound), 404, "not_found", "", ""},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), 503, "timeout", "", ""},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), 499, "client_closed_request", "", ""},
		{"unknown", errors.New(secret), 500, "internal", internalDetail, "hunter2"},
		{"nil", nil, 500, "internal", internalDetail, ""},
		{"api error", ErrBodyTooLarge, 413, "body_too_large", "", ""},
		{"api error wrapped", fmt.Errorf("decode: %w", ErrUnknownField.WithDetail("Field %q is not accepted here.", "x")), 400, "unknown_field", `Field "x" is not accepted here.`, ""},
		{"api error with cause", ErrMalformedJSON.WithCause(errors.New(secret)), 400, "malformed_json", "", "hunter2"},
		{"unsupported media", ErrUnsupportedMediaType, 415, "unsupported_media_type", "", ""},
		{"rate limited", RateLimited(60e9), 429, "rate_limited", "", ""},
		{"token missing", ErrTokenMissing, 401, "unauthorized", "", ""},
		{"token invalid", ErrTokenInvalid, 401, "invalid_token", "", ""},
		{"wrong role", ErrWrongRole, 403, "forbidden", "", ""},
		{"route not found", ErrRouteNotFound, 404, "not_found", "", ""},
		{"method not allowed", ErrMethodNotAllowed, 405, "method_not_allowed", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ProblemFor(tt.err)
			if p.Status != tt.status || p.Code != tt.code {
				t.Fatalf("ProblemFor = %d %q, want %d %q", p.Status, p.Code, tt.status, tt.code)
			}
			if p.Type != "https://prescripto.dev/problems/"+tt.code {
				t.Errorf("type %q", p.Type)
			}
			if p.Title == "" || p.Detail == "" {
				t.Errorf("empty title or detail: %+v", p)
			}
			if tt.detail != "" && p.Detail != tt.detail {
				t.Errorf("detail %q, want %q", p.Detail, tt.detail)
			}
			if tt.notContain != "" && strings.Contains(p.Detail, tt.notContain) {
				t.Errorf("detail %q leaks %q", p.Detail, tt.notContain)
			}
		})
	}
}

func TestHTTPErrorMatching(t *testing.T) {
	t.Parallel()
	e := ErrUnknownField.WithDetail("x").WithFields(FieldError{Field: "x", Code: CodeUnknownField})
	if !errors.Is(e, ErrUnknownField) {
		t.Error("derived error does not match its sentinel")
	}
	if errors.Is(e, ErrMalformedJSON) {
		t.Error("unknown_field matches malformed_json")
	}
	if !errors.Is(e, domain.ErrInvalid) {
		t.Error("a 400 api error is not domain.ErrInvalid")
	}
	if !errors.Is(ErrTokenInvalid, domain.ErrUnauthorized) || !errors.Is(ErrWrongRole, domain.ErrForbidden) {
		t.Error("auth errors do not match their kinds")
	}
	cause := errors.New("cause")
	if !errors.Is(ErrBodyTooLarge.WithCause(cause), cause) {
		t.Error("cause not reachable")
	}
	if ErrUnknownField.Detail != "The request body has an unknown field." || len(ErrUnknownField.Errors) != 0 {
		t.Error("WithDetail/WithFields mutated the sentinel")
	}
	_ = RateLimited(1)
	if ErrRateLimited.Header.Get("Retry-After") != "" {
		t.Error("RateLimited mutated the sentinel")
	}
	if got := RateLimited(1500e6).Header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After for 1.5s = %q, want 2", got)
	}
	if got := RateLimited(0).Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After for 0 = %q, want 1", got)
	}
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		logged     bool
		wwwAuth    string
		retryAfter string
	}{
		{"5xx is logged", errors.New("boom"), 500, "internal", true, "", ""},
		{"503 is logged", domain.ErrUnavailable, 503, "unavailable", true, "", ""},
		{"4xx is not logged", errSlotTaken, 409, "slot_unavailable", false, "", ""},
		{"domain 401 gets a challenge", errBadCreds, 401, "invalid_credentials", false, `Bearer realm="prescripto"`, ""},
		{"invalid token challenge", ErrTokenInvalid, 401, "invalid_token", false, `Bearer realm="prescripto", error="invalid_token"`, ""},
		{"retry after", RateLimited(60e9), 429, "rate_limited", false, "", "60"},
		{"internal cancellation is 503", context.Canceled, 503, "unavailable", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			log := newLogger(&logs)
			req := httptest.NewRequest(http.MethodPost, "/api/v1/appointments?x=1", nil)
			ctx := context.WithValue(req.Context(), keyRequestID, "req-1")
			req = req.WithContext(log.WithContext(ctx))
			rec := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, tt.err) }), req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			p := decodeProblem(t, rec)
			if p.Code != tt.code {
				t.Errorf("code %q, want %q", p.Code, tt.code)
			}
			if p.Instance != "/api/v1/appointments" || p.RequestID != "req-1" {
				t.Errorf("instance %q, requestId %q", p.Instance, p.RequestID)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wwwAuth {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wwwAuth)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			lines := logs.withMessage(t, "request failed")
			if tt.logged {
				if len(lines) != 1 {
					t.Fatalf("%d log lines, want 1", len(lines))
				}
				if lines[0]["level"] != "error" || lines[0]["code"] != tt.code {
					t.Errorf("log line %v", lines[0])
				}
			} else if len(lines) != 0 {
				t.Errorf("4xx logged: %v", lines)
			}
			if strings.Contains(rec.Body.String(), "boom") {
				t.Error("500 leaks the error text")
			}
		})
	}
}

func TestWriteErrorClientGone(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	log := newLogger(&logs)
	ctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/doctors", nil)
	rec := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, r.Context().Err()) }), req)
	if rec.Code != StatusClientClosedRequest {
		t.Fatalf("status %d, want 499", rec.Code)
	}
	if len(logs.lines(t)) != 0 {
		t.Error("a client that went away was logged as an error")
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	r := chi.NewRouter()
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/doctors/{id}", func(w http.ResponseWriter, r *http.Request) {})
		r.Patch("/doctors/{id}", func(w http.ResponseWriter, r *http.Request) {})
	})

	rec := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/nothing", nil))
	if rec.Code != 404 || decodeProblem(t, rec).Code != "not_found" {
		t.Errorf("unknown route: %d %s", rec.Code, rec.Body)
	}
	rec = serve(r, httptest.NewRequest(http.MethodDelete, "/api/v1/doctors/7", nil))
	if rec.Code != 405 || decodeProblem(t, rec).Code != "method_not_allowed" {
		t.Errorf("wrong method: %d %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Allow"); got != "GET, PATCH" {
		t.Errorf("Allow %q, want GET, PATCH", got)
	}
}

func TestWriteProblemHead(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodHead, "/x", nil)
	rec := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, ErrRouteNotFound) }), req)
	if rec.Code != 404 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d with %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestWriteErrorWithoutLogger(t *testing.T) {
	t.Parallel()
	// No logger in the context: zerolog.Ctx gives a disabled logger; nothing panics.
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	rec := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, errors.New("x")) }), req)
	if rec.Code != 500 {
		t.Errorf("status %d", rec.Code)
	}
}
