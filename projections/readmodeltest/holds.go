package readmodeltest

import (
	"slices"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// ---- holds and free slots ----

// slotsLapsedHold: a hold that ran out frees its slot at once, before any
// HoldExpired is recorded; asked again before its expiry, it is taken.
func (s *suite) slotsLapsedHold(t *testing.T) {
	h := newHistory()
	h.base()
	h.reserve(diya, "l1", priya, kol(3, 9, 0))
	h.reserve(diya, "l2", rahul, kol(3, 9, 30))
	h.capture("l2", "pay_l2", "", false, true) // confirmed: taken for good
	h.reserve(diya, "l3", sara, kol(3, 10, 0))
	h.reschedule("l3", kol(3, 10, 30)) // still held, at its new time
	m := s.with(t, h)
	d3 := date(2026, 6, 3)
	until := nowK.Add(15 * time.Minute) // every hold of the fixture
	held := kolDay(3, 0, 30, 90)
	lapsed := kolDay(3, 30)
	for _, c := range []struct {
		what string
		now  time.Time
		want []time.Time
	}{
		{"held", nowK, held},
		{"a second after", nowK.Add(time.Second), held},
		{"half a minute before the holds run out", until.Add(-30 * time.Second), held},
		{"a nanosecond before", until.Add(-time.Nanosecond), held},
		{"when they run out (no HoldExpired)", until, lapsed},
		{"half a minute after", until.Add(30 * time.Second), lapsed},
		{"twenty minutes after", until.Add(20 * time.Minute), lapsed},
		{"before again (an answer given after must not be reused)", until.Add(-30 * time.Second), held},
	} {
		expectStarts(t, c.what, s.day(t, m, diya, d3, c.now), c.want...)
	}
	if a := s.appointment(t, m, "l1"); a.Status != string(doctor.StatusHeld) {
		t.Errorf("l1 reads %q: only the log expires a hold", a.Status)
	}
	if slices.ContainsFunc(h.events, func(e projections.Event) bool { return e.Type == doctor.TypeHoldExpired }) {
		t.Fatal("the history has a HoldExpired: the case proves nothing")
	}
	// A late payment confirms a lapsed hold nobody took: its slot is taken
	// again.
	mark := len(h.events)
	h.capture("l1", "pay_l1", "", false, true)
	more(t, m, h, mark)
	expectStarts(t, "the lapsed hold paid", s.day(t, m, diya, d3, until.Add(20*time.Minute)), kolDay(3, 0, 30)...)
}
