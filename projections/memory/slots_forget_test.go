package memory

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// clinic is a log made by the real aggregates deciding real commands on a
// clock that runs forward over two months across the autumn DST changes:
// bookings (held until paid for one doctor), payments that confirm a hold,
// holds that expire (recorded, taken over by another booking, or left to
// lapse), reschedules, cancellations, completions and no-shows, time off
// that cancels bookings, schedule and availability changes and erasures.
type clinic struct {
	rng    *rand.Rand
	now    time.Time
	docs   []*doctor.Doctor
	events []projections.Event
	pos    uint64
	n      int
}

var (
	admin  = domain.Actor{UserID: "admin", Role: domain.RoleAdmin}
	system = domain.Actor{UserID: "system", Role: domain.RoleSystem}
)

func newClinic(seed uint64) *clinic {
	c := &clinic{rng: rand.New(rand.NewPCG(seed, 11)), now: time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)}
	zones := []string{"America/New_York", "Europe/London", "Asia/Kolkata"}
	policies := []doctor.PaymentPolicy{doctor.PaymentRequired, doctor.PaymentOptional, doctor.PaymentNone}
	for i, z := range zones {
		d := doctor.New(fmt.Sprintf("doc-%d", i))
		c.must(d, d.Register(doctor.Profile{Name: "Dr " + z, Speciality: "General physician", Fees: 50000, Currency: "INR", Available: true}, c.now))
		c.must(d, d.SetSchedule(c.schedule(z, policies[i], 30)))
		c.docs = append(c.docs, d)
	}
	return c
}

func (c *clinic) schedule(zone string, p doctor.PaymentPolicy, slot int) doctor.Schedule {
	s := doctor.Schedule{Timezone: zone, SlotMinutes: slot, BookingWindowDays: 21, MinNoticeMinutes: 60, PaymentPolicy: p, HoldMinutes: 90, RefundCutoffHours: 24}
	for wd := 1; wd <= 7; wd++ {
		// 00:30-03:30 local: the hours a DST change moves or repeats.
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:30", End: "03:30"}, doctor.WeeklyHours{Weekday: wd, Start: "09:00", End: "13:00"})
	}
	return s
}

// must records d's changes as the log's next events; a refused command
// records nothing.
func (c *clinic) must(d *doctor.Doctor, err error) {
	if err != nil {
		d.ClearChanges()
		return
	}
	for _, e := range d.Changes() {
		c.pos += 1 + uint64(c.rng.IntN(3))
		c.events = append(c.events, projections.Event{Position: c.pos, Data: e, RecordedAt: c.now})
	}
	d.ClearChanges()
}

// step decides one random command and moves the clock on.
func (c *clinic) step() {
	c.n++
	c.now = c.now.Add(time.Duration(c.rng.IntN(40)) * time.Minute)
	d := c.docs[c.rng.IntN(len(c.docs))]
	live := d.LiveAppointments()
	pick := func() (doctor.Appointment, bool) {
		if len(live) == 0 {
			return doctor.Appointment{}, false
		}
		return live[c.rng.IntN(len(live))], true
	}
	freeSlot := func() (time.Time, bool) {
		g := d.Grid()
		day := g.DateIn(c.now).AddDays(c.rng.IntN(8))
		slots := d.FreeSlots(day, c.now)
		if len(slots) == 0 {
			return time.Time{}, false
		}
		return slots[c.rng.IntN(len(slots))].Start, true
	}
	switch k := c.rng.IntN(40); {
	case k < 16:
		if at, ok := freeSlot(); ok {
			pat := fmt.Sprintf("pat-%d", c.rng.IntN(6))
			c.must(d, d.Reserve(doctor.Reservation{AppointmentID: fmt.Sprintf("appt-%05d", c.n), PatientID: pat, PatientName: "Name of " + pat, Start: at}, c.now))
		}
	case k < 21: // pay: a held appointment is confirmed
		if a, ok := pick(); ok {
			by := domain.Actor{UserID: a.PatientID, Role: domain.RolePatient}
			if claim, err := d.RequestPaymentOrder(a.ID, by, c.now, time.Minute); err == nil {
				c.must(d, nil)
				if claim == doctor.OrderClaimed {
					c.must(d, d.CreatePaymentOrder(a.ID, doctor.Order{ID: "order-" + a.ID, Amount: a.Fees, Currency: a.Currency}, by))
				}
				c.must(d, d.CapturePayment(a.ID, "pay-"+a.ID, "order-"+a.ID, a.Fees, a.Currency, c.now))
			} else {
				d.ClearChanges()
			}
		}
	case k < 24: // the reconciler expires lapsed holds, sometimes
		for _, id := range d.ExpiredHolds(c.now) {
			if c.rng.IntN(2) == 0 {
				c.must(d, d.ExpireHold(id, c.now))
			}
		}
	case k < 27:
		if a, ok := pick(); ok {
			c.must(d, d.Cancel(a.ID, "reason of "+a.ID, admin, c.now))
		}
	case k < 30:
		if a, ok := pick(); ok {
			if at, ok := freeSlot(); ok {
				c.must(d, d.Reschedule(a.ID, at, admin, c.now))
			}
		}
	case k < 34: // close what started; leave some confirmed for ever
		for _, a := range live {
			switch c.rng.IntN(4) {
			case 0:
				c.must(d, d.Complete(a.ID, admin, c.now))
			case 1:
				c.must(d, d.MarkNoShow(a.ID, admin, c.now))
			}
		}
	case k < 35:
		from := c.now.Add(time.Duration(c.rng.IntN(96)) * time.Hour)
		c.must(d, d.AddTimeOff(fmt.Sprintf("off-%d", c.n), from, from.Add(time.Duration(1+c.rng.IntN(20))*time.Hour), "leave", c.rng.IntN(2) == 0, domain.RoleAdmin, c.now))
	case k < 36:
		g := d.Grid().Schedule()
		c.must(d, d.SetSchedule(c.schedule(g.Timezone, g.PaymentPolicy, []int{15, 30}[c.rng.IntN(2)])))
	case k < 37:
		p := d.Profile()
		p.Available = c.rng.IntN(3) > 0
		c.must(d, d.UpdateProfile(p))
	case k < 38:
		c.pos++
		c.events = append(c.events, projections.Event{Position: c.pos, Data: account.PersonalDataErased{AccountID: fmt.Sprintf("pat-%d", c.rng.IntN(6))}, RecordedAt: c.now})
	default:
		c.now = c.now.Add(time.Duration(c.rng.IntN(30)) * time.Hour) // a quiet day
	}
}

// slotAnswers are a model's answers for every doctor, over the days
// around now, at now and at instants after it (holds run out meanwhile).
func slotAnswers(t *testing.T, s *Slots, docs []*doctor.Doctor, now time.Time) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range docs {
		from := doctor.DateOf(now.UTC()).AddDays(-2)
		for _, later := range []time.Duration{0, 7 * time.Minute, 45 * time.Minute, 2 * time.Hour, 26 * time.Hour} {
			at := now.Add(later)
			a, err := s.FreeSlotsAnswer(context.Background(), d.ID(), from, 30, at)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s at %s", d.ID(), at.Format(time.RFC3339))] = fmt.Sprintf("%s holds [%s, %s)", a.JSON, a.HoldsFrom, a.HoldsUntil)
		}
	}
	return out
}

func applyAll(t *testing.T, s *Slots, events []projections.Event) {
	t.Helper()
	for _, e := range events {
		if err := s.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// compareAnswers fails unless got answers as want; it returns how many
// of the answers had a hold window, so that a test can tell it compared
// something.
func compareAnswers(t *testing.T, what string, got, want map[string]string) (holds int) {
	t.Helper()
	for k, w := range want {
		if !strings.HasSuffix(w, "holds [0001-01-01 00:00:00 +0000 UTC, 0001-01-01 00:00:00 +0000 UTC)") {
			holds++
		}
		if g := got[k]; g != w {
			t.Fatalf("%s: %s:\n got %s\nwant %s", what, k, g, w)
		}
	}
	return holds
}

// TestSlotsForgetEnded: the free-slots model, which drops what ended,
// answers every question (the slots, their JSON and the hold window) as a
// model that keeps the whole history, all along a history across DST
// changes, also when its state is saved while it applies (under -race),
// loaded and given the tail; and it keeps a fraction of the appointments.
func TestSlotsForgetEnded(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			c := newClinic(seed)
			slim, full := NewSlots(), newSlots(-1)
			applied, holds := 0, 0
			catchUp := func() {
				applyAll(t, slim, c.events[applied:])
				applyAll(t, full, c.events[applied:])
				applied = len(c.events)
			}
			for range 3000 {
				c.step()
				if c.n%150 == 0 {
					catchUp()
					holds += compareAnswers(t, fmt.Sprintf("step %d", c.n), slotAnswers(t, slim, c.docs, c.now), slotAnswers(t, full, c.docs, c.now))
				}
			}
			catchUp()
			want := slotAnswers(t, full, c.docs, c.now)
			compareAnswers(t, "end", slotAnswers(t, slim, c.docs, c.now), want)

			if holds == 0 {
				t.Error("no answer had a hold window")
			}
			kept, all := 0, 0
			for id := range slim.doctors {
				kept += slim.doctors[id].agg.AppointmentCount()
				all += full.doctors[id].agg.AppointmentCount()
			}
			if all < 500 || kept*10 > all {
				t.Errorf("the model kept %d of %d appointments", kept, all)
			}

			// Saved while applying the second half, loaded, given the tail.
			src := NewSlots()
			cut := len(c.events) / 2
			applyAll(t, src, c.events[:cut])
			pos, _ := src.Checkpoint(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				applyAll(t, src, c.events[cut:])
			}()
			var b bytes.Buffer
			if err := src.SaveState(&b); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			got := NewSlots()
			if err := got.LoadState(b.Bytes(), pos); err != nil {
				t.Fatal(err)
			}
			for _, e := range c.events {
				if e.Position > pos {
					if err := got.Apply(context.Background(), e); err != nil {
						t.Fatal(err)
					}
				}
			}
			compareAnswers(t, "loaded", slotAnswers(t, got, c.docs, c.now), want)
			var full2 bytes.Buffer
			if err := full.SaveState(&full2); err != nil {
				t.Fatal(err)
			}
			var slim2 bytes.Buffer
			if err := got.SaveState(&slim2); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d events, %d of %d appointments kept, state %d bytes (whole history: %d)", len(c.events), kept, all, slim2.Len(), full2.Len())
		})
	}
}
