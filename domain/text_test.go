package domain_test

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/prescripto/prescripto/domain"
)

func TestTextOK(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		s    string
		ok   bool
	}{
		{"plain", "Asha Rao", true},
		{"accents and scripts", "Zoë Kelly, डॉ. राव", true},
		{"empty below min", "", false},
		{"at max", strings.Repeat("é", 40), true},
		{"over max", strings.Repeat("é", 41), false},
		{"CR LF", "Asha\r\nBcc: x@example.com", false},
		{"newline", "line one\nline two", false},
		{"NUL", "Asha\x00", false},
		{"ANSI escape", "\x1b[31mred", false},
		{"DEL", "Asha\x7f", false},
		{"C1 control", "Asha\u0085", false},
		{"right-to-left override", "invoice\u202Efdp.exe", false},
		{"isolate", "a\u2067b", false},
		{"right-to-left mark", "a\u200Fb", false},
		{"invalid UTF-8", "a\xffb", false},
	} {
		if got := domain.TextOK(c.s, 1, 40); got != c.ok {
			t.Errorf("%s: TextOK(%q) = %v, want %v", c.name, c.s, got, c.ok)
		}
	}
}

func TestStringsShareUpToMax(t *testing.T) {
	t.Parallel()
	p := domain.Strings{Max: 1}
	a := p.Share(strings.Clone("patient-1"))
	if b := p.Share(strings.Clone("patient-1")); unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("an equal string was not shared")
	}
	c := strings.Clone("patient-2")
	if d := p.Share(c); unsafe.StringData(d) != unsafe.StringData(c) {
		t.Error("past Max a new string must come back as it is")
	}
	if p.Share("") != "" {
		t.Error("empty")
	}
}
