package analytics

import (
	"sync"
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
	d.offeredByDate(from, to, func(_ doctor.Date, c int64) { n += c })
	return n
}

// offeredByDate calls fn with the offered slots of each date of [from, to]
// that has some, a date being the slot's local date in its schedule's zone
// (a date may be called more than once, once per schedule version).
func (d *Doctor) offeredByDate(from, to doctor.Date, fn func(doctor.Date, int64)) {
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
			var n int64
			for _, s := range g.Slots(day) {
				if s.Start.Before(begin) || (!end.IsZero() && !s.Start.Before(end)) || overlapsAny(s, off) {
					continue
				}
				n++
			}
			if n > 0 {
				fn(day, n)
			}
		}
	}
}

// Offered counts offered slots (Doctor.OfferedSlots) through a cache of
// per-date counts per doctor, valid while the doctor stands at the
// position it was computed at (any schedule, time-off or profile event
// moves it). It holds at most maxOfferedDates dates (emptied when full):
// a year of 2,700 doctors. A nil *Offered computes every time.
type Offered struct {
	mu    sync.Mutex
	size  int
	cache map[string]*offeredDoctor
}

type offeredDoctor struct {
	position uint64
	known    map[doctor.Date]bool // dates computed (with or without slots)
	counts   map[doctor.Date]int64
}

const maxOfferedDates = 1 << 20

// NewOffered returns an empty cache.
func NewOffered() *Offered { return &Offered{cache: map[string]*offeredDoctor{}} }

// Slots is d.OfferedSlots(from, to), from the cache where it can.
func (o *Offered) Slots(d *Doctor, from, to doctor.Date) int64 {
	if o == nil {
		return d.OfferedSlots(from, to)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.cache[d.ID]
	if c == nil || c.position != d.Position {
		if c != nil {
			o.size -= len(c.known)
		}
		c = &offeredDoctor{position: d.Position, known: map[doctor.Date]bool{}, counts: map[doctor.Date]int64{}}
		o.cache[d.ID] = c
	}
	// The span of dates not computed yet, computed at once.
	var lo, hi doctor.Date
	for day := from; !to.Before(day); day = day.AddDays(1) {
		if !c.known[day] {
			if lo == (doctor.Date{}) {
				lo = day
			}
			hi = day
		}
	}
	if lo != (doctor.Date{}) {
		if o.size+dayCount(lo, hi) > maxOfferedDates {
			clear(o.cache)
			o.cache[d.ID] = c
			o.size = len(c.known)
		}
		span := map[doctor.Date]int64{}
		d.offeredByDate(lo, hi, func(day doctor.Date, n int64) { span[day] += n })
		for day := lo; !hi.Before(day); day = day.AddDays(1) {
			if !c.known[day] { // a date inside the span computed before keeps its count
				c.known[day], c.counts[day] = true, span[day]
				o.size++
			}
		}
	}
	var n int64
	for day := from; !to.Before(day); day = day.AddDays(1) {
		n += c.counts[day]
	}
	return n
}

func dayCount(from, to doctor.Date) int { return int(dayNumber(to)-dayNumber(from)) + 1 }

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
