package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A handlerFunc answers a returned error exactly as WriteError does (status,
// problem body, headers, one log line for a 5xx), and leaves the answer of a
// handler that returns nil alone.
func TestHandlerFunc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		written bool // the handler answers itself
		status  int
		code    string
		logged  bool
	}{
		{"nil after a reply", nil, true, http.StatusCreated, "", false},
		{"4xx problem", errSlotTaken, false, http.StatusConflict, "slot_unavailable", false},
		{"query error", ErrInvalidQuery.WithDetail("days must be a number"), false, http.StatusBadRequest, CodeInvalidQuery, false},
		{"401 keeps its challenge", ErrTokenMissing, false, http.StatusUnauthorized, CodeUnauthorized, false},
		{"5xx logged once", errors.New("boom"), false, http.StatusInternalServerError, CodeInternal, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			log := newLogger(&logs)
			req := httptest.NewRequest(http.MethodGet, "/api/v1/doctors", nil)
			req = req.WithContext(log.WithContext(context.WithValue(req.Context(), keyRequestID, "req-1")))
			h := handle(func(w http.ResponseWriter, r *http.Request) error {
				if tt.written {
					return reply(w, http.StatusCreated, map[string]string{"ok": "yes"})
				}
				return tt.err
			})
			rec := serve(h, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if tt.written {
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" || rec.Body.String() != "{\"ok\":\"yes\"}\n" {
					t.Errorf("reply changed: %q %q", ct, rec.Body)
				}
			} else {
				// The same answer WriteError gives for the same error.
				want := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, tt.err) }),
					req.WithContext(context.WithValue(context.Background(), keyRequestID, "req-1")))
				if p := decodeProblem(t, rec); p.Code != tt.code || p.RequestID != "req-1" {
					t.Errorf("problem %+v, want code %q", p, tt.code)
				}
				if rec.Body.String() != want.Body.String() {
					t.Errorf("body %s, WriteError writes %s", rec.Body, want.Body)
				}
				for _, k := range []string{"Content-Type", "WWW-Authenticate"} {
					if rec.Header().Get(k) != want.Header().Get(k) {
						t.Errorf("%s %q, WriteError sets %q", k, rec.Header().Get(k), want.Header().Get(k))
					}
				}
			}
			if n := len(logs.withMessage(t, "request failed")); (n == 1) != tt.logged || n > 1 {
				t.Errorf("%d \"request failed\" log lines, want logged=%v (once)", n, tt.logged)
			}
		})
	}
}

// A handlerFunc is an http.Handler on its own, too.
func TestHandlerFuncIsHandler(t *testing.T) {
	t.Parallel()
	var h http.Handler = handlerFunc(func(http.ResponseWriter, *http.Request) error { return ErrRouteNotFound })
	rec := serve(h, httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil))
	if p := decodeProblem(t, rec); rec.Code != http.StatusNotFound || p.Code != CodeNotFound {
		t.Errorf("status %d, problem %+v", rec.Code, p)
	}
}
