package analyticstest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// Property checks, over random histories (several doctors in several
// zones, bookings, holds, payments, refunds, cancellations, completions,
// no-shows, expiries, reschedules, schedule changes including the zone,
// time off, profile changes, events delivered again), that the model's
// answers to random queries equal a brute-force fold of the log written
// here independently of the model. newModels is called once per history
// and must return an empty model; histories is how many to check.
func Property(t *testing.T, newModels func(t *testing.T) Models, histories int) {
	done := 0
	for done < histories {
		before := done
		rapid.Check(t, func(rt *rapid.T) {
			if done >= histories {
				return // rapid runs its count of checks per call; the rest pass idle
			}
			done++
			all := randomHistory(rt)
			m := newModels(t)
			// Asked part-way and at the end: answers cached from the first
			// questions must follow the events after them.
			cut := rapid.IntRange(0, len(all)).Draw(rt, "cut")
			feedWithReplays(rt, t, m, all[:cut])
			check(rt, m, all[:cut], rapid.IntRange(0, 3).Draw(rt, "early"))
			feedWithReplays(rt, t, m, all[cut:])
			check(rt, m, all, rapid.IntRange(1, 6).Draw(rt, "queries"))
		})
		if done == before {
			t.Fatalf("rapid.Check ran no history (is -rapid.checks 0?)")
		}
	}
}

// check asks n random questions and compares with the brute force.
func check(rt *rapid.T, m Models, events []projections.Event, n int) {
	for i := range n {
		q := randomQuery(rt, i)
		gotB, err := m.View.Bookings(context.Background(), q)
		if err != nil {
			rt.Fatalf("Bookings(%+v): %v", q, err)
		}
		if want := bruteBookings(events, q); !slices.Equal(gotB, want) {
			rt.Fatalf("Bookings(%s..%s by %s):\n got %+v\nwant %+v", q.From, q.To, q.GroupBy, gotB, want)
		}
		gotU, err := m.View.Utilisation(context.Background(), q)
		if err != nil {
			rt.Fatalf("Utilisation(%+v): %v", q, err)
		}
		if want := bruteUtilisation(events, q); !slices.Equal(gotU, want) {
			rt.Fatalf("Utilisation(%s..%s):\n got %+v\nwant %+v", q.From, q.To, gotU, want)
		}
	}
}

// feedWithReplays applies the events in order, each sometimes delivered
// again at once or after later ones (at least once delivery).
func feedWithReplays(rt *rapid.T, t *testing.T, m Models, events []projections.Event) {
	var seen []projections.Event
	var batch []projections.Event
	flush := func() {
		if len(batch) > 0 {
			Feed(t, m, batch...)
			batch = batch[:0]
		}
	}
	for _, e := range events {
		batch = append(batch, e)
		seen = append(seen, e)
		if rapid.IntRange(0, 9).Draw(rt, "replay") == 0 {
			old := seen[rapid.IntRange(0, len(seen)-1).Draw(rt, "replayed")]
			flush()
			Feed(t, m, old)
		}
	}
	flush()
}

var (
	zones    = []string{"Asia/Kolkata", "America/New_York", "Europe/London", "Pacific/Auckland", "UTC"}
	epoch    = time.Date(2026, time.October, 20, 0, 0, 0, 0, time.UTC)
	firstDay = doctor.Date{Year: 2026, Month: time.October, Day: 15}
)

func randomQuery(rt *rapid.T, i int) analytics.Query {
	from := firstDay.AddDays(rapid.IntRange(0, 60).Draw(rt, fmt.Sprintf("from%d", i)))
	return analytics.Query{
		From:    from,
		To:      from.AddDays(rapid.IntRange(0, 40).Draw(rt, fmt.Sprintf("days%d", i))),
		GroupBy: rapid.SampledFrom([]analytics.GroupBy{analytics.ByDay, analytics.ByDoctor, analytics.BySpeciality}).Draw(rt, fmt.Sprintf("groupBy%d", i)),
	}
}

func randomSchedule(rt *rapid.T) doctor.Schedule {
	slot := rapid.SampledFrom([]int{15, 30, 45, 60}).Draw(rt, "slotMinutes")
	var weekly []doctor.WeeklyHours
	for wd := 1; wd <= 7; wd++ {
		if rapid.IntRange(0, 2).Draw(rt, "works") == 0 {
			continue
		}
		// 00:00-03:00 crosses the DST changes of New York and London.
		start := rapid.SampledFrom([]string{"00:00", "01:00", "09:00", "14:00"}).Draw(rt, "start")
		end := map[string]string{"00:00": "03:00", "01:00": "04:00", "09:00": "13:00", "14:00": "24:00"}[start]
		weekly = append(weekly, doctor.WeeklyHours{Weekday: wd, Start: start, End: end})
	}
	return doctor.Schedule{
		Timezone: rapid.SampledFrom(zones).Draw(rt, "zone"), SlotMinutes: slot, BookingWindowDays: 365,
		PaymentPolicy: doctor.PaymentNone, RefundCutoffHours: 24, Weekly: weekly,
	}
}

type genAppt struct {
	id, doc  string
	status   doctor.Status
	fees     int64
	currency string
	payments []string
	refunds  int
}

// randomHistory makes a history of valid transitions (as the aggregate
// would decide them), the clock moving forward between events.
func randomHistory(rt *rapid.T) []projections.Event {
	h := newHistory(epoch)
	tick := func() {
		h.clock = h.clock.Add(time.Duration(rapid.IntRange(1, 24*60).Draw(rt, "minutes")) * time.Minute)
	}
	nd := rapid.IntRange(1, 4).Draw(rt, "doctors")
	currencies := map[string]string{}
	zoneOf := map[string]string{}
	var docs []string
	for i := range nd {
		id := fmt.Sprintf("d%d", i)
		docs = append(docs, id)
		cur := rapid.SampledFrom([]string{"INR", "USD"}).Draw(rt, "currency")
		currencies[id] = cur
		h.doc(id, fmt.Sprintf("Doctor %c", 'A'+i), rapid.SampledFrom([]string{"Cardiology", "Dermatology"}).Draw(rt, "speciality"), cur)
		if rapid.IntRange(0, 4).Draw(rt, "scheduled") > 0 {
			s := randomSchedule(rt)
			zoneOf[id] = s.Timezone
			h.add(doctor.StreamID(id), doctor.ScheduleSet{DoctorID: id, Schedule: s})
		}
	}
	h.patient("pat-1", "Priya Shah", "priya@example.com")
	var appts []*genAppt
	pick := func(ok func(a *genAppt) bool) *genAppt {
		var c []*genAppt
		for _, a := range appts {
			if ok(a) {
				c = append(c, a)
			}
		}
		if len(c) == 0 {
			return nil
		}
		return c[rapid.IntRange(0, len(c)-1).Draw(rt, "appt")]
	}
	live := func(a *genAppt) bool { return a.status.Live() }
	startIn := func(doc string) time.Time {
		loc, _ := time.LoadLocation(zoneOf[doc])
		day := firstDay.AddDays(rapid.IntRange(0, 70).Draw(rt, "day"))
		return time.Date(day.Year, day.Month, day.Day, rapid.IntRange(0, 23).Draw(rt, "hour"), rapid.SampledFrom([]int{0, 30}).Draw(rt, "minute"), 0, 0, loc).UTC()
	}
	for range rapid.IntRange(1, 50).Draw(rt, "steps") {
		tick()
		doc := rapid.SampledFrom(docs).Draw(rt, "doctor")
		switch rapid.IntRange(0, 12).Draw(rt, "action") {
		case 0, 1, 2:
			if zoneOf[doc] == "" {
				continue // nobody books without a schedule
			}
			a := &genAppt{id: fmt.Sprintf("a%d", len(appts)), doc: doc, fees: 1000 * int64(1+len(appts)%5), currency: currencies[doc], status: doctor.StatusConfirmed}
			held := rapid.Bool().Draw(rt, "held")
			if held {
				a.status = doctor.StatusHeld
			}
			appts = append(appts, a)
			h.reserve(doc, a.id, "pat-1", "Priya Shah", startIn(doc), 30, a.fees, a.currency, held)
		case 3:
			if a := pick(func(a *genAppt) bool { return a.status == doctor.StatusHeld }); a != nil {
				pay := fmt.Sprintf("pay_%s_%d", a.id, len(a.payments))
				a.payments = append(a.payments, pay)
				h.capture(a.doc, a.id, pay, a.fees, a.currency)
				a.status = doctor.StatusConfirmed
				h.confirm(a.doc, a.id, pay)
			}
		case 4:
			if a := pick(live); a != nil {
				a.status = doctor.StatusCancelled
				h.cancel(a.doc, a.id, "pat-1")
			}
		case 5:
			if a := pick(func(a *genAppt) bool { return a.status == doctor.StatusConfirmed }); a != nil {
				if rapid.Bool().Draw(rt, "came") {
					a.status = doctor.StatusCompleted
					h.complete(a.doc, a.id)
				} else {
					a.status = doctor.StatusNoShow
					h.noShow(a.doc, a.id)
				}
			}
		case 6:
			if a := pick(func(a *genAppt) bool { return a.status == doctor.StatusHeld }); a != nil {
				a.status = doctor.StatusExpired
				h.expire(a.doc, a.id)
			}
		case 7:
			if a := pick(live); a != nil {
				h.reschedule(a.doc, a.id, startIn(a.doc), 30)
			}
		case 8: // a payment, possibly late (owed back)
			if a := pick(func(*genAppt) bool { return true }); a != nil {
				pay := fmt.Sprintf("pay_%s_%d", a.id, len(a.payments))
				a.payments = append(a.payments, pay)
				h.capture(a.doc, a.id, pay, a.fees, a.currency)
			}
		case 9:
			if a := pick(func(a *genAppt) bool { return len(a.payments) > a.refunds }); a != nil {
				h.refund(a.doc, a.id, a.payments[a.refunds], fmt.Sprintf("rfnd_%s_%d", a.id, a.refunds), a.fees/int64(rapid.IntRange(1, 2).Draw(rt, "part")))
				a.refunds++
			}
		case 10:
			s := randomSchedule(rt)
			zoneOf[doc] = s.Timezone
			h.add(doctor.StreamID(doc), doctor.ScheduleSet{DoctorID: doc, Schedule: s})
		case 11:
			from := epoch.Add(time.Duration(rapid.IntRange(-10*24, 60*24).Draw(rt, "offFrom")) * time.Hour)
			h.timeOff(doc, from, from.Add(time.Duration(rapid.IntRange(1, 72).Draw(rt, "offHours"))*time.Hour))
		case 12:
			cur := rapid.SampledFrom([]string{"INR", "USD", "EUR"}).Draw(rt, "newCurrency")
			currencies[doc] = cur
			h.add(doctor.StreamID(doc), doctor.ProfileUpdated{DoctorID: doc, Profile: doctor.Profile{
				Name: "Dr " + doc + " " + cur, Speciality: rapid.SampledFrom([]string{"Cardiology", "Neurology"}).Draw(rt, "newSpeciality"), Currency: cur,
			}})
		}
	}
	return h.events
}

// ---- the brute-force fold ----

type bfDoctor struct {
	name, speciality, zone string
	registered             bool
	versions               []bfVersion
	off                    [][2]time.Time
}

type bfVersion struct {
	from time.Time
	s    doctor.Schedule
}

type bfAppt struct {
	doc, zone, currency string
	start               time.Time
	status              doctor.Status
	paid, refunded      map[string]int64
}

// fold replays the log into final states, the plain way.
func fold(events []projections.Event) (map[string]*bfDoctor, map[string]*bfAppt) {
	docs := map[string]*bfDoctor{}
	appts := map[string]*bfAppt{}
	doc := func(id string) *bfDoctor {
		if docs[id] == nil {
			docs[id] = &bfDoctor{}
		}
		return docs[id]
	}
	for _, e := range events {
		switch ev := e.Data.(type) {
		case doctor.DoctorRegistered:
			d := doc(ev.DoctorID)
			d.registered, d.name, d.speciality = true, ev.Profile.Name, ev.Profile.Speciality
		case doctor.ProfileUpdated:
			d := doc(ev.DoctorID)
			d.name, d.speciality = ev.Profile.Name, ev.Profile.Speciality
		case doctor.ScheduleSet:
			d := doc(ev.DoctorID)
			d.zone = ev.Schedule.Timezone
			d.versions = append(d.versions, bfVersion{from: e.RecordedAt, s: ev.Schedule})
		case doctor.TimeOffAdded:
			doc(ev.DoctorID).off = append(doc(ev.DoctorID).off, [2]time.Time{ev.From, ev.To})
		case doctor.SlotReserved:
			if appts[ev.AppointmentID] == nil {
				appts[ev.AppointmentID] = &bfAppt{doc: ev.DoctorID, zone: doc(ev.DoctorID).zone, currency: ev.Currency, start: ev.Start, status: ev.Status,
					paid: map[string]int64{}, refunded: map[string]int64{}}
			}
		case doctor.AppointmentConfirmed:
			appts[ev.AppointmentID].status = doctor.StatusConfirmed
		case doctor.AppointmentCancelled:
			appts[ev.AppointmentID].status = doctor.StatusCancelled
		case doctor.AppointmentCompleted:
			appts[ev.AppointmentID].status = doctor.StatusCompleted
		case doctor.AppointmentMarkedNoShow:
			appts[ev.AppointmentID].status = doctor.StatusNoShow
		case doctor.HoldExpired:
			appts[ev.AppointmentID].status = doctor.StatusExpired
		case doctor.AppointmentRescheduled:
			a := appts[ev.AppointmentID]
			a.start, a.zone = ev.Start, doc(ev.DoctorID).zone
		case doctor.PaymentCaptured:
			appts[ev.AppointmentID].paid[ev.PaymentID] = ev.Amount
		case doctor.RefundProcessed:
			appts[ev.AppointmentID].refunded[ev.RefundID] = ev.Amount
		}
	}
	return docs, appts
}

func (a *bfAppt) date() doctor.Date {
	loc, err := time.LoadLocation(a.zone)
	if err != nil || a.zone == "" {
		loc = time.UTC
	}
	return doctor.DateOf(a.start.In(loc))
}

func inRange(d doctor.Date, q analytics.Query) bool { return !d.Before(q.From) && !q.To.Before(d) }

func bruteBookings(events []projections.Event, q analytics.Query) []analytics.BookingRow {
	docs, appts := fold(events)
	rows := map[[2]string]*analytics.BookingRow{}
	for _, a := range appts {
		date := a.date()
		if !inRange(date, q) {
			continue
		}
		key, label := date.String(), date.String()
		switch q.GroupBy {
		case analytics.ByDoctor:
			key, label = a.doc, docs[a.doc].name
		case analytics.BySpeciality:
			key, label = docs[a.doc].speciality, docs[a.doc].speciality
		}
		r := rows[[2]string{key, a.currency}]
		if r == nil {
			r = &analytics.BookingRow{Key: key, Label: label, Currency: a.currency}
			rows[[2]string{key, a.currency}] = r
		}
		r.Booked++
		switch a.status {
		case doctor.StatusCancelled:
			r.Cancelled++
		case doctor.StatusCompleted:
			r.Completed++
		case doctor.StatusNoShow:
			r.NoShow++
		case doctor.StatusExpired:
			r.Expired++
		}
		for _, v := range a.paid {
			r.Revenue += v
		}
		for _, v := range a.refunded {
			r.Refunded += v
		}
	}
	out := []analytics.BookingRow{}
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b analytics.BookingRow) int {
		if q.GroupBy != analytics.ByDay {
			return cmp.Or(cmp.Compare(a.Label, b.Label), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Currency, b.Currency))
		}
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Currency, b.Currency))
	})
	return out
}

func bruteUtilisation(events []projections.Event, q analytics.Query) []analytics.UtilisationRow {
	docs, appts := fold(events)
	out := []analytics.UtilisationRow{}
	for id, d := range docs {
		if !d.registered {
			continue
		}
		r := analytics.UtilisationRow{DoctorID: id, DoctorName: d.name}
		// Every slot of every version's grid on the dates, kept when that
		// version is the last one recorded at or before the slot's start.
		for i, v := range d.versions {
			g, err := v.s.Compile()
			if err != nil {
				continue
			}
			for day := q.From; !q.To.Before(day); day = day.AddDays(1) {
				for _, s := range g.Slots(day) {
					eff := -1
					for j, w := range d.versions {
						if !w.from.Truncate(time.Millisecond).After(s.Start) {
							eff = j
						}
					}
					if eff != i {
						continue
					}
					blocked := false
					for _, o := range d.off {
						if s.Start.Before(o[1]) && o[0].Before(s.End) {
							blocked = true
						}
					}
					if !blocked {
						r.OfferedSlots++
					}
				}
			}
		}
		for _, a := range appts {
			if a.doc == id && inRange(a.date(), q) &&
				(a.status == doctor.StatusConfirmed || a.status == doctor.StatusCompleted || a.status == doctor.StatusNoShow) {
				r.BookedSlots++
			}
		}
		if r.OfferedSlots > 0 {
			r.Ratio = math.Round(float64(r.BookedSlots)/float64(r.OfferedSlots)*1e4) / 1e4
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b analytics.UtilisationRow) int {
		return cmp.Or(cmp.Compare(a.DoctorName, b.DoctorName), cmp.Compare(a.DoctorID, b.DoctorID))
	})
	return out
}

// Histories is how many histories a run checks: def, or
// PRESCRIPTO_ANALYTICS_HISTORIES.
func Histories(t *testing.T, def int) int {
	v := os.Getenv("PRESCRIPTO_ANALYTICS_HISTORIES")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("PRESCRIPTO_ANALYTICS_HISTORIES=%q: want a positive number", v)
	}
	return n
}
