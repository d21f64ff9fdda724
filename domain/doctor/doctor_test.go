package doctor_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

func TestStreamID(t *testing.T) {
	t.Parallel()
	if got := doctor.StreamID("abc"); got != "doctor-abc" {
		t.Fatalf("StreamID = %q", got)
	}
	if !doctor.StatusHeld.Live() || !doctor.StatusConfirmed.Live() {
		t.Error("held and confirmed are live")
	}
	for _, s := range []doctor.Status{doctor.StatusCancelled, doctor.StatusExpired, doctor.StatusCompleted, doctor.StatusNoShow} {
		if s.Live() {
			t.Errorf("%s is not live", s)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	register := func(p doctor.Profile) when {
		return func(d *doctor.Doctor) error { return d.Register(p, time.Date(2026, 6, 1, 7, 0, 0, 0, ist)) }
	}
	messy := profile()
	messy.Name, messy.Speciality, messy.Currency, messy.ImageURL = "  Dr. Asha Rao ", "\tCardiology\n", " inr ", " https://img.example.com/asha.png "

	scenarios := []scenario{
		{
			name: "registers with a normalized profile and UTC time",
			when: register(messy),
			then: []domain.Event{registered()},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if !d.Registered() || d.Profile() != profile() {
					t.Errorf("registered=%v profile=%+v", d.Registered(), d.Profile())
				}
			},
		},
		{name: "twice", given: setup(doctor.PaymentNone), when: register(profile()), err: doctor.ErrDoctorExists, kind: domain.ErrConflict},
	}

	valid := []struct {
		name string
		mut  func(*doctor.Profile)
	}{
		{"name of 100 characters", func(p *doctor.Profile) { p.Name = strings.Repeat("é", 100) }},
		{"speciality of 60", func(p *doctor.Profile) { p.Speciality = strings.Repeat("s", 60) }},
		{"empty degree about address image", func(p *doctor.Profile) { p.Degree, p.About, p.Address, p.ImageURL = "", "", "", "" }},
		{"experience 0", func(p *doctor.Profile) { p.ExperienceYears = 0 }},
		{"experience 80", func(p *doctor.Profile) { p.ExperienceYears = 80 }},
		{"zero fees", func(p *doctor.Profile) { p.Fees = 0 }},
		{"max fees", func(p *doctor.Profile) { p.Fees = doctor.MaxFees }},
		{"about of 4000", func(p *doctor.Profile) { p.About = strings.Repeat("a", 4000) }},
		{"address of 300", func(p *doctor.Profile) { p.Address = strings.Repeat("a", 300) }},
		{"http image", func(p *doctor.Profile) { p.ImageURL = "http://x.example/a.png" }},
		{"unavailable", func(p *doctor.Profile) { p.Available = false }},
	}
	for _, v := range valid {
		p := profile()
		v.mut(&p)
		scenarios = append(scenarios, scenario{
			name: "valid: " + v.name,
			when: register(p),
			then: []domain.Event{doctor.DoctorRegistered{DoctorID: docID, Profile: p, RegisteredAt: at(1, 7, 0)}},
		})
	}

	invalid := []struct {
		name string
		mut  func(*doctor.Profile)
	}{
		{"empty name", func(p *doctor.Profile) { p.Name = "" }},
		{"blank name", func(p *doctor.Profile) { p.Name = "   " }},
		{"name of 101", func(p *doctor.Profile) { p.Name = strings.Repeat("n", 101) }},
		{"name not UTF-8", func(p *doctor.Profile) { p.Name = "Dr \xff" }},
		{"empty speciality", func(p *doctor.Profile) { p.Speciality = "" }},
		{"speciality of 61", func(p *doctor.Profile) { p.Speciality = strings.Repeat("s", 61) }},
		{"degree of 61", func(p *doctor.Profile) { p.Degree = strings.Repeat("d", 61) }},
		{"negative experience", func(p *doctor.Profile) { p.ExperienceYears = -1 }},
		{"experience 81", func(p *doctor.Profile) { p.ExperienceYears = 81 }},
		{"about of 4001", func(p *doctor.Profile) { p.About = strings.Repeat("a", 4001) }},
		{"negative fees", func(p *doctor.Profile) { p.Fees = -1 }},
		{"fees above max", func(p *doctor.Profile) { p.Fees = doctor.MaxFees + 1 }},
		{"empty currency", func(p *doctor.Profile) { p.Currency = "" }},
		{"two-letter currency", func(p *doctor.Profile) { p.Currency = "IN" }},
		{"four-letter currency", func(p *doctor.Profile) { p.Currency = "INRR" }},
		{"currency with a digit", func(p *doctor.Profile) { p.Currency = "IN1" }},
		{"currency not ASCII", func(p *doctor.Profile) { p.Currency = "€U" }},
		{"address of 301", func(p *doctor.Profile) { p.Address = strings.Repeat("a", 301) }},
		{"ftp image", func(p *doctor.Profile) { p.ImageURL = "ftp://x.example/a.png" }},
		{"image without host", func(p *doctor.Profile) { p.ImageURL = "https://" }},
		{"relative image", func(p *doctor.Profile) { p.ImageURL = "/a.png" }},
		{"unparsable image", func(p *doctor.Profile) { p.ImageURL = "http://[::1" }},
		{"image too long", func(p *doctor.Profile) { p.ImageURL = "https://x.example/" + strings.Repeat("a", 2048) }},
	}
	for _, v := range invalid {
		p := profile()
		v.mut(&p)
		scenarios = append(scenarios, scenario{
			name: "invalid: " + v.name, when: register(p), err: doctor.ErrInvalidProfile, kind: domain.ErrInvalid,
		})
	}
	run(t, scenarios)
}

func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	update := func(mut func(*doctor.Profile)) when {
		return func(d *doctor.Doctor) error {
			p := profile()
			mut(&p)
			return d.UpdateProfile(p)
		}
	}
	changed := profile()
	changed.Fees, changed.Available = 70000, false
	run(t, []scenario{
		{
			name: "not registered", when: update(func(*doctor.Profile) {}),
			err: doctor.ErrDoctorNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "records the whole profile", given: setup(doctor.PaymentNone),
			when: update(func(p *doctor.Profile) { p.Fees, p.Available = 70000, false }),
			then: []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: changed}},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if d.Profile() != changed {
					t.Errorf("profile = %+v", d.Profile())
				}
			},
		},
		{
			name: "unchanged records nothing", given: setup(doctor.PaymentNone),
			when: update(func(*doctor.Profile) {}),
		},
		{
			name: "unchanged after normalization records nothing", given: setup(doctor.PaymentNone),
			when: update(func(p *doctor.Profile) { p.Name, p.Currency = " Dr. Asha Rao  ", "inr" }),
		},
		{
			name: "invalid", given: setup(doctor.PaymentNone),
			when: update(func(p *doctor.Profile) { p.Name = "" }),
			err:  doctor.ErrInvalidProfile, kind: domain.ErrInvalid,
		},
	})
}

func TestSetSchedule(t *testing.T) {
	t.Parallel()
	set := func(mut func(*doctor.Schedule)) when {
		return func(d *doctor.Doctor) error {
			s := schedule(doctor.PaymentNone)
			mut(&s)
			return d.SetSchedule(s)
		}
	}
	reg := []domain.Event{registered()}
	scenarios := []scenario{
		{
			name: "not registered", when: set(func(*doctor.Schedule) {}),
			err: doctor.ErrDoctorNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "sets the schedule with a trimmed zone", given: reg,
			when: set(func(s *doctor.Schedule) { s.Timezone = " Asia/Kolkata " }),
			then: []domain.Event{scheduled(doctor.PaymentNone)},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if d.Grid() == nil || d.Grid().Location().String() != "Asia/Kolkata" {
					t.Fatalf("grid = %v", d.Grid())
				}
			},
		},
		{
			name: "the same schedule records nothing", given: setup(doctor.PaymentNone),
			when: set(func(*doctor.Schedule) {}),
		},
		{
			name: "a changed policy is recorded", given: setup(doctor.PaymentNone),
			when: set(func(s *doctor.Schedule) { s.PaymentPolicy = doctor.PaymentRequired }),
			then: []domain.Event{scheduled(doctor.PaymentRequired)},
		},
		{
			name:  "existing bookings stay and still block longer slots",
			given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 30))),
			when:  set(func(s *doctor.Schedule) { s.SlotMinutes = 60 }),
			then: []domain.Event{doctor.ScheduleSet{DoctorID: docID, Schedule: func() doctor.Schedule {
				s := schedule(doctor.PaymentNone)
				s.SlotMinutes = 60
				return s
			}()}},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				if a := mustAppointment(t, d, "a1"); a.Status != doctor.StatusConfirmed || !a.End.Equal(at(2, 10, 0)) {
					t.Errorf("a1 = %+v", a)
				}
				expectReserve(t, h, at(2, 9, 0), now0, doctor.ErrSlotUnavailable) // 09:00-10:00 overlaps 09:30
				expectReserve(t, h, at(2, 10, 0), now0, nil)
				expectReserve(t, h, at(2, 9, 30), now0, doctor.ErrOutsideSchedule)
			},
		},
	}

	valid := []struct {
		name string
		mut  func(*doctor.Schedule)
	}{
		{"UTC zone", func(s *doctor.Schedule) { s.Timezone = "UTC" }},
		{"5-minute slots", func(s *doctor.Schedule) { s.SlotMinutes = 5 }},
		{"480-minute slots", func(s *doctor.Schedule) {
			s.SlotMinutes = 480
			s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "08:00", End: "16:00"}}
		}},
		{"window 1 day", func(s *doctor.Schedule) { s.BookingWindowDays = 1 }},
		{"window 365 days", func(s *doctor.Schedule) { s.BookingWindowDays = 365 }},
		{"no notice", func(s *doctor.Schedule) { s.MinNoticeMinutes = 0 }},
		{"max notice", func(s *doctor.Schedule) { s.MinNoticeMinutes = doctor.MaxMinNoticeMinutes }},
		{"optional with no hold", func(s *doctor.Schedule) { s.PaymentPolicy, s.HoldMinutes = doctor.PaymentOptional, 0 }},
		{"required with 1-minute hold", func(s *doctor.Schedule) { s.PaymentPolicy, s.HoldMinutes = doctor.PaymentRequired, 1 }},
		{"required with a day's hold", func(s *doctor.Schedule) {
			s.PaymentPolicy, s.HoldMinutes = doctor.PaymentRequired, doctor.MaxHoldMinutes
		}},
		{"no weekly hours", func(s *doctor.Schedule) { s.Weekly = nil }},
		{"whole day to 24:00", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 7, Start: "00:00", End: "24:00"}}
		}},
		{"touching ranges", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "12:00"}, {Weekday: 1, Start: "12:00", End: "13:00"}}
		}},
		{"range of exactly one slot", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 3, Start: "09:00", End: "09:30"}}
		}},
	}
	for _, v := range valid {
		s := schedule(doctor.PaymentNone)
		v.mut(&s)
		scenarios = append(scenarios, scenario{
			name: "valid: " + v.name, given: reg,
			when: set(v.mut), then: []domain.Event{doctor.ScheduleSet{DoctorID: docID, Schedule: s}},
		})
	}

	invalid := []struct {
		name string
		mut  func(*doctor.Schedule)
	}{
		{"empty zone", func(s *doctor.Schedule) { s.Timezone = "" }},
		{"Local zone", func(s *doctor.Schedule) { s.Timezone = "Local" }},
		{"unknown zone", func(s *doctor.Schedule) { s.Timezone = "Mars/Olympus_Mons" }},
		{"slot of 4 minutes", func(s *doctor.Schedule) { s.SlotMinutes = 4 }},
		{"slot of 481 minutes", func(s *doctor.Schedule) { s.SlotMinutes = 481 }},
		{"zero window", func(s *doctor.Schedule) { s.BookingWindowDays = 0 }},
		{"window 366 days", func(s *doctor.Schedule) { s.BookingWindowDays = 366 }},
		{"negative notice", func(s *doctor.Schedule) { s.MinNoticeMinutes = -1 }},
		{"notice too long", func(s *doctor.Schedule) { s.MinNoticeMinutes = doctor.MaxMinNoticeMinutes + 1 }},
		{"empty policy", func(s *doctor.Schedule) { s.PaymentPolicy = "" }},
		{"unknown policy", func(s *doctor.Schedule) { s.PaymentPolicy = "card" }},
		{"required with no hold", func(s *doctor.Schedule) { s.PaymentPolicy, s.HoldMinutes = doctor.PaymentRequired, 0 }},
		{"required with hold too long", func(s *doctor.Schedule) {
			s.PaymentPolicy, s.HoldMinutes = doctor.PaymentRequired, doctor.MaxHoldMinutes+1
		}},
		{"none with negative hold", func(s *doctor.Schedule) { s.HoldMinutes = -1 }},
		{"optional with hold too long", func(s *doctor.Schedule) {
			s.PaymentPolicy, s.HoldMinutes = doctor.PaymentOptional, doctor.MaxHoldMinutes+1
		}},
		{"weekday 0", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 0, Start: "09:00", End: "12:00"}} }},
		{"weekday 8", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 8, Start: "09:00", End: "12:00"}} }},
		{"H:MM start", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "9:00", End: "12:00"}} }},
		{"HH:MM:SS end", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "12:00:00"}}
		}},
		{"minute 60", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:60", End: "12:00"}} }},
		{"hour 25", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "25:00"}} }},
		{"24:30", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "24:30"}} }},
		{"letters", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "ab:cd", End: "12:00"}} }},
		{"negative zero hour", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "-0:00", End: "12:00"}} }},
		{"signed minute", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "12:+5"}} }},
		{"dot separator", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09.00", End: "12:00"}} }},
		{"signed hour", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "+9:00", End: "12:00"}} }},
		{"empty end", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: ""}} }},
		{"end before start", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "12:00", End: "09:00"}} }},
		{"empty range", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "09:00"}} }},
		{"range shorter than a slot", func(s *doctor.Schedule) { s.Weekly = []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "09:20"}} }},
		{"overlapping ranges", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 2, Start: "09:00", End: "12:00"}, {Weekday: 2, Start: "11:30", End: "13:00"}}
		}},
		{"overlapping ranges given out of order", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 2, Start: "11:30", End: "13:00"}, {Weekday: 2, Start: "09:00", End: "12:00"}}
		}},
		{"range inside another", func(s *doctor.Schedule) {
			s.Weekly = []doctor.WeeklyHours{{Weekday: 2, Start: "09:00", End: "17:00"}, {Weekday: 2, Start: "10:00", End: "11:00"}}
		}},
		{"too many ranges", func(s *doctor.Schedule) {
			s.Weekly = nil
			for i := range 7*24 + 1 {
				s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: 1 + i%7, Start: "00:00", End: "00:30"})
			}
		}},
	}
	for _, v := range invalid {
		scenarios = append(scenarios, scenario{
			name: "invalid: " + v.name, given: reg, when: set(v.mut),
			err: doctor.ErrInvalidSchedule, kind: domain.ErrInvalid,
		})
	}
	run(t, scenarios)
}

func TestReserve(t *testing.T) {
	t.Parallel()
	unavailable := profile()
	unavailable.Available = false
	free := profile()
	free.Fees = 0
	base := setup(doctor.PaymentNone)
	hold := now0.Add(15 * time.Minute)

	scenarios := []scenario{
		{
			name:  "policy none: confirmed, nothing to pay",
			given: base, when: reserve("a1", "p1", at(2, 9, 0), now0),
			then: []domain.Event{doctor.SlotReserved{
				DoctorID: docID, AppointmentID: "a1", PatientID: "p1", PatientName: "Name of p1",
				Start: time.Date(2026, 6, 2, 3, 30, 0, 0, time.UTC), End: time.Date(2026, 6, 2, 4, 0, 0, 0, time.UTC),
				Status: doctor.StatusConfirmed, Fees: 50000, Currency: "INR", PaymentStatus: doctor.PaymentNotRequired,
				ReservedAt: now0,
			}},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				a := mustAppointment(t, d, "a1")
				want := doctor.Appointment{
					ID: "a1", DoctorID: docID, PatientID: "p1", PatientName: "Name of p1", Start: at(2, 9, 0), End: at(2, 9, 30),
					Status: doctor.StatusConfirmed, Fees: fees, Currency: "INR",
					Payment: doctor.Payment{Status: doctor.PaymentNotRequired}, CreatedAt: now0,
				}
				if !reflect.DeepEqual(a, want) {
					t.Errorf("appointment\n got %+v\nwant %+v", a, want)
				}
				if live := d.LiveAppointments(); len(live) != 1 || live[0].ID != "a1" {
					t.Errorf("live = %+v", live)
				}
			},
		},
		{
			name:  "policy optional: confirmed, payment pending",
			given: setup(doctor.PaymentOptional), when: reserve("a1", "p1", at(2, 9, 0), now0),
			then: []domain.Event{doctor.SlotReserved{
				DoctorID: docID, AppointmentID: "a1", PatientID: "p1", PatientName: "Name of p1",
				Start: at(2, 9, 0), End: at(2, 9, 30), Status: doctor.StatusConfirmed, Fees: fees, Currency: "INR",
				PaymentStatus: doctor.PaymentPending, ReservedAt: now0,
			}},
		},
		{
			name:  "policy required: held until now plus hold minutes",
			given: setup(doctor.PaymentRequired), when: reserve("a1", "p1", at(2, 9, 0), now0),
			then: []domain.Event{doctor.SlotReserved{
				DoctorID: docID, AppointmentID: "a1", PatientID: "p1", PatientName: "Name of p1",
				Start: at(2, 9, 0), End: at(2, 9, 30), Status: doctor.StatusHeld, Fees: fees, Currency: "INR",
				PaymentStatus: doctor.PaymentPending, HoldExpiresAt: &hold, ReservedAt: now0,
			}},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if a := mustAppointment(t, d, "a1"); !a.HoldExpiresAt.Equal(hold) || a.Status != doctor.StatusHeld {
					t.Errorf("a1 = %+v", a)
				}
			},
		},
		{
			name:  "policy required with zero fees: confirmed at once",
			given: []domain.Event{doctor.DoctorRegistered{DoctorID: docID, Profile: free, RegisteredAt: now0}, scheduled(doctor.PaymentRequired)},
			when:  reserve("a1", "p1", at(2, 9, 0), now0),
			then: []domain.Event{doctor.SlotReserved{
				DoctorID: docID, AppointmentID: "a1", PatientID: "p1", PatientName: "Name of p1",
				Start: at(2, 9, 0), End: at(2, 9, 30), Status: doctor.StatusConfirmed, Fees: 0, Currency: "INR",
				PaymentStatus: doctor.PaymentNotRequired, ReservedAt: now0,
			}},
		},
		{
			name:  "policy optional with zero fees: nothing to pay",
			given: []domain.Event{doctor.DoctorRegistered{DoctorID: docID, Profile: free, RegisteredAt: now0}, scheduled(doctor.PaymentOptional)},
			when:  reserve("a1", "p1", at(2, 9, 0), now0),
			then: []domain.Event{doctor.SlotReserved{
				DoctorID: docID, AppointmentID: "a1", PatientID: "p1", PatientName: "Name of p1",
				Start: at(2, 9, 0), End: at(2, 9, 30), Status: doctor.StatusConfirmed, Currency: "INR",
				PaymentStatus: doctor.PaymentNotRequired, ReservedAt: now0,
			}},
		},
		{
			name:  "now in another zone is stored in UTC",
			given: base, when: reserve("a1", "p1", at(2, 9, 0), now0.In(ist)),
			then: []domain.Event{confirmed("a1", "p1", at(2, 9, 0))},
		},
		{
			name:  "start given in another zone is stored in UTC",
			given: base, when: reserve("a1", "p1", at(2, 9, 0).In(mustZone("America/New_York")), now0),
			then: []domain.Event{confirmed("a1", "p1", at(2, 9, 0))},
		},
		{
			name:  "adjacent slots are both fine",
			given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0))),
			when:  reserve("a2", "p1", at(2, 9, 30), now0),
			then:  []domain.Event{confirmed("a2", "p1", at(2, 9, 30))},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				expectReserve(t, h, at(2, 8, 30), now0, doctor.ErrOutsideSchedule)
				expectReserve(t, h, at(2, 10, 0), now0, nil)
			},
		},
		{
			name:  "the last slot of the range",
			given: base, when: reserve("a1", "p1", at(2, 11, 30), now0),
			then: []domain.Event{confirmed("a1", "p1", at(2, 11, 30))},
		},
		{
			name:  "a slot freed by a cancellation is bookable",
			given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0)), cancelled(confirmed("a1", "p1", at(2, 9, 0)), domain.RolePatient, "", false, now0)),
			when:  reserve("a2", "p2", at(2, 9, 0), now0),
			then:  []domain.Event{confirmed("a2", "p2", at(2, 9, 0))},
		},
		{
			name:  "a slot freed by an expired hold is bookable",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0)), expired(held("a1", "p1", at(2, 9, 0)), at(1, 8, 15))),
			when:  reserve("a2", "p2", at(2, 9, 0), now0),
			then:  []domain.Event{held("a2", "p2", at(2, 9, 0))},
		},
		{
			name:  "notice: exactly the minimum notice is fine",
			given: base, when: reserve("a1", "p1", at(2, 9, 0), at(2, 8, 0)),
			then: []domain.Event{func() domain.Event {
				e := confirmed("a1", "p1", at(2, 9, 0))
				e.ReservedAt = at(2, 8, 0)
				return e
			}()},
		},
		{
			name: "window: the last day counts in the doctor's zone",
			// now is Monday 20:00 UTC = Tuesday 01:30 IST; 14 days on is
			// Tuesday the 16th (in UTC it would still be the 15th).
			given: base, when: reserve("a1", "p1", at(16, 11, 30), time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)),
			then: []domain.Event{func() domain.Event {
				e := confirmed("a1", "p1", at(16, 11, 30))
				e.ReservedAt = time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)
				return e
			}()},
		},
		{
			name:  "time off ending when the slot starts does not block it",
			given: setup(doctor.PaymentNone, timeOff("t1", at(2, 8, 0), at(2, 9, 0), "")),
			when:  reserve("a1", "p1", at(2, 9, 0), now0),
			then:  []domain.Event{confirmed("a1", "p1", at(2, 9, 0))},
		},
		{
			name:  "time off starting when the slot ends does not block it",
			given: setup(doctor.PaymentNone, timeOff("t1", at(2, 9, 30), at(2, 12, 0), "")),
			when:  reserve("a1", "p1", at(2, 9, 0), now0),
			then:  []domain.Event{confirmed("a1", "p1", at(2, 9, 0))},
		},

		// refusals
		{name: "not registered", when: reserve("a1", "p1", at(2, 9, 0), now0), err: doctor.ErrDoctorNotFound, kind: domain.ErrNotFound},
		{
			name:  "doctor unavailable",
			given: []domain.Event{doctor.DoctorRegistered{DoctorID: docID, Profile: unavailable, RegisteredAt: now0}, scheduled(doctor.PaymentNone)},
			when:  reserve("a1", "p1", at(2, 9, 0), now0), err: doctor.ErrDoctorUnavailable, kind: domain.ErrUnprocessable,
		},
		{
			name:  "no schedule",
			given: []domain.Event{registered()}, when: reserve("a1", "p1", at(2, 9, 0), now0),
			err: doctor.ErrNoSchedule, kind: domain.ErrUnprocessable, msg: "no schedule",
		},
		{name: "empty appointment id", given: base, when: reserve("", "p1", at(2, 9, 0), now0), err: doctor.ErrInvalidSlot, kind: domain.ErrInvalid},
		{name: "empty patient", given: base, when: reserve("a1", "", at(2, 9, 0), now0), err: doctor.ErrInvalidSlot, kind: domain.ErrInvalid},
		{name: "zero start", given: base, when: reserve("a1", "p1", time.Time{}, now0), err: doctor.ErrInvalidSlot, kind: domain.ErrInvalid},
		{name: "in the past", given: base, when: reserve("a1", "p1", at(1, 9, 0), at(1, 10, 0)), err: doctor.ErrInThePast, kind: domain.ErrUnprocessable},
		{name: "exactly now", given: base, when: reserve("a1", "p1", at(2, 9, 0), at(2, 9, 0)), err: doctor.ErrInThePast, kind: domain.ErrUnprocessable},
		{
			name: "notice: one minute short", given: base, when: reserve("a1", "p1", at(2, 9, 0), at(2, 8, 1)),
			err: doctor.ErrInsufficientNotice, kind: domain.ErrUnprocessable, msg: "60 minutes",
		},
		{
			name: "window: the day after the last day", given: base,
			when: reserve("a1", "p1", at(17, 9, 0), time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)),
			err:  doctor.ErrBeyondWindow, kind: domain.ErrUnprocessable, msg: "14 days",
		},
		{
			name: "window: counts dates, not 24-hour periods", given: base,
			// Monday 11:45 IST + 14 days = Monday the 15th; 09:00 on the
			// 16th is less than 15*24h away but on a later date.
			when: reserve("a1", "p1", at(16, 9, 0), at(1, 11, 45)),
			err:  doctor.ErrBeyondWindow, kind: domain.ErrUnprocessable,
		},
		{name: "off grid: minute offset", given: base, when: reserve("a1", "p1", at(2, 9, 10), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: seconds", given: base, when: reserve("a1", "p1", at(2, 9, 0).Add(30*time.Second), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: nanoseconds", given: base, when: reserve("a1", "p1", at(2, 9, 0).Add(1), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: before hours", given: base, when: reserve("a1", "p1", at(2, 8, 30), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: at closing time", given: base, when: reserve("a1", "p1", at(2, 12, 0), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: the UTC wall clock", given: base, when: reserve("a1", "p1", time.Date(2026, 6, 2, 9, 0, 0, 0, time.UTC), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: Saturday", given: base, when: reserve("a1", "p1", at(6, 9, 0), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{name: "off grid: Sunday", given: base, when: reserve("a1", "p1", at(7, 9, 0), now0), err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable},
		{
			name:  "time off covering the slot",
			given: setup(doctor.PaymentNone, timeOff("t1", at(2, 0, 0), at(3, 0, 0), "leave")),
			when:  reserve("a1", "p1", at(2, 9, 0), now0), err: doctor.ErrDoctorTimeOff, kind: domain.ErrUnprocessable,
		},
		{
			name:  "time off overlapping part of the slot",
			given: setup(doctor.PaymentNone, timeOff("t1", at(2, 9, 15), at(2, 9, 20), "")),
			when:  reserve("a1", "p1", at(2, 9, 0), now0), err: doctor.ErrDoctorTimeOff, kind: domain.ErrUnprocessable,
		},
		{
			name:  "taken slot",
			given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0))),
			when:  reserve("a2", "p2", at(2, 9, 0), now0), err: doctor.ErrSlotUnavailable, kind: domain.ErrConflict,
		},
		{
			name:  "slot held by another patient",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when:  reserve("a2", "p2", at(2, 9, 0), now0), err: doctor.ErrSlotUnavailable, kind: domain.ErrConflict,
		},
		{
			name:  "a lapsed hold is expired by the booking that takes its slot",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when:  reserve("a2", "p2", at(2, 9, 0), at(1, 10, 0)),
			then: []domain.Event{expired(held("a1", "p1", at(2, 9, 0)), at(1, 10, 0)), func() doctor.SlotReserved {
				e := held("a2", "p2", at(2, 9, 0))
				until := at(1, 10, 15)
				e.ReservedAt, e.HoldExpiresAt = at(1, 10, 0), &until
				return e
			}()},
		},
		{
			name:  "a hold blocks until the instant it runs out",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when:  reserve("a2", "p2", at(2, 9, 0), now0.Add(15*time.Minute-time.Nanosecond)), err: doctor.ErrSlotUnavailable, kind: domain.ErrConflict,
		},
		{
			name:  "same appointment id twice",
			given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0))),
			when:  reserve("a1", "p1", at(2, 10, 0), now0), err: doctor.ErrAppointmentExists, kind: domain.ErrConflict,
		},
		{
			name:  "same appointment id after it was cancelled",
			given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0)), cancelled(confirmed("a1", "p1", at(2, 9, 0)), domain.RoleAdmin, "", false, now0)),
			when:  reserve("a1", "p1", at(2, 9, 0), now0), err: doctor.ErrAppointmentExists, kind: domain.ErrConflict,
		},
	}
	run(t, scenarios)
}

func TestReschedule(t *testing.T) {
	t.Parallel()
	a1 := confirmed("a1", "p1", at(2, 9, 0))
	a2 := confirmed("a2", "p2", at(2, 9, 30))
	base := setup(doctor.PaymentNone, a1)
	moved := doctor.AppointmentRescheduled{
		DoctorID: docID, AppointmentID: "a1", PreviousStart: at(2, 9, 0), PreviousEnd: at(2, 9, 30),
		Start: at(3, 10, 0), End: at(3, 10, 30), RescheduledAt: now0,
	}
	resched := func(id string, start time.Time, by domain.Actor, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.Reschedule(id, start, by, now) }
	}
	run(t, []scenario{
		{
			name: "to a free slot: one event", given: base, when: resched("a1", at(3, 10, 0), patient("p1"), now0),
			then: []domain.Event{moved},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				a := mustAppointment(t, d, "a1")
				if !a.Start.Equal(at(3, 10, 0)) || !a.End.Equal(at(3, 10, 30)) || a.Status != doctor.StatusConfirmed {
					t.Errorf("a1 = %+v", a)
				}
				expectReserve(t, h, at(2, 9, 0), now0, nil)                        // the old slot is bookable
				expectReserve(t, h, at(3, 10, 0), now0, doctor.ErrSlotUnavailable) // the new one is not
			},
		},
		{
			name: "by an admin", given: base, when: resched("a1", at(3, 10, 0), admin, now0),
			then: []domain.Event{moved},
		},
		{
			name: "by the system", given: base, when: resched("a1", at(3, 10, 0), domain.System, now0),
			then: []domain.Event{moved},
		},
		{
			name: "to the adjacent slot", given: base, when: resched("a1", at(2, 9, 30), patient("p1"), now0),
			then: []domain.Event{doctor.AppointmentRescheduled{
				DoctorID: docID, AppointmentID: "a1", PreviousStart: at(2, 9, 0), PreviousEnd: at(2, 9, 30),
				Start: at(2, 9, 30), End: at(2, 10, 0), RescheduledAt: now0,
			}},
		},
		{
			name: "a held appointment stays held with its hold", given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when: resched("a1", at(3, 10, 0), patient("p1"), at(1, 8, 5)),
			then: []domain.Event{func() domain.Event { e := moved; e.RescheduledAt = at(1, 8, 5); return e }()},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if a := mustAppointment(t, d, "a1"); a.Status != doctor.StatusHeld || !a.HoldExpiresAt.Equal(at(1, 8, 15)) {
					t.Errorf("a1 = %+v", a)
				}
			},
		},
		{
			name: "to the same slot records nothing", given: base, when: resched("a1", at(2, 9, 0), patient("p1"), now0),
		},
		{
			name: "to a taken slot: refused, the old slot still held", given: with(base, a2),
			when: resched("a1", at(2, 9, 30), patient("p1"), now0), err: doctor.ErrSlotUnavailable, kind: domain.ErrConflict,
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				if a := mustAppointment(t, d, "a1"); !a.Start.Equal(at(2, 9, 0)) || a.Status != doctor.StatusConfirmed {
					t.Errorf("a1 = %+v", a)
				}
				expectReserve(t, h, at(2, 9, 0), now0, doctor.ErrSlotUnavailable)
			},
		},
		{
			name: "by another patient: not found", given: base, when: resched("a1", at(3, 10, 0), patient("p2"), now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "by the doctor: not allowed", given: base, when: resched("a1", at(3, 10, 0), theDoctor, now0),
			err: doctor.ErrNotAllowed, kind: domain.ErrForbidden,
		},
		{
			name: "by another doctor: not found", given: base, when: resched("a1", at(3, 10, 0), otherDoctor, now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "by an auditor: not found", given: base, when: resched("a1", at(3, 10, 0), auditor, now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "unknown appointment", given: base, when: resched("nope", at(3, 10, 0), admin, now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "a cancelled appointment", given: with(base, cancelled(a1, domain.RolePatient, "", false, now0)),
			when: resched("a1", at(3, 10, 0), patient("p1"), now0), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{
			name:  "an expired hold",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0)), expired(held("a1", "p1", at(2, 9, 0)), at(1, 8, 15))),
			when:  resched("a1", at(3, 10, 0), patient("p1"), at(1, 9, 0)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{
			name:  "a completed appointment",
			given: with(base, doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a1", CompletedAt: at(2, 9, 30)}),
			when:  resched("a1", at(3, 10, 0), admin, at(2, 9, 30)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{
			name: "once started", given: base, when: resched("a1", at(3, 10, 0), patient("p1"), at(2, 9, 0)),
			err: doctor.ErrAppointmentStarted, kind: domain.ErrUnprocessable,
		},
		{
			name: "once started, even by an admin", given: base, when: resched("a1", at(3, 10, 0), admin, at(2, 9, 10)),
			err: doctor.ErrAppointmentStarted, kind: domain.ErrUnprocessable,
		},
		{
			name: "off the grid", given: base, when: resched("a1", at(3, 10, 15), patient("p1"), now0),
			err: doctor.ErrOutsideSchedule, kind: domain.ErrUnprocessable,
		},
		{
			name: "too soon", given: base, when: resched("a1", at(1, 9, 0), patient("p1"), at(1, 8, 30)),
			err: doctor.ErrInsufficientNotice, kind: domain.ErrUnprocessable,
		},
		{
			name: "into the past", given: base, when: resched("a1", at(1, 9, 0), patient("p1"), at(1, 10, 0)),
			err: doctor.ErrInThePast, kind: domain.ErrUnprocessable,
		},
		{
			name: "beyond the window", given: base, when: resched("a1", at(22, 9, 0), patient("p1"), now0),
			err: doctor.ErrBeyondWindow, kind: domain.ErrUnprocessable,
		},
		{
			name: "into time off", given: with(base, timeOff("t1", at(3, 0, 0), at(4, 0, 0), "")),
			when: resched("a1", at(3, 10, 0), patient("p1"), now0), err: doctor.ErrDoctorTimeOff, kind: domain.ErrUnprocessable,
		},
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	a1 := confirmed("a1", "p1", at(2, 9, 0))
	base := setup(doctor.PaymentNone, a1)
	cancel := func(id, reason string, by domain.Actor, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.Cancel(id, reason, by, now) }
	}
	freeAgain := func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
		if len(d.LiveAppointments()) != 0 {
			t.Errorf("live = %+v", d.LiveAppointments())
		}
		if a := mustAppointment(t, d, "a1"); a.Status != doctor.StatusCancelled {
			t.Errorf("a1 = %+v", a)
		}
		expectReserve(t, h, at(2, 9, 0), now0, nil)
	}
	paid := setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0)), captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5)))
	run(t, []scenario{
		{
			name: "by the owner", given: base, when: cancel("a1", "  feeling better ", patient("p1"), now0),
			then:  []domain.Event{cancelled(a1, domain.RolePatient, "feeling better", false, now0)},
			after: freeAgain,
		},
		{
			name: "by the doctor", given: base, when: cancel("a1", "", theDoctor, now0),
			then: []domain.Event{cancelled(a1, domain.RoleDoctor, "", false, now0)},
		},
		{
			name: "by an admin", given: base, when: cancel("a1", "", admin, now0),
			then: []domain.Event{cancelled(a1, domain.RoleAdmin, "", false, now0)},
		},
		{
			name: "by an admin after the start", given: base, when: cancel("a1", "", admin, at(2, 9, 10)),
			then: []domain.Event{cancelled(a1, domain.RoleAdmin, "", false, at(2, 9, 10))},
		},
		{
			name: "by the doctor after the start", given: base, when: cancel("a1", "", theDoctor, at(2, 9, 10)),
			then: []domain.Event{cancelled(a1, domain.RoleDoctor, "", false, at(2, 9, 10))},
		},
		{
			name: "a held appointment", given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when: cancel("a1", "", patient("p1"), now0),
			then: []domain.Event{cancelled(held("a1", "p1", at(2, 9, 0)), domain.RolePatient, "", false, now0)},
		},
		{
			name: "paid: refund due", given: paid, when: cancel("a1", "", patient("p1"), now0),
			then: []domain.Event{cancelled(a1, domain.RolePatient, "", true, now0)},
		},
		{
			name:  "paid then refunded: no refund due",
			given: with(paid, doctor.RefundIssued{DoctorID: docID, AppointmentID: "a1", PaymentID: "pay-1", RefundID: "r-1", Amount: fees, IssuedAt: now0}),
			when:  cancel("a1", "", admin, now0),
			then:  []domain.Event{cancelled(a1, domain.RoleAdmin, "", false, now0)},
		},
		{
			name: "reason of 500 characters", given: base, when: cancel("a1", strings.Repeat("r", 500), admin, now0),
			then: []domain.Event{cancelled(a1, domain.RoleAdmin, strings.Repeat("r", 500), false, now0)},
		},
		{
			name: "reason of 501 characters", given: base, when: cancel("a1", strings.Repeat("r", 501), admin, now0),
			err: domain.Invalid(""), kind: domain.ErrInvalid,
		},
		{
			name: "by another patient: not found", given: base, when: cancel("a1", "", patient("p2"), now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "by another doctor: not found", given: base, when: cancel("a1", "", otherDoctor, now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "by an auditor: not found", given: base, when: cancel("a1", "", auditor, now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "unknown appointment", given: base, when: cancel("a9", "", admin, now0),
			err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
		{
			name: "by the patient at the start", given: base, when: cancel("a1", "", patient("p1"), at(2, 9, 0)),
			err: doctor.ErrAppointmentStarted, kind: domain.ErrUnprocessable,
		},
		{
			name: "twice", given: with(base, cancelled(a1, domain.RolePatient, "", false, now0)),
			when: cancel("a1", "", patient("p1"), now0), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{
			name:  "a completed appointment",
			given: with(base, doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a1", CompletedAt: at(2, 9, 30)}),
			when:  cancel("a1", "", admin, at(2, 9, 30)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
	})
}

func TestCompleteAndNoShow(t *testing.T) {
	t.Parallel()
	a1 := confirmed("a1", "p1", at(2, 9, 0))
	base := setup(doctor.PaymentNone, a1)
	complete := func(by domain.Actor, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.Complete("a1", by, now) }
	}
	noShow := func(by domain.Actor, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.MarkNoShow("a1", by, now) }
	}
	done := doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a1", CompletedAt: at(2, 9, 0)}
	missed := doctor.AppointmentMarkedNoShow{DoctorID: docID, AppointmentID: "a1", MarkedAt: at(2, 9, 20)}
	closed := func(s doctor.Status) func(*testing.T, *doctor.Doctor, []domain.Event) {
		return func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
			if a := mustAppointment(t, d, "a1"); a.Status != s {
				t.Errorf("status %s, want %s", a.Status, s)
			}
			if len(d.LiveAppointments()) != 0 {
				t.Errorf("a closed appointment is still live")
			}
		}
	}
	run(t, []scenario{
		{name: "complete: by the doctor at the start", given: base, when: complete(theDoctor, at(2, 9, 0)), then: []domain.Event{done}, after: closed(doctor.StatusCompleted)},
		{
			name: "complete: by an admin later", given: base, when: complete(admin, at(3, 9, 0)),
			then: []domain.Event{doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a1", CompletedAt: at(3, 9, 0)}},
		},
		{name: "complete: before the start", given: base, when: complete(theDoctor, at(2, 8, 59)), err: doctor.ErrAppointmentNotStarted, kind: domain.ErrUnprocessable},
		{
			name: "complete: a held appointment", given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when: complete(theDoctor, at(2, 9, 10)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{name: "complete: by the patient", given: base, when: complete(patient("p1"), at(2, 9, 10)), err: doctor.ErrNotAllowed, kind: domain.ErrForbidden},
		{name: "complete: by another patient", given: base, when: complete(patient("p2"), at(2, 9, 10)), err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound},
		{name: "complete: by another doctor", given: base, when: complete(otherDoctor, at(2, 9, 10)), err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound},
		{name: "complete: twice", given: with(base, done), when: complete(theDoctor, at(2, 9, 10)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict},
		{name: "complete: after a no-show", given: with(base, missed), when: complete(theDoctor, at(2, 9, 30)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict},
		{
			name: "complete: a cancelled appointment", given: with(base, cancelled(a1, domain.RoleDoctor, "", false, now0)),
			when: complete(theDoctor, at(2, 9, 10)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{
			name: "complete: unknown appointment", given: base,
			when: func(d *doctor.Doctor) error { return d.Complete("a9", admin, at(2, 9, 10)) },
			err:  doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},

		{name: "no-show: by the doctor", given: base, when: noShow(theDoctor, at(2, 9, 20)), then: []domain.Event{missed}, after: closed(doctor.StatusNoShow)},
		{
			name: "no-show: by an admin", given: base, when: noShow(admin, at(2, 9, 0)),
			then: []domain.Event{doctor.AppointmentMarkedNoShow{DoctorID: docID, AppointmentID: "a1", MarkedAt: at(2, 9, 0)}},
		},
		{name: "no-show: before the start", given: base, when: noShow(theDoctor, now0), err: doctor.ErrAppointmentNotStarted, kind: domain.ErrUnprocessable},
		{
			name: "no-show: a held appointment", given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0))),
			when: noShow(theDoctor, at(2, 9, 10)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{name: "no-show: by the patient", given: base, when: noShow(patient("p1"), at(2, 9, 10)), err: doctor.ErrNotAllowed, kind: domain.ErrForbidden},
		{name: "no-show: twice", given: with(base, missed), when: noShow(theDoctor, at(2, 9, 30)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict},
		{name: "no-show: after completion", given: with(base, done), when: noShow(admin, at(2, 9, 30)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict},
	})
}

func TestHolds(t *testing.T) {
	t.Parallel()
	h1 := held("a1", "p1", at(2, 9, 0))
	base := setup(doctor.PaymentRequired, h1)
	expire := func(id string, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.ExpireHold(id, now) }
	}
	run(t, []scenario{
		{name: "before expiry", given: base, when: expire("a1", at(1, 8, 14)), err: doctor.ErrHoldActive, kind: domain.ErrConflict},
		{
			name: "at expiry: the slot is free", given: base, when: expire("a1", at(1, 8, 15)),
			then: []domain.Event{expired(h1, at(1, 8, 15))},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				if a := mustAppointment(t, d, "a1"); a.Status != doctor.StatusExpired {
					t.Errorf("a1 = %+v", a)
				}
				if len(d.LiveAppointments()) != 0 || len(d.ExpiredHolds(at(1, 9, 0))) != 0 {
					t.Error("an expired hold is still live")
				}
				expectReserve(t, h, at(2, 9, 0), at(1, 8, 15), nil)
			},
		},
		{name: "after expiry", given: base, when: expire("a1", at(1, 12, 0)), then: []domain.Event{expired(h1, at(1, 12, 0))}},
		{
			name: "a rescheduled hold expires at its new slot",
			given: with(base, doctor.AppointmentRescheduled{
				DoctorID: docID, AppointmentID: "a1", PreviousStart: at(2, 9, 0), PreviousEnd: at(2, 9, 30),
				Start: at(3, 11, 0), End: at(3, 11, 30), RescheduledAt: at(1, 8, 1),
			}),
			when: expire("a1", at(1, 8, 20)),
			then: []domain.Event{doctor.HoldExpired{DoctorID: docID, AppointmentID: "a1", Start: at(3, 11, 0), End: at(3, 11, 30), ExpiredAt: at(1, 8, 20)}},
		},
		{name: "twice", given: with(base, expired(h1, at(1, 8, 15))), when: expire("a1", at(1, 9, 0)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict},
		{
			name: "a confirmed appointment holds nothing", given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0))),
			when: expire("a1", at(1, 9, 0)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{
			name:  "a paid hold holds nothing",
			given: with(base, captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5))),
			when:  expire("a1", at(1, 9, 0)), err: doctor.ErrInvalidTransition, kind: domain.ErrConflict,
		},
		{name: "unknown", given: base, when: expire("a9", at(1, 9, 0)), err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound},
	})
}

func TestExpiredHolds(t *testing.T) {
	t.Parallel()
	late := held("a2", "p2", at(2, 9, 0))
	until := at(1, 8, 45)
	late.HoldExpiresAt, late.ReservedAt = &until, at(1, 8, 30)
	d := given(setup(doctor.PaymentRequired,
		late,                           // expires 08:45, earlier slot
		held("a1", "p1", at(2, 10, 0)), // expires 08:15
		held("a3", "p3", at(2, 11, 0)), // expires 08:15, then paid
		captured("a3", "pay-3", false, at(1, 8, 10)), confirmedBy("a3", "pay-3", at(1, 8, 10)),
		confirmed("a4", "p4", at(3, 9, 0)), // not held
	)...)
	for _, c := range []struct {
		now  time.Time
		want []string
	}{
		{at(1, 8, 14), nil},
		{at(1, 8, 15), []string{"a1"}},
		{at(1, 8, 44), []string{"a1"}},
		{at(1, 8, 45), []string{"a2", "a1"}}, // by slot start
		{at(5, 0, 0), []string{"a2", "a1"}},
	} {
		if got := d.ExpiredHolds(c.now); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ExpiredHolds(%v) = %v, want %v", c.now, got, c.want)
		}
	}
	for _, id := range d.ExpiredHolds(at(1, 9, 0)) {
		if err := d.ExpireHold(id, at(1, 9, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.ExpiredHolds(at(1, 9, 0)); len(got) != 0 {
		t.Errorf("after expiring: %v", got)
	}
	if live := d.LiveAppointments(); len(live) != 2 || live[0].ID != "a3" || live[1].ID != "a4" {
		t.Errorf("live = %+v", live)
	}
}

func TestPayments(t *testing.T) {
	t.Parallel()
	h1 := held("a1", "p1", at(2, 9, 0))
	orderCreated := func(orderID string) doctor.PaymentOrderCreated {
		return doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: "a1", OrderID: orderID, Amount: fees, Currency: "INR"}
	}
	base := setup(doctor.PaymentRequired, h1, orderCreated("order-a1"))
	paid := with(base, captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5)))
	capture := func(paymentID string, amount int64, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.CapturePayment("a1", paymentID, "order-a1", amount, "INR", now) }
	}
	order := func(orderID string, by domain.Actor) when {
		return func(d *doctor.Doctor) error {
			return d.CreatePaymentOrder("a1", doctor.Order{ID: orderID, Amount: fees, Currency: "INR"}, by)
		}
	}
	refund := func(paymentID, refundID string, amount int64) when {
		return func(d *doctor.Doctor) error { return d.IssueRefund("a1", paymentID, refundID, amount, at(1, 9, 0)) }
	}
	refunded := func(paymentID, refundID string, amount int64) doctor.RefundIssued {
		return doctor.RefundIssued{DoctorID: docID, AppointmentID: "a1", PaymentID: paymentID, RefundID: refundID, Amount: amount, IssuedAt: at(1, 9, 0)}
	}
	paymentIs := func(status doctor.Status, p doctor.Payment) func(*testing.T, *doctor.Doctor, []domain.Event) {
		return func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
			a := mustAppointment(t, d, "a1")
			if a.Status != status || a.Payment != p {
				t.Errorf("a1 status %s payment %+v; want %s %+v", a.Status, a.Payment, status, p)
			}
		}
	}
	run(t, []scenario{
		// capture
		{
			name: "capture on a held appointment confirms it", given: base, when: capture("pay-1", fees, at(1, 8, 5)),
			then: []domain.Event{captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5))},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				paymentIs(doctor.StatusConfirmed, doctor.Payment{Status: doctor.PaymentPaid, OrderID: "order-a1", PaymentID: "pay-1", Amount: fees})(t, d, h)
				if a := mustAppointment(t, d, "a1"); !a.HoldExpiresAt.IsZero() {
					t.Errorf("a confirmed appointment keeps a hold: %v", a.HoldExpiresAt)
				}
				if len(d.ExpiredHolds(at(5, 0, 0))) != 0 {
					t.Error("a paid appointment is listed as an expired hold")
				}
			},
		},
		{
			name: "capture of a lapsed but unexpired hold still confirms", given: base, when: capture("pay-1", fees, at(1, 9, 0)),
			then: []domain.Event{captured("a1", "pay-1", false, at(1, 9, 0)), confirmedBy("a1", "pay-1", at(1, 9, 0))},
		},
		{name: "the same payment id again records nothing", given: paid, when: capture("pay-1", fees, at(1, 8, 6))},
		{
			name:  "the same payment id after expiry records nothing",
			given: append(setup(doctor.PaymentRequired, h1), expired(h1, at(1, 8, 15)), captured("a1", "pay-1", true, at(1, 8, 20))),
			when:  capture("pay-1", fees, at(1, 8, 30)),
		},
		{
			name: "a second payment is due back", given: paid, when: capture("pay-2", fees, at(1, 8, 7)),
			then:  []domain.Event{captured("a1", "pay-2", true, at(1, 8, 7))},
			after: paymentIs(doctor.StatusConfirmed, doctor.Payment{Status: doctor.PaymentPaid, OrderID: "order-a1", PaymentID: "pay-1", Amount: fees}),
		},
		{
			name: "after expiry: refund due, not confirmed", given: with(base, expired(h1, at(1, 8, 15))),
			when:  capture("pay-1", fees, at(1, 8, 20)),
			then:  []domain.Event{captured("a1", "pay-1", true, at(1, 8, 20))},
			after: paymentIs(doctor.StatusExpired, doctor.Payment{Status: doctor.PaymentPaid, OrderID: "order-a1", PaymentID: "pay-1", Amount: fees}),
		},
		{
			name: "after cancellation: refund due", given: with(base, cancelled(h1, domain.RolePatient, "", false, now0)),
			when: capture("pay-1", fees, at(1, 8, 10)),
			then: []domain.Event{captured("a1", "pay-1", true, at(1, 8, 10))},
		},
		{
			name: "optional policy: paid, no confirmation event", given: setup(doctor.PaymentOptional, pending("a1", "p1", at(2, 9, 0)), orderCreated("order-a1")),
			when:  capture("pay-1", fees, at(1, 8, 10)),
			then:  []domain.Event{captured("a1", "pay-1", false, at(1, 8, 10))},
			after: paymentIs(doctor.StatusConfirmed, doctor.Payment{Status: doctor.PaymentPaid, OrderID: "order-a1", PaymentID: "pay-1", Amount: fees}),
		},
		{
			name: "after a failed attempt", given: with(base, doctor.PaymentFailed{DoctorID: docID, AppointmentID: "a1", OrderID: "order-a1", PaymentID: "pay-0", Reason: "declined"}),
			when: capture("pay-1", fees, at(1, 8, 10)),
			then: []domain.Event{captured("a1", "pay-1", false, at(1, 8, 10)), confirmedBy("a1", "pay-1", at(1, 8, 10))},
		},
		{name: "capture without payment id", given: base, when: capture("", fees, now0), err: domain.Invalid(""), kind: domain.ErrInvalid},
		{name: "capture of another amount", given: base, when: capture("pay-1", fees-1, now0), err: doctor.ErrPaymentMismatch, kind: domain.ErrUnprocessable},
		{
			name: "capture in another currency", given: base, err: doctor.ErrPaymentMismatch, kind: domain.ErrUnprocessable,
			when: func(d *doctor.Doctor) error { return d.CapturePayment("a1", "pay-1", "order-a1", fees, "USD", now0) },
		},
		{
			name: "capture against an order of another appointment", err: doctor.ErrPaymentMismatch, kind: domain.ErrUnprocessable,
			given: with(base, held("a2", "p1", at(2, 10, 0)), doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: "a2", OrderID: "order-a2", Amount: fees, Currency: "INR"}),
			when:  func(d *doctor.Doctor) error { return d.CapturePayment("a1", "pay-1", "order-a2", fees, "INR", now0) },
		},
		{
			name: "capture against an unknown order", given: base, err: doctor.ErrPaymentMismatch, kind: domain.ErrUnprocessable,
			when: func(d *doctor.Doctor) error { return d.CapturePayment("a1", "pay-1", "order-x", fees, "INR", now0) },
		},
		{
			name: "capture on an unknown appointment", given: base,
			when: func(d *doctor.Doctor) error { return d.CapturePayment("a9", "pay-1", "", fees, "INR", now0) },
			err:  doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},

		// failures
		{
			name: "a failed attempt is recorded while pending", given: base,
			when: func(d *doctor.Doctor) error { return d.FailPayment("a1", "order-a1", "pay-0", "declined") },
			then: []domain.Event{doctor.PaymentFailed{DoctorID: docID, AppointmentID: "a1", OrderID: "order-a1", PaymentID: "pay-0", Reason: "declined"}},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if a := mustAppointment(t, d, "a1"); a.Status != doctor.StatusHeld || a.Payment.Status != doctor.PaymentFailedState {
					t.Errorf("a1 = %+v", a)
				}
			},
		},
		{
			name: "a failed attempt after payment records nothing", given: paid,
			when: func(d *doctor.Doctor) error { return d.FailPayment("a1", "order-a1", "pay-0", "declined") },
		},
		{
			name: "a failed attempt on an unknown appointment", given: base,
			when: func(d *doctor.Doctor) error { return d.FailPayment("a9", "", "", "") },
			err:  doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},

		// orders
		{
			name: "order for a held appointment", given: base, when: order("ord-1", patient("p1")),
			then:  []domain.Event{orderCreated("ord-1")},
			after: paymentIs(doctor.StatusHeld, doctor.Payment{Status: doctor.PaymentPending, OrderID: "ord-1", Amount: fees}),
		},
		{name: "the same order id again records nothing", given: with(base, orderCreated("ord-1")), when: order("ord-1", patient("p1"))},
		{
			name: "the same order id after payment records nothing", given: with(paid, orderCreated("ord-1")),
			when: order("ord-1", admin),
		},
		{name: "another order id is recorded", given: with(base, orderCreated("ord-1")), when: order("ord-2", admin), then: []domain.Event{orderCreated("ord-2")}},
		{
			name: "order for an optional-policy booking", given: setup(doctor.PaymentOptional, pending("a1", "p1", at(2, 9, 0))),
			when: order("ord-1", patient("p1")), then: []domain.Event{orderCreated("ord-1")},
		},
		{
			name: "order when no payment is required", given: setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0))),
			when: order("ord-1", patient("p1")), err: doctor.ErrPaymentNotNeeded, kind: domain.ErrConflict,
		},
		{
			name: "order for a free appointment",
			given: func() []domain.Event {
				free := held("a1", "p1", at(2, 9, 0))
				free.Fees, free.Status, free.PaymentStatus, free.HoldExpiresAt = 0, doctor.StatusConfirmed, doctor.PaymentNotRequired, nil
				return setup(doctor.PaymentRequired, free)
			}(),
			when: order("ord-1", patient("p1")), err: doctor.ErrPaymentNotNeeded, kind: domain.ErrConflict,
		},
		{name: "an order created after payment is still recorded", given: paid, when: order("ord-2", admin), then: []domain.Event{orderCreated("ord-2")}},
		{name: "an order created after expiry is still recorded", given: with(base, expired(h1, at(1, 8, 15))), when: order("ord-1", system), then: []domain.Event{orderCreated("ord-1")}},
		{
			name: "an order for another amount", given: base, err: domain.Invalid(""), kind: domain.ErrInvalid,
			when: func(d *doctor.Doctor) error {
				return d.CreatePaymentOrder("a1", doctor.Order{ID: "ord-1", Amount: fees + 1, Currency: "INR"}, admin)
			},
		},
		{name: "order without an id", given: base, when: order("", patient("p1")), err: domain.Invalid(""), kind: domain.ErrInvalid},
		{name: "order by another patient", given: base, when: order("ord-1", patient("p2")), err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound},

		// refunds
		{
			name: "refund of a captured payment", given: paid, when: refund("pay-1", "r-1", fees),
			then:  []domain.Event{refunded("pay-1", "r-1", fees)},
			after: paymentIs(doctor.StatusConfirmed, doctor.Payment{Status: doctor.PaymentRefundPending, OrderID: "order-a1", PaymentID: "pay-1", Amount: fees}),
		},
		{name: "a partial refund", given: paid, when: refund("pay-1", "r-1", 1), then: []domain.Event{refunded("pay-1", "r-1", 1)}},
		{name: "the same refund id again records nothing", given: with(paid, refunded("pay-1", "r-1", fees)), when: refund("pay-1", "r-1", fees)},
		{
			name:  "refund of a payment that was due back",
			given: with(paid, captured("a1", "pay-2", true, at(1, 8, 7))),
			when:  refund("pay-2", "r-2", fees), then: []domain.Event{refunded("pay-2", "r-2", fees)},
			after: paymentIs(doctor.StatusConfirmed, doctor.Payment{Status: doctor.PaymentPaid, OrderID: "order-a1", PaymentID: "pay-1", Amount: fees}),
		},
		{
			name:  "partial refunds up to the captured amount",
			given: with(paid, refunded("pay-1", "r-1", 20000)),
			when:  refund("pay-1", "r-2", 30000), then: []domain.Event{refunded("pay-1", "r-2", 30000)},
		},
		{
			name:  "partial refunds beyond the captured amount",
			given: with(paid, refunded("pay-1", "r-1", 20000)),
			when:  refund("pay-1", "r-2", 30001), err: domain.Invalid(""), kind: domain.ErrInvalid,
		},
		{
			name:  "a second full refund under another id",
			given: with(paid, refunded("pay-1", "r-1", fees)),
			when:  refund("pay-1", "r-2", fees), err: domain.Invalid(""), kind: domain.ErrInvalid,
		},
		{name: "refund of an unknown payment", given: paid, when: refund("pay-9", "r-1", fees), err: doctor.ErrPaymentUnknown, kind: domain.ErrUnprocessable},
		{name: "refund before any capture", given: base, when: refund("pay-1", "r-1", fees), err: doctor.ErrPaymentUnknown, kind: domain.ErrUnprocessable},
		{name: "refund of zero", given: paid, when: refund("pay-1", "r-1", 0), err: domain.Invalid(""), kind: domain.ErrInvalid},
		{name: "refund of more than captured", given: paid, when: refund("pay-1", "r-1", fees+1), err: domain.Invalid(""), kind: domain.ErrInvalid},
		{name: "refund without an id", given: paid, when: refund("pay-1", "", fees), err: domain.Invalid(""), kind: domain.ErrInvalid},
		{
			name: "refund on an unknown appointment", given: paid,
			when: func(d *doctor.Doctor) error { return d.IssueRefund("a9", "pay-1", "r-1", fees, now0) },
			err:  doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound,
		},
	})
}

func TestTimeOff(t *testing.T) {
	t.Parallel()
	a1 := confirmed("a1", "p1", at(2, 10, 0))
	a2 := confirmed("a2", "p2", at(2, 9, 0))
	a3 := confirmed("a3", "p3", at(2, 11, 0)) // just outside 09:00-11:00
	base := setup(doctor.PaymentNone, a1, a2, a3)
	add := func(id string, from, to time.Time, reason string, cancelBookings bool, now time.Time) when {
		return func(d *doctor.Doctor) error {
			return d.AddTimeOff(id, from, to, reason, cancelBookings, domain.RoleDoctor, now)
		}
	}
	run(t, []scenario{
		{
			name: "blocks a free range", given: setup(doctor.PaymentNone),
			when: add("t1", at(2, 9, 0).In(ist), at(2, 11, 0).In(ist), "  conference ", false, now0),
			then: []domain.Event{timeOff("t1", at(2, 9, 0), at(2, 11, 0), "conference")},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				want := []doctor.TimeOff{{ID: "t1", From: at(2, 9, 0), To: at(2, 11, 0), Reason: "conference"}}
				if got := d.TimeOffs(); !reflect.DeepEqual(got, want) {
					t.Errorf("TimeOffs = %+v", got)
				}
				expectReserve(t, h, at(2, 10, 30), now0, doctor.ErrDoctorTimeOff)
				expectReserve(t, h, at(2, 11, 0), now0, nil)
			},
		},
		{
			name: "bookings inside: refused, nothing recorded", given: base,
			when: add("t1", at(2, 9, 0), at(2, 11, 0), "", false, now0), err: doctor.ErrBookingsInRange, kind: domain.ErrConflict, msg: "2 booking",
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if len(d.LiveAppointments()) != 3 || len(d.TimeOffs()) != 0 {
					t.Errorf("state changed: live %d, time off %d", len(d.LiveAppointments()), len(d.TimeOffs()))
				}
			},
		},
		{
			name: "a booking overlapping the edge counts", given: base,
			when: add("t1", at(2, 10, 29), at(2, 10, 30), "", false, now0), err: doctor.ErrBookingsInRange, kind: domain.ErrConflict,
		},
		{
			name: "cancelBookings cancels each by start, then blocks", given: base,
			when: add("t1", at(2, 9, 0), at(2, 11, 0), "conference", true, now0),
			then: []domain.Event{
				cancelled(a2, domain.RoleDoctor, "doctor time off: conference", false, now0),
				cancelled(a1, domain.RoleDoctor, "doctor time off: conference", false, now0),
				timeOff("t1", at(2, 9, 0), at(2, 11, 0), "conference"),
			},
			after: func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
				if live := d.LiveAppointments(); len(live) != 1 || live[0].ID != "a3" {
					t.Errorf("live = %+v", live)
				}
				if a := mustAppointment(t, d, "a1"); a.CancelReason != "doctor time off: conference" {
					t.Errorf("a1 = %+v", a)
				}
			},
		},
		{
			name: "cancelBookings without a reason; paid bookings are due back",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 10, 0)), captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5)),
				held("a2", "p2", at(2, 10, 30))),
			when: add("t1", at(2, 0, 0), at(3, 0, 0), "", true, at(1, 8, 10)),
			then: []domain.Event{
				cancelled(confirmed("a1", "p1", at(2, 10, 0)), domain.RoleDoctor, "doctor time off", true, at(1, 8, 10)),
				cancelled(confirmed("a2", "p2", at(2, 10, 30)), domain.RoleDoctor, "doctor time off", false, at(1, 8, 10)),
				timeOff("t1", at(2, 0, 0), at(3, 0, 0), ""),
			},
		},
		{
			name: "cancelBookings with nothing inside", given: base,
			when: add("t1", at(3, 9, 0), at(3, 11, 0), "", true, now0),
			then: []domain.Event{timeOff("t1", at(3, 9, 0), at(3, 11, 0), "")},
		},
		{
			name: "cancelled and expired bookings do not count",
			given: setup(doctor.PaymentRequired, held("a1", "p1", at(2, 9, 0)), expired(held("a1", "p1", at(2, 9, 0)), at(1, 8, 15)),
				held("a2", "p2", at(2, 9, 30)), cancelled(held("a2", "p2", at(2, 9, 30)), domain.RolePatient, "", false, now0)),
			when: add("t1", at(2, 9, 0), at(2, 10, 0), "", false, at(1, 9, 0)),
			then: []domain.Event{timeOff("t1", at(2, 9, 0), at(2, 10, 0), "")},
		},
		{
			name: "touching a booking is fine", given: base,
			when: add("t1", at(2, 9, 30), at(2, 10, 0), "", false, now0),
			then: []domain.Event{timeOff("t1", at(2, 9, 30), at(2, 10, 0), "")},
		},
		{
			name: "started in the past, ends in the future", given: setup(doctor.PaymentNone),
			when: add("t1", at(1, 0, 0), at(1, 8, 1), "", false, now0),
			then: []domain.Event{timeOff("t1", at(1, 0, 0), at(1, 8, 1), "")},
		},
		{
			name: "exactly 366 days", given: setup(doctor.PaymentNone),
			when: add("t1", at(2, 0, 0), at(2, 0, 0).Add(doctor.MaxTimeOff), "", false, now0),
			then: []domain.Event{timeOff("t1", at(2, 0, 0), at(2, 0, 0).Add(doctor.MaxTimeOff), "")},
		},
		{
			name: "overlapping another time off is fine", given: setup(doctor.PaymentNone, timeOff("t1", at(2, 9, 0), at(2, 11, 0), "")),
			when: add("t2", at(2, 10, 0), at(2, 12, 0), "", false, now0),
			then: []domain.Event{timeOff("t2", at(2, 10, 0), at(2, 12, 0), "")},
		},
		{name: "not registered", when: add("t1", at(2, 9, 0), at(2, 11, 0), "", false, now0), err: doctor.ErrDoctorNotFound, kind: domain.ErrNotFound},
		{name: "without an id", given: base, when: add("", at(3, 9, 0), at(3, 11, 0), "", false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid},
		{name: "empty range", given: base, when: add("t1", at(3, 9, 0), at(3, 9, 0), "", false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid},
		{name: "reversed range", given: base, when: add("t1", at(3, 11, 0), at(3, 9, 0), "", false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid},
		{
			name: "longer than 366 days", given: base,
			when: add("t1", at(3, 0, 0), at(3, 0, 0).Add(doctor.MaxTimeOff+time.Nanosecond), "", false, now0),
			err:  doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid,
		},
		{name: "ends in the past", given: base, when: add("t1", at(1, 0, 0), at(1, 7, 0), "", false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid},
		{name: "ends exactly now", given: base, when: add("t1", at(1, 0, 0), now0, "", false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid},
		{
			name: "reason of 501 characters", given: base,
			when: add("t1", at(3, 9, 0), at(3, 11, 0), strings.Repeat("r", 501), false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid,
		},
		{
			name: "an existing id", given: setup(doctor.PaymentNone, timeOff("t1", at(4, 9, 0), at(4, 11, 0), "")),
			when: add("t1", at(3, 9, 0), at(3, 11, 0), "", false, now0), err: doctor.ErrInvalidTimeOff, kind: domain.ErrInvalid,
		},
	})
}

func TestFreeSlots(t *testing.T) {
	t.Parallel()
	unavailable := profile()
	unavailable.Available = false
	tue := doctor.Date{Year: 2026, Month: time.June, Day: 2}
	all := func(day int, hm ...[2]int) []doctor.Slot {
		var out []doctor.Slot
		for _, x := range hm {
			out = append(out, doctor.Slot{Start: at(day, x[0], x[1]), End: at(day, x[0], x[1]).Add(30 * time.Minute)})
		}
		return out
	}
	busy := setup(doctor.PaymentRequired,
		held("a1", "p1", at(2, 9, 30)),
		confirmed("a2", "p2", at(2, 11, 0)),
		held("a3", "p3", at(2, 10, 0)), expired(held("a3", "p3", at(2, 10, 0)), at(1, 8, 15)),
		timeOff("t1", at(2, 10, 40), at(2, 10, 50), ""),
	)
	for _, c := range []struct {
		name  string
		given []domain.Event
		date  doctor.Date
		now   time.Time
		want  []doctor.Slot
	}{
		{"an empty day", setup(doctor.PaymentNone), tue, now0, all(2, [2]int{9, 0}, [2]int{9, 30}, [2]int{10, 0}, [2]int{10, 30}, [2]int{11, 0}, [2]int{11, 30})},
		{"taken, expired and time off", busy, tue, now0, all(2, [2]int{9, 0}, [2]int{10, 0}, [2]int{11, 30})},
		{"notice and past", busy, tue, at(2, 9, 0), all(2, [2]int{10, 0}, [2]int{11, 30})},
		{"today with notice", setup(doctor.PaymentNone), doctor.Date{Year: 2026, Month: time.June, Day: 1}, at(1, 10, 0), all(1, [2]int{11, 0}, [2]int{11, 30})},
		{"Saturday", setup(doctor.PaymentNone), doctor.Date{Year: 2026, Month: time.June, Day: 6}, now0, nil},
		{"the last day of the window", setup(doctor.PaymentNone), doctor.Date{Year: 2026, Month: time.June, Day: 15}, now0, all(15, [2]int{9, 0}, [2]int{9, 30}, [2]int{10, 0}, [2]int{10, 30}, [2]int{11, 0}, [2]int{11, 30})},
		{"beyond the window", setup(doctor.PaymentNone), doctor.Date{Year: 2026, Month: time.June, Day: 16}, now0, nil},
		{"not registered", nil, tue, now0, nil},
		{"no schedule", []domain.Event{registered()}, tue, now0, nil},
		{"unavailable", []domain.Event{doctor.DoctorRegistered{DoctorID: docID, Profile: unavailable}, scheduled(doctor.PaymentNone)}, tue, now0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := given(c.given...)
			got := d.FreeSlots(c.date, c.now)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("FreeSlots\n got %v\nwant %v", got, c.want)
			}
			for _, s := range got { // every free slot is bookable
				if err := given(c.given...).Reserve(doctor.Reservation{AppointmentID: "x", PatientID: "p", Start: s.Start}, c.now); err != nil {
					t.Errorf("free slot %v: %v", s.Start, err)
				}
			}
			if len(d.Changes()) != 0 {
				t.Error("FreeSlots recorded events")
			}
		})
	}
}

// TestQueriesReturnCopies checks that callers cannot change the aggregate
// through what its queries return.
func TestQueriesReturnCopies(t *testing.T) {
	t.Parallel()
	d := given(setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0)), timeOff("t1", at(3, 9, 0), at(3, 10, 0), ""))...)
	live := d.LiveAppointments()
	live[0].Status = doctor.StatusCancelled
	a, _ := d.Appointment("a1")
	a.Start = at(9, 9, 0)
	offs := d.TimeOffs()
	offs[0].ID = "changed"
	if got := mustAppointment(t, d, "a1"); got.Status != doctor.StatusConfirmed || !got.Start.Equal(at(2, 9, 0)) {
		t.Errorf("appointment changed through a copy: %+v", got)
	}
	if d.TimeOffs()[0].ID != "t1" {
		t.Error("time off changed through a copy")
	}
	if _, ok := d.Appointment("nope"); ok {
		t.Error("unknown appointment found")
	}
	d.ClearChanges()
	if d.Changes() != nil {
		t.Error("ClearChanges left changes")
	}
}
