// Package ical writes RFC 5545 calendars of appointments: the invitations
// attached to mails and the calendars the API serves.
package ical

import (
	"strconv"
	"strings"
	"time"
)

// Event is one appointment in a calendar.
type Event struct {
	// UID is stable per appointment (the appointment id); Sequence grows
	// with each reschedule.
	UID      string
	Sequence int
	Start    time.Time
	End      time.Time
	Summary  string
	// Description and Location are free text (escaped here).
	Description string
	Cancelled   bool
	Stamp       time.Time
}

// Write writes events as an RFC 5545 calendar with method (REQUEST, CANCEL,
// or "" for a published feed), CRLF line ends, text escaped and lines
// folded at 75 octets.
func Write(method string, events ...Event) []byte {
	var b strings.Builder
	line := func(s string) { foldLine(&b, s) }
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	line("PRODID:-//Prescripto//Appointments//EN")
	line("CALSCALE:GREGORIAN")
	if method != "" {
		line("METHOD:" + method)
	}
	for _, e := range events {
		line("BEGIN:VEVENT")
		line("UID:" + escapeText(e.UID) + "@prescripto")
		line("SEQUENCE:" + strconv.Itoa(e.Sequence))
		line("DTSTAMP:" + icsTime(e.Stamp))
		line("DTSTART:" + icsTime(e.Start))
		line("DTEND:" + icsTime(e.End))
		line("SUMMARY:" + escapeText(e.Summary))
		if e.Description != "" {
			line("DESCRIPTION:" + escapeText(e.Description))
		}
		if e.Cancelled {
			line("STATUS:CANCELLED")
		} else {
			line("STATUS:CONFIRMED")
		}
		line("END:VEVENT")
	}
	line("END:VCALENDAR")
	return []byte(b.String())
}

func icsTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// escapeText escapes an RFC 5545 TEXT value (backslash, semicolon, comma,
// newline) after Clean has taken the control characters out.
func escapeText(s string) string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case ';':
			b.WriteString(`\;`)
		case ',':
			b.WriteString(`\,`)
		case '\n':
			b.WriteString(`\n`)
		default:
			if !unsafe(r) {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// foldLine writes s folded into lines of at most 75 octets (never inside
// a UTF-8 sequence), each ended by CRLF, continuations starting with a
// space.
func foldLine(b *strings.Builder, s string) {
	limit := 75
	for len(s) > limit {
		cut := limit
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		b.WriteString(s[:cut])
		b.WriteString("\r\n ")
		s = s[cut:]
		limit = 74
	}
	b.WriteString(s)
	b.WriteString("\r\n")
}

// unsafe: control characters and bidirectional overrides, left out.
func unsafe(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

// Sequence is the SEQUENCE of an appointment's entry: the log position of
// its last change, which grows with each reschedule and is the same in a
// mail and in a calendar served later (clamped to RFC 5545's INTEGER).
func Sequence(position uint64) int {
	if position > 1<<31-1 {
		return 1<<31 - 1
	}
	return int(position)
}
