package notify

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DirMailer writes each message as an RFC 5322 file <id>.eml into Dir: the
// embedded default's outbox. A message whose file exists is not written
// again. Files appear atomically (written aside, then renamed) but are not
// fsynced one by one: the outbox is the embedded default's stand-in for SMTP,
// and a process restart loses nothing; a power cut may (an fsync per mail
// cost more CPU than the booking itself, see docs/performance.md).
type DirMailer struct {
	Dir  string
	From string // e.g. "Prescripto <no-reply@prescripto.local>"
}

// Send implements Mailer.
func (d DirMailer) Send(_ context.Context, m Message) error {
	if m.ID == "" || strings.ContainsAny(m.ID, `/\.`) {
		return ErrNoEventID
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(d.Dir, m.ID+".eml")
	if _, err := os.Stat(final); err == nil {
		return nil // sent before
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(d.Dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(Format(m, d.from())); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}

func (d DirMailer) from() string {
	if d.From != "" {
		return d.From
	}
	return "Prescripto <no-reply@prescripto.local>"
}

// Format renders m as an RFC 5322 message with CRLF line ends.
func Format(m Message, from string) string {
	to := (&mail.Address{Name: m.ToName, Address: m.To}).String()
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	var b strings.Builder
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", to)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", date.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+m.ID+"@prescripto.local>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `text/plain; charset="utf-8"`)
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(m.Body, "\n", "\r\n"))
	return b.String()
}

// Discard is a Mailer that sends nothing (for deployments without mail).
type Discard struct{}

// Send implements Mailer.
func (Discard) Send(context.Context, Message) error { return nil }
