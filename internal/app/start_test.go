package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/internal/app"
)

// A process that starts on an existing log answers no read from read
// models that have not reached the log's head as of its start: reads wait
// (bounded, then 503 not_caught_up) and /readyz is 503 until then, never a
// partial picture.
func TestReadsWaitForTheHeadAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := func() app.Options {
		return app.Options{DataDir: dir, JWTSecret: []byte(strings.Repeat("s", 64)), BcryptCost: 4, Logger: zerolog.Nop(), MaxWait: 200 * time.Millisecond}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := app.New(ctx, opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.SeedDemo(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	a, err := app.New(ctx, opts())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		a.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	// Not running yet: the in-memory read models hold nothing.
	if w := get("/api/v1/doctors"); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "not_caught_up") {
		t.Fatalf("doctors before the read models caught up: %d %s", w.Code, w.Body)
	}
	if w := get("/readyz"); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "caught_up") {
		t.Fatalf("readyz before the read models caught up: %d %s", w.Code, w.Body)
	}

	go func() { _ = a.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for get("/readyz").Code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %s", get("/readyz").Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w := get("/api/v1/doctors")
	var page struct {
		Doctors []json.RawMessage `json:"doctors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != http.StatusOK {
		t.Fatalf("doctors: %d %s", w.Code, w.Body)
	}
	if len(page.Doctors) != len(app.DemoCatalogue) {
		t.Fatalf("%d doctors listed after start, want %d", len(page.Doctors), len(app.DemoCatalogue))
	}
}
