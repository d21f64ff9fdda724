package doctor

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// PaymentPolicy says whether a booking must be paid online.
type PaymentPolicy string

const (
	// PaymentNone: no online payment.
	PaymentNone PaymentPolicy = "none"
	// PaymentOptional: confirmed at once; pay online or at the clinic.
	PaymentOptional PaymentPolicy = "optional"
	// PaymentRequired: the slot is held for HoldMinutes until paid.
	PaymentRequired PaymentPolicy = "required"
)

// Limits of a schedule.
const (
	MinSlotMinutes       = 5
	MaxSlotMinutes       = 480
	MaxBookingWindowDays = 365
	MaxMinNoticeMinutes  = 30 * 24 * 60
	MaxHoldMinutes       = 24 * 60
	MaxRefundCutoffHours = 30 * 24
	// DefaultRefundCutoffHours is the cutoff a schedule gets when its
	// request leaves it out (the API's default).
	DefaultRefundCutoffHours = 24
)

// WeeklyHours is one working range on a weekday (1 = Monday ... 7 = Sunday),
// wall-clock "HH:MM" in the doctor's zone; End may be "24:00".
type WeeklyHours struct {
	Weekday int    `json:"weekday"`
	Start   string `json:"start"`
	End     string `json:"end"`
}

// Schedule is the doctor's booking rules as stored in events.
type Schedule struct {
	Timezone          string        `json:"timezone"`
	SlotMinutes       int           `json:"slotMinutes"`
	BookingWindowDays int           `json:"bookingWindowDays"`
	MinNoticeMinutes  int           `json:"minNoticeMinutes"`
	PaymentPolicy     PaymentPolicy `json:"paymentPolicy"`
	HoldMinutes       int           `json:"holdMinutes"`
	// RefundCutoffHours: a patient who cancels a paid appointment at least
	// this long before its start is refunded in full (a doctor's or an
	// admin's cancellation always is).
	RefundCutoffHours int           `json:"refundCutoffHours"`
	Weekly            []WeeklyHours `json:"weekly"`
}

// Slot is a bookable interval [Start, End) in UTC.
type Slot struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Grid is a validated schedule compiled for slot arithmetic.
type Grid struct {
	s       Schedule
	loc     *time.Location
	slot    time.Duration
	ranges  [8][]minuteRange // index = ISO weekday 1..7
	noticeD time.Duration
}

type minuteRange struct{ start, end int } // minutes since local midnight

// LoadZone resolves an IANA zone name. The domain uses the Go time zone
// database (the binary embeds time/tzdata, so this is deterministic).
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("empty zone")
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// zones caches loaded zones: folding a long stream loads the same zone for
// every schedule change, and the zone database does not change at run time.
var zones sync.Map

// Compile validates s and returns its Grid.
func (s Schedule) Compile() (*Grid, error) {
	bad := func(format string, args ...any) (*Grid, error) {
		return nil, domain.Detail(ErrInvalidSchedule, "invalid schedule: "+format, args...)
	}
	loc, err := LoadZone(s.Timezone)
	if err != nil {
		return bad("unknown time zone %q", s.Timezone)
	}
	if s.SlotMinutes < MinSlotMinutes || s.SlotMinutes > MaxSlotMinutes {
		return bad("slotMinutes must be between %d and %d", MinSlotMinutes, MaxSlotMinutes)
	}
	if s.BookingWindowDays < 1 || s.BookingWindowDays > MaxBookingWindowDays {
		return bad("bookingWindowDays must be between 1 and %d", MaxBookingWindowDays)
	}
	if s.MinNoticeMinutes < 0 || s.MinNoticeMinutes > MaxMinNoticeMinutes {
		return bad("minNoticeMinutes must be between 0 and %d", MaxMinNoticeMinutes)
	}
	switch s.PaymentPolicy {
	case PaymentNone, PaymentOptional:
		if s.HoldMinutes < 0 || s.HoldMinutes > MaxHoldMinutes {
			return bad("holdMinutes must be between 0 and %d", MaxHoldMinutes)
		}
	case PaymentRequired:
		if s.HoldMinutes < 1 || s.HoldMinutes > MaxHoldMinutes {
			return bad("holdMinutes must be between 1 and %d when payment is required", MaxHoldMinutes)
		}
	default:
		return bad("paymentPolicy must be none, optional or required")
	}
	if s.RefundCutoffHours < 0 || s.RefundCutoffHours > MaxRefundCutoffHours {
		return bad("refundCutoffHours must be between 0 and %d", MaxRefundCutoffHours)
	}
	if len(s.Weekly) > 7*24 {
		return bad("too many weekly ranges")
	}
	g := &Grid{s: s, loc: loc, slot: time.Duration(s.SlotMinutes) * time.Minute, noticeD: time.Duration(s.MinNoticeMinutes) * time.Minute}
	for i, w := range s.Weekly {
		if w.Weekday < 1 || w.Weekday > 7 {
			return bad("weekly[%d]: weekday must be 1 (Monday) to 7 (Sunday)", i)
		}
		start, ok1 := parseClock(w.Start)
		end, ok2 := parseClock(w.End)
		if !ok1 || !ok2 {
			return bad("weekly[%d]: start and end must be HH:MM", i)
		}
		if end-start < s.SlotMinutes {
			return bad("weekly[%d]: the range must hold at least one slot", i)
		}
		g.ranges[w.Weekday] = append(g.ranges[w.Weekday], minuteRange{start, end})
	}
	for wd := 1; wd <= 7; wd++ {
		rs := g.ranges[wd]
		slices.SortFunc(rs, func(a, b minuteRange) int { return a.start - b.start })
		for i := 1; i < len(rs); i++ {
			if rs[i].start < rs[i-1].end {
				return bad("weekday %d: ranges overlap", wd)
			}
		}
	}
	return g, nil
}

// parseClock parses "HH:MM" (00:00 to 24:00) into minutes since midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, false // strconv.Atoi alone would take "+9:00" or "-0:00"
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Schedule returns the schedule the grid was compiled from.
func (g *Grid) Schedule() Schedule { return g.s }

// Location is the doctor's zone.
func (g *Grid) Location() *time.Location { return g.loc }

// SlotLength is the length of one slot.
func (g *Grid) SlotLength() time.Duration { return g.slot }

// isoWeekday maps time.Weekday to 1 (Monday) ... 7 (Sunday).
func isoWeekday(w time.Weekday) int {
	if w == time.Sunday {
		return 7
	}
	return int(w)
}

// Slots lists the grid's slots on a calendar date in the doctor's zone, in
// order. Wall-clock times that do not exist on that date (a DST gap) yield
// no slot; an ambiguous wall-clock time (DST fall-back) yields one slot, at
// the instant time.Date chooses. A DST gap can also bring a wall-clock start
// closer in real time than a slot's length to the previous one (45-minute
// slots across a spring-forward hour): such a slot is dropped, so that the
// slots of a date never overlap.
func (g *Grid) Slots(d Date) []Slot {
	wd := isoWeekday(time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, g.loc).Weekday())
	var out []Slot
	step := g.s.SlotMinutes
	for _, r := range g.ranges[wd] {
		for m := r.start; m+step <= r.end; m += step {
			if s, ok := g.wallSlot(d, m); ok {
				if n := len(out); n > 0 && s.Start.Before(out[n-1].End) {
					continue // overlaps the previous slot across a DST gap
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// wallSlot is the slot starting at minute m of date d, if that wall-clock
// time exists.
func (g *Grid) wallSlot(d Date, m int) (Slot, bool) {
	t := time.Date(d.Year, d.Month, d.Day, m/60, m%60, 0, 0, g.loc)
	y, mo, dd := t.Date()
	if y != d.Year || mo != d.Month || dd != d.Day || t.Hour()*60+t.Minute() != m {
		return Slot{}, false // skipped by a DST gap
	}
	return Slot{Start: t.UTC(), End: t.Add(g.slot).UTC()}, true
}

// Fit returns the grid slot that starts exactly at start, if any.
func (g *Grid) Fit(start time.Time) (Slot, bool) {
	lt := start.In(g.loc)
	if lt.Second() != 0 || lt.Nanosecond() != 0 {
		return Slot{}, false
	}
	m := lt.Hour()*60 + lt.Minute()
	d := DateOf(lt)
	for _, r := range g.ranges[isoWeekday(lt.Weekday())] {
		if m < r.start || m+g.s.SlotMinutes > r.end || (m-r.start)%g.s.SlotMinutes != 0 {
			continue
		}
		s, ok := g.wallSlot(d, m)
		if ok && s.Start.Equal(start) {
			// Without an offset change since midnight no earlier slot of d
			// can overlap s; otherwise agree with Slots, which drops a slot
			// that overlaps its predecessor across a DST gap.
			if _, off0 := d.StartIn(g.loc).Zone(); off0 == offsetOf(lt) {
				return s, true
			}
			for _, o := range g.Slots(d) {
				if o.Start.Equal(start) {
					return s, true
				}
			}
			return Slot{}, false
		}
	}
	return Slot{}, false
}

func offsetOf(t time.Time) int {
	_, off := t.Zone()
	return off
}

// DateIn is the calendar date of instant t in the doctor's zone.
func (g *Grid) DateIn(t time.Time) Date { return DateOf(t.In(g.loc)) }

// LastBookableDate is the last date of the booking window seen from now.
func (g *Grid) LastBookableDate(now time.Time) Date {
	return g.DateIn(now).AddDays(g.s.BookingWindowDays)
}

// EarliestStart is the earliest instant a slot may start when booked at now.
func (g *Grid) EarliestStart(now time.Time) time.Time { return now.Add(g.noticeD) }

// Date is a calendar date without a zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the calendar date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, domain.Invalid("invalid date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// AddDays moves the date by n days.
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// Before reports whether d is before o.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// Compare returns -1, 0 or 1.
func (d Date) Compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return cmpInt(d.Year, o.Year)
	case d.Month != o.Month:
		return cmpInt(int(d.Month), int(o.Month))
	}
	return cmpInt(d.Day, o.Day)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// StartIn is the first instant of d in loc.
func (d Date) StartIn(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}
