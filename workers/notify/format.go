package notify

import (
	"bytes"
	"context"
	"net/mail"
	"strings"
	"unicode"
)

// Format renders m as the RFC 5322 message (CRLF line ends) that the SMTP
// mailer sends, from the sender from.
func Format(m Message, from string) (string, error) {
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return "", err
	}
	msg, err := buildMsg(m, addr)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Clean makes a user-supplied value safe to put in a header or a line of
// a mail: control characters (CR, LF, NUL, ESC of ANSI escapes, the C1
// range) become spaces or go, and the bidirectional overrides and
// isolates (which can make a text read backwards) go. HTML is escaped
// separately by html/template.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r' || r == '\n' || r == '\t':
			return ' '
		case r == unicode.ReplacementChar:
			return r
		case unicode.IsControl(r):
			return -1
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
			return -1
		}
		return r
	}, s)
}

// Discard is a Mailer that sends nothing (for deployments without mail).
type Discard struct{}

// Send implements Mailer.
func (Discard) Send(context.Context, Message) error { return nil }
