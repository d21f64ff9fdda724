package memory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
	"github.com/prescripto/prescripto/projections/memory"
)

// models is one set of the in-memory read models.
type models struct {
	dir   *memory.Directory
	slots *memory.Slots
	apps  *memory.Appointments
	an    *memory.Analytics
}

func newModels() models {
	return models{memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments(), memory.NewAnalytics()}
}

func (m models) all() []projections.Persistent {
	return []projections.Persistent{m.dir, m.slots, m.apps, m.an}
}

func (m models) apply(t *testing.T, events []projections.Event) {
	t.Helper()
	for _, e := range events {
		for _, p := range m.all() {
			if err := p.Apply(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// history is a random log of three doctors' bookings: reservations,
// payments, cancellations with reasons, reschedules, profile and schedule
// changes and erasures, at increasing positions.
func history(seed uint64, n int) []projections.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	start := time.Date(2026, 6, 1, 3, 30, 0, 0, time.UTC) // Monday 09:00 in Kolkata
	var out []projections.Event
	pos := uint64(0)
	add := func(d domain.Event) {
		pos += 1 + uint64(rng.IntN(3)) // other streams interleave
		out = append(out, projections.Event{Position: pos, Data: d, RecordedAt: start.Add(time.Duration(pos) * time.Second)})
	}
	sched := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 60, PaymentPolicy: doctor.PaymentOptional}
	for wd := 1; wd <= 7; wd++ {
		sched.Weekly = append(sched.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "09:00", End: "17:00"})
	}
	docs := []string{"doc-a", "doc-b", "doc-c"}
	for i, d := range docs {
		add(doctor.DoctorRegistered{DoctorID: d, Profile: doctor.Profile{Name: "Dr. " + d, Speciality: []string{"Cardiology", "Dermatology"}[i%2], Fees: 50000, Currency: "INR", Available: true}})
		add(doctor.ScheduleSet{DoctorID: d, Schedule: sched})
	}
	pats := []string{"pat-1", "pat-2", "pat-3", "pat-4", "pat-5"}
	for _, p := range pats {
		add(account.Registered{AccountID: p, Role: domain.RolePatient, Name: "Name of " + p})
	}
	type appt struct {
		doc, pat, id string
		start        time.Time
		live         bool
	}
	var appts []*appt
	taken := map[string]bool{}
	free := func(doc string) time.Time {
		for {
			at := start.Add(time.Duration(24*rng.IntN(50)+rng.IntN(16)/2)*time.Hour + time.Duration(30*(rng.IntN(2)))*time.Minute)
			if k := doc + at.String(); !taken[k] {
				taken[k] = true
				return at
			}
		}
	}
	for len(out) < n {
		switch k := rng.IntN(20); {
		case k < 10 || len(appts) == 0:
			a := &appt{doc: docs[rng.IntN(len(docs))], pat: pats[rng.IntN(len(pats))], id: fmt.Sprintf("appt-%04d", len(appts)), live: true}
			a.start = free(a.doc)
			appts = append(appts, a)
			add(doctor.SlotReserved{DoctorID: a.doc, AppointmentID: a.id, PatientID: a.pat, PatientName: "Name of " + a.pat,
				Start: a.start, End: a.start.Add(30 * time.Minute), Status: doctor.StatusConfirmed, Fees: 50000, Currency: "INR",
				PaymentStatus: doctor.PaymentPending, ReservedAt: start})
		case k < 13:
			a := appts[rng.IntN(len(appts))]
			if a.live {
				add(doctor.PaymentOrderCreated{DoctorID: a.doc, AppointmentID: a.id, OrderID: "order-" + a.id, Amount: 50000, Currency: "INR"})
				add(doctor.PaymentCaptured{DoctorID: a.doc, AppointmentID: a.id, PaymentID: "pay-" + a.id, OrderID: "order-" + a.id, Amount: 50000, Currency: "INR"})
			}
		case k < 15:
			a := appts[rng.IntN(len(appts))]
			if a.live {
				a.live = false
				add(doctor.AppointmentCancelled{DoctorID: a.doc, AppointmentID: a.id, PatientID: a.pat, Start: a.start, End: a.start.Add(30 * time.Minute),
					Reason: "reason of " + a.id, CancelledBy: domain.RolePatient})
			}
		case k < 17:
			a := appts[rng.IntN(len(appts))]
			if a.live {
				to := free(a.doc)
				add(doctor.AppointmentRescheduled{DoctorID: a.doc, AppointmentID: a.id, PreviousStart: a.start, PreviousEnd: a.start.Add(30 * time.Minute), Start: to, End: to.Add(30 * time.Minute)})
				a.start = to
			}
		case k < 18:
			d := docs[rng.IntN(len(docs))]
			add(doctor.ProfileUpdated{DoctorID: d, Profile: doctor.Profile{Name: fmt.Sprintf("Dr. %s (%d)", d, len(out)), Speciality: "Neurology", Fees: 60000, Currency: "INR", Available: rng.IntN(2) == 0}})
		case k < 19:
			s := sched
			s.SlotMinutes = []int{15, 30}[rng.IntN(2)]
			add(doctor.ScheduleSet{DoctorID: docs[rng.IntN(len(docs))], Schedule: s})
		default:
			add(account.PersonalDataErased{AccountID: pats[rng.IntN(len(pats))]})
		}
	}
	return out
}

// answers is everything the models answer about the history, as JSON.
func answers(t *testing.T, m models) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	put := func(k string, v any, err error) {
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	docs, err := m.dir.Doctors(ctx, projections.DoctorFilter{})
	put("doctors", docs, err)
	sp, err := m.dir.Specialities(ctx)
	put("specialities", sp, err)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []string{"doc-a", "doc-b", "doc-c"} {
		fs, err := m.slots.FreeSlots(ctx, d, doctor.Date{Year: 2026, Month: 6, Day: 1}, 60, now)
		put("slots "+d, fs, err)
		dd, err := m.apps.DoctorDashboard(ctx, d)
		put("dashboard "+d, dd, err)
		pages(t, m, projections.AppointmentQuery{DoctorID: d, Limit: 7}, out)
	}
	for _, p := range []string{"pat-1", "pat-2", "pat-3", "pat-4", "pat-5"} {
		pages(t, m, projections.AppointmentQuery{PatientID: p, Limit: 5}, out)
	}
	pages(t, m, projections.AppointmentQuery{Limit: 200}, out)
	ad, err := m.apps.AdminDashboard(ctx)
	put("admin", ad, err)
	for cursor, i := "", 0; i == 0 || cursor != ""; i++ {
		pp, err := m.apps.Payments(ctx, projections.PaymentQuery{Limit: 9, Cursor: cursor})
		put(fmt.Sprintf("payments %d", i), pp, err)
		cursor = pp.NextCursor
	}
	analyticsAnswers(t, m.an, doctor.Date{Year: 2026, Month: 5, Day: 25}, doctor.Date{Year: 2026, Month: 8, Day: 1}, put)
	for _, p := range m.all() {
		c, _ := p.Checkpoint(ctx)
		out["checkpoint "+p.Name()] = fmt.Sprint(c)
	}
	return out
}

// analyticsAnswers puts the analytics model's answers for [from, to]
// under every grouping.
func analyticsAnswers(t *testing.T, m *memory.Analytics, from, to doctor.Date, put func(string, any, error)) {
	t.Helper()
	for _, g := range []analytics.GroupBy{analytics.ByDay, analytics.ByDoctor, analytics.BySpeciality} {
		q := analytics.Query{From: from, To: to, GroupBy: g}
		b, err := m.Bookings(context.Background(), q)
		put("bookings by "+string(g), b, err)
		u, err := m.Utilisation(context.Background(), q)
		put("utilisation by "+string(g), u, err)
	}
}

func pages(t *testing.T, m models, q projections.AppointmentQuery, out map[string]string) {
	t.Helper()
	for i := 0; i == 0 || q.Cursor != ""; i++ {
		pg, err := m.apps.Appointments(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range pg.Appointments {
			b, _ := json.Marshal(a)
			out["appointment "+a.ID] = string(b)
		}
		b, _ := json.Marshal(pg)
		out[fmt.Sprintf("page %s/%s %d", q.DoctorID, q.PatientID, i)] = string(b)
		q.Cursor = pg.NextCursor
	}
}

// TestStateSavedWhileApplying: models whose state is saved while the
// projector applies events (under -race), loaded into new models and given
// the log after the saved checkpoint (much of which the state already
// holds), answer every question as models that applied the whole log once.
func TestStateSavedWhileApplying(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			events := history(seed, 3000)
			want := newModels()
			want.apply(t, events)
			wantAnswers := answers(t, want)

			src := newModels()
			cut := len(events) / 3
			src.apply(t, events[:cut])
			saved := make([][]byte, len(src.all()))
			poss := make([]uint64, len(src.all()))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the projector goes on meanwhile
				defer wg.Done()
				src.apply(t, events[cut:])
			}()
			for i, p := range src.all() {
				poss[i], _ = p.Checkpoint(context.Background())
				var b bytes.Buffer
				if err := p.SaveState(&b); err != nil {
					t.Error(err)
				}
				saved[i] = b.Bytes()
			}
			wg.Wait()

			got := newModels()
			for i, p := range got.all() {
				if err := p.LoadState(saved[i], poss[i]); err != nil {
					t.Fatalf("%s: %v", p.Name(), err)
				}
			}
			// The tail of each model from its own checkpoint.
			for i, p := range got.all() {
				for _, e := range events {
					if e.Position > poss[i] {
						if err := p.Apply(context.Background(), e); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			gotAnswers := answers(t, got)
			for k, w := range wantAnswers {
				if g := gotAnswers[k]; g != w {
					t.Errorf("%s:\n got %s\nwant %s", k, g, w)
				}
			}
			if len(gotAnswers) != len(wantAnswers) {
				t.Errorf("%d answers, want %d", len(gotAnswers), len(wantAnswers))
			}
			if t.Failed() {
				t.Logf("saved at %v of %d", poss, events[len(events)-1].Position)
			}
		})
	}
}

// A state cut short or damaged anywhere is refused (an error, never a
// panic), so that the model replays the log instead.
func TestStateDamagedIsRefused(t *testing.T) {
	t.Parallel()
	events := history(42, 400)
	src := newModels()
	src.apply(t, events)
	for _, p := range src.all() {
		var b bytes.Buffer
		if err := p.SaveState(&b); err != nil {
			t.Fatal(err)
		}
		state := b.Bytes()
		for n := 0; n < len(state); n += 1 + len(state)/200 {
			fresh := map[string]projections.Persistent{
				"doctors": memory.NewDirectory(), "free_slots": memory.NewSlots(), "appointments": memory.NewAppointments(), "analytics": memory.NewAnalytics(),
			}[p.Name()]
			if err := fresh.LoadState(state[:n], 1); err == nil && n < len(state) {
				t.Errorf("%s: a state cut at %d of %d bytes loaded", p.Name(), n, len(state))
			}
		}
	}
}
