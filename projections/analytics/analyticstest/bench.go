package analyticstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// RealisticLog is a clinic's year: doctors in four zones and two
// specialities, each working Mon-Sat 10:00-21:00 in 30-minute slots with a
// schedule change half-way and a week of time off, and perDay bookings a
// working day each, over days days from 2026-01-01. A booking is a
// reservation, then a completion (70%), a cancellation (15%, paid and
// refunded half of those), a no-show (10%) or a hold that runs out (5%);
// half are paid online (order, capture). About 3.5 events a booking.
func RealisticLog(doctors, days, perDay int) []projections.Event {
	h := newHistory(time.Date(2025, time.December, 1, 0, 0, 0, 0, time.UTC))
	zonesOf := []string{"Asia/Kolkata", "Europe/London", "America/New_York", "Asia/Singapore"}
	week := weekly([]int{1, 2, 3, 4, 5, 6}, "10:00", "21:00")
	for i := range doctors {
		id := fmt.Sprintf("doc-%03d", i)
		h.doc(id, fmt.Sprintf("Dr. %03d", i), []string{"Cardiology", "Dermatology"}[i%2], "INR")
		h.schedule(id, zonesOf[i%len(zonesOf)], 30, week...)
	}
	n := 0
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	for day := range days {
		h.clock = start.AddDate(0, 0, day).Add(-48 * time.Hour)
		if day == days/2 {
			for i := range doctors {
				id := fmt.Sprintf("doc-%03d", i)
				h.schedule(id, zonesOf[i%len(zonesOf)], 30, weekly([]int{1, 2, 3, 4, 5}, "09:00", "18:00")...)
				from := start.AddDate(0, 0, day+7+i%30)
				h.timeOff(id, from, from.Add(7*24*time.Hour))
			}
		}
		for i := range doctors {
			id := fmt.Sprintf("doc-%03d", i)
			loc, _ := time.LoadLocation(zonesOf[i%len(zonesOf)])
			d := start.AddDate(0, 0, day)
			if d.Weekday() == time.Sunday {
				continue
			}
			for k := range perDay {
				n++
				appt := fmt.Sprintf("a-%07d", n)
				at := time.Date(d.Year(), d.Month(), d.Day(), 10+k, 0, 0, 0, loc).UTC()
				paid := n%2 == 0
				h.reserve(id, appt, "pat-x", "Patient X", at, 30, 50000, "INR", paid && n%20 == 0)
				if paid {
					h.appt(id, doctor.PaymentOrderCreated{DoctorID: id, AppointmentID: appt, OrderID: "order_" + appt, Amount: 50000, Currency: "INR"})
					if n%20 != 0 {
						h.capture(id, appt, "pay_"+appt, 50000, "INR")
					}
				}
				switch r := n % 20; {
				case r == 0:
					h.expire(id, appt)
				case r <= 2:
					h.cancel(id, appt, "pat-x")
					if paid {
						h.refund(id, appt, "pay_"+appt, "rfnd_"+appt, 50000)
					}
				case r == 3:
					h.cancel(id, appt, "pat-x")
				case r <= 5:
					h.noShow(id, appt)
				default:
					h.complete(id, appt)
				}
			}
		}
	}
	return h.events
}

// BenchQueries times the analysts' questions on m, fed with a realistic
// log: a month and a year, by each grouping, and utilisation.
func BenchQueries(b *testing.B, m Models) {
	month := analytics.Query{From: doctor.Date{Year: 2026, Month: time.June, Day: 1}, To: doctor.Date{Year: 2026, Month: time.June, Day: 30}}
	year := analytics.Query{From: doctor.Date{Year: 2026, Month: time.January, Day: 1}, To: doctor.Date{Year: 2026, Month: time.December, Day: 31}}
	// The first utilisation question computes the offered slots of the
	// year; later ones read them from the cache (until a schedule changes).
	start := time.Now()
	if _, err := m.View.Utilisation(context.Background(), year); err != nil {
		b.Fatal(err)
	}
	b.Logf("utilisation of the year, cold: %v", time.Since(start))
	for _, c := range []struct {
		name string
		q    analytics.Query
	}{{"Month", month}, {"Year", year}} {
		for _, g := range []analytics.GroupBy{analytics.ByDay, analytics.ByDoctor, analytics.BySpeciality} {
			b.Run("Bookings/"+c.name+"/"+string(g), func(b *testing.B) {
				q := c.q
				q.GroupBy = g
				for b.Loop() {
					if _, err := m.View.Bookings(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run("Utilisation/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.View.Utilisation(context.Background(), c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
