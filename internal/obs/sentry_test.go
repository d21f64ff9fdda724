package obs_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/internal/obs"
)

// recorder is a sentry.Transport that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (r *recorder) Configure(sentry.ClientOptions)        {}
func (r *recorder) Flush(time.Duration) bool              { return true }
func (r *recorder) FlushWithContext(context.Context) bool { return true }
func (r *recorder) Close()                                {}
func (r *recorder) SendEvent(e *sentry.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}
func (r *recorder) all() []*sentry.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*sentry.Event(nil), r.events...)
}

func TestErrorsGoToSentryWithTheirIDs(t *testing.T) {
	rec := &recorder{}
	sw, err := obs.NewSentryWriter(obs.SentryConfig{DSN: "https://public@sentry.example.com/1", Environment: "test", Transport: rec})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := zerolog.New(zerolog.MultiLevelWriter(&out, sw)).With().Str("service", "prescripto").Logger()

	log.Info().Msg("listening")
	log.Warn().Msg("slow")
	log.Error().Err(errors.New("mongo: server selection timeout")).
		Str("request_id", "req-1").Str("correlation_id", "corr-1").Int("status", 500).
		Msg("request failed")

	if !strings.Contains(out.String(), "listening") || !strings.Contains(out.String(), "request failed") {
		t.Fatalf("the log itself lost entries: %s", out.String())
	}
	evs := rec.all()
	if len(evs) != 1 {
		t.Fatalf("sentry got %d events, want 1 (error level only)", len(evs))
	}
	e := evs[0]
	if e.Level != sentry.LevelError || e.Environment != "test" {
		t.Errorf("level %q environment %q", e.Level, e.Environment)
	}
	if e.Message != "request failed: mongo: server selection timeout" {
		t.Errorf("message %q", e.Message)
	}
	if e.Tags["request_id"] != "req-1" || e.Tags["correlation_id"] != "corr-1" || e.Tags["service"] != "prescripto" {
		t.Errorf("tags %v", e.Tags)
	}
	if got := e.Contexts["log"]["status"]; got != float64(500) {
		t.Errorf("log context status = %v", got)
	}
	if len(e.Fingerprint) != 1 || e.Fingerprint[0] != "request failed" {
		t.Errorf("fingerprint %v", e.Fingerprint)
	}
}

func TestInvalidDSNIsAnError(t *testing.T) {
	if _, err := obs.NewSentryWriter(obs.SentryConfig{DSN: "not a dsn"}); err == nil || !strings.Contains(err.Error(), "SENTRY_DSN") {
		t.Fatalf("err = %v, want an error naming SENTRY_DSN", err)
	}
}
