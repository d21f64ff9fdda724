// Package analyticstest is the conformance suite of the analytics read
// model: every implementation (in memory, MongoDB) answers the same
// questions about the same hand-built histories, applies events
// idempotently, and agrees with a brute-force fold of random histories
// (Property).
package analyticstest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// Models is one implementation's analytics model: its view and its
// projection. Batch > 1 feeds a projections.BatchProjection batches of
// that many events.
type Models struct {
	View       analytics.View
	Projection projections.Projection
	Batch      int
}

// Run runs the suite; newModels must return an empty, independent model
// on every call (subtests run in parallel).
func Run(t *testing.T, newModels func(t *testing.T) Models) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, m Models)
	}{
		{"BookingsByDay", bookingsByDay},
		{"BookingsByDoctorAndSpeciality", bookingsByDoctor},
		{"Utilisation", utilisation},
		{"NoPersonalData", noPersonalData},
		{"Idempotency", idempotency},
		{"QueryValidation", validation},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newModels(t))
		})
	}
}

// Feed applies events in order: one at a time, or in batches of m.Batch.
func Feed(t testing.TB, m Models, events ...projections.Event) {
	t.Helper()
	ctx := context.Background()
	b, batched := m.Projection.(projections.BatchProjection)
	for len(events) > 0 {
		n := min(max(m.Batch, 1), len(events))
		chunk := events[:n]
		events = events[n:]
		if batched && m.Batch > 1 {
			if err := b.ApplyBatch(ctx, chunk); err != nil {
				t.Fatalf("ApplyBatch(%d..%d): %v", chunk[0].Position, chunk[n-1].Position, err)
			}
			continue
		}
		for _, e := range chunk {
			if err := m.Projection.Apply(ctx, e); err != nil {
				t.Fatalf("Apply(%s at %d): %v", e.Type, e.Position, err)
			}
		}
	}
}

var (
	kolkata = zone("Asia/Kolkata")
	newYork = zone("America/New_York")
)

func zone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func at(loc *time.Location, day, h, m int) time.Time {
	return time.Date(2026, time.November, day, h, m, 0, 0, loc).UTC()
}

func d(day int) doctor.Date { return doctor.Date{Year: 2026, Month: time.November, Day: day} }

func weekly(days []int, start, end string) []doctor.WeeklyHours {
	var out []doctor.WeeklyHours
	for _, wd := range days {
		out = append(out, doctor.WeeklyHours{Weekday: wd, Start: start, End: end})
	}
	return out
}

// Patients of the story: what must never show.
var patients = []struct{ id, name, email string }{
	{"pat-0190aa01", "Priya Shah", "priya.shah@example.com"},
	{"pat-0190aa02", "Rahul Verma", "rahul.verma@example.com"},
}

// story is the hand-built history (2026-11-01 is a Sunday; New York
// leaves daylight time that morning):
//
//	Asha Rao, Cardiology, Asia/Kolkata, INR, Mon-Fri 10:00-13:00 in 30 min
//	  a1 Mon 2 10:00 completed, paid 50000
//	  a2 Mon 2 10:30 held, expired
//	  a3 Tue 3 11:00 confirmed, paid 50000, cancelled, refunded 50000
//	  a4 Mon 2 12:00, rescheduled to Wed 4 10:00, no-show
//	  time off Tue 3 11:00-12:00; from Wed 4 11:30 (06:00Z) Mon-Fri 10:00-11:00
//	Ben Cole, Dermatology, America/New_York, every day 09:00-12:00 in 60 min
//	  b1 Mon 2 09:00 USD; b2 Mon 2 21:00 (Tue 3 02:00Z) USD, off the grid;
//	  b3 Mon 2 10:00 EUR (after a profile change), paid 2000
//	Cara Diaz, Neurology: registered, no schedule
func story() *history {
	h := newHistory(time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC))
	tick := func() { h.clock = h.clock.Add(time.Minute) }
	for _, p := range patients {
		h.patient(p.id, p.name, p.email)
		tick()
	}
	h.doc("d-kol", "Asha Rao", "Cardiology", "INR")
	h.doc("d-ny", "Ben Cole", "Dermatology", "USD")
	h.doc("d-new", "Cara Diaz", "Neurology", "INR")
	tick()
	h.schedule("d-kol", "Asia/Kolkata", 30, weekly([]int{1, 2, 3, 4, 5}, "10:00", "13:00")...)
	h.schedule("d-ny", "America/New_York", 60, weekly([]int{1, 2, 3, 4, 5, 6, 7}, "09:00", "12:00")...)
	tick()
	p1, p2 := patients[0], patients[1]
	h.reserve("d-kol", "a1", p1.id, p1.name, at(kolkata, 2, 10, 0), 30, 50000, "INR", false)
	h.reserve("d-kol", "a2", p2.id, p2.name, at(kolkata, 2, 10, 30), 30, 50000, "INR", true)
	h.reserve("d-kol", "a3", p1.id, p1.name, at(kolkata, 3, 11, 0), 30, 50000, "INR", false)
	h.reserve("d-kol", "a4", p2.id, p2.name, at(kolkata, 2, 12, 0), 30, 50000, "INR", false)
	h.reserve("d-ny", "b1", p1.id, p1.name, at(newYork, 2, 9, 0), 60, 9000, "USD", false)
	h.reserve("d-ny", "b2", p2.id, p2.name, at(newYork, 2, 21, 0), 60, 9000, "USD", false)
	h.add(doctor.StreamID("d-ny"), doctor.ProfileUpdated{DoctorID: "d-ny", Profile: doctor.Profile{Name: "Ben Cole", Speciality: "Dermatology", Currency: "EUR", Fees: 2000}})
	h.reserve("d-ny", "b3", p1.id, p1.name, at(newYork, 2, 10, 0), 60, 2000, "EUR", false)
	tick()
	h.capture("d-kol", "a1", "pay_a1", 50000, "INR")
	h.capture("d-kol", "a3", "pay_a3", 50000, "INR")
	h.capture("d-ny", "b3", "pay_b3", 2000, "EUR")
	h.expire("d-kol", "a2")
	h.timeOff("d-kol", at(kolkata, 3, 11, 0), at(kolkata, 3, 12, 0))
	h.cancel("d-kol", "a3", p1.id)
	h.refund("d-kol", "a3", "pay_a3", "rfnd_a3", 50000)
	h.reschedule("d-kol", "a4", at(kolkata, 4, 10, 0), 30)
	h.complete("d-kol", "a1")
	h.clock = time.Date(2026, time.November, 4, 6, 0, 0, 0, time.UTC)
	h.schedule("d-kol", "Asia/Kolkata", 30, weekly([]int{1, 2, 3, 4, 5}, "10:00", "11:00")...)
	tick()
	h.noShow("d-kol", "a4")
	return h
}

func bookings(t *testing.T, m Models, q analytics.Query) []analytics.BookingRow {
	t.Helper()
	rows, err := m.View.Bookings(context.Background(), q)
	if err != nil {
		t.Fatalf("Bookings(%+v): %v", q, err)
	}
	return rows
}

func utilisationOf(t *testing.T, m Models, q analytics.Query) []analytics.UtilisationRow {
	t.Helper()
	rows, err := m.View.Utilisation(context.Background(), q)
	if err != nil {
		t.Fatalf("Utilisation(%+v): %v", q, err)
	}
	return rows
}

func expect[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func bookingsByDay(t *testing.T, m Models) {
	Feed(t, m, story().events...)
	expect(t, "by day, 2-4 Nov", bookings(t, m, analytics.Query{From: d(2), To: d(4), GroupBy: analytics.ByDay}), []analytics.BookingRow{
		{Key: "2026-11-02", Label: "2026-11-02", Booked: 1, Revenue: 2000, Currency: "EUR"},
		{Key: "2026-11-02", Label: "2026-11-02", Booked: 2, Completed: 1, Expired: 1, Revenue: 50000, Currency: "INR"},
		{Key: "2026-11-02", Label: "2026-11-02", Booked: 2, Currency: "USD"},
		{Key: "2026-11-03", Label: "2026-11-03", Booked: 1, Cancelled: 1, Revenue: 50000, Refunded: 50000, Currency: "INR"},
		{Key: "2026-11-04", Label: "2026-11-04", Booked: 1, NoShow: 1, Currency: "INR"},
	})
	expect(t, "one day (3 Nov): b2 is on New York's 2 Nov", bookings(t, m, analytics.Query{From: d(3), To: d(3)}), []analytics.BookingRow{
		{Key: "2026-11-03", Label: "2026-11-03", Booked: 1, Cancelled: 1, Revenue: 50000, Refunded: 50000, Currency: "INR"},
	})
	expect(t, "no bookings in range", bookings(t, m, analytics.Query{From: d(20), To: d(25)}), []analytics.BookingRow{})
}

func bookingsByDoctor(t *testing.T, m Models) {
	Feed(t, m, story().events...)
	kol := analytics.BookingRow{Booked: 4, Cancelled: 1, Completed: 1, NoShow: 1, Expired: 1, Revenue: 100000, Refunded: 50000, Currency: "INR"}
	byDoc := kol
	byDoc.Key, byDoc.Label = "d-kol", "Asha Rao"
	expect(t, "by doctor", bookings(t, m, analytics.Query{From: d(1), To: d(30), GroupBy: analytics.ByDoctor}), []analytics.BookingRow{
		byDoc,
		{Key: "d-ny", Label: "Ben Cole", Booked: 1, Revenue: 2000, Currency: "EUR"},
		{Key: "d-ny", Label: "Ben Cole", Booked: 2, Currency: "USD"},
	})
	bySpec := kol
	bySpec.Key, bySpec.Label = "Cardiology", "Cardiology"
	expect(t, "by speciality", bookings(t, m, analytics.Query{From: d(1), To: d(30), GroupBy: analytics.BySpeciality}), []analytics.BookingRow{
		bySpec,
		{Key: "Dermatology", Label: "Dermatology", Booked: 1, Revenue: 2000, Currency: "EUR"},
		{Key: "Dermatology", Label: "Dermatology", Booked: 2, Currency: "USD"},
	})
}

func utilisation(t *testing.T, m Models) {
	Feed(t, m, story().events...)
	// Asha Rao, 2-4 Nov: 6 + (6 - 2 in time off) + 3 (Wed's slots before
	// the new schedule took effect at 11:30; its own Wed slots began
	// before it did) = 13 offered; a1 (completed) and a4 (no-show) booked.
	// Ben Cole: 3 a day; b1, b2, b3 confirmed.
	expect(t, "2-4 Nov", utilisationOf(t, m, analytics.Query{From: d(2), To: d(4)}), []analytics.UtilisationRow{
		{DoctorID: "d-kol", DoctorName: "Asha Rao", OfferedSlots: 13, BookedSlots: 2, Ratio: 0.1538},
		{DoctorID: "d-ny", DoctorName: "Ben Cole", OfferedSlots: 9, BookedSlots: 3, Ratio: 0.3333},
		{DoctorID: "d-new", DoctorName: "Cara Diaz"},
	})
	// Thu 5 and Fri 6 under the new schedule, the weekend off.
	expect(t, "5-8 Nov", utilisationOf(t, m, analytics.Query{From: d(5), To: d(8)}), []analytics.UtilisationRow{
		{DoctorID: "d-kol", DoctorName: "Asha Rao", OfferedSlots: 4},
		{DoctorID: "d-ny", DoctorName: "Ben Cole", OfferedSlots: 12},
		{DoctorID: "d-new", DoctorName: "Cara Diaz"},
	})
	// Before any schedule was recorded nothing was offered.
	expect(t, "October", utilisationOf(t, m, analytics.Query{From: doctor.Date{Year: 2026, Month: time.October, Day: 1}, To: doctor.Date{Year: 2026, Month: time.October, Day: 31}}), []analytics.UtilisationRow{
		{DoctorID: "d-kol", DoctorName: "Asha Rao"},
		{DoctorID: "d-ny", DoctorName: "Ben Cole"},
		{DoctorID: "d-new", DoctorName: "Cara Diaz"},
	})
}

// noPersonalData: no answer names a patient, by id, name or email.
func noPersonalData(t *testing.T, m Models) {
	Feed(t, m, story().events...)
	var answers []any
	for _, g := range []analytics.GroupBy{analytics.ByDay, analytics.ByDoctor, analytics.BySpeciality} {
		answers = append(answers, bookings(t, m, analytics.Query{From: d(1), To: d(30), GroupBy: g}))
	}
	answers = append(answers, utilisationOf(t, m, analytics.Query{From: d(1), To: d(30)}))
	b, err := json.Marshal(answers)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patients {
		for _, s := range []string{p.id, p.name, p.email, strings.Split(p.name, " ")[0]} {
			if strings.Contains(string(b), s) {
				t.Errorf("analytics answers show %q: %s", s, b)
			}
		}
	}
}

func idempotency(t *testing.T, m Models) {
	h := story()
	// Every event twice in a row, then the whole log again.
	var twice []projections.Event
	for _, e := range h.events {
		twice = append(twice, e, e)
	}
	Feed(t, m, twice...)
	Feed(t, m, h.events...)
	expect(t, "by doctor after replays", bookings(t, m, analytics.Query{From: d(1), To: d(30), GroupBy: analytics.ByDoctor}), []analytics.BookingRow{
		{Key: "d-kol", Label: "Asha Rao", Booked: 4, Cancelled: 1, Completed: 1, NoShow: 1, Expired: 1, Revenue: 100000, Refunded: 50000, Currency: "INR"},
		{Key: "d-ny", Label: "Ben Cole", Booked: 1, Revenue: 2000, Currency: "EUR"},
		{Key: "d-ny", Label: "Ben Cole", Booked: 2, Currency: "USD"},
	})
	expect(t, "utilisation after replays", utilisationOf(t, m, analytics.Query{From: d(2), To: d(4)})[0],
		analytics.UtilisationRow{DoctorID: "d-kol", DoctorName: "Asha Rao", OfferedSlots: 13, BookedSlots: 2, Ratio: 0.1538})
	if cp, err := m.Projection.Checkpoint(context.Background()); err != nil || cp != h.pos {
		t.Errorf("checkpoint = %d, %v; want %d", cp, err, h.pos)
	}
}

func validation(t *testing.T, m Models) {
	Feed(t, m, story().events...)
	for _, c := range []struct {
		name string
		q    analytics.Query
	}{
		{"no from", analytics.Query{To: d(3)}},
		{"no to", analytics.Query{From: d(3)}},
		{"to before from", analytics.Query{From: d(3), To: d(2)}},
		{"367 days", analytics.Query{From: d(1), To: d(1).AddDays(366)}},
		{"unknown groupBy", analytics.Query{From: d(1), To: d(2), GroupBy: "week"}},
	} {
		if _, err := m.View.Bookings(context.Background(), c.q); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("Bookings %s: err = %v, want invalid", c.name, err)
		}
		if c.name == "unknown groupBy" {
			continue
		}
		if _, err := m.View.Utilisation(context.Background(), c.q); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("Utilisation %s: err = %v, want invalid", c.name, err)
		}
	}
	if rows := bookings(t, m, analytics.Query{From: d(1), To: d(1).AddDays(365)}); len(rows) == 0 {
		t.Errorf("366 days: no rows")
	}
}
