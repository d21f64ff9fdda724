package mongo_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// busyDay is a log of 50 doctors (5-minute slots around the clock, no
// payment) and n bookings taken slot after slot, doctor by doctor: the
// shape of the load generator's booking scenario, where each doctor's day
// fills up (n/50 bookings a doctor and day).
func busyDay(n int) *log {
	const doctors = 50
	l := &log{clock: time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), revs: map[string]uint64{}}
	sched := doctor.Schedule{Timezone: "UTC", SlotMinutes: 5, BookingWindowDays: 365, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		sched.Weekly = append(sched.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:00", End: "23:55"})
	}
	for i := range doctors {
		id := fmt.Sprintf("ld%02d", i)
		l.add(doctor.StreamID(id), doctor.DoctorRegistered{DoctorID: id, Profile: doctor.Profile{Name: "Dr. " + id, Speciality: "ENT", Fees: 500, Currency: "INR", Available: true}})
		l.add(doctor.StreamID(id), doctor.ScheduleSet{DoctorID: id, Schedule: sched})
	}
	day := time.Date(2030, time.January, 2, 0, 0, 0, 0, time.UTC)
	for i := range n {
		doc := fmt.Sprintf("ld%02d", i%doctors)
		start := day.Add(time.Duration(i/doctors) * 5 * time.Minute)
		l.add(doctor.StreamID(doc), doctor.SlotReserved{DoctorID: doc, AppointmentID: fmt.Sprintf("la%06d", i), PatientID: fmt.Sprintf("lp%03d", i%200),
			PatientName: "Patient", Start: start, End: start.Add(5 * time.Minute), Status: doctor.StatusConfirmed, Fees: 500, Currency: "INR",
			PaymentStatus: doctor.PaymentNotRequired, ReservedAt: l.clock})
	}
	return l
}

// BenchmarkBusyDayFerretDB: events applied per second by each MongoDB
// model alone, in batches of 256, over the load generator's shape of log
// (8,000 bookings of 50 doctors: 160 a doctor's day).
//
//	go test -run '^$' -bench BusyDayFerretDB -benchtime 1x -timeout 30m ./projections/mongo/
func BenchmarkBusyDayFerretDB(b *testing.B) {
	newDB := server(b)
	l := busyDay(8000)
	for _, name := range []string{"doctors", "free_slots", "appointments", "analytics"} {
		b.Run(name, func(b *testing.B) {
			m := open(b, newDB(b))
			ps := map[string]projections.Projection{"doctors": m.Directory, "free_slots": m.Slots, "appointments": m.Appointments, "analytics": m.Analytics}
			for b.Loop() {
				start := time.Now()
				applyBench(b, []projections.Projection{ps[name]}, l.events, 256)
				b.ReportMetric(float64(len(l.events))/time.Since(start).Seconds(), "events/s")
			}
		})
	}
}
