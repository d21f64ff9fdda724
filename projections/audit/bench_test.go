package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore/snapshot"
	"github.com/prescripto/prescripto/projections/audit"
)

// BenchmarkScheduleAsOf: GET /audit/doctors/{id}/schedule?asOf= on a doctor
// whose stream holds 1,000, 10,000 or 100,000 events (hourly bookings, every
// third cancelled, 100 an append, an append a minute), at instants spread
// over the whole history, replayed from the first event and from
// snapshots in a snapshot directory (saved by one replay to the end
// first). Each sub-benchmark reports p50 and p99 of its asks.
//
//	go test -run '^$' -bench ScheduleAsOf -benchtime 1x ./projections/audit/
func BenchmarkScheduleAsOf(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		f := newFixture(b)
		buildAsOfHistory(b, f, n)
		reg, _ := catalog.NewRegistry()
		dir, err := snapshot.OpenDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		withSnaps, _ := audit.New(f.store, reg, audit.WithSnapshots(dir))
		minutes := n / 100
		ctx := context.Background()
		ask := func(l *audit.Log, i int) time.Duration {
			at := t0.Add(time.Duration(1+(i*7919)%minutes) * time.Minute)
			t := time.Now()
			if _, err := l.ScheduleAsOf(ctx, audit.ScheduleQuery{DoctorID: doc, AsOf: at, Days: 7}); err != nil {
				b.Fatal(err)
			}
			return time.Since(t)
		}
		ask(withSnaps, minutes) // saves the snapshots
		for _, v := range []struct {
			name string
			log  *audit.Log
			asks int
		}{{"replay", f.log, min(50, 1_000_000/n)}, {"snapshots", withSnaps, 100}} {
			b.Run(fmt.Sprintf("events=%d/%s", n, v.name), func(b *testing.B) {
				var lat []time.Duration
				for range b.N {
					for i := range v.asks {
						lat = append(lat, ask(v.log, i))
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// buildAsOfHistory appends n events to the doctor's stream.
func buildAsOfHistory(b *testing.B, f *fixture, n int) {
	f.append(t0, doctor.StreamID(doc),
		doctor.DoctorRegistered{DoctorID: doc, Profile: doctor.Profile{Name: "Dr One", Currency: "INR", Available: true}, RegisteredAt: t0},
		doctor.ScheduleSet{DoctorID: doc, Schedule: allDay()})
	at := t0
	var batch []domain.Event
	for i := 0; len(batch) < n-2; i++ {
		id := fmt.Sprintf("0190f3c4-0000-7000-8000-%012d", i)
		start := t0.Add(24*time.Hour + time.Duration(i)*time.Hour)
		batch = append(batch, reserve(id, start, at))
		if i%3 == 2 {
			batch = append(batch, doctor.AppointmentCancelled{DoctorID: doc, AppointmentID: id, Start: start, End: start.Add(time.Hour), CancelledBy: domain.RoleAdmin, CancelledAt: at})
		}
	}
	for i := 0; i < len(batch); i += 100 {
		at = at.Add(time.Minute)
		f.append(at, doctor.StreamID(doc), batch[i:min(i+100, len(batch))]...)
	}
}

// allDay is open around the clock in hourly slots, bookable 20 years
// ahead (100,000 hours is 11.4 years).
func allDay() doctor.Schedule {
	s := doctor.Schedule{Timezone: "UTC", SlotMinutes: 60, BookingWindowDays: 365, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:00", End: "24:00"})
	}
	return s
}
