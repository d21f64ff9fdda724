package analytics

import (
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// OfferedSlots counts the doctor's offered slots on the dates [from, to]:
// for each schedule version, the slots of its grid on those dates (in its
// zone) that start while it was in effect, [its From, the next one's From),
// and overlap no time off. The work is the days of the range times the
// slots of a day, whatever the number of bookings.
func (d *Doctor) OfferedSlots(from, to doctor.Date) int64 {
	var n int64
	for i, v := range d.Schedules {
		g, err := v.Schedule.Compile()
		if err != nil {
			continue // a stored schedule was valid when decided
		}
		begin, first := v.From, from
		if df := g.DateIn(begin); first.Before(df) {
			first = df
		}
		var end time.Time // zero: in effect to this day
		last := to
		if i+1 < len(d.Schedules) {
			end = d.Schedules[i+1].From
			if !end.After(begin) {
				continue // replaced at once
			}
			if de := g.DateIn(end); de.Before(last) {
				last = de
			}
		}
		off := d.timeOffWithin(begin, end)
		for day := first; !last.Before(day); day = day.AddDays(1) {
			for _, s := range g.Slots(day) {
				if s.Start.Before(begin) || (!end.IsZero() && !s.Start.Before(end)) || overlapsAny(s, off) {
					continue
				}
				n++
			}
		}
	}
	return n
}

// timeOffWithin lists the time off that can overlap a slot starting in
// [begin, end) (end zero: unbounded; a slot is at most a day long).
func (d *Doctor) timeOffWithin(begin, end time.Time) []Interval {
	var out []Interval
	for _, t := range d.TimeOff {
		if !t.To.After(begin) || (!end.IsZero() && t.From.After(end.Add(24*time.Hour))) {
			continue
		}
		out = append(out, t)
	}
	return out
}

func overlapsAny(s doctor.Slot, off []Interval) bool {
	for _, t := range off {
		if s.Start.Before(t.To) && t.From.Before(s.End) {
			return true
		}
	}
	return false
}
