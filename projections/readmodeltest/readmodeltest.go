// Package readmodeltest is the conformance suite of the read models: every
// implementation (in memory, MongoDB) runs the same questions against the
// same hand-built event histories.
//
//	func TestReadModels(t *testing.T) {
//		readmodeltest.Run(t, func(t *testing.T) readmodeltest.Models { ... })
//	}
//
// newModels must return empty, independent models on every call: subtests
// run in parallel.
package readmodeltest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Models is one implementation's read models: the query ports and the
// projections that feed them. Every event is applied to every projection;
// each ignores what it does not care about.
type Models struct {
	Directory    projections.Directory
	Slots        projections.Slots
	Appointments projections.Appointments
	Dashboards   projections.Dashboards
	Payments     projections.Payments
	Projections  []projections.Projection
	// Batch > 1 feeds the projections that are
	// projections.BatchProjection batches of that many events (the last
	// one shorter) instead of one event at a time.
	Batch int
}

// Run runs the suite; every subtest gets fresh models from newModels.
func Run(t *testing.T, newModels func(t *testing.T) Models) {
	s := &suite{newModels: newModels}
	for _, c := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Directory/FiltersAndOrder", s.directoryFilters},
		{"Directory/DoctorByID", s.directoryDoctor},
		{"Directory/Specialities", s.directorySpecialities},
		{"Directory/ProfileUpdate", s.directoryProfileUpdate},
		{"Directory/TimezoneFromSchedule", s.directoryTimezone},
		{"Slots/ExactDayInKolkata", s.slotsKolkata},
		{"Slots/DSTDayInNewYork", s.slotsDST},
		{"Slots/BookingAndFreeing", s.slotsBooking},
		{"Slots/TimeOff", s.slotsTimeOff},
		{"Slots/UnavailableDoctor", s.slotsUnavailable},
		{"Slots/RelativeToNow", s.slotsNow},
		{"Slots/DaysAndMisses", s.slotsDays},
		{"Slots/LapsedHoldIsFreeAtOnce", s.slotsLapsedHold},
		{"Appointments/ByIDWithDoctorName", s.appointmentByID},
		{"Appointments/TimezoneOfTheDoctor", s.appointmentTimezone},
		{"Appointments/ListsNewestBookingFirst", s.appointmentLists},
		{"Appointments/Filters", s.appointmentFilters},
		{"Appointments/Pagination", s.appointmentPagination},
		{"Appointments/QueryValidation", s.appointmentValidation},
		{"Appointments/StatusTransitions", s.appointmentStatuses},
		{"Appointments/PaymentTransitions", s.appointmentPayments},
		{"Appointments/RefundLifecycle", s.appointmentRefunds},
		{"Appointments/HoldExpiresAt", s.appointmentHolds},
		{"Payments/ListFiltersAndPages", s.paymentList},
		{"Payments/QueryValidation", s.paymentValidation},
		{"Dashboards/Doctor", s.doctorDashboard},
		{"Dashboards/Admin", s.adminDashboard},
		{"Idempotency", s.idempotency},
		{"Checkpoint", s.checkpoint},
		{"ConcurrentReadsWhileApplying", s.concurrentReads},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t)
		})
	}
}

type suite struct {
	newModels func(t *testing.T) Models
}

// with returns fresh models fed with h.
func (s *suite) with(t *testing.T, h *history) Models {
	t.Helper()
	m := s.newModels(t)
	feed(t, m, h.events...)
	return m
}

// more feeds the events h gained since mark (a length of h.events).
func more(t *testing.T, m Models, h *history, mark int) int {
	t.Helper()
	feed(t, m, h.events[mark:]...)
	return len(h.events)
}

var ctx = context.Background()

// ---- directory ----

func names(ds []projections.Doctor) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

func (s *suite) doctors(t *testing.T, m Models, f projections.DoctorFilter) []string {
	t.Helper()
	ds, err := m.Directory.Doctors(ctx, f)
	if err != nil {
		t.Fatalf("Doctors(%s): %v", filterString(f), err)
	}
	return names(ds)
}

func expectNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func (s *suite) directoryFilters(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	yes, no := true, false
	all := []string{"Dr. Aaron Zed", "Dr. Asha Rao", "Dr. Ben Carter", "Dr. Chen Li", "Dr. Diya Menon"}
	expectNames(t, "all, by name", s.doctors(t, m, projections.DoctorFilter{}), all...)
	expectNames(t, "speciality cardiology", s.doctors(t, m, projections.DoctorFilter{Speciality: "cardiology"}), "Dr. Asha Rao", "Dr. Ben Carter")
	expectNames(t, "speciality CARDIOLOGY", s.doctors(t, m, projections.DoctorFilter{Speciality: "CARDIOLOGY"}), "Dr. Asha Rao", "Dr. Ben Carter")
	expectNames(t, "speciality Dermatology", s.doctors(t, m, projections.DoctorFilter{Speciality: "Dermatology"}), "Dr. Chen Li")
	expectNames(t, "speciality is exact, not a substring", s.doctors(t, m, projections.DoctorFilter{Speciality: "cardio"}))
	expectNames(t, "unknown speciality", s.doctors(t, m, projections.DoctorFilter{Speciality: "Oncology"}))
	expectNames(t, "q=RAO (name, any case)", s.doctors(t, m, projections.DoctorFilter{Query: "RAO"}), "Dr. Asha Rao")
	expectNames(t, "q=en (name)", s.doctors(t, m, projections.DoctorFilter{Query: "en"}), "Dr. Ben Carter", "Dr. Chen Li", "Dr. Diya Menon")
	expectNames(t, "q=derm (speciality)", s.doctors(t, m, projections.DoctorFilter{Query: "derm"}), "Dr. Chen Li")
	expectNames(t, "q=nobody", s.doctors(t, m, projections.DoctorFilter{Query: "nobody"}))
	expectNames(t, "available", s.doctors(t, m, projections.DoctorFilter{Available: &yes}), "Dr. Aaron Zed", "Dr. Asha Rao", "Dr. Chen Li", "Dr. Diya Menon")
	expectNames(t, "unavailable", s.doctors(t, m, projections.DoctorFilter{Available: &no}), "Dr. Ben Carter")
	expectNames(t, "cardiology and available", s.doctors(t, m, projections.DoctorFilter{Speciality: "cardiology", Available: &yes}), "Dr. Asha Rao")
	expectNames(t, "q=dr and unavailable", s.doctors(t, m, projections.DoctorFilter{Query: "dr", Available: &no}), "Dr. Ben Carter")

	// Same name: still a stable order (by id then).
	h2 := newHistory()
	h2.base()
	h2.profile["doc-asha-2"] = profileOf(asha)
	h2.add(doctor.StreamID("doc-asha-2"), adminActor, doctor.DoctorRegistered{DoctorID: "doc-asha-2", Profile: profileOf(asha), RegisteredAt: h2.clock})
	m2 := s.with(t, h2)
	ds, err := m2.Directory.Doctors(ctx, projections.DoctorFilter{Query: "asha"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].ID != asha || ds[1].ID != "doc-asha-2" {
		t.Errorf("two doctors of one name: got %+v, want %s then doc-asha-2", ds, asha)
	}
}

func (s *suite) directoryDoctor(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	got, err := m.Directory.Doctor(ctx, asha)
	if err != nil {
		t.Fatal(err)
	}
	p := profileOf(asha)
	want := projections.Doctor{
		ID: asha, Name: p.Name, Speciality: p.Speciality, Degree: p.Degree, ExperienceYears: p.ExperienceYears, About: p.About,
		Fees: p.Fees, Currency: p.Currency, Address: p.Address, Available: p.Available, ImageURL: p.ImageURL, Timezone: "Asia/Kolkata",
		Position: positionOf(t, h, func(e projections.Event) bool {
			ss, ok := e.Data.(doctor.ScheduleSet)
			return ok && ss.DoctorID == asha
		}),
	}
	if got != want {
		t.Errorf("Doctor(asha):\n got %+v\nwant %+v", got, want)
	}
	for _, id := range []string{"no-such-doctor", "", "pat-priya", "acc-asha"} {
		if _, err := m.Directory.Doctor(ctx, id); !errors.Is(err, projections.ErrNotFound) || !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Doctor(%q): got %v, want ErrNotFound", id, err)
		}
	}
}

// positionOf is the position of the last event of h matching f.
func positionOf(t *testing.T, h *history, f func(projections.Event) bool) uint64 {
	t.Helper()
	for i := len(h.events) - 1; i >= 0; i-- {
		if f(h.events[i]) {
			return h.events[i].Position
		}
	}
	t.Fatal("no such event")
	return 0
}

func (s *suite) specialities(t *testing.T, m Models) []projections.Speciality {
	t.Helper()
	sp, err := m.Directory.Specialities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func (s *suite) directorySpecialities(t *testing.T) {
	m := s.newModels(t)
	if sp := s.specialities(t, m); len(sp) != 0 {
		t.Errorf("empty directory: specialities %v", sp)
	}
	h := newHistory()
	h.base()
	feed(t, m, h.events...)
	want := []projections.Speciality{{Name: "Cardiology", Doctors: 2}, {Name: "Dermatology", Doctors: 1}, {Name: "Neurology", Doctors: 1}, {Name: "Pediatrics", Doctors: 1}}
	if got := s.specialities(t, m); !reflect.DeepEqual(got, want) {
		t.Errorf("specialities: got %v, want %v", got, want)
	}
}

func (s *suite) directoryProfileUpdate(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	mark := len(h.events)
	h.updateProfile(ben, func(p *doctor.Profile) {
		p.Name, p.Speciality, p.Fees, p.Available, p.About = "Dr. Benjamin Carter", "Neurology", 90000, true, "Now in neurology."
	})
	more(t, m, h, mark)
	got, err := m.Directory.Doctor(ctx, ben)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Dr. Benjamin Carter" || got.Speciality != "Neurology" || got.Fees != 90000 || !got.Available ||
		got.About != "Now in neurology." || got.Degree != "MBBS" || got.Currency != "INR" {
		t.Errorf("after the update: %+v", got)
	}
	if got.Timezone != "Asia/Kolkata" {
		t.Errorf("a profile update lost the schedule's timezone: %q", got.Timezone)
	}
	if got.Position != h.last() {
		t.Errorf("Position %d, want %d (the update)", got.Position, h.last())
	}
	yes := true
	expectNames(t, "cardiology", s.doctors(t, m, projections.DoctorFilter{Speciality: "cardiology"}), "Dr. Asha Rao")
	expectNames(t, "neurology", s.doctors(t, m, projections.DoctorFilter{Speciality: "neurology"}), "Dr. Aaron Zed", "Dr. Benjamin Carter")
	expectNames(t, "q=ben", s.doctors(t, m, projections.DoctorFilter{Query: "benj"}), "Dr. Benjamin Carter")
	expectNames(t, "available", s.doctors(t, m, projections.DoctorFilter{Available: &yes}),
		"Dr. Aaron Zed", "Dr. Asha Rao", "Dr. Benjamin Carter", "Dr. Chen Li", "Dr. Diya Menon")
	want := []projections.Speciality{{Name: "Cardiology", Doctors: 1}, {Name: "Dermatology", Doctors: 1}, {Name: "Neurology", Doctors: 2}, {Name: "Pediatrics", Doctors: 1}}
	if sp := s.specialities(t, m); !reflect.DeepEqual(sp, want) {
		t.Errorf("specialities: got %v, want %v", sp, want)
	}
	// The last speciality of a kind goes away with its last doctor.
	mark = len(h.events)
	h.updateProfile(chen, func(p *doctor.Profile) { p.Speciality = "Cardiology" })
	more(t, m, h, mark)
	want = []projections.Speciality{{Name: "Cardiology", Doctors: 2}, {Name: "Neurology", Doctors: 2}, {Name: "Pediatrics", Doctors: 1}}
	if sp := s.specialities(t, m); !reflect.DeepEqual(sp, want) {
		t.Errorf("specialities: got %v, want %v", sp, want)
	}
}

func (s *suite) directoryTimezone(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	tz := func(id string) string {
		t.Helper()
		d, err := m.Directory.Doctor(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d.Timezone
	}
	for id, want := range map[string]string{asha: "Asia/Kolkata", chen: "America/New_York", diya: "Asia/Kolkata", zed: ""} {
		if got := tz(id); got != want {
			t.Errorf("timezone of %s: %q, want %q", id, got, want)
		}
	}
	mark := len(h.events)
	s2 := kolkataSchedule(doctor.PaymentNone)
	s2.Timezone = "Europe/London"
	h.schedule(zed, s2)
	h.schedule(asha, newYorkSchedule())
	more(t, m, h, mark)
	if got := tz(zed); got != "Europe/London" {
		t.Errorf("timezone of zed after a schedule: %q", got)
	}
	if got := tz(asha); got != "America/New_York" {
		t.Errorf("timezone of asha after a new schedule: %q", got)
	}
	fs, err := m.Slots.FreeSlots(ctx, asha, date(2026, 6, 7), 1, nowK)
	if err != nil || fs.Timezone != "America/New_York" {
		t.Errorf("free slots of asha after a new schedule: timezone %q, %v", fs.Timezone, err)
	}
}

// ---- free slots ----

func (s *suite) free(t *testing.T, m Models, id string, from doctor.Date, days int, now time.Time) projections.FreeSlots {
	t.Helper()
	fs, err := m.Slots.FreeSlots(ctx, id, from, days, now)
	if err != nil {
		t.Fatalf("FreeSlots(%s, %s, %d): %v", id, from, days, err)
	}
	if fs.DoctorID != id {
		t.Errorf("FreeSlots(%s).DoctorID = %q", id, fs.DoctorID)
	}
	if len(fs.Days) != days {
		t.Fatalf("FreeSlots(%s, %s, %d): %d days", id, from, days, len(fs.Days))
	}
	for i, d := range fs.Days {
		if want := from.AddDays(i).String(); d.Date != want {
			t.Errorf("day %d is %s, want %s", i, d.Date, want)
		}
		if d.Slots == nil {
			t.Errorf("day %s: nil slots, want an empty list (JSON [])", d.Date)
		}
	}
	return fs
}

// day is the free slot starts of one date.
func (s *suite) day(t *testing.T, m Models, id string, d doctor.Date, now time.Time) []time.Time {
	t.Helper()
	fs := s.free(t, m, id, d, 1, now)
	out := []time.Time{}
	for _, sl := range fs.Days[0].Slots {
		if got := sl.End.Sub(sl.Start); got != 30*time.Minute {
			t.Errorf("slot %v lasts %v", sl.Start, got)
		}
		out = append(out, sl.Start.UTC())
	}
	return out
}

func expectStarts(t *testing.T, what string, got []time.Time, want ...time.Time) {
	t.Helper()
	if want == nil {
		want = []time.Time{}
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// kolSlots is the first n slots of asha's grid from Tuesday 2026-06-02 on.
func kolSlots(n int) []time.Time {
	var out []time.Time
	for d := date(2026, 6, 2); len(out) < n; d = d.AddDays(1) {
		if wd := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for _, s := range kolDay(d.Day) {
			if len(out) < n {
				out = append(out, s)
			}
		}
	}
	return out
}

// kolDay is the six slots 09:00-11:30 of 2026-06-<d> in Kolkata except
// those starting at the given wall-clock minutes since 09:00.
func kolDay(d int, except ...int) []time.Time {
	var out []time.Time
	for m := 0; m < 180; m += 30 {
		if !slices.Contains(except, m) {
			out = append(out, kol(d, 9, 0).Add(time.Duration(m)*time.Minute))
		}
	}
	return out
}

func (s *suite) slotsKolkata(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	fs := s.free(t, m, asha, date(2026, 6, 2), 1, nowK)
	if fs.Timezone != "Asia/Kolkata" {
		t.Errorf("timezone %q", fs.Timezone)
	}
	want := []doctor.Slot{}
	for _, st := range []string{"03:30", "04:00", "04:30", "05:00", "05:30", "06:00"} {
		start, _ := time.Parse(time.RFC3339, "2026-06-02T"+st+":00Z")
		want = append(want, doctor.Slot{Start: start, End: start.Add(30 * time.Minute)})
	}
	got := normSlots(fs).Days[0].Slots
	if !reflect.DeepEqual(got, want) {
		t.Errorf("slots of Tuesday 2026-06-02 (09:00-12:00 IST):\n got %v\nwant %v", got, want)
	}
}

func (s *suite) slotsDST(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	utc := func(d, hh, mm int) time.Time { return time.Date(2026, time.March, d, hh, mm, 0, 0, time.UTC) }
	fs := s.free(t, m, chen, date(2026, 3, 1), 15, nowNY)
	if fs.Timezone != "America/New_York" {
		t.Errorf("timezone %q", fs.Timezone)
	}
	byDate := map[string][]time.Time{}
	for _, d := range fs.Days {
		for _, sl := range d.Slots {
			byDate[d.Date] = append(byDate[d.Date], sl.Start.UTC())
			if sl.End.Sub(sl.Start) != 30*time.Minute {
				t.Errorf("slot %v lasts %v", sl.Start, sl.End.Sub(sl.Start))
			}
		}
	}
	// Sunday 2026-03-01, EST: 00:00-04:00 is 05:00-09:00 UTC.
	expectStarts(t, "2026-03-01 (EST)", byDate["2026-03-01"],
		utc(1, 5, 0), utc(1, 5, 30), utc(1, 6, 0), utc(1, 6, 30), utc(1, 7, 0), utc(1, 7, 30), utc(1, 8, 0), utc(1, 8, 30))
	// Sunday 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; the
	// wall-clock slots 02:00 and 02:30 do not exist.
	expectStarts(t, "2026-03-08 (spring forward)", byDate["2026-03-08"],
		utc(8, 5, 0), utc(8, 5, 30), utc(8, 6, 0), utc(8, 6, 30), utc(8, 7, 0), utc(8, 7, 30))
	// Sunday 2026-03-15, EDT: 00:00-04:00 is 04:00-08:00 UTC.
	expectStarts(t, "2026-03-15 (EDT)", byDate["2026-03-15"],
		utc(15, 4, 0), utc(15, 4, 30), utc(15, 5, 0), utc(15, 5, 30), utc(15, 6, 0), utc(15, 6, 30), utc(15, 7, 0), utc(15, 7, 30))
	if len(byDate) != 3 {
		t.Errorf("slots on dates %v; want only the three Sundays", slices.Sorted(maps.Keys(byDate)))
	}
	// A booking on the DST day takes exactly its slot.
	mark := len(h.events)
	h.reserve(chen, "a-dst", priya, utc(8, 7, 0))
	more(t, m, h, mark)
	expectStarts(t, "2026-03-08 after booking 03:00 EDT", s.day(t, m, chen, date(2026, 3, 8), nowNY),
		utc(8, 5, 0), utc(8, 5, 30), utc(8, 6, 0), utc(8, 6, 30), utc(8, 7, 30))
}

func (s *suite) slotsBooking(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	d2 := date(2026, 6, 2)
	step := func(what string, id string, change func(), want []time.Time) {
		t.Helper()
		mark := len(h.events)
		change()
		more(t, m, h, mark)
		expectStarts(t, what, s.day(t, m, id, d2, nowK), want...)
	}
	expectStarts(t, "asha before any booking", s.day(t, m, asha, d2, nowK), kolDay(2)...)
	step("booked 10:00", asha, func() { h.reserve(asha, "b1", priya, kol(2, 10, 0)) }, kolDay(2, 60))
	step("cancelled 10:00 comes back", asha, func() { h.cancel("b1", "", domain.RolePatient, false) }, kolDay(2))
	step("booked 10:30", asha, func() { h.reserve(asha, "b2", rahul, kol(2, 10, 30)) }, kolDay(2, 90))
	step("rescheduled 10:30 -> 11:30", asha, func() { h.reschedule("b2", kol(2, 11, 30)) }, kolDay(2, 150))
	step("rescheduled away to another day", asha, func() { h.reschedule("b2", kol(3, 11, 30)) }, kolDay(2))
	expectStarts(t, "the other day", s.day(t, m, asha, date(2026, 6, 3), nowK), kolDay(3, 150)...)
	step("cancelled by the doctor", asha, func() {
		h.reserve(asha, "b3", sara, kol(2, 9, 0))
		h.cancel("b3", "emergency", domain.RoleDoctor, false)
	}, kolDay(2))

	expectStarts(t, "diya before any booking", s.day(t, m, diya, d2, nowK), kolDay(2)...)
	step("held 09:00", diya, func() { h.reserve(diya, "b4", priya, kol(2, 9, 0)) }, kolDay(2, 0))
	step("hold expired", diya, func() { h.expire("b4") }, kolDay(2))
	step("held 09:30", diya, func() { h.reserve(diya, "b5", rahul, kol(2, 9, 30)) }, kolDay(2, 30))
	step("held 09:30 paid and confirmed", diya, func() { h.capture("b5", "pay_b5", "", false, true) }, kolDay(2, 30))
	step("late payment of the expired hold changes nothing", diya, func() { h.capture("b4", "pay_b4", "", true, false) }, kolDay(2, 30))
	step("re-booked the expired slot", diya, func() { h.reserve(diya, "b6", sara, kol(2, 9, 0)) }, kolDay(2, 0, 30))
	// Other doctors are not affected.
	expectStarts(t, "asha unaffected by diya", s.day(t, m, asha, d2, nowK), kolDay(2)...)
}

func (s *suite) slotsTimeOff(t *testing.T) {
	h := newHistory()
	h.base()
	h.timeOff(asha, "to-1", kol(3, 9, 0), kol(3, 10, 30), "dentist")
	h.timeOff(asha, "to-2", time.Date(2026, 6, 4, 0, 0, 0, 0, kolkata), time.Date(2026, 6, 5, 0, 0, 0, 0, kolkata), "holiday")
	h.timeOff(asha, "to-3", kol(5, 11, 15), kol(5, 11, 45), "") // cuts into two slots
	m := s.with(t, h)
	expectStarts(t, "06-02 untouched", s.day(t, m, asha, date(2026, 6, 2), nowK), kolDay(2)...)
	expectStarts(t, "06-03 morning off", s.day(t, m, asha, date(2026, 6, 3), nowK), kolDay(3, 0, 30, 60)...)
	expectStarts(t, "06-04 day off", s.day(t, m, asha, date(2026, 6, 4), nowK))
	expectStarts(t, "06-05 11:15-11:45 off", s.day(t, m, asha, date(2026, 6, 5), nowK), kolDay(5, 120, 150)...)
	expectStarts(t, "another doctor", s.day(t, m, diya, date(2026, 6, 4), nowK), kolDay(4)...)
}

func (s *suite) slotsUnavailable(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	fs := s.free(t, m, ben, date(2026, 6, 1), 7, nowK)
	for _, d := range fs.Days {
		if len(d.Slots) != 0 {
			t.Errorf("unavailable doctor has slots on %s: %v", d.Date, d.Slots)
		}
	}
	mark := len(h.events)
	h.updateProfile(ben, func(p *doctor.Profile) { p.Available = true })
	h.updateProfile(asha, func(p *doctor.Profile) { p.Available = false })
	more(t, m, h, mark)
	expectStarts(t, "ben once available", s.day(t, m, ben, date(2026, 6, 2), nowK), kolDay(2)...)
	expectStarts(t, "asha once unavailable", s.day(t, m, asha, date(2026, 6, 2), nowK))
}

func (s *suite) slotsNow(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	// At 09:40 the notice of 60 minutes leaves 11:00 and 11:30 of today.
	expectStarts(t, "today at 09:40", s.day(t, m, asha, date(2026, 6, 1), kol(1, 9, 40)), kolDay(1, 0, 30, 60, 90)...)
	expectStarts(t, "today at 08:00", s.day(t, m, asha, date(2026, 6, 1), nowK), kolDay(1)...)
	expectStarts(t, "today after hours", s.day(t, m, asha, date(2026, 6, 1), kol(1, 11, 31)))
	expectStarts(t, "yesterday", s.day(t, m, asha, date(2026, 5, 29), nowK))
	// The window of 14 days ends on 2026-06-15 seen from 06-01.
	fs := s.free(t, m, asha, date(2026, 6, 13), 4, nowK)
	counts := []int{}
	for _, d := range fs.Days {
		counts = append(counts, len(d.Slots))
	}
	if !slices.Equal(counts, []int{0, 0, 6, 0}) {
		t.Errorf("slots per day 06-13..06-16 seen from 06-01: %v, want [0 0 6 0]", counts)
	}
	expectStarts(t, "06-16 seen from 06-02", s.day(t, m, asha, date(2026, 6, 16), kol(2, 8, 0)), kolDay(16)...)
}

func (s *suite) slotsDays(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	fs := s.free(t, m, asha, date(2026, 6, 1), 7, nowK)
	counts := []int{}
	for _, d := range fs.Days {
		counts = append(counts, len(d.Slots))
	}
	if !slices.Equal(counts, []int{6, 6, 6, 6, 6, 0, 0}) {
		t.Errorf("slots per day of the week from Monday 06-01: %v", counts)
	}
	s.free(t, m, asha, date(2026, 6, 30), 3, nowK) // across a month end
	if fs := s.free(t, m, asha, date(2026, 6, 2), 1, nowK); len(fs.Days[0].Slots) != 6 {
		t.Errorf("one day: %v", fs.Days)
	}
	for _, id := range []string{"no-such-doctor", "", priya} {
		if _, err := m.Slots.FreeSlots(ctx, id, date(2026, 6, 2), 3, nowK); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("FreeSlots(%q): %v, want ErrNotFound", id, err)
		}
	}
	// A doctor without a schedule exists but has no slots.
	fs = s.free(t, m, zed, date(2026, 6, 1), 3, nowK)
	if fs.Timezone != "" {
		t.Errorf("doctor without schedule: timezone %q", fs.Timezone)
	}
	for _, d := range fs.Days {
		if len(d.Slots) != 0 {
			t.Errorf("doctor without schedule has slots on %s", d.Date)
		}
	}
}

// ---- appointments ----

func (s *suite) appointment(t *testing.T, m Models, id string) projections.Appointment {
	t.Helper()
	a, err := m.Appointments.Appointment(ctx, id)
	if err != nil {
		t.Fatalf("Appointment(%s): %v", id, err)
	}
	return a
}

// sameAppointment compares two appointments as instants, ignoring Position.
func sameAppointment(got, want projections.Appointment) bool {
	got, want = appointmentView(got).Appointment, appointmentView(want).Appointment
	got.Position, want.Position = 0, 0
	return reflect.DeepEqual(got, want)
}

func (s *suite) appointmentByID(t *testing.T) {
	h := newHistory()
	h.base()
	h.appointments()
	m := s.with(t, h)
	a := h.appt("a03")
	want := projections.Appointment{
		ID: "a03", DoctorID: asha, DoctorName: "Dr. Asha Rao", PatientID: sara, PatientName: "Sara Khan",
		Start: kol(3, 11, 0), End: kol(3, 11, 30), Timezone: "Asia/Kolkata", Status: "confirmed", Fees: 50000, Currency: "INR",
		Payment: projections.Payment{Status: "not_required"}, CreatedAt: a.ReservedAt,
	}
	if got := s.appointment(t, m, "a03"); !sameAppointment(got, want) {
		t.Errorf("Appointment(a03):\n got %+v\nwant %+v", got, want)
	}
	got := s.appointment(t, m, "a07")
	if got.DoctorName != "Dr. Chen Li" || got.Currency != "USD" || got.Fees != 15000 || got.PatientName != "Priya Shah" || got.Timezone != "America/New_York" {
		t.Errorf("Appointment(a07): %+v", got)
	}
	for _, id := range []string{"no-such-appointment", "", asha} {
		if _, err := m.Appointments.Appointment(ctx, id); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("Appointment(%q): %v, want ErrNotFound", id, err)
		}
	}
	// Renaming the doctor renames every appointment, and every list.
	mark := len(h.events)
	h.updateProfile(asha, func(p *doctor.Profile) { p.Name = "Dr. Asha Rao-Iyer"; p.Fees = 70000 })
	more(t, m, h, mark)
	got = s.appointment(t, m, "a03")
	if got.DoctorName != "Dr. Asha Rao-Iyer" {
		t.Errorf("after the rename: doctorName %q", got.DoctorName)
	}
	if got.Fees != 50000 {
		t.Errorf("a fee change must not change booked appointments: fees %d", got.Fees)
	}
	page, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{DoctorID: asha})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range page.Appointments {
		if a.DoctorName != "Dr. Asha Rao-Iyer" {
			t.Errorf("listed %s with doctorName %q", a.ID, a.DoctorName)
		}
	}
	dd, err := m.Dashboards.DoctorDashboard(ctx, asha)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range dd.Latest {
		if a.DoctorName != "Dr. Asha Rao-Iyer" {
			t.Errorf("dashboard lists %s with doctorName %q", a.ID, a.DoctorName)
		}
	}
}

// appointmentTimezone: every answer about an appointment (by id, in every
// list, on the dashboards) carries its doctor's IANA zone, so a client can
// show local times. It is the doctor's current zone, joined like the
// doctor's name: a new schedule in another zone moves every appointment of
// that doctor, and only that doctor's, to it; a profile update keeps it.
func (s *suite) appointmentTimezone(t *testing.T) {
	h := newHistory()
	h.base()
	h.appointments()
	m := s.with(t, h)
	zoneOf := map[string]string{asha: "Asia/Kolkata", ben: "Asia/Kolkata", chen: "America/New_York", diya: "Asia/Kolkata"}
	check := func(when string) {
		t.Helper()
		for id, a := range h.appts {
			if got := s.appointment(t, m, id); got.Timezone != zoneOf[a.DoctorID] {
				t.Errorf("%s: Appointment(%s) of %s: timezone %q, want %q", when, id, a.DoctorID, got.Timezone, zoneOf[a.DoctorID])
			}
		}
		all, err := walk(ctx, m.Appointments, projections.AppointmentQuery{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(h.appts) {
			t.Errorf("%s: %d appointments listed, want %d", when, len(all), len(h.appts))
		}
		for _, a := range all {
			if a.Timezone != zoneOf[a.DoctorID] {
				t.Errorf("%s: listed %s of %s with timezone %q, want %q", when, a.ID, a.DoctorID, a.Timezone, zoneOf[a.DoctorID])
			}
		}
		for _, id := range []string{asha, chen, diya} {
			dd, err := m.Dashboards.DoctorDashboard(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range dd.Latest {
				if a.Timezone != zoneOf[id] {
					t.Errorf("%s: dashboard of %s lists %s with timezone %q", when, id, a.ID, a.Timezone)
				}
			}
		}
		ad, err := m.Dashboards.AdminDashboard(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ad.Latest {
			if a.Timezone != zoneOf[a.DoctorID] {
				t.Errorf("%s: admin dashboard lists %s with timezone %q", when, a.ID, a.Timezone)
			}
		}
		if ad.Doctors != 5 {
			t.Errorf("%s: admin dashboard counts %d doctors, want 5", when, ad.Doctors)
		}
	}
	check("as booked")

	// A profile update keeps the zone; a new schedule changes it.
	mark := len(h.events)
	h.updateProfile(asha, func(p *doctor.Profile) { p.Name = "Dr. Asha Rao-Iyer" })
	mark = more(t, m, h, mark)
	check("after a profile update")
	london := kolkataSchedule(doctor.PaymentNone)
	london.Timezone = "Europe/London"
	h.schedule(asha, london)
	more(t, m, h, mark)
	zoneOf[asha] = "Europe/London"
	check("after asha's new schedule")

	// Replaying everything changes nothing.
	feed(t, m, h.events...)
	check("after a replay")
}

func ids(as []projections.Appointment) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func (s *suite) list(t *testing.T, m Models, q projections.AppointmentQuery) []string {
	t.Helper()
	q.Limit = projections.MaxPageSize
	page, err := m.Appointments.Appointments(ctx, q)
	if err != nil {
		t.Fatalf("Appointments(%+v): %v", q, err)
	}
	if page.NextCursor != "" {
		t.Errorf("Appointments(%+v): a next cursor after the last page", q)
	}
	if page.Appointments == nil {
		t.Errorf("Appointments(%+v): nil list, want an empty one (JSON [])", q)
	}
	return ids(page.Appointments)
}

func (s *suite) appointmentLists(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.newModels(t)
	feed(t, m, h.events...)
	expectNames(t, "no appointments yet", s.list(t, m, projections.AppointmentQuery{}))
	mark := len(h.events)
	h.appointments()
	more(t, m, h, mark)
	expectNames(t, "all", s.list(t, m, projections.AppointmentQuery{}), "a10", "a09", "a08", "a07", "a06", "a05", "a04", "a03", "a02", "a01")
	expectNames(t, "priya", s.list(t, m, projections.AppointmentQuery{PatientID: priya}), "a09", "a07", "a04", "a01")
	expectNames(t, "rahul", s.list(t, m, projections.AppointmentQuery{PatientID: rahul}), "a08", "a05", "a02")
	expectNames(t, "asha", s.list(t, m, projections.AppointmentQuery{DoctorID: asha}), "a10", "a08", "a04", "a03", "a02", "a01")
	expectNames(t, "diya", s.list(t, m, projections.AppointmentQuery{DoctorID: diya}), "a09", "a06", "a05")
	expectNames(t, "zed", s.list(t, m, projections.AppointmentQuery{DoctorID: zed}))
	expectNames(t, "unknown patient", s.list(t, m, projections.AppointmentQuery{PatientID: "nobody"}))
	expectNames(t, "priya with asha", s.list(t, m, projections.AppointmentQuery{PatientID: priya, DoctorID: asha}), "a04", "a01")
	// Rescheduling does not change the booking order.
	mark = len(h.events)
	h.reschedule("a03", kol(12, 9, 0))
	more(t, m, h, mark)
	expectNames(t, "asha after moving a03 last in time", s.list(t, m, projections.AppointmentQuery{DoctorID: asha}), "a10", "a08", "a04", "a03", "a02", "a01")
}

func (s *suite) appointmentFilters(t *testing.T) {
	h := newHistory()
	h.base()
	h.appointments()
	m := s.with(t, h)
	q := func(q projections.AppointmentQuery) []string { t.Helper(); return s.list(t, m, q) }
	expectNames(t, "confirmed", q(projections.AppointmentQuery{Status: "confirmed"}), "a10", "a08", "a07", "a05", "a03")
	expectNames(t, "cancelled", q(projections.AppointmentQuery{Status: "cancelled"}), "a09", "a02")
	expectNames(t, "expired", q(projections.AppointmentQuery{Status: "expired"}), "a06")
	expectNames(t, "completed", q(projections.AppointmentQuery{Status: "completed"}), "a01")
	expectNames(t, "no_show", q(projections.AppointmentQuery{Status: "no_show"}), "a04")
	expectNames(t, "held", q(projections.AppointmentQuery{Status: "held"}))
	expectNames(t, "asha confirmed", q(projections.AppointmentQuery{DoctorID: asha, Status: "confirmed"}), "a10", "a08", "a03")
	expectNames(t, "priya cancelled", q(projections.AppointmentQuery{PatientID: priya, Status: "cancelled"}), "a09")
	// From is inclusive and To exclusive, on the (current) start.
	expectNames(t, "from 06-03 09:00", q(projections.AppointmentQuery{From: kol(3, 9, 0)}), "a10", "a09", "a08", "a04", "a03")
	expectNames(t, "to 06-03 09:00", q(projections.AppointmentQuery{To: kol(3, 9, 0)}), "a07", "a06", "a05", "a02", "a01")
	expectNames(t, "on 06-03", q(projections.AppointmentQuery{From: kol(3, 0, 0), To: kol(4, 0, 0)}), "a09", "a04", "a03")
	expectNames(t, "on 06-03 for asha, confirmed", q(projections.AppointmentQuery{DoctorID: asha, Status: "confirmed", From: kol(3, 0, 0), To: kol(4, 0, 0)}), "a03")
	expectNames(t, "from = to", q(projections.AppointmentQuery{From: kol(3, 9, 0), To: kol(3, 9, 0)}))
	expectNames(t, "in March (New York)", q(projections.AppointmentQuery{To: kol(1, 0, 0)}), "a07")
	// From and To in another zone mean the same instants.
	expectNames(t, "from in Kolkata time", q(projections.AppointmentQuery{From: kol(3, 9, 0).In(kolkata)}), "a10", "a09", "a08", "a04", "a03")
}

func (s *suite) appointmentPagination(t *testing.T) {
	h := newHistory()
	h.base()
	// 23 bookings of asha over four days, every fourth cancelled, with
	// bookings of diya interleaved.
	var all, confirmed, priyas []string
	n := 0
	for _, d := range []int{2, 3, 4, 5} {
		for m := 0; m < 180 && n < 23; m += 30 {
			id := fmt.Sprintf("p%02d", n)
			pat := []string{priya, rahul}[n%2]
			h.reserve(asha, id, pat, kol(d, 9, m))
			if n%4 == 3 {
				h.cancel(id, "", domain.RolePatient, false)
			} else {
				confirmed = append(confirmed, id)
			}
			if pat == priya {
				priyas = append(priyas, id)
			}
			all = append(all, id)
			if n%5 == 0 {
				h.reserve(diya, fmt.Sprintf("q%02d", n), sara, kol(d, 9, m))
			}
			n++
		}
	}
	slices.Reverse(all)
	slices.Reverse(confirmed)
	slices.Reverse(priyas)
	m := s.with(t, h)
	for _, c := range []struct {
		q    projections.AppointmentQuery
		want []string
	}{
		{projections.AppointmentQuery{DoctorID: asha}, all},
		{projections.AppointmentQuery{DoctorID: asha, Status: "confirmed"}, confirmed},
		{projections.AppointmentQuery{PatientID: priya}, priyas},
	} {
		for _, limit := range []int{1, 2, 4, 5, 7, 22, 23, 24, 200} {
			q := c.q
			q.Limit = limit
			var got []string
			pages := 0
			for {
				page, err := m.Appointments.Appointments(ctx, q)
				if err != nil {
					t.Fatalf("%+v: %v", q, err)
				}
				pages++
				if len(page.Appointments) > limit {
					t.Fatalf("%+v: page of %d", q, len(page.Appointments))
				}
				if page.NextCursor != "" && len(page.Appointments) != limit {
					t.Errorf("%+v: a short page (%d) with a next cursor", q, len(page.Appointments))
				}
				got = append(got, ids(page.Appointments)...)
				if page.NextCursor == "" || pages > 100 {
					break
				}
				q.Cursor = page.NextCursor
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%+v limit %d: walked %q, want %q", c.q, limit, got, c.want)
			}
			if wantPages := max(1, (len(c.want)+limit-1)/limit); pages != wantPages {
				t.Errorf("%+v limit %d: %d pages, want %d (no empty last page)", c.q, limit, pages, wantPages)
			}
		}
	}
	// A cursor stays valid while new appointments are booked: the walk
	// goes on from where it was, the new ones are on the first page.
	q := projections.AppointmentQuery{DoctorID: asha, Limit: 10}
	first, err := m.Appointments.Appointments(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	mark := len(h.events)
	h.reserve(asha, "late", sara, kol(8, 9, 0))
	more(t, m, h, mark)
	q.Cursor = first.NextCursor
	second, err := m.Appointments.Appointments(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(second.Appointments); !slices.Equal(got, all[10:20]) {
		t.Errorf("second page after a new booking: %q, want %q", got, all[10:20])
	}
	// Limit 0 means the default page of 50.
	h2 := newHistory()
	h2.base()
	for i, start := range kolSlots(55) {
		h2.reserve(asha, fmt.Sprintf("r%02d", i), priya, start)
	}
	m2 := s.with(t, h2)
	page, err := m2.Appointments.Appointments(ctx, projections.AppointmentQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Appointments) != 50 || page.NextCursor == "" {
		t.Errorf("default limit: %d appointments, cursor %q; want 50 and a cursor", len(page.Appointments), page.NextCursor)
	}
}

func (s *suite) appointmentValidation(t *testing.T) {
	h := newHistory()
	h.base()
	h.appointments()
	m := s.with(t, h)
	for _, c := range []struct {
		name string
		q    projections.AppointmentQuery
		want *domain.Error
	}{
		{"limit -1", projections.AppointmentQuery{Limit: -1}, nil},
		{"limit 201", projections.AppointmentQuery{Limit: projections.MaxPageSize + 1}, nil},
		{"unknown status", projections.AppointmentQuery{Status: "booked"}, nil},
		{"to before from", projections.AppointmentQuery{From: kol(3, 0, 0), To: kol(2, 0, 0)}, nil},
		{"garbage cursor", projections.AppointmentQuery{Cursor: "%%%not base64%%%"}, projections.ErrInvalidCursor},
		{"foreign cursor", projections.AppointmentQuery{Cursor: "not-a-cursor"}, projections.ErrInvalidCursor},
		{"empty-ish cursor", projections.AppointmentQuery{Cursor: "Yg"}, projections.ErrInvalidCursor},
	} {
		_, err := m.Appointments.Appointments(ctx, c.q)
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: got %v, want an error of kind invalid", c.name, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v (code %q), want %s", c.name, err, domain.CodeOf(err), c.want.Code)
		}
	}
	for _, limit := range []int{1, projections.MaxPageSize} {
		if _, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{Limit: limit}); err != nil {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
}

func (s *suite) appointmentStatuses(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	expect := func(id string, status doctor.Status, start time.Time, reason string) {
		t.Helper()
		a := s.appointment(t, m, id)
		if a.Status != string(status) || !a.Start.Equal(start) || !a.End.Equal(start.Add(30*time.Minute)) || a.CancelReason != reason {
			t.Errorf("%s: status %q start %v end %v reason %q; want %q %v %q", id, a.Status, a.Start, a.End, a.CancelReason, status, start, reason)
		}
	}
	step := func(change func()) { mark := len(h.events); change(); more(t, m, h, mark) }

	step(func() { h.reserve(asha, "s1", priya, kol(2, 9, 0)) })
	expect("s1", doctor.StatusConfirmed, kol(2, 9, 0), "")
	step(func() { h.reschedule("s1", kol(4, 10, 0)) })
	expect("s1", doctor.StatusConfirmed, kol(4, 10, 0), "")
	step(func() { h.cancel("s1", "travelling", domain.RolePatient, false) })
	expect("s1", doctor.StatusCancelled, kol(4, 10, 0), "travelling")

	step(func() { h.reserve(asha, "s2", rahul, kol(2, 10, 0)); h.complete("s2") })
	expect("s2", doctor.StatusCompleted, kol(2, 10, 0), "")
	step(func() { h.reserve(asha, "s3", sara, kol(2, 10, 30)); h.noShow("s3") })
	expect("s3", doctor.StatusNoShow, kol(2, 10, 30), "")

	step(func() { h.reserve(diya, "s4", priya, kol(2, 9, 0)) })
	expect("s4", doctor.StatusHeld, kol(2, 9, 0), "")
	step(func() { h.expire("s4") })
	expect("s4", doctor.StatusExpired, kol(2, 9, 0), "")
	step(func() { h.reserve(diya, "s5", rahul, kol(2, 9, 0)); h.capture("s5", "pay_s5", "", false, true) })
	expect("s5", doctor.StatusConfirmed, kol(2, 9, 0), "")
	step(func() { h.reschedule("s5", kol(2, 11, 0)) })
	expect("s5", doctor.StatusConfirmed, kol(2, 11, 0), "")
	step(func() { h.cancel("s5", "doctor time off: leave", domain.RoleDoctor, true) })
	expect("s5", doctor.StatusCancelled, kol(2, 11, 0), "doctor time off: leave")
	// Events about an appointment the model never saw are ignored.
	step(func() {
		h.add(doctor.StreamID(asha), domain.System, doctor.AppointmentCompleted{DoctorID: asha, AppointmentID: "ghost", CompletedAt: h.clock})
	})
	if _, err := m.Appointments.Appointment(ctx, "ghost"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("ghost appointment: %v", err)
	}
}

// ---- dashboards ----

func (s *suite) dashboard(t *testing.T, m Models, id string) projections.DoctorDashboard {
	t.Helper()
	d, err := m.Dashboards.DoctorDashboard(ctx, id)
	if err != nil {
		t.Fatalf("DoctorDashboard(%s): %v", id, err)
	}
	if d.Latest == nil {
		t.Errorf("DoctorDashboard(%s): nil latest, want an empty list", id)
	}
	return d
}

func (s *suite) doctorDashboard(t *testing.T) {
	h := newHistory()
	h.base()
	h.appointments()
	m := s.with(t, h)
	type row struct {
		earnings     int64
		currency     string
		appointments int
		patients     int
		latest       []string
	}
	check := func(id string, want row) {
		t.Helper()
		d := s.dashboard(t, m, id)
		got := row{d.Earnings, d.Currency, d.Appointments, d.Patients, ids(d.Latest)}
		if got.latest == nil {
			got.latest = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DoctorDashboard(%s):\n got %+v\nwant %+v", id, got, want)
		}
	}
	// Earnings are the fees of appointments that are completed or whose
	// payment stands as paid (a cancelled one until it is refunded); every
	// booking counts as an appointment, whatever its status.
	check(asha, row{50000, "INR", 6, 3, []string{"a10", "a08", "a04", "a03", "a02"}})
	check(diya, row{60000, "INR", 3, 3, []string{"a09", "a06", "a05"}})
	check(chen, row{0, "USD", 1, 1, []string{"a07"}})
	check(zed, row{0, "INR", 0, 0, []string{}})
	check(ben, row{0, "INR", 0, 0, []string{}})
	mark := len(h.events)
	h.refund("a09", "pay_a09", "rfnd_a09")
	h.complete("a08")
	h.capture("a07", "pay_a07", "order_a07", false, false)
	h.reserve(asha, "a11", priya, kol(9, 9, 0))
	h.updateProfile(chen, func(p *doctor.Profile) { p.Currency = "EUR" })
	more(t, m, h, mark)
	check(diya, row{30000, "INR", 3, 3, []string{"a09", "a06", "a05"}})
	check(asha, row{100000, "INR", 7, 3, []string{"a11", "a10", "a08", "a04", "a03"}})
	check(chen, row{15000, "EUR", 1, 1, []string{"a07"}})
	for _, id := range []string{"no-such-doctor", "", priya} {
		if _, err := m.Dashboards.DoctorDashboard(ctx, id); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("DoctorDashboard(%q): %v, want ErrNotFound", id, err)
		}
	}
	d := s.dashboard(t, m, asha)
	if len(d.Latest) > 0 && d.Latest[0].DoctorName != "Dr. Asha Rao" {
		t.Errorf("latest without the doctor's name: %+v", d.Latest[0])
	}
}

func (s *suite) adminDashboard(t *testing.T) {
	m := s.newModels(t)
	a, err := m.Dashboards.AdminDashboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Doctors != 0 || a.Patients != 0 || a.Appointments != 0 || len(a.Latest) != 0 || a.Latest == nil {
		t.Errorf("empty admin dashboard: %+v", a)
	}
	h := newHistory()
	h.base()
	h.appointments()
	feed(t, m, h.events...)
	a, err = m.Dashboards.AdminDashboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Patients are patient accounts (not staff, not the patients of bookings).
	if a.Doctors != 5 || a.Patients != 3 || a.Appointments != 10 || !slices.Equal(ids(a.Latest), []string{"a10", "a09", "a08", "a07", "a06"}) {
		t.Errorf("admin dashboard: doctors %d patients %d appointments %d latest %q; want 5 3 10 [a10 a09 a08 a07 a06]",
			a.Doctors, a.Patients, a.Appointments, ids(a.Latest))
	}
	if len(a.Latest) > 0 && (a.Latest[0].DoctorName != "Dr. Asha Rao" || a.Latest[1].DoctorName != "Dr. Diya Menon") {
		t.Errorf("latest without doctor names: %+v", a.Latest[:2])
	}
	mark := len(h.events)
	h.account("pat-new", "New Patient", domain.RolePatient, "")
	h.account("aud-1", "Auditor", domain.RoleAuditor, "")
	h.reserve(asha, "a11", "pat-anonymous", kol(9, 9, 0))
	more(t, m, h, mark)
	a, err = m.Dashboards.AdminDashboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Patients != 4 || a.Appointments != 11 || ids(a.Latest)[0] != "a11" || len(a.Latest) != 5 {
		t.Errorf("admin dashboard after more: %+v", a)
	}
}

// ---- replays ----

// probe asks about everything rich() creates.
func probe() Probe {
	var appts []string
	for i := 1; i <= 12; i++ {
		appts = append(appts, fmt.Sprintf("a%02d", i))
	}
	return Probe{
		DoctorIDs: []string{asha, ben, chen, diya, zed}, PatientIDs: []string{priya, rahul, sara, "pat-new"},
		AppointmentIDs: appts, From: date(2026, 6, 1), Days: 16, Now: nowK,
	}
}

func (s *suite) idempotency(t *testing.T) {
	h := rich()
	once := s.with(t, h)
	want := Snapshot(ctx, t, once, probe())

	feed(t, once, h.events...)
	SameSnapshot(t, "the whole log applied twice", Snapshot(ctx, t, once, probe()), want)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 3 {
		n := rng.IntN(len(h.events) + 1)
		feed(t, once, h.events[:n]...)
		SameSnapshot(t, fmt.Sprintf("a prefix of %d events again (seed %d)", n, seed), Snapshot(ctx, t, once, probe()), want)
	}

	// At-least-once delivery: each event twice in a row, and redelivery of
	// a random earlier event after every one.
	dup := s.newModels(t)
	for i, e := range h.events {
		feed(t, dup, e, e)
		feed(t, dup, h.events[rng.IntN(i+1)])
	}
	SameSnapshot(t, fmt.Sprintf("with redeliveries (seed %d)", seed), Snapshot(ctx, t, dup, probe()), want)

	// A replay from scratch agrees with an incremental build.
	inc := s.newModels(t)
	for i := 0; i < len(h.events); {
		j := min(len(h.events), i+1+rng.IntN(5))
		feed(t, inc, h.events[i:j]...)
		_ = Snapshot(ctx, t, inc, probe()) // reading between batches changes nothing
		i = j
	}
	SameSnapshot(t, "built in batches", Snapshot(ctx, t, inc, probe()), want)
}

func (s *suite) checkpoint(t *testing.T) {
	m := s.newModels(t)
	checkpoints := func() []uint64 {
		t.Helper()
		var out []uint64
		for _, p := range m.Projections {
			c, err := p.Checkpoint(ctx)
			if err != nil {
				t.Fatalf("%s.Checkpoint: %v", p.Name(), err)
			}
			out = append(out, c)
		}
		return out
	}
	if len(m.Projections) == 0 {
		t.Fatal("no projections")
	}
	seen := map[string]bool{}
	for _, p := range m.Projections {
		if p.Name() == "" || seen[p.Name()] {
			t.Errorf("projection name %q empty or repeated", p.Name())
		}
		seen[p.Name()] = true
	}
	for i, c := range checkpoints() {
		if c != 0 {
			t.Errorf("%s: checkpoint %d before any event", m.Projections[i].Name(), c)
		}
	}
	h := rich()
	for _, e := range h.events {
		feed(t, m, e)
		// Every projection moves to the position, also over events it ignores.
		for i, c := range checkpoints() {
			if c != e.Position {
				t.Fatalf("%s: checkpoint %d after applying %s at %d", m.Projections[i].Name(), c, e.Type, e.Position)
			}
		}
	}
	// Old events do not move it back.
	feed(t, m, h.events[0], h.events[len(h.events)/2])
	for i, c := range checkpoints() {
		if c != h.last() {
			t.Errorf("%s: checkpoint %d after a redelivery, want %d", m.Projections[i].Name(), c, h.last())
		}
	}
}

func (s *suite) concurrentReads(t *testing.T) {
	h := rich()
	want := Snapshot(ctx, t, s.with(t, h), probe())
	m := s.newModels(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := m.Directory.Doctors(ctx, projections.DoctorFilter{Query: "dr"}); err != nil {
					t.Errorf("reader %d: Doctors: %v", r, err)
					return
				}
				if _, err := m.Directory.Specialities(ctx); err != nil {
					t.Errorf("reader %d: Specialities: %v", r, err)
					return
				}
				if _, err := m.Slots.FreeSlots(ctx, asha, date(2026, 6, 2), 3, nowK); err != nil && !errors.Is(err, projections.ErrNotFound) {
					t.Errorf("reader %d: FreeSlots: %v", r, err)
					return
				}
				if _, err := walk(ctx, m.Appointments, projections.AppointmentQuery{Limit: 3}); err != nil {
					t.Errorf("reader %d: Appointments: %v", r, err)
					return
				}
				if _, err := m.Dashboards.AdminDashboard(ctx); err != nil {
					t.Errorf("reader %d: AdminDashboard: %v", r, err)
					return
				}
				if _, err := m.Dashboards.DoctorDashboard(ctx, asha); err != nil && !errors.Is(err, projections.ErrNotFound) {
					t.Errorf("reader %d: DoctorDashboard: %v", r, err)
					return
				}
			}
		})
	}
	feed(t, m, h.events...)
	close(done)
	wg.Wait()
	SameSnapshot(t, "applied under concurrent reads", Snapshot(ctx, t, m, probe()), want)
}
