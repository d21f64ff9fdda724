// Package obs connects Prescripto's structured logs to error reporting:
// with SENTRY_DSN set, every log entry at error level or above (a 500, a
// recovered panic, a failed projection, a dropped subscription) is also
// sent to Sentry, tagged with the request and correlation ids it carries.
package obs

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/rs/zerolog"
)

// SentryConfig configures NewSentryWriter.
type SentryConfig struct {
	DSN         string
	Environment string
	Release     string
	// ServerName names the process (role and host).
	ServerName string
	// Transport replaces the HTTP transport (tests).
	Transport sentry.Transport
}

// SentryWriter is a zerolog.LevelWriter that reports error-level entries
// to Sentry; other entries are ignored. Combine it with the log's own
// writer through zerolog.MultiLevelWriter.
type SentryWriter struct {
	hub *sentry.Hub
}

// NewSentryWriter makes a client for cfg.DSN (an invalid DSN is an error).
func NewSentryWriter(cfg SentryConfig) (*SentryWriter, error) {
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn: cfg.DSN, Environment: cfg.Environment, Release: cfg.Release, ServerName: cfg.ServerName,
		Transport: cfg.Transport, AttachStacktrace: false,
	})
	if err != nil {
		return nil, fmt.Errorf("SENTRY_DSN: %w", err)
	}
	return &SentryWriter{hub: sentry.NewHub(client, sentry.NewScope())}, nil
}

// Write implements io.Writer (entries without a level are not reported).
func (w *SentryWriter) Write(p []byte) (int, error) { return len(p), nil }

// fields of a log entry that become tags rather than extra data.
var tagFields = []string{"request_id", "correlation_id", "service", "role", "projection", "method", "path", "code"}

// WriteLevel implements zerolog.LevelWriter.
func (w *SentryWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < zerolog.ErrorLevel || l == zerolog.NoLevel || l == zerolog.Disabled {
		return len(p), nil
	}
	var fields map[string]any
	if err := json.Unmarshal(p, &fields); err != nil {
		fields = map[string]any{"raw": string(p)}
	}
	ev := sentry.NewEvent()
	ev.Level = sentry.LevelError
	if l >= zerolog.FatalLevel {
		ev.Level = sentry.LevelFatal
	}
	ev.Logger = "zerolog"
	ev.Timestamp = time.Now()
	msg, _ := fields[zerolog.MessageFieldName].(string)
	errText, _ := fields[zerolog.ErrorFieldName].(string)
	ev.Message = msg
	if errText != "" {
		ev.Message = msg + ": " + errText
		ev.Exception = []sentry.Exception{{Type: msg, Value: errText}}
	}
	// Group by what happened, not by the ids in the error text.
	if msg != "" {
		ev.Fingerprint = []string{msg}
	}
	ev.Tags = map[string]string{}
	for _, k := range tagFields {
		if v, ok := fields[k]; ok {
			ev.Tags[k] = fmt.Sprint(v)
			delete(fields, k)
		}
	}
	delete(fields, zerolog.MessageFieldName)
	delete(fields, zerolog.LevelFieldName)
	delete(fields, zerolog.TimestampFieldName)
	ev.Contexts = map[string]sentry.Context{"log": fields}
	w.hub.CaptureEvent(ev)
	return len(p), nil
}

// Flush waits for queued reports to be sent, at most timeout.
func (w *SentryWriter) Flush(timeout time.Duration) bool { return w.hub.Flush(timeout) }
