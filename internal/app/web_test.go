package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/web"
)

// The serving process puts the web client in front of the API: / and client
// routes are the app's HTML under its own Content-Security-Policy, while
// /api/, /healthz, /readyz, /metrics and the sandbox stay the server's own.
func TestWebClientInFrontOfTheAPI(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	e.CaughtUp(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(e.Server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, path := range []string{"/", "/doctors", "/doctors/some-id", "/my-appointments"} {
		res, body := get(path)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `<div id="root">`) {
			t.Errorf("GET %s: %d %s, not the client", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if res.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", path, res.Header.Get("Content-Security-Policy"))
		}
	}
	for path, want := range map[string]string{
		"/healthz":                    "application/json",
		"/readyz":                     "application/json",
		"/metrics":                    "text/plain",
		"/api/v1/doctors":             "application/json",
		"/api/v1/no-such-route":       "application/problem+json",
		"/api/v1/openapi.yaml":        "yaml",
		"/api/v1/doctors/missing/xyz": "application/problem+json",
	} {
		res, _ := get(path)
		if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, want) {
			t.Errorf("GET %s: Content-Type %q, want %s (shadowed by the client?)", path, ct, want)
		}
	}
}
