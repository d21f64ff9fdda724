package mongo_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// bookings is a log of doctors, patients and n bookings, each a
// reservation, a payment order, a capture and a confirmation, and the
// completion of the booking 40 before (so the doctors' live lists stay
// short): about five events a booking, as the booking flow records them.
func bookings(l *log, from, n int) {
	const doctors, patients = 20, 200
	if from == 0 {
		sched := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 15, BookingWindowDays: 365, MinNoticeMinutes: 0, PaymentPolicy: doctor.PaymentRequired, HoldMinutes: 10}
		for wd := 1; wd <= 7; wd++ { // Monday to Sunday
			sched.Weekly = append(sched.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:00", End: "23:45"})
		}
		for i := range doctors {
			id := fmt.Sprintf("bd%02d", i)
			l.add(doctor.StreamID(id), doctor.DoctorRegistered{DoctorID: id, Profile: doctor.Profile{Name: "Dr. " + id, Speciality: "ENT", Fees: 1000, Currency: "INR", Available: true}})
			l.add(doctor.StreamID(id), doctor.ScheduleSet{DoctorID: id, Schedule: sched})
		}
		for i := range patients {
			id := fmt.Sprintf("bp%03d", i)
			l.add(account.StreamID(domain.RolePatient, id), account.Registered{AccountID: id, Name: "Patient " + id, Role: domain.RolePatient})
		}
	}
	for i := from; i < from+n; i++ {
		doc, pat, id := fmt.Sprintf("bd%02d", i%doctors), fmt.Sprintf("bp%03d", i%patients), fmt.Sprintf("ba%06d", i)
		start := at(8, 0, 0).Add(time.Duration(i/doctors) * 15 * time.Minute)
		until := l.clock.Add(10 * time.Minute)
		s := doctor.StreamID(doc)
		l.add(s, doctor.SlotReserved{DoctorID: doc, AppointmentID: id, PatientID: pat, PatientName: "Patient " + pat, Start: start, End: start.Add(15 * time.Minute),
			Status: doctor.StatusHeld, Fees: 1000, Currency: "INR", PaymentStatus: doctor.PaymentPending, HoldExpiresAt: &until, ReservedAt: l.clock})
		l.add(s, doctor.PaymentOrderCreated{DoctorID: doc, AppointmentID: id, OrderID: "o-" + id, Amount: 1000, Currency: "INR"})
		l.add(s, doctor.PaymentCaptured{DoctorID: doc, AppointmentID: id, PaymentID: "pay-" + id, OrderID: "o-" + id, Amount: 1000, Currency: "INR"})
		l.add(s, doctor.AppointmentConfirmed{DoctorID: doc, AppointmentID: id, PaymentID: "pay-" + id})
		if i >= 40 {
			old := fmt.Sprintf("ba%06d", i-40)
			l.add(doctor.StreamID(fmt.Sprintf("bd%02d", (i-40)%doctors)), doctor.AppointmentCompleted{DoctorID: fmt.Sprintf("bd%02d", (i-40)%doctors), AppointmentID: old})
		}
	}
}

// BenchmarkApplyFerretDB measures events applied per second to the three
// MongoDB read models (each event to each model), one at a time (Apply,
// what the runner did before batches) and in batches (ApplyBatch, what it
// does when the log holds more than one event beyond a message), on top of
// a model that already holds 500 bookings (PRESCRIPTO_APPLY_PREFILL
// bookings): a lookup by _id on a FerretDB built without the patch of
// scripts/ferretdb.sh scans its collection, so the size matters there.
//
//	go test -run '^$' -bench 'ApplyFerretDB/OneByOne' -benchtime 200x -timeout 30m ./projections/mongo/
//	go test -run '^$' -bench 'ApplyFerretDB/Batch' -benchtime 2000x -timeout 30m ./projections/mongo/
func BenchmarkApplyFerretDB(b *testing.B) {
	newDB := server(b)
	prefill := 500
	if v := os.Getenv("PRESCRIPTO_APPLY_PREFILL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("PRESCRIPTO_APPLY_PREFILL=%q: want a number of bookings", v)
		}
		prefill = n
	}
	for _, batch := range []int{1, 16, 64, 256} {
		name := "OneByOne"
		if batch > 1 {
			name = fmt.Sprintf("Batch%d", batch)
		}
		b.Run(name, func(b *testing.B) {
			m := models(open(b, newDB(b)))
			l := &log{clock: time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), revs: map[string]uint64{}}
			bookings(l, 0, prefill)
			applyBench(b, m.Projections, l.events, 256)
			mark := len(l.events)
			bookings(l, prefill, b.N/5+1)
			events := l.events[mark:][:b.N]
			b.ResetTimer()
			start := time.Now()
			applyBench(b, m.Projections, events, batch)
			b.ReportMetric(float64(len(events))/time.Since(start).Seconds(), "events/s")
		})
	}
}

func applyBench(b *testing.B, ps []projections.Projection, events []projections.Event, batch int) {
	ctx := context.Background()
	for len(events) > 0 {
		n := min(batch, len(events))
		for _, p := range ps {
			var err error
			if batch == 1 {
				err = p.Apply(ctx, events[0])
			} else {
				err = p.(projections.BatchProjection).ApplyBatch(ctx, events[:n])
			}
			if err != nil {
				b.Fatalf("%s: %v", p.Name(), err)
			}
		}
		events = events[n:]
	}
}
