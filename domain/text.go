package domain

import (
	"unicode"
	"unicode/utf8"
)

// TextOK reports whether s is a name or free text the engine stores: valid
// UTF-8 of min to max characters, with no control characters (CR, LF, NUL,
// ESC and the rest: they reach mail headers, terminals and staff screens)
// and no bidirectional formatting characters (which make text display in
// another order than it is stored).
func TextOK(s string, min, max int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || bidiFormatting(r) {
			return false
		}
		n++
	}
	return n >= min && n <= max
}

// bidiFormatting: the embedding, override and isolate characters and the
// directional marks.
func bidiFormatting(r rune) bool {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	}
	return false
}

// Clip makes text from outside (a payment provider's error message) fit to
// be stored: control and bidirectional formatting characters and invalid
// UTF-8 become spaces, and it is cut to at most max characters.
func Clip(s string, max int) string {
	out := make([]rune, 0, min(len(s), max))
	for _, r := range s {
		if len(out) == max {
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || bidiFormatting(r) {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
