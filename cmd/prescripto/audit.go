package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/projections/audit"
)

// The auditors' commands read the event log directly (the embedded store
// in the data dir, or EventStoreDB with ESDB_URL) and write JSON lines: one
// event an line, in log order, as GET /api/v1/audit/streams/{stream}/events
// shows them.

// openAuditLog opens the log for an audit command; ctx ends on SIGINT or
// SIGTERM.
func openAuditLog(cfg Config, stderr io.Writer) (context.Context, *audit.Log, func(), error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	opts := cfg.appOptions(nil, newLogger(cfg, stderr))
	l, closeLog, err := app.OpenAudit(ctx, opts)
	if errors.Is(err, sqlite.ErrLocked) {
		stop()
		return nil, nil, nil, fmt.Errorf("%w: stop the server on %s first, or ask its /api/v1/audit routes as an auditor", err, cfg.DataDir)
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return ctx, l, func() { _ = closeLog(); stop() }, nil
}

// jsonLines writes values as JSON lines through a buffer.
type jsonLines struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newJSONLines(w io.Writer) *jsonLines {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &jsonLines{w: bw, enc: json.NewEncoder(bw)}
}

func (j *jsonLines) write(v any) error { return j.enc.Encode(v) }
func (j *jsonLines) flush() error      { return j.w.Flush() }

// history prints every event that touched one appointment.
func history(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("history", stdout, stderr)
	id := fs.String("appointment", "", "the appointment's id")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (the embedded event store)")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if *id == "" {
		return errors.New("history: --appointment is required")
	}
	ctx, l, done, err := openAuditLog(cfg, stderr)
	if err != nil {
		return err
	}
	defer done()
	doctorID, err := l.FindAppointment(ctx, *id)
	if err != nil {
		return fmt.Errorf("history: appointment %s: %w", *id, err)
	}
	evs, err := l.AppointmentHistory(ctx, doctorID, *id)
	if err != nil {
		return fmt.Errorf("history: appointment %s: %w", *id, err)
	}
	out := newJSONLines(stdout)
	for _, e := range evs {
		if err := out.write(e); err != nil {
			return err
		}
	}
	return out.flush()
}

// auditExport prints the log (or one stream of it) as JSON lines, a page
// of events in memory at a time.
func auditExport(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit export", stdout, stderr)
	stream := fs.String("stream", "", "only this stream (such as doctor-0190...); default the whole log")
	from := fs.Uint64("from", 0, "only events at or after this log position")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (the embedded event store)")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	ctx, l, done, err := openAuditLog(cfg, stderr)
	if err != nil {
		return err
	}
	defer done()
	out := newJSONLines(stdout)
	if err := l.Export(ctx, *stream, *from, func(e audit.Event) error { return out.write(e) }); err != nil {
		_ = out.flush()
		return fmt.Errorf("audit export: %w", err)
	}
	return out.flush()
}
