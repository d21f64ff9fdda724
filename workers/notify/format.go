package notify

import (
	"context"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"
)

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
