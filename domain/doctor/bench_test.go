package doctor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// BenchmarkReserveAmongLive is the cost of one booking (Reserve, then
// ClearChanges as the command handler does after the append) on a doctor
// who already holds live future bookings: none, 10,000 or 50,000. Each
// iteration books a free slot between the existing bookings, at a position
// that moves through the whole range, and cancels it again, so the number
// of live bookings stays where it was. ns/op is one booking plus one
// cancellation.
//
//	go test -run '^$' -bench ReserveAmongLive -count 5 ./domain/doctor/
func BenchmarkReserveAmongLive(b *testing.B) {
	for _, live := range []int{0, 10_000, 50_000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			benchReserveAmongLive(b, live)
		})
	}
}

// benchSchedule: open around the clock in 5-minute slots, a year ahead,
// as the load generator's doctors (105,120 slots).
func benchSchedule() doctor.Schedule {
	s := doctor.Schedule{Timezone: "UTC", SlotMinutes: 5, BookingWindowDays: 365, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:00", End: "24:00"})
	}
	return s
}

func benchReserveAmongLive(b *testing.B, live int) {
	now := time.Date(2026, time.June, 1, 8, 0, 0, 0, time.UTC)
	first := now.Add(time.Hour)
	slot := func(k int) time.Time { return first.Add(time.Duration(k) * 5 * time.Minute) }
	d := doctor.New(docID)
	if err := d.Register(profile(), now); err != nil {
		b.Fatal(err)
	}
	if err := d.SetSchedule(benchSchedule()); err != nil {
		b.Fatal(err)
	}
	// The existing bookings take the odd slots 1, 3, ..., 2·live-1 (folded
	// from events, as the command side loads them); iterations book even
	// slots among them.
	evs := make([]domain.Event, 0, live)
	for i := range live {
		start := slot(2*i + 1)
		evs = append(evs, doctor.SlotReserved{
			DoctorID: docID, AppointmentID: fmt.Sprintf("old-%d", i), PatientID: "p1", PatientName: "P",
			Start: start, End: start.Add(5 * time.Minute), Status: doctor.StatusConfirmed,
			Fees: fees, Currency: "INR", PaymentStatus: doctor.PaymentPending, ReservedAt: now,
		})
	}
	d.Load(evs...)
	d.ClearChanges()
	if n := len(d.LiveAppointments()); n != live {
		b.Fatalf("%d live bookings, want %d", n, live)
	}
	evens := max(live, 1)
	by := domain.Actor{UserID: "p2", Role: domain.RolePatient}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// 7919 is prime, so k visits every even slot before repeating.
		k := 2 * ((i * 7919) % evens)
		id := fmt.Sprintf("new-%d", i)
		if err := d.Reserve(doctor.Reservation{AppointmentID: id, PatientID: "p2", PatientName: "Q", Start: slot(k)}, now); err != nil {
			b.Fatalf("reserve slot %d: %v", k, err)
		}
		d.ClearChanges()
		if err := d.Cancel(id, "", by, now); err != nil {
			b.Fatal(err)
		}
		d.ClearChanges()
	}
}

// BenchmarkRestoreSnapshot restores a doctor holding 75,000 appointments
// (50,000 live), the state 100,000 booking and cancelling events leave.
//
//	go test -run '^$' -bench RestoreSnapshot ./domain/doctor/
func BenchmarkRestoreSnapshot(b *testing.B) {
	now := time.Date(2026, time.June, 1, 8, 0, 0, 0, time.UTC)
	d := doctor.New(docID)
	if err := d.Register(profile(), now); err != nil {
		b.Fatal(err)
	}
	if err := d.SetSchedule(benchSchedule()); err != nil {
		b.Fatal(err)
	}
	var evs []domain.Event
	for i := range 75_000 {
		start := now.Add(time.Hour + time.Duration(i)*5*time.Minute)
		id := fmt.Sprintf("0190f3c4-0000-7000-8000-%012d", i)
		evs = append(evs, doctor.SlotReserved{
			DoctorID: docID, AppointmentID: id, PatientID: fmt.Sprintf("patient-%04d", i%1000), PatientName: "History Patient",
			Start: start, End: start.Add(5 * time.Minute), Status: doctor.StatusConfirmed,
			Fees: fees, Currency: "INR", PaymentStatus: doctor.PaymentNotRequired, ReservedAt: now,
		})
		if i%3 == 2 {
			evs = append(evs, doctor.AppointmentCancelled{DoctorID: docID, AppointmentID: id, Start: start, End: start.Add(5 * time.Minute), CancelledBy: domain.RolePatient, CancelledAt: now})
		}
	}
	d.Load(evs...)
	snap, err := d.MarshalSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(snap))/1e6, "MB")
	for b.Loop() {
		if _, err := doctor.RestoreSnapshot(docID, snap); err != nil {
			b.Fatal(err)
		}
	}
}
