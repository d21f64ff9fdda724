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

	"github.com/prescripto/prescripto/eventstore/chain"
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

// verifyListed is how many legacy streams and broken links audit verify
// prints as text (--json prints them all).
const verifyListed = 20

// auditVerify checks every stream's hash chain, reading the log a page at
// a time (one entry a stream in memory), and prints the report and the
// root; with an anchor, it checks the root at the anchor's position.
func auditVerify(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit verify", stdout, stderr)
	anchorFlag := fs.String("anchor", "", "ROOT@POSITION, a root printed by an earlier audit verify: prove the log up to POSITION is unchanged")
	asJSON := fs.Bool("json", false, "print the report as one JSON object (the shape of GET /api/v1/audit/verify)")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (the embedded event store)")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	var o chain.Options
	if *anchorFlag != "" {
		a, err := chain.ParseAnchor(*anchorFlag)
		if err != nil {
			return fmt.Errorf("audit verify: --anchor: %w", err)
		}
		o.Anchor = &a
	}
	ctx, l, done, err := openAuditLog(cfg, stderr)
	if err != nil {
		return err
	}
	defer done()
	rep, err := l.Verify(ctx, o)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if *asJSON {
		out := newJSONLines(stdout)
		if err := out.write(rep); err != nil {
			return err
		}
		if err := out.flush(); err != nil {
			return err
		}
	} else {
		printVerify(stdout, rep)
	}
	switch {
	case rep.BrokenStreams > 0:
		return fmt.Errorf("audit verify: %d stream(s) with a broken hash chain: the log was changed", rep.BrokenStreams)
	case rep.Anchor != nil && !rep.Anchor.Matches:
		return fmt.Errorf("audit verify: the anchor does not match: %s", rep.Anchor.Reason)
	case !rep.OK:
		return errors.New("audit verify: the log did not verify")
	}
	return nil
}

func printVerify(w io.Writer, rep chain.Report) {
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format+"\n", args...) }
	p("checked %d events in %d streams, up to position %d", rep.Events, rep.Streams, rep.Position)
	p("root %s@%d", rep.Root, rep.Position)
	if rep.Unhashed > 0 {
		p("unhashed: %d events in %d streams were written before the hash chain; each stream's chain covers them from revision 0 and is stored from its first hashed event:", rep.Unhashed, rep.LegacyStreams)
		for i, l := range rep.Legacy {
			if i == verifyListed {
				p("  ... and %d more streams (--json lists them all)", rep.LegacyStreams-verifyListed)
				break
			}
			if l.ChainFrom == nil {
				p("  %s: %d unhashed, no hashed event yet", l.Stream, l.Unhashed)
			} else {
				p("  %s: %d unhashed, chain stored from revision %d", l.Stream, l.Unhashed, *l.ChainFrom)
			}
		}
	}
	for i, b := range rep.Broken {
		if i == verifyListed {
			p("  ... and %d more broken streams (--json lists them all)", rep.BrokenStreams-verifyListed)
			break
		}
		p("BROKEN: stream %s, revision %d (position %d): %s", b.Stream, b.Revision, b.Position, b.Reason)
	}
	if a := rep.Anchor; a != nil {
		if a.Matches {
			p("anchor %s@%d: matches: nothing up to position %d changed", a.Root, a.Position, a.Position)
		} else {
			p("ANCHOR %s@%d DOES NOT MATCH: %s", a.Root, a.Position, a.Reason)
		}
	}
	if rep.OK {
		p("ok")
	} else {
		p("FAILED")
	}
}
