package doctor_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

func utc(y int, mo time.Month, d, h, m int) time.Time {
	return time.Date(y, mo, d, h, m, 0, 0, time.UTC)
}

func compile(t *testing.T, s doctor.Schedule) *doctor.Grid {
	t.Helper()
	g, err := s.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return g
}

// gridOf is a grid in zone with slotMinutes slots and the given weekly ranges.
func gridOf(t *testing.T, zone string, slotMinutes int, weekly ...doctor.WeeklyHours) *doctor.Grid {
	t.Helper()
	return compile(t, doctor.Schedule{
		Timezone: zone, SlotMinutes: slotMinutes, BookingWindowDays: 30, PaymentPolicy: doctor.PaymentNone, Weekly: weekly,
	})
}

func sunday(start, end string) doctor.WeeklyHours {
	return doctor.WeeklyHours{Weekday: 7, Start: start, End: end}
}

func everyDay(start, end string) []doctor.WeeklyHours {
	var w []doctor.WeeklyHours
	for wd := 1; wd <= 7; wd++ {
		w = append(w, doctor.WeeklyHours{Weekday: wd, Start: start, End: end})
	}
	return w
}

func starts(slots []doctor.Slot) []time.Time {
	out := make([]time.Time, 0, len(slots))
	for _, s := range slots {
		out = append(out, s.Start)
	}
	return out
}

// checkSlots asserts the slots of g on d: in order, never overlapping, each
// exactly one slot length of real time, each on d in the grid's zone.
func checkSlots(t *testing.T, g *doctor.Grid, d doctor.Date, slots []doctor.Slot) {
	t.Helper()
	for i, s := range slots {
		if s.Start.Location() != time.UTC || s.End.Location() != time.UTC {
			t.Errorf("slot %d not in UTC: %v", i, s)
		}
		if got := s.End.Sub(s.Start); got != g.SlotLength() {
			t.Errorf("slot %d %v lasts %v, want %v", i, s.Start, got, g.SlotLength())
		}
		if got := g.DateIn(s.Start); got != d {
			t.Errorf("slot %d %v is on %v, want %v", i, s.Start, got, d)
		}
		if i > 0 && s.Start.Before(slots[i-1].End) {
			t.Errorf("slot %d %v overlaps slot %d ending %v", i, s.Start, i-1, slots[i-1].End)
		}
	}
}

// checkFitAgrees asserts that Fit accepts exactly the instants Slots returns
// on d, scanning every minute (and some off-minute instants) of the day.
func checkFitAgrees(t *testing.T, g *doctor.Grid, d doctor.Date) {
	t.Helper()
	want := map[time.Time]doctor.Slot{}
	for _, s := range g.Slots(d) {
		want[s.Start] = s
	}
	from := d.StartIn(g.Location()).Add(-2 * time.Hour)
	to := d.AddDays(1).StartIn(g.Location()).Add(2 * time.Hour)
	for x := from; x.Before(to); x = x.Add(time.Minute) {
		if g.DateIn(x) != d {
			continue
		}
		s, ok := g.Fit(x)
		w, in := want[x.UTC()]
		switch {
		case ok != in:
			t.Errorf("Fit(%v = %v) = %v, but Slots has it: %v", x, x.In(g.Location()), ok, in)
		case ok && s != w:
			t.Errorf("Fit(%v) = %v, Slots has %v", x, s, w)
		}
		if in {
			if _, ok := g.Fit(x.Add(time.Second)); ok {
				t.Errorf("Fit(%v + 1s) accepted", x)
			}
			if _, ok := g.Fit(x.In(time.FixedZone("elsewhere", -7*3600))); !ok {
				t.Errorf("Fit of %v in another zone rejected", x)
			}
		}
	}
}

func TestGridDST(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		zone  string
		date  doctor.Date
		want  []time.Time // slot starts, UTC
		never []time.Time // instants on the wall-clock grid that must not fit
	}{
		{
			// 02:00 EST jumps to 03:00 EDT: 02:00 and 02:30 do not exist.
			name: "New York spring forward", zone: "America/New_York", date: doctor.Date{Year: 2026, Month: time.March, Day: 8},
			want: []time.Time{
				utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 5, 30), // 00:00, 00:30 EST
				utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 6, 30), // 01:00, 01:30 EST
				utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 30), // 03:00, 03:30 EDT
			},
			never: []time.Time{utc(2026, 3, 8, 8, 0)}, // 04:00 EDT: the range ends
		},
		{
			// 02:00 EDT falls back to 01:00 EST: 01:00-02:00 happens twice;
			// time.Date (so the grid) takes the first, EDT, occurrence.
			name: "New York fall back", zone: "America/New_York", date: doctor.Date{Year: 2026, Month: time.November, Day: 1},
			want: []time.Time{
				utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 4, 30), // 00:00, 00:30 EDT
				utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30), // 01:00, 01:30 EDT
				utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 7, 30), // 02:00, 02:30 EST
				utc(2026, 11, 1, 8, 0), utc(2026, 11, 1, 8, 30), // 03:00, 03:30 EST
			},
			never: []time.Time{utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30)}, // 01:00, 01:30 EST
		},
		{
			// 01:00 GMT jumps to 02:00 BST.
			name: "London spring forward", zone: "Europe/London", date: doctor.Date{Year: 2026, Month: time.March, Day: 29},
			want: []time.Time{
				utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 30), // 00:00, 00:30 GMT
				utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30), // 02:00, 02:30 BST
				utc(2026, 3, 29, 2, 0), utc(2026, 3, 29, 2, 30), // 03:00, 03:30 BST
			},
		},
		{
			// 02:00 BST falls back to 01:00 GMT; for zones east of UTC
			// time.Date takes the second, GMT, occurrence.
			name: "London fall back", zone: "Europe/London", date: doctor.Date{Year: 2026, Month: time.October, Day: 25},
			want: []time.Time{
				utc(2026, 10, 24, 23, 0), utc(2026, 10, 24, 23, 30), // 00:00, 00:30 BST
				utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30), // 01:00, 01:30 GMT
				utc(2026, 10, 25, 2, 0), utc(2026, 10, 25, 2, 30), // 02:00, 02:30 GMT
				utc(2026, 10, 25, 3, 0), utc(2026, 10, 25, 3, 30), // 03:00, 03:30 GMT
			},
			never: []time.Time{utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30)}, // 01:00, 01:30 BST
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := gridOf(t, c.zone, 30, sunday("00:00", "04:00"))
			slots := g.Slots(c.date)
			if got := starts(slots); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("slot starts\n got %v\nwant %v", got, c.want)
			}
			checkSlots(t, g, c.date, slots)
			checkFitAgrees(t, g, c.date)
			for _, x := range c.never {
				if s, ok := g.Fit(x); ok {
					t.Errorf("Fit(%v = %v) accepted: %v", x, x.In(g.Location()), s)
				}
			}
			for _, s := range slots {
				if h := s.Start.In(g.Location()).Hour(); c.name == "New York spring forward" && h == 2 {
					t.Errorf("a slot starts at the non-existent %v", s.Start.In(g.Location()))
				}
			}
			// the days around are ordinary Sundays or not Sundays at all
			if got := g.Slots(c.date.AddDays(-1)); len(got) != 0 {
				t.Errorf("Saturday has slots: %v", got)
			}
			if got := len(g.Slots(c.date.AddDays(7))); got != 8 {
				t.Errorf("the next Sunday has %d slots, want 8", got)
			}
		})
	}
}

// TestGridDSTNonExistentWallClock: asking Fit for a wall-clock time inside
// the gap goes through time.Date, which normalizes it to an existing
// instant; Fit judges that instant, never the non-existent reading.
func TestGridDSTNonExistentWallClock(t *testing.T) {
	t.Parallel()
	g := gridOf(t, "America/New_York", 30, sunday("02:00", "03:00"))
	d := doctor.Date{Year: 2026, Month: time.March, Day: 8}
	if got := g.Slots(d); len(got) != 0 {
		t.Fatalf("a range wholly inside the gap has slots: %v", got)
	}
	for _, m := range []int{0, 30} {
		x := time.Date(2026, time.March, 8, 2, m, 0, 0, g.Location())
		if s, ok := g.Fit(x); ok {
			t.Errorf("Fit(02:%02d -> %v) accepted: %v", m, x, s)
		}
	}
	// the ordinary Sunday after has both
	if got := len(g.Slots(d.AddDays(7))); got != 2 {
		t.Errorf("next Sunday: %d slots, want 2", got)
	}
}

// TestGridDSTGapNeverOverlaps covers slot lengths that do not divide an
// hour and ranges that end inside the gap: wall-clock starts can then be
// closer than a slot length in real time; the later slot is dropped.
func TestGridDSTGapNeverOverlaps(t *testing.T) {
	t.Parallel()
	d := doctor.Date{Year: 2026, Month: time.March, Day: 8}
	t.Run("45-minute slots", func(t *testing.T) {
		t.Parallel()
		g := gridOf(t, "America/New_York", 45, sunday("00:00", "06:00"))
		want := []time.Time{
			utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 5, 45), // 00:00, 00:45 EST
			utc(2026, 3, 8, 6, 30), // 01:30 EST, until 03:15 EDT
			// 02:15 does not exist; 03:00 EDT (07:00Z) overlaps 01:30's slot
			utc(2026, 3, 8, 7, 45), utc(2026, 3, 8, 8, 30), utc(2026, 3, 8, 9, 15), // 03:45, 04:30, 05:15 EDT
		}
		slots := g.Slots(d)
		if got := starts(slots); !reflect.DeepEqual(got, want) {
			t.Fatalf("slot starts\n got %v\nwant %v", got, want)
		}
		checkSlots(t, g, d, slots)
		checkFitAgrees(t, g, d)
		if _, ok := g.Fit(utc(2026, 3, 8, 7, 0)); ok {
			t.Error("Fit accepted 03:00 EDT, which overlaps the 01:30 EST slot")
		}
	})
	t.Run("a range ending in the gap", func(t *testing.T) {
		t.Parallel()
		g := gridOf(t, "America/New_York", 30, sunday("01:45", "02:15"), sunday("03:00", "04:00"))
		want := []time.Time{utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7, 30)} // 01:45 EST (to 03:15 EDT), 03:30 EDT
		slots := g.Slots(d)
		if got := starts(slots); !reflect.DeepEqual(got, want) {
			t.Fatalf("slot starts\n got %v\nwant %v", got, want)
		}
		checkSlots(t, g, d, slots)
		checkFitAgrees(t, g, d)
	})
	t.Run("the aggregate refuses the dropped slot as off the grid", func(t *testing.T) {
		t.Parallel()
		s := doctor.Schedule{Timezone: "America/New_York", SlotMinutes: 45, BookingWindowDays: 30, PaymentPolicy: doctor.PaymentNone, Weekly: []doctor.WeeklyHours{sunday("00:00", "06:00")}}
		doc := given(registered(), doctor.ScheduleSet{DoctorID: docID, Schedule: s})
		now := utc(2026, 3, 1, 0, 0)
		err := doc.Reserve(doctor.Reservation{AppointmentID: "a1", PatientID: "p1", Start: utc(2026, 3, 8, 7, 0)}, now)
		if !errors.Is(err, doctor.ErrOutsideSchedule) {
			t.Errorf("reserving the dropped slot: %v", err)
		}
		if got := doc.FreeSlots(d, now); len(got) != 6 {
			t.Errorf("FreeSlots = %v", got)
		}
	})
}

// TestGridDSTSweep checks, in several zones on every 2026 date whose length
// is not 24 hours (plus an ordinary date), for several slot lengths over the
// whole day, that slots never overlap, each lasts one slot length, and Fit
// accepts exactly the instants Slots returns.
func TestGridDSTSweep(t *testing.T) {
	t.Parallel()
	zones := []string{"America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata", "Pacific/Chatham"}
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			loc := mustZone(zone)
			dates := []doctor.Date{{Year: 2026, Month: time.June, Day: 10}}
			for d := (doctor.Date{Year: 2026, Month: time.January, Day: 1}); d.Year == 2026; d = d.AddDays(1) {
				if d.AddDays(1).StartIn(loc).Sub(d.StartIn(loc)) != 24*time.Hour {
					dates = append(dates, d)
				}
			}
			if zone != "Asia/Kolkata" && len(dates) < 3 {
				t.Fatalf("found only %v as DST dates", dates)
			}
			for _, minutes := range []int{15, 25, 30, 45, 60, 90} {
				g := gridOf(t, zone, minutes, everyDay("00:00", "24:00")...)
				for _, d := range dates {
					slots := g.Slots(d)
					if len(slots) == 0 {
						t.Errorf("%v: no slots", d)
					}
					checkSlots(t, g, d, slots)
					checkFitAgrees(t, g, d)
				}
			}
		})
	}
}

func TestGridOrdinaryDay(t *testing.T) {
	t.Parallel()
	g := gridOf(t, "Asia/Kolkata", 30,
		doctor.WeeklyHours{Weekday: 1, Start: "14:00", End: "15:00"}, // given out of order
		doctor.WeeklyHours{Weekday: 1, Start: "09:00", End: "10:40"}, // 10:30 does not fit a whole slot
	)
	mon := doctor.Date{Year: 2026, Month: time.June, Day: 1}
	want := []doctor.Slot{
		{Start: utc(2026, 6, 1, 3, 30), End: utc(2026, 6, 1, 4, 0)}, // 09:00 IST
		{Start: utc(2026, 6, 1, 4, 0), End: utc(2026, 6, 1, 4, 30)},
		{Start: utc(2026, 6, 1, 4, 30), End: utc(2026, 6, 1, 5, 0)},
		{Start: utc(2026, 6, 1, 8, 30), End: utc(2026, 6, 1, 9, 0)}, // 14:00 IST
		{Start: utc(2026, 6, 1, 9, 0), End: utc(2026, 6, 1, 9, 30)},
	}
	if got := g.Slots(mon); !reflect.DeepEqual(got, want) {
		t.Fatalf("Slots\n got %v\nwant %v", got, want)
	}
	checkFitAgrees(t, g, mon)
	for _, c := range []struct {
		x    time.Time
		want bool
	}{
		{utc(2026, 6, 1, 3, 30), true},
		{time.Date(2026, 6, 1, 9, 0, 0, 0, ist), true},
		{utc(2026, 6, 1, 3, 0), false},  // 08:30 IST
		{utc(2026, 6, 1, 5, 0), false},  // 10:30 IST: only 10 minutes left
		{utc(2026, 6, 1, 3, 45), false}, // 09:15 IST
		{utc(2026, 6, 1, 9, 0).Add(time.Millisecond), false},
		{utc(2026, 6, 8, 3, 30), true},  // next Monday
		{utc(2026, 6, 2, 3, 30), false}, // Tuesday
		{utc(2026, 6, 1, 9, 0), true},   // 14:30 IST
		{utc(2026, 6, 1, 9, 30), false}, // 15:00 IST: range end
	} {
		if _, ok := g.Fit(c.x); ok != c.want {
			t.Errorf("Fit(%v = %v) = %v, want %v", c.x, c.x.In(ist), ok, c.want)
		}
	}
	if got := g.Slots(doctor.Date{Year: 2026, Month: time.June, Day: 2}); got != nil {
		t.Errorf("Tuesday: %v", got)
	}
	if g.Location().String() != "Asia/Kolkata" || g.SlotLength() != 30*time.Minute || g.Schedule().SlotMinutes != 30 {
		t.Errorf("accessors: %v %v %+v", g.Location(), g.SlotLength(), g.Schedule())
	}
}

func TestGridMidnightEnd(t *testing.T) {
	t.Parallel()
	g := gridOf(t, "Asia/Kolkata", 30, sunday("23:00", "24:00"))
	sun := doctor.Date{Year: 2026, Month: time.June, Day: 7}
	want := []doctor.Slot{
		{Start: utc(2026, 6, 7, 17, 30), End: utc(2026, 6, 7, 18, 0)}, // 23:00 IST
		{Start: utc(2026, 6, 7, 18, 0), End: utc(2026, 6, 7, 18, 30)}, // 23:30 IST, ends at midnight
	}
	if got := g.Slots(sun); !reflect.DeepEqual(got, want) {
		t.Fatalf("Slots\n got %v\nwant %v", got, want)
	}
	if _, ok := g.Fit(utc(2026, 6, 7, 18, 0)); !ok {
		t.Error("the 23:30 slot does not fit")
	}
	if _, ok := g.Fit(utc(2026, 6, 7, 18, 30)); ok {
		t.Error("Monday 00:00 fits a Sunday range")
	}
	checkFitAgrees(t, g, sun)

	whole := gridOf(t, "Asia/Kolkata", 60, sunday("00:00", "24:00"))
	if got := len(whole.Slots(sun)); got != 24 {
		t.Errorf("00:00-24:00 in hours: %d slots", got)
	}
	// the New York fall-back Sunday has 25 hours; the repeated hour gives one slot
	ny := gridOf(t, "America/New_York", 60, sunday("00:00", "24:00"))
	fall := doctor.Date{Year: 2026, Month: time.November, Day: 1}
	slots := ny.Slots(fall)
	if len(slots) != 24 {
		t.Errorf("fall-back day: %d slots", len(slots))
	}
	checkSlots(t, ny, fall, slots)
	if last := slots[len(slots)-1]; !last.End.Equal(doctor.Date{Year: 2026, Month: time.November, Day: 2}.StartIn(ny.Location())) {
		t.Errorf("the last slot ends at %v", last.End)
	}
}

func TestBookingWindowInDoctorZone(t *testing.T) {
	t.Parallel()
	g := compile(t, schedule(doctor.PaymentNone)) // Kolkata, 14 days, 60 minutes' notice
	for _, c := range []struct {
		now  time.Time
		last doctor.Date
	}{
		{utc(2026, 6, 1, 18, 29), doctor.Date{Year: 2026, Month: time.June, Day: 15}}, // 23:59 IST on the 1st
		{utc(2026, 6, 1, 18, 30), doctor.Date{Year: 2026, Month: time.June, Day: 16}}, // 00:00 IST on the 2nd
		{utc(2026, 12, 25, 0, 0), doctor.Date{Year: 2027, Month: time.January, Day: 8}},
	} {
		if got := g.LastBookableDate(c.now); got != c.last {
			t.Errorf("LastBookableDate(%v) = %v, want %v", c.now, got, c.last)
		}
	}
	if got := g.EarliestStart(utc(2026, 6, 1, 0, 0)); !got.Equal(utc(2026, 6, 1, 1, 0)) {
		t.Errorf("EarliestStart = %v", got)
	}
	if got := g.DateIn(utc(2026, 6, 1, 20, 0)); got != (doctor.Date{Year: 2026, Month: time.June, Day: 2}) {
		t.Errorf("DateIn = %v", got)
	}

	// Across a DST change the window still counts calendar days: New York,
	// one day, asked on Saturday 23:30 EST before the spring-forward Sunday.
	ny := doctor.Schedule{Timezone: "America/New_York", SlotMinutes: 30, BookingWindowDays: 1, PaymentPolicy: doctor.PaymentNone, Weekly: everyDay("00:00", "24:00")}
	d := given(registered(), doctor.ScheduleSet{DoctorID: docID, Schedule: ny})
	now := time.Date(2026, 3, 7, 23, 30, 0, 0, d.Grid().Location())
	if err := d.Reserve(doctor.Reservation{AppointmentID: "a1", PatientID: "p1", Start: time.Date(2026, 3, 8, 23, 30, 0, 0, d.Grid().Location())}, now); err != nil {
		t.Errorf("the last slot of the next day: %v", err)
	}
	err := d.Reserve(doctor.Reservation{AppointmentID: "a2", PatientID: "p1", Start: time.Date(2026, 3, 9, 0, 0, 0, 0, d.Grid().Location())}, now)
	if !errors.Is(err, doctor.ErrBeyondWindow) {
		t.Errorf("the day after: %v", err)
	}
}

func TestDate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want doctor.Date
		ok   bool
	}{
		{"2026-03-08", doctor.Date{Year: 2026, Month: time.March, Day: 8}, true},
		{"2028-02-29", doctor.Date{Year: 2028, Month: time.February, Day: 29}, true},
		{"0001-01-01", doctor.Date{Year: 1, Month: time.January, Day: 1}, true},
		{"2026-02-29", doctor.Date{}, false},
		{"2026-02-30", doctor.Date{}, false},
		{"2026-13-01", doctor.Date{}, false},
		{"2026-2-01", doctor.Date{}, false},
		{"2026/02/01", doctor.Date{}, false},
		{"2026-02-01T00:00:00Z", doctor.Date{}, false},
		{" 2026-02-01", doctor.Date{}, false},
		{"", doctor.Date{}, false},
	} {
		got, err := doctor.ParseDate(c.in)
		if c.ok {
			if err != nil || got != c.want {
				t.Errorf("ParseDate(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
			if got.String() != c.in {
				t.Errorf("String() = %q, want %q", got.String(), c.in)
			}
			continue
		}
		if err == nil || !errors.Is(err, domain.ErrInvalid) || domain.CodeOf(err) != "invalid_input" {
			t.Errorf("ParseDate(%q) = %v, %v; want an invalid_input error", c.in, got, err)
		}
	}

	for _, c := range []struct {
		d    doctor.Date
		n    int
		want string
	}{
		{doctor.Date{Year: 2026, Month: time.March, Day: 8}, 0, "2026-03-08"},
		{doctor.Date{Year: 2026, Month: time.March, Day: 8}, 1, "2026-03-09"},
		{doctor.Date{Year: 2026, Month: time.December, Day: 31}, 1, "2027-01-01"},
		{doctor.Date{Year: 2028, Month: time.February, Day: 28}, 1, "2028-02-29"},
		{doctor.Date{Year: 2026, Month: time.February, Day: 28}, 1, "2026-03-01"},
		{doctor.Date{Year: 2026, Month: time.March, Day: 1}, -1, "2026-02-28"},
		{doctor.Date{Year: 2026, Month: time.January, Day: 1}, 365, "2027-01-01"},
		{doctor.Date{Year: 2028, Month: time.January, Day: 1}, 365, "2028-12-31"},
		{doctor.Date{Year: 2026, Month: time.March, Day: 8}, -400, "2025-02-01"},
	} {
		if got := c.d.AddDays(c.n).String(); got != c.want {
			t.Errorf("%v.AddDays(%d) = %s, want %s", c.d, c.n, got, c.want)
		}
	}

	d := func(s string) doctor.Date {
		x, err := doctor.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"2026-03-08", "2026-03-08", 0},
		{"2026-03-08", "2026-03-09", -1},
		{"2026-03-09", "2026-03-08", 1},
		{"2026-02-28", "2026-03-01", -1},
		{"2026-12-31", "2027-01-01", -1},
		{"2027-01-01", "2026-12-31", 1},
		{"2026-11-01", "2026-02-28", 1},
	} {
		a, b := d(c.a), d(c.b)
		if got := a.Compare(b); got != c.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := a.Before(b); got != (c.want < 0) {
			t.Errorf("%s.Before(%s) = %v", c.a, c.b, got)
		}
		if got := b.Compare(a); got != -c.want {
			t.Errorf("Compare is not antisymmetric for %s, %s", c.a, c.b)
		}
	}

	if got := doctor.DateOf(time.Date(2026, 6, 1, 23, 59, 0, 0, ist)); got != d("2026-06-01") {
		t.Errorf("DateOf = %v", got)
	}
	if got := doctor.DateOf(time.Date(2026, 6, 1, 23, 59, 0, 0, ist).UTC()); got != d("2026-06-01") {
		t.Errorf("DateOf UTC = %v", got)
	}
	if got := d("2026-06-02").StartIn(ist); !got.Equal(utc(2026, 6, 1, 18, 30)) {
		t.Errorf("StartIn = %v", got)
	}
	if got := fmt.Sprint(doctor.Date{Year: 2026, Month: time.June, Day: 2}); got != "2026-06-02" {
		t.Errorf("Sprint = %q", got)
	}
}

func TestLoadZone(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Local", "Nowhere/Atlantis", "../etc/passwd"} {
		if _, err := doctor.LoadZone(name); err == nil {
			t.Errorf("LoadZone(%q) succeeded", name)
		}
	}
	for _, name := range []string{"UTC", "Asia/Kolkata", "America/New_York"} {
		if loc, err := doctor.LoadZone(name); err != nil || loc.String() != name {
			t.Errorf("LoadZone(%q) = %v, %v", name, loc, err)
		}
	}
}

// TestDSTThroughTheAggregate books on the New York fall-back Sunday: the
// first 01:30 is the slot; the second 01:30 is off the grid.
func TestDSTThroughTheAggregate(t *testing.T) {
	t.Parallel()
	s := doctor.Schedule{Timezone: "America/New_York", SlotMinutes: 30, BookingWindowDays: 30, PaymentPolicy: doctor.PaymentNone, Weekly: []doctor.WeeklyHours{sunday("00:00", "04:00")}}
	events := []domain.Event{registered(), doctor.ScheduleSet{DoctorID: docID, Schedule: s}}
	now := utc(2026, 10, 20, 0, 0)
	d := given(events...)
	if err := d.Reserve(doctor.Reservation{AppointmentID: "a1", PatientID: "p1", Start: utc(2026, 11, 1, 5, 30)}, now); err != nil {
		t.Fatal(err)
	}
	err := d.Reserve(doctor.Reservation{AppointmentID: "a2", PatientID: "p2", Start: utc(2026, 11, 1, 6, 30)}, now)
	if !errors.Is(err, doctor.ErrOutsideSchedule) {
		t.Errorf("second 01:30: %v", err)
	}
	if err := d.Reserve(doctor.Reservation{AppointmentID: "a3", PatientID: "p2", Start: utc(2026, 11, 1, 7, 0)}, now); err != nil {
		t.Errorf("02:00 EST: %v", err)
	}
	free := d.FreeSlots(doctor.Date{Year: 2026, Month: time.November, Day: 1}, now)
	if got := len(free); got != 6 {
		t.Errorf("free slots: %v", free)
	}
}
