package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
)

// The answer cache must never serve what time or a new event has changed:
// compare every cached answer with one computed by a fresh model.
func TestFreeSlotsCacheFollowsTimeAndEvents(t *testing.T) {
	t.Parallel()
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	sched := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 2, MinNoticeMinutes: 45, PaymentPolicy: doctor.PaymentNone,
		Weekly: []doctor.WeeklyHours{{Weekday: 1, Start: "10:00", End: "12:00"}, {Weekday: 2, Start: "10:00", End: "12:00"}, {Weekday: 3, Start: "10:00", End: "12:00"}, {Weekday: 4, Start: "10:00", End: "12:00"}, {Weekday: 5, Start: "10:00", End: "12:00"}, {Weekday: 6, Start: "10:00", End: "12:00"}, {Weekday: 7, Start: "10:00", End: "12:00"}}}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, kolkata) // Tuesday 09:00
	events := []projections.Event{
		{Position: 1, Data: doctor.DoctorRegistered{DoctorID: "d", Profile: doctor.Profile{Name: "Dr. C", Available: true, Currency: "INR"}}},
		{Position: 2, Data: doctor.ScheduleSet{DoctorID: "d", Schedule: sched}},
	}
	cached := memory.NewSlots()
	for _, e := range events {
		if err := cached.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func(now time.Time, evs []projections.Event) projections.FreeSlots {
		s := memory.NewSlots()
		for _, e := range evs {
			_ = s.Apply(context.Background(), e)
		}
		fs, err := s.FreeSlots(context.Background(), "d", doctor.DateOf(start), 4, now)
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	booked := start.Add(2 * time.Hour) // 11:00 Tuesday
	for step, now := 0, start; now.Before(start.Add(80 * time.Hour)); step, now = step+1, now.Add(7*time.Minute) {
		if step == 100 { // a booking mid-way
			events = append(events, projections.Event{Position: 3, Data: doctor.SlotReserved{DoctorID: "d", AppointmentID: "a", PatientID: "p",
				Start: booked.Add(48 * time.Hour).UTC(), End: booked.Add(48*time.Hour + 30*time.Minute).UTC(), Status: doctor.StatusConfirmed}})
			if err := cached.Apply(context.Background(), events[2]); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 { // the second ask is served from the cache
			got, err := cached.FreeSlots(context.Background(), "d", doctor.DateOf(start), 4, now)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := cached.FreeSlotsJSON(context.Background(), "d", doctor.DateOf(start), 4, now)
			if err != nil {
				t.Fatal(err)
			}
			want := fresh(now, events).AppendJSON(nil)
			if string(got.AppendJSON(nil)) != string(want) || string(raw) != string(want) {
				t.Fatalf("at %v (step %d) the cache answered\n%s\n%s\nwant\n%s", now, step, got.AppendJSON(nil), raw, want)
			}
		}
	}
}
