package projections_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

// t0 is the fake clock's start: Tuesday 2026-12-01 08:30 in Asia/Kolkata.
var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// waitLimit bounds every wait: a failure guard, never a synchronisation.
const waitLimit = 60 * time.Second

var (
	admin  = commands.Meta{Actor: domain.Actor{UserID: "admin-1", Role: domain.RoleAdmin}}
	system = commands.Meta{Actor: domain.System}
	names  = []string{"doctors", "free_slots", "appointments"}
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// world is the write side on a real embedded store.
type world struct {
	store eventstore.Store
	reg   *domain.Registry
	clock *fakeClock
	h     *commands.Handler

	mu       sync.Mutex
	doctors  map[string]commands.DoctorResult
	patients map[string]string // id -> name
	appts    map[string]string // appointment id -> doctor id
}

func newWorld(t *testing.T) *world {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	w := &world{store: s, clock: &fakeClock{now: t0}, doctors: map[string]commands.DoctorResult{}, patients: map[string]string{}, appts: map[string]string{}}
	if w.reg, err = catalog.NewRegistry(); err != nil {
		t.Fatal(err)
	}
	w.h, err = commands.New(commands.Config{Store: s, Registry: w.reg, Now: w.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}, PaymentsEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func everyDay(zone string, policy doctor.PaymentPolicy) *doctor.Schedule {
	s := &doctor.Schedule{Timezone: zone, SlotMinutes: 30, BookingWindowDays: 30, PaymentPolicy: policy}
	if policy == doctor.PaymentRequired {
		s.HoldMinutes = 15
	}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "10:00", End: "21:00"})
	}
	return s
}

func (w *world) registerDoctor(t *testing.T, name, speciality, currency string, s *doctor.Schedule) string {
	t.Helper()
	res, err := w.h.RegisterDoctor(context.Background(), admin, commands.RegisterDoctor{
		Profile:  doctor.Profile{Name: name, Speciality: speciality, Degree: "MBBS", Fees: 50000, Currency: currency, Available: true},
		Email:    fmt.Sprintf("doctor-%d@clinic.example", len(w.doctors)),
		Password: "s3cret-pass", Schedule: s,
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	w.mu.Lock()
	w.doctors[res.ID] = res
	w.mu.Unlock()
	return res.ID
}

func (w *world) registerPatient(t *testing.T, name string) string {
	t.Helper()
	res, err := w.h.RegisterPatient(context.Background(), commands.Meta{}, name, fmt.Sprintf("patient-%d@mail.example", len(w.patients)), "patient-pass")
	if err != nil {
		t.Fatalf("register patient %s: %v", name, err)
	}
	w.mu.Lock()
	w.patients[res.ID] = name
	w.mu.Unlock()
	return res.ID
}

func patientMeta(id string) commands.Meta {
	return commands.Meta{Actor: domain.Actor{UserID: id, Role: domain.RolePatient}}
}

// slots lists the first n grid slots of a doctor starting after now.
func (w *world) slots(t testing.TB, docID string, n int) []time.Time {
	t.Helper()
	w.mu.Lock()
	s := w.doctors[docID].Schedule
	w.mu.Unlock()
	g, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	now := w.clock.Now()
	var out []time.Time
	for day := g.DateIn(now); len(out) < n; day = day.AddDays(1) {
		for _, sl := range g.Slots(day) {
			if sl.Start.After(now) && len(out) < n {
				out = append(out, sl.Start)
			}
		}
	}
	return out
}

func (w *world) book(ctx context.Context, docID, patientID string, start time.Time) (commands.AppointmentResult, error) {
	w.mu.Lock()
	name := w.patients[patientID]
	w.mu.Unlock()
	res, err := w.h.ReserveSlot(ctx, patientMeta(patientID), commands.ReserveSlot{DoctorID: docID, Start: start, PatientName: name})
	if err == nil {
		w.mu.Lock()
		w.appts[res.Appointment.ID] = docID
		w.mu.Unlock()
	}
	return res, err
}

func (w *world) mustBook(t *testing.T, docID, patientID string, start time.Time) string {
	t.Helper()
	res, err := w.book(context.Background(), docID, patientID, start)
	if err != nil {
		t.Fatalf("book %s at %v: %v", docID, start, err)
	}
	return res.Appointment.ID
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// scenario runs every kind of command: bookings under the three payment
// policies, cancel, reschedule, payments, a hold expiry, refunds (failed,
// and processed), a
// profile change, time off that cancels a booking, completion and no-show.
// It advances the clock.
func scenario(t *testing.T, w *world) {
	t.Helper()
	ctx := context.Background()
	kavya := w.registerDoctor(t, "Dr. Kavya Iyer", "General physician", "INR", everyDay("Asia/Kolkata", doctor.PaymentNone))
	rohan := w.registerDoctor(t, "Dr. Rohan Das", "Dermatology", "INR", everyDay("Asia/Kolkata", doctor.PaymentRequired))
	emma := w.registerDoctor(t, "Dr. Emma Stone", "Pediatrics", "USD", everyDay("America/New_York", doctor.PaymentOptional))
	var pats []string
	for _, n := range []string{"Priya Shah", "Rahul Verma", "Sara Khan", "Arjun Mehta"} {
		pats = append(pats, w.registerPatient(t, n))
	}
	ks := w.slots(t, kavya, 12)
	var k []string
	for i := range 6 {
		k = append(k, w.mustBook(t, kavya, pats[i%4], ks[i]))
	}
	must[commands.AppointmentResult](t, "cancel")(w.h.CancelAppointment(ctx, patientMeta(pats[0]), commands.CancelAppointment{DoctorID: kavya, AppointmentID: k[0], Reason: "feeling better"}))
	must[commands.AppointmentResult](t, "reschedule")(w.h.RescheduleAppointment(ctx, patientMeta(pats[1]), commands.RescheduleAppointment{DoctorID: kavya, AppointmentID: k[1], Start: ks[10]}))

	rs := w.slots(t, rohan, 3)
	paid := w.mustBook(t, rohan, pats[2], rs[0])
	unpaid := w.mustBook(t, rohan, pats[3], rs[1])
	must[commands.AppointmentResult](t, "order")(w.h.CreatePaymentOrder(ctx, patientMeta(pats[2]), commands.CreatePaymentOrder{DoctorID: rohan, AppointmentID: paid, Order: doctor.Order{ID: "order_1", Amount: 50000, Currency: "INR"}}))
	must[commands.AppointmentResult](t, "capture")(w.h.CapturePayment(ctx, system, commands.CapturePayment{DoctorID: rohan, AppointmentID: paid, PaymentID: "pay_1", OrderID: "order_1", Amount: 50000, Currency: "INR"}))

	es := w.slots(t, emma, 3)
	e0 := w.mustBook(t, emma, pats[0], es[0])
	w.mustBook(t, emma, pats[1], es[1])
	must[commands.AppointmentResult](t, "order emma")(w.h.CreatePaymentOrder(ctx, system, commands.CreatePaymentOrder{DoctorID: emma, AppointmentID: e0, Order: doctor.Order{ID: "order_e0", Amount: 50000, Currency: "USD"}}))
	must[commands.AppointmentResult](t, "capture emma")(w.h.CapturePayment(ctx, system, commands.CapturePayment{DoctorID: emma, AppointmentID: e0, PaymentID: "pay_e0", OrderID: "order_e0", Amount: 50000, Currency: "USD"}))
	must[commands.AppointmentResult](t, "cancel paid")(w.h.CancelAppointment(ctx, admin, commands.CancelAppointment{DoctorID: emma, AppointmentID: e0, Reason: "clinic closed"}))
	must[commands.AppointmentResult](t, "refund")(w.h.IssueRefund(ctx, system, commands.IssueRefund{DoctorID: emma, AppointmentID: e0, PaymentID: "pay_e0", RefundID: "rfnd_e0", Amount: 50000}))
	must[commands.AppointmentResult](t, "refund failed")(w.h.FailRefund(ctx, system, commands.FailRefund{DoctorID: emma, AppointmentID: e0, RefundID: "rfnd_e0", Reason: "bank rejected"}))
	// Processed under a refund id the log never saw issued: issued and processed at once.
	must[commands.AppointmentResult](t, "refund processed")(w.h.ProcessRefund(ctx, system, commands.ProcessRefund{DoctorID: emma, AppointmentID: e0, PaymentID: "pay_e0", RefundID: "rfnd_e0b", Amount: 50000}))

	name := "Dr. Kavya Iyer-Rao"
	must[commands.DoctorResult](t, "rename")(w.h.UpdateDoctorProfile(ctx, admin, commands.UpdateDoctorProfile{DoctorID: kavya, Patch: commands.ProfilePatch{Name: &name}}))
	off := must[commands.TimeOffResult](t, "time off")(w.h.AddTimeOff(ctx, admin, commands.AddTimeOff{DoctorID: kavya, From: ks[3], To: ks[3].Add(30 * time.Minute), Reason: "errand", CancelBookings: true}))
	if !slices.Equal(off.Cancelled, []string{k[3]}) {
		t.Fatalf("time off cancelled %v, want %v", off.Cancelled, k[3])
	}

	w.clock.Set(t0.Add(20 * time.Minute)) // the hold of 15 minutes ran out
	must[commands.AppointmentResult](t, "expire")(w.h.ExpireHold(ctx, system, commands.ExpireHold{DoctorID: rohan, AppointmentID: unpaid}))

	w.clock.Set(ks[4].Add(time.Minute)) // k[2] and k[4] have started
	kavyaMeta := commands.Meta{Actor: domain.Actor{UserID: kavya, Role: domain.RoleDoctor}}
	must[commands.AppointmentResult](t, "complete")(w.h.CompleteAppointment(ctx, kavyaMeta, commands.CompleteAppointment{DoctorID: kavya, AppointmentID: k[2]}))
	must[commands.AppointmentResult](t, "no-show")(w.h.MarkNoShow(ctx, kavyaMeta, commands.MarkNoShow{DoctorID: kavya, AppointmentID: k[4]}))
}

// traffic books n more appointments over the doctors, from the skip-th
// free grid slot on, and cancels every third. It is safe to run beside
// other traffic with a different skip.
func traffic(t *testing.T, w *world, skip, n int) {
	t.Helper()
	ctx := context.Background()
	w.mu.Lock()
	docs := slices.Sorted(maps.Keys(w.doctors))
	pats := slices.Sorted(maps.Keys(w.patients))
	w.mu.Unlock()
	for i := range n {
		doc := docs[i%len(docs)]
		slots := w.slots(t, doc, skip+n+40)
		var res commands.AppointmentResult
		var err error
		for j := skip + i; j < len(slots); j++ { // past a slot an earlier command took
			if res, err = w.book(ctx, doc, pats[i%len(pats)], slots[j]); !errors.Is(err, doctor.ErrSlotUnavailable) && !errors.Is(err, doctor.ErrDoctorTimeOff) {
				break
			}
		}
		if err != nil {
			t.Errorf("traffic booking %d: %v", i, err)
			return
		}
		if i%3 == 2 {
			if _, err := w.h.CancelAppointment(ctx, admin, commands.CancelAppointment{DoctorID: doc, AppointmentID: res.Appointment.ID}); err != nil {
				t.Errorf("traffic cancel %d: %v", i, err)
				return
			}
		}
	}
}

// appendUnknown writes an event of a type this version does not know.
func (w *world) appendUnknown(t *testing.T) uint64 {
	t.Helper()
	res, err := w.store.Append(context.Background(), "future-"+uuid.NewString(), eventstore.NoStream, []eventstore.EventData{{
		ID: uuid.New(), Type: "future.Thing.v1", Data: []byte(`{"answer":42}`), Metadata: []byte(`{"actor":{"userId":"v2","role":"system"}}`),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

func (w *world) head(t testing.TB) uint64 {
	t.Helper()
	h, err := w.store.HeadPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fold reads a doctor's stream afresh from the store.
func (w *world) fold(t testing.TB, id string) *doctor.Doctor {
	t.Helper()
	recs, err := w.store.ReadStream(context.Background(), doctor.StreamID(id), 0, eventstore.Forward, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := doctor.New(id)
	for _, r := range recs {
		ev, err := w.reg.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		d.Load(ev)
	}
	return d
}

func (w *world) probe() readmodeltest.Probe {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	return readmodeltest.Probe{
		DoctorIDs: slices.Sorted(maps.Keys(w.doctors)), PatientIDs: slices.Sorted(maps.Keys(w.patients)), AppointmentIDs: slices.Sorted(maps.Keys(w.appts)),
		From: doctor.DateOf(now.Add(-24 * time.Hour)), Days: 33, Now: now,
	}
}

// ---- the runner ----

type runner struct {
	*projections.Runner
	dir   *projections.Live[*memory.Directory]
	slots *projections.Live[*memory.Slots]
	apps  *projections.Live[*memory.Appointments]
	stop  func()
}

// runInBackground runs r until the returned stop (also registered as a
// cleanup) and waits until it is ready; after, if set, runs once it stopped.
func runInBackground(t *testing.T, r *projections.Runner, after func()) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var runErr error
	go func() {
		defer close(finished)
		runErr = r.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-finished:
				if runErr != nil {
					t.Errorf("runner stopped with %v", runErr)
				}
			case <-time.After(waitLimit):
				t.Error("the runner did not stop")
			}
			if after != nil {
				after()
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-r.Ready():
	case <-finished:
		t.Fatalf("runner ended before it was ready: %v", runErr)
	case <-time.After(waitLimit):
		t.Fatal("runner not ready")
	}
	return stop
}

func startRunner(t *testing.T, w *world) *runner {
	t.Helper()
	return startRunnerWith(t, w, memory.NewDirectory, memory.NewSlots, memory.NewAppointments)
}

func startRunnerWith(t *testing.T, w *world, dir func() *memory.Directory, slots func() *memory.Slots, apps func() *memory.Appointments) *runner {
	t.Helper()
	return startRunnerThrough(t, w, nil, dir, slots, apps)
}

// startRunnerThrough starts a runner whose forwarder publishes through
// wrap(the transport's publisher) when wrap is not nil.
func startRunnerThrough(t *testing.T, w *world, wrap func(message.Publisher) message.Publisher, dir func() *memory.Directory, slots func() *memory.Slots, apps func() *memory.Appointments) *runner {
	t.Helper()
	rn := &runner{dir: projections.NewLive(dir), slots: projections.NewLive(slots), apps: projections.NewLive(apps)}
	pub, sub := projections.NewGoChannel(zerolog.Nop())
	if wrap != nil {
		pub = wrap(pub)
	}
	r, err := projections.NewRunner(projections.RunnerConfig{
		Store: w.store, Registry: w.reg, Projections: []projections.Runnable{rn.dir, rn.slots, rn.apps},
		Publisher: pub, Subscriber: sub, Logger: zerolog.Nop(), Forward: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rn.Runner = r
	rn.stop = runInBackground(t, r, nil)
	return rn
}

// catchUp waits until every projection has seen the head of the log.
func (rn *runner) catchUp(t *testing.T, w *world) uint64 {
	t.Helper()
	head := w.head(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, n := range names {
		if err := rn.WaitFor(ctx, n, head); err != nil {
			st, _ := rn.Statuses(context.Background())
			t.Fatalf("%s did not reach %d: %v (statuses %+v)", n, head, err, st)
		}
	}
	return head
}

func (rn *runner) models() readmodeltest.Models {
	return readmodeltest.Models{
		Directory: projections.LiveDirectory[*memory.Directory]{L: rn.dir}, Slots: projections.LiveSlots[*memory.Slots]{L: rn.slots}, Appointments: projections.LiveAppointments[*memory.Appointments]{L: rn.apps}, Dashboards: projections.LiveAppointments[*memory.Appointments]{L: rn.apps}, Payments: projections.LiveAppointments[*memory.Appointments]{L: rn.apps},
		Projections: []projections.Projection{rn.dir, rn.slots, rn.apps},
	}
}

func (rn *runner) expectCaughtUp(t *testing.T, head uint64) {
	t.Helper()
	st, err := rn.Statuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 {
		t.Fatalf("statuses %+v", st)
	}
	for _, s := range st {
		if s.Lag != 0 || s.Position != head || s.Status != "running" || s.Error != "" {
			t.Errorf("status %+v; want position %d, lag 0, running, no error", s, head)
		}
	}
}

// replay builds fresh read models from the whole log, skipping unknown types.
func replay(t *testing.T, w *world) readmodeltest.Models {
	t.Helper()
	ctx := context.Background()
	dir, slots, apps := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
	ps := []projections.Projection{dir, slots, apps}
	var after uint64
	for {
		recs, err := w.store.ReadAll(ctx, after, 250)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			after = r.Position
			e, err := projections.Decode(w.reg, r)
			if errors.Is(err, domain.ErrUnknownEventType) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if err := p.Apply(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return readmodeltest.Models{Directory: dir, Slots: slots, Appointments: apps, Dashboards: apps, Payments: apps, Projections: ps}
}

// agreeWithWriteSide compares the read models with the aggregates folded
// afresh from their streams.
func agreeWithWriteSide(t *testing.T, w *world, m readmodeltest.Models) {
	t.Helper()
	ctx := context.Background()
	now := w.clock.Now()
	w.mu.Lock()
	docIDs := slices.Sorted(maps.Keys(w.doctors))
	appts := make(map[string]string, len(w.appts))
	for k, v := range w.appts {
		appts[k] = v
	}
	w.mu.Unlock()
	folded := map[string]*doctor.Doctor{}
	total := 0
	for _, id := range docIDs {
		agg := w.fold(t, id)
		folded[id] = agg
		total += agg.AppointmentCount()
		p := agg.Profile()
		d, err := m.Directory.Doctor(ctx, id)
		if err != nil {
			t.Fatalf("Doctor(%s): %v", id, err)
		}
		if d.Name != p.Name || d.Speciality != p.Speciality || d.Fees != p.Fees || d.Currency != p.Currency || d.Available != p.Available ||
			d.Timezone != agg.Grid().Schedule().Timezone {
			t.Errorf("directory entry %+v disagrees with profile %+v / zone %s", d, p, agg.Grid().Schedule().Timezone)
		}
		from := agg.Grid().DateIn(now).AddDays(-1)
		const days = 33 // yesterday to beyond the 30-day window
		fs, err := m.Slots.FreeSlots(ctx, id, from, days, now)
		if err != nil {
			t.Fatalf("FreeSlots(%s): %v", id, err)
		}
		if len(fs.Days) != days {
			t.Fatalf("FreeSlots(%s): %d days", id, len(fs.Days))
		}
		nonEmpty := 0
		for i, day := range fs.Days {
			want := agg.FreeSlots(from.AddDays(i), now)
			if !slices.EqualFunc(day.Slots, want, func(a, b doctor.Slot) bool { return a.Start.Equal(b.Start) && a.End.Equal(b.End) }) {
				t.Errorf("free slots of %s on %s:\n read model %v\n aggregate  %v", id, day.Date, day.Slots, want)
			}
			if len(want) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty == 0 {
			t.Errorf("%s has no free slot at all: the comparison proves nothing", id)
		}
		dd, err := m.Dashboards.DoctorDashboard(ctx, id)
		if err != nil || dd.Appointments != agg.AppointmentCount() {
			t.Errorf("dashboard of %s: %d appointments (%v), aggregate has %d", id, dd.Appointments, err, agg.AppointmentCount())
		}
	}
	for id, docID := range appts {
		want, ok := folded[docID].Appointment(id)
		if !ok {
			t.Fatalf("appointment %s not in the stream of %s", id, docID)
		}
		got, err := m.Appointments.Appointment(ctx, id)
		if err != nil {
			t.Errorf("Appointment(%s): %v", id, err)
			continue
		}
		wantView := projections.Appointment{
			ID: id, DoctorID: docID, DoctorName: folded[docID].Profile().Name, PatientID: want.PatientID, PatientName: want.PatientName,
			Start: want.Start, End: want.End, Timezone: folded[docID].Grid().Schedule().Timezone, Status: string(want.Status), Fees: want.Fees, Currency: want.Currency,
			Payment: projections.Payment{
				Status: string(want.Payment.Status), OrderID: want.Payment.OrderID, PaymentID: want.Payment.PaymentID,
				Amount: want.Payment.Amount, RefundedAmount: want.Payment.RefundedAmount,
			},
			CreatedAt: want.CreatedAt, CancelReason: want.CancelReason,
		}
		if want.Status == doctor.StatusHeld { // the aggregate keeps the expiry of a hold that ended
			wantView.HoldExpiresAt = &want.HoldExpiresAt
		}
		if !sameAppointment(got, wantView) {
			t.Errorf("appointment %s:\n read model %+v\n aggregate  %+v", id, got, wantView)
		}
	}
	var listed []string
	q := projections.AppointmentQuery{Limit: projections.MaxPageSize}
	for {
		page, err := m.Appointments.Appointments(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Appointments {
			listed = append(listed, a.ID)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	if len(listed) != total || len(listed) != len(appts) {
		t.Errorf("read model lists %d appointments; the streams hold %d, the commands made %d", len(listed), total, len(appts))
	}
	slices.Sort(listed)
	if len(slices.Compact(listed)) != len(listed) {
		t.Error("an appointment is listed twice")
	}
}

func sameAppointment(got, want projections.Appointment) bool {
	if (got.HoldExpiresAt == nil) != (want.HoldExpiresAt == nil) || (got.HoldExpiresAt != nil && !got.HoldExpiresAt.Equal(*want.HoldExpiresAt)) {
		return false
	}
	norm := func(a projections.Appointment) projections.Appointment {
		a.Start, a.End, a.CreatedAt, a.Position, a.HoldExpiresAt = a.Start.UTC(), a.End.UTC(), a.CreatedAt.UTC(), 0, nil
		return a
	}
	return norm(got) == norm(want)
}

// ---- tests ----

func TestRunnerReadModelsAgreeWithWriteSide(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scenario(t, w) // before the runner starts: caught up from the log
	rn := startRunner(t, w)
	traffic(t, w, 20, 15) // while it runs: followed live
	head := rn.catchUp(t, w)
	agreeWithWriteSide(t, w, rn.models())
	rn.expectCaughtUp(t, head)
	for _, l := range []projections.Projection{rn.dir, rn.slots, rn.apps} {
		if c, err := l.Checkpoint(context.Background()); err != nil || c != head {
			t.Errorf("%s: checkpoint %d (%v), want %d", l.Name(), c, err, head)
		}
	}
	a, err := rn.apps.Current().AdminDashboard(context.Background())
	if err != nil || a.Doctors != 3 || a.Patients != 4 {
		t.Errorf("admin dashboard %+v, %v: want 3 doctors and 4 patients", a, err)
	}
	// Read-your-writes: a command's position is what a reader waits for.
	w.mu.Lock()
	var doc string
	for id := range w.doctors {
		doc = id
		break
	}
	w.mu.Unlock()
	pat := w.registerPatient(t, "Late Comer")
	res, err := w.book(context.Background(), doc, pat, w.slots(t, doc, 200)[199])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rn.WaitFor(ctx, "appointments", res.Position); err != nil {
		t.Fatal(err)
	}
	if got, err := rn.apps.Current().Appointment(ctx, res.Appointment.ID); err != nil || got.PatientName != "Late Comer" {
		t.Errorf("after WaitFor(%d): %+v, %v", res.Position, got, err)
	}
	if err := rn.WaitFor(ctx, "nope", 1); err == nil {
		t.Error("WaitFor of an unknown projection: no error")
	}
}

func TestRunnerSkipsUnknownEventTypes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.appendUnknown(t) // the very first event
	scenario(t, w)
	w.appendUnknown(t)
	rn := startRunner(t, w)
	traffic(t, w, 20, 6)
	last := w.appendUnknown(t) // the very last event
	head := rn.catchUp(t, w)
	if head != last {
		t.Fatalf("head %d, want the unknown event at %d", head, last)
	}
	rn.expectCaughtUp(t, head)
	agreeWithWriteSide(t, w, rn.models())
	readmodeltest.SameSnapshot(t, "live vs replay", readmodeltest.Snapshot(context.Background(), t, rn.models(), w.probe()),
		readmodeltest.Snapshot(context.Background(), t, replay(t, w), w.probe()))
	// A rebuild skips them as well.
	if err := rn.apps.Rebuild(context.Background(), w.store, w.reg); err != nil {
		t.Fatalf("rebuild over unknown events: %v", err)
	}
	rn.expectCaughtUp(t, head)
	agreeWithWriteSide(t, w, rn.models())
	// And so does a restart, which starts from the projections' checkpoints.
	rn.stop()
	rn2 := startRunner(t, w)
	rn2.catchUp(t, w)
	rn2.expectCaughtUp(t, head)
	agreeWithWriteSide(t, w, rn2.models())
}

func TestRunnerRebuildEqualsIncremental(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scenario(t, w)
	traffic(t, w, 0, 60)
	rn := startRunner(t, w)
	traffic(t, w, 100, 20)
	rn.catchUp(t, w)
	m := rn.models()
	ctx := context.Background()

	// Readers keep asking while the rebuilds run: never an error, never an
	// empty directory, never a miss on what existed before.
	w.mu.Lock()
	knownDoc := slices.Sorted(maps.Keys(w.doctors))[0]
	knownAppt := slices.Sorted(maps.Keys(w.appts))[0]
	w.mu.Unlock()
	stopReads := make(chan struct{})
	var reads atomic.Int64
	var readers sync.WaitGroup
	for r := range 2 { // two, so that some read overlaps each step of the rebuilds
		readers.Go(func() {
			for {
				select {
				case <-stopReads:
					return
				default:
				}
				ds, err := m.Directory.Doctors(ctx, projections.DoctorFilter{})
				if err != nil || len(ds) == 0 {
					t.Errorf("reader %d: directory %d doctors, %v", r, len(ds), err)
					return
				}
				if _, err := m.Slots.FreeSlots(ctx, knownDoc, doctor.DateOf(t0), 1, t0); err != nil {
					t.Errorf("reader %d: FreeSlots: %v", r, err)
					return
				}
				if _, err := m.Appointments.Appointment(ctx, knownAppt); err != nil {
					t.Errorf("reader %d: Appointment: %v", r, err)
					return
				}
				if page, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{Limit: 5}); err != nil || len(page.Appointments) == 0 {
					t.Errorf("reader %d: Appointments: %d, %v", r, len(page.Appointments), err)
					return
				}
				if _, err := m.Dashboards.DoctorDashboard(ctx, knownDoc); err != nil {
					t.Errorf("reader %d: DoctorDashboard: %v", r, err)
					return
				}
				reads.Add(1)
			}
		})
	}

	// Commands keep coming while the rebuilds run.
	var writers sync.WaitGroup
	started := make(chan struct{})
	writers.Go(func() {
		traffic(t, w, 200, 3)
		close(started)
		traffic(t, w, 203, 40)
	})
	<-started
	before := []any{rn.dir.Current(), rn.slots.Current(), rn.apps.Current()}
	for _, n := range names {
		if err := rn.StartRebuild(ctx, n); err != nil {
			t.Fatalf("StartRebuild(%s): %v", n, err)
		}
	}
	if err := rn.StartRebuild(ctx, "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Errorf("StartRebuild(nope): %v", err)
	}
	// Wait for the three swaps (a new instance, back to running).
	deadline := time.Now().Add(waitLimit)
	for {
		after := []any{rn.dir.Current(), rn.slots.Current(), rn.apps.Current()}
		swapped := true
		for i, l := range []projections.Runnable{rn.dir, rn.slots, rn.apps} {
			state, lastErr := l.State()
			if state == "failed" {
				t.Fatalf("%s: rebuild failed: %s", l.Name(), lastErr)
			}
			if after[i] == before[i] || state != "running" {
				swapped = false
			}
		}
		if swapped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rebuilds did not swap in")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	writers.Wait()
	head := rn.catchUp(t, w)
	close(stopReads)
	readers.Wait()
	if reads.Load() == 0 {
		t.Error("no read completed during the rebuild")
	}
	rn.expectCaughtUp(t, head)
	readmodeltest.SameSnapshot(t, "rebuilt vs from scratch", readmodeltest.Snapshot(ctx, t, rn.models(), w.probe()),
		readmodeltest.Snapshot(ctx, t, replay(t, w), w.probe()))
	agreeWithWriteSide(t, w, rn.models())
	// A synchronous rebuild at rest changes nothing either.
	want := readmodeltest.Snapshot(ctx, t, rn.models(), w.probe())
	if err := rn.slots.Rebuild(ctx, w.store, w.reg); err != nil {
		t.Fatal(err)
	}
	readmodeltest.SameSnapshot(t, "rebuilt at rest", readmodeltest.Snapshot(ctx, t, rn.models(), w.probe()), want)
}

func TestRunnerRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scenario(t, w)
	rn := startRunner(t, w)
	traffic(t, w, 20, 20)
	head := rn.catchUp(t, w)
	ctx := context.Background()
	want := readmodeltest.Snapshot(ctx, t, rn.models(), w.probe())
	rn.stop()

	rn2 := startRunner(t, w)
	rn2.catchUp(t, w)
	rn2.expectCaughtUp(t, head)
	readmodeltest.SameSnapshot(t, "after a restart", readmodeltest.Snapshot(ctx, t, rn2.models(), w.probe()), want)
	// The stopped runner's models still answer, unchanged.
	readmodeltest.SameSnapshot(t, "the stopped runner's models", readmodeltest.Snapshot(ctx, t, rn.models(), w.probe()), want)

	// Commands while no runner runs are picked up by the next one.
	rn2.stop()
	traffic(t, w, 60, 10)
	rn3 := startRunner(t, w)
	head = rn3.catchUp(t, w)
	rn3.expectCaughtUp(t, head)
	agreeWithWriteSide(t, w, rn3.models())
	readmodeltest.SameSnapshot(t, "third runner vs replay", readmodeltest.Snapshot(ctx, t, rn3.models(), w.probe()),
		readmodeltest.Snapshot(ctx, t, replay(t, w), w.probe()))
}

// A read model that keeps its data across restarts (MongoDB) starts at its
// stored checkpoint: the forwarder sends nothing older, and readers waiting
// for a position it already holds must not wait for a newer event.
func TestRunnerRestartWithPersistedReadModels(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scenario(t, w)
	rn := startRunner(t, w)
	head := rn.catchUp(t, w)
	ctx := context.Background()
	want := readmodeltest.Snapshot(ctx, t, rn.models(), w.probe())
	rn.stop()

	rn2 := startRunnerWith(t, w, reuse(rn.dir.Current(), memory.NewDirectory), reuse(rn.slots.Current(), memory.NewSlots), reuse(rn.apps.Current(), memory.NewAppointments))
	rn2.catchUp(t, w)
	rn2.expectCaughtUp(t, head)
	readmodeltest.SameSnapshot(t, "restarted on kept models", readmodeltest.Snapshot(ctx, t, rn2.models(), w.probe()), want)
	traffic(t, w, 20, 5)
	rn2.catchUp(t, w)
	agreeWithWriteSide(t, w, rn2.models())
}

// reuse is a factory that returns kept first, then fresh copies (rebuilds).
func reuse[T any](kept T, fresh func() T) func() T {
	var used atomic.Bool
	return func() T {
		if used.CompareAndSwap(false, true) {
			return kept
		}
		return fresh()
	}
}

func TestRunnerConcurrentBookings(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a := w.registerDoctor(t, "Dr. Kavya Iyer", "General physician", "INR", everyDay("Asia/Kolkata", doctor.PaymentNone))
	b := w.registerDoctor(t, "Dr. Emma Stone", "Pediatrics", "USD", everyDay("America/New_York", doctor.PaymentOptional))
	const n = 50
	var pats []string // one patient a booking: one patient's bookings never overlap
	for i := range n {
		pats = append(pats, w.registerPatient(t, fmt.Sprintf("Patient %d", i)))
	}
	rn := startRunner(t, w)
	as, bs := w.slots(t, a, 30), w.slots(t, b, 30)
	var ok, taken atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			// Forty bookings of a: 24 on distinct slots, 16 on a slot another
			// one also wants (exactly one of each pair wins); ten of b.
			doc, slot := a, as[i%30]
			if i%5 == 4 {
				doc, slot = b, bs[i/5]
			}
			_, err := w.book(context.Background(), doc, pats[i%len(pats)], slot)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, doctor.ErrSlotUnavailable):
				taken.Add(1)
			default:
				t.Errorf("booking %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	head := rn.catchUp(t, w)
	rn.expectCaughtUp(t, head)
	if ok.Load() != 34 || taken.Load() != 16 {
		t.Fatalf("%d booked, %d refused; want 34 and 16", ok.Load(), taken.Load())
	}
	agreeWithWriteSide(t, w, rn.models())
	page, err := rn.apps.Current().Appointments(context.Background(), projections.AppointmentQuery{Limit: projections.MaxPageSize})
	if err != nil || int64(len(page.Appointments)) != ok.Load() {
		t.Errorf("read model has %d appointments (%v); %d bookings succeeded", len(page.Appointments), err, ok.Load())
	}
	// The booked slots are gone from the read model, the others are there.
	fs, err := rn.slots.Current().FreeSlots(context.Background(), a, doctor.DateOf(t0), 2, w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	free := map[time.Time]bool{}
	for _, d := range fs.Days {
		for _, s := range d.Slots {
			free[s.Start.UTC()] = true
		}
	}
	for i, s := range as {
		if booked := i%5 != 4; free[s] == booked {
			t.Errorf("slot %d (%v) of a: listed free %v, booked %v", i, s, free[s], booked)
		}
	}
}

// lossyPublisher loses (acknowledges without delivering) the publishes
// whose 1-based numbers are in drop: what a Redis that restarted without
// its data does to entries not read yet.
type lossyPublisher struct {
	message.Publisher
	mu   sync.Mutex
	n    int
	drop map[int]bool
	lost []string // positions lost
}

func (l *lossyPublisher) Publish(topic string, msgs ...*message.Message) error {
	l.mu.Lock()
	var keep []*message.Message
	for _, m := range msgs {
		l.n++
		if l.drop[l.n] {
			l.lost = append(l.lost, m.Metadata.Get(projections.MetaPosition))
			continue
		}
		keep = append(keep, m)
	}
	l.mu.Unlock()
	if len(keep) == 0 {
		return nil
	}
	return l.Publisher.Publish(topic, keep...)
}

// TestRunnerFillsLostEvents: events lost between the forwarder and the
// consumers are noticed by the next event's predecessor position. Each
// projection reads them from the store; when the store refuses those
// reads, the forwarder republishes from the checkpoint instead. Either way
// no read model applies an event over a gap, and the models end equal to a
// fresh replay.
func TestRunnerFillsLostEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		failReads bool
		want      string // in the runner's log
	}{
		{"from the store", false, "read from the store"},
		{"republished", true, "asking the forwarder to republish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			scenario(t, w)
			var store eventstore.Store = w.store
			if tc.failReads {
				store = refusedReads{w.store}
			}
			lossy := &lossyPublisher{drop: map[int]bool{3: true, 10: true, 11: true, 40: true}}
			rn := &runner{dir: projections.NewLive(memory.NewDirectory), slots: projections.NewLive(memory.NewSlots), apps: projections.NewLive(memory.NewAppointments)}
			pub, sub := projections.NewGoChannel(zerolog.Nop())
			lossy.Publisher = pub
			var logs testenv.ProcessLog
			r, err := projections.NewRunner(projections.RunnerConfig{
				Store: store, Registry: w.reg, Projections: []projections.Runnable{rn.dir, rn.slots, rn.apps},
				Publisher: lossy, Subscriber: sub, Logger: zerolog.New(&logs).Level(zerolog.DebugLevel), Forward: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			rn.Runner = r
			rn.stop = runInBackground(t, r, nil)
			traffic(t, w, 20, 15)
			head := rn.catchUp(t, w)
			lossy.mu.Lock()
			lost := len(lossy.lost)
			lossy.mu.Unlock()
			if lost != 4 {
				t.Fatalf("the test lost %d events, want 4", lost)
			}
			readmodeltest.SameSnapshot(t, "read models after lost events",
				readmodeltest.Snapshot(context.Background(), t, rn.models(), w.probe()),
				readmodeltest.Snapshot(context.Background(), t, replay(t, w), w.probe()))
			rn.expectCaughtUp(t, head)
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("the log does not say %q:\n%s", tc.want, logs.String())
			}
		})
	}
}

// refusedReads is a store whose ReadAll fails (its subscriptions work).
type refusedReads struct{ eventstore.Store }

func (refusedReads) ReadAll(context.Context, uint64, int) ([]eventstore.RecordedEvent, error) {
	return nil, errors.New("reads refused")
}

type memApps = memory.Appointments

// batchingAppointments is the in-memory appointments model taking batches,
// recording them.
type batchingAppointments struct {
	*memApps
	mu      sync.Mutex
	sizes   []int
	last    uint64
	ordered bool
}

func (b *batchingAppointments) ApplyBatch(ctx context.Context, events []projections.Event) error {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(events))
	for _, e := range events {
		if e.Position <= b.last {
			b.ordered = false
		}
		b.last = e.Position
	}
	b.mu.Unlock()
	for _, e := range events {
		if err := b.Apply(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// A projection that takes batches gets, with the message of an event, what
// the log holds after it (unknown event types left out), in order, and
// ends up as a replay of the log; the messages of events it applied ahead
// are no-ops.
func TestRunnerBatches(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scenario(t, w) // before the runner starts: a backlog to batch
	w.appendUnknown(t)
	traffic(t, w, 0, 10)
	apps := &batchingAppointments{memApps: memory.NewAppointments(), ordered: true}
	rn := &runner{dir: projections.NewLive(memory.NewDirectory), slots: projections.NewLive(memory.NewSlots)}
	live := projections.NewLive(func() *batchingAppointments { return apps })
	pub, sub := projections.NewGoChannel(zerolog.Nop())
	reg := prometheus.NewRegistry()
	metrics, err := projections.NewApplyMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projections.NewRunner(projections.RunnerConfig{
		Store: w.store, Registry: w.reg, Projections: []projections.Runnable{rn.dir, rn.slots, live},
		Publisher: pub, Subscriber: sub, Logger: zerolog.Nop(), Forward: true, MaxBatch: 16, Metrics: metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	rn.Runner = r
	runInBackground(t, r, nil)
	traffic(t, w, 10, 5) // and while it runs
	last := w.appendUnknown(t)
	head := rn.catchUp(t, w)
	if head != last {
		t.Fatalf("head %d, want %d", head, last)
	}
	apps.mu.Lock()
	sizes, ordered := slices.Clone(apps.sizes), apps.ordered
	apps.mu.Unlock()
	if !ordered {
		t.Error("events out of order across batches")
	}
	if len(sizes) == 0 || slices.Max(sizes) < 2 || slices.Max(sizes) > 16 {
		t.Errorf("batch sizes %v: want some of 2..16 events", sizes)
	}
	// The metrics saw the same batches: every one the projection took,
	// and its events.
	applies, events := appliesOf(t, reg, live.Name())
	total := 0
	for _, n := range sizes {
		total += n
	}
	if applies < uint64(len(sizes)) || events < uint64(total) || events <= applies {
		t.Errorf("metrics: %d applies of %d events; the projection took %d batches of %d events", applies, events, len(sizes), total)
	}
	m := readmodeltest.Models{
		Directory: projections.LiveDirectory[*memory.Directory]{L: rn.dir}, Slots: projections.LiveSlots[*memory.Slots]{L: rn.slots},
		Appointments: projections.LiveAppointments[*batchingAppointments]{L: live}, Dashboards: projections.LiveAppointments[*batchingAppointments]{L: live}, Payments: projections.LiveAppointments[*batchingAppointments]{L: live},
	}
	readmodeltest.SameSnapshot(t, "batched vs replay", readmodeltest.Snapshot(context.Background(), t, m, w.probe()),
		readmodeltest.Snapshot(context.Background(), t, replay(t, w), w.probe()))
	// A rebuild replays into batches as well.
	if err := live.Rebuild(context.Background(), w.store, w.reg); err != nil {
		t.Fatal(err)
	}
	readmodeltest.SameSnapshot(t, "rebuilt vs replay", readmodeltest.Snapshot(context.Background(), t, m, w.probe()),
		readmodeltest.Snapshot(context.Background(), t, replay(t, w), w.probe()))
}

// appliesOf reads, from reg, how many applies projection made and of how
// many events in all (prescripto_projection_batch_events), checking that
// the time histogram counted as many.
func appliesOf(t *testing.T, reg *prometheus.Registry, projection string) (applies, events uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var timed uint64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != projection {
				continue
			}
			switch mf.GetName() {
			case "prescripto_projection_batch_events":
				applies, events = m.GetHistogram().GetSampleCount(), uint64(m.GetHistogram().GetSampleSum())
			case "prescripto_projection_apply_seconds":
				timed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if timed != applies {
		t.Errorf("%s: %d applies timed, %d counted", projection, timed, applies)
	}
	return applies, events
}

// poisonedDirectory is a directory that cannot apply the event at one
// position (an error that is not domain.ErrUnavailable).
type poisonedDirectory struct {
	*memory.Directory
	at uint64
}

func (d poisonedDirectory) Apply(ctx context.Context, e projections.Event) error {
	if e.Position == d.at {
		return errors.New("this event cannot be applied")
	}
	return d.Directory.Apply(ctx, e)
}

// TestRunnerSetsAsidePoisonEvent: an event a projection cannot apply is
// retried, then set aside in the poison queue, and the projection goes on
// with the events after it; the next message does not take the set-aside
// event for a gap (which had the forwarder republish, the event fail
// again, and so on for ever). The other projections are not disturbed.
func TestRunnerSetsAsidePoisonEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	scenario(t, w)
	bad := w.head(t) // the scenario's last event
	traffic(t, w, 20, 6)
	head := w.head(t)

	var logs testenv.ProcessLog
	logger := zerolog.New(&logs).Level(zerolog.WarnLevel)
	pub, sub := projections.NewGoChannel(logger)
	poisoned, err := pub.(message.Subscriber).Subscribe(context.Background(), projections.EventsTopic+projections.PoisonSuffix)
	if err != nil {
		t.Fatal(err)
	}
	dir := projections.NewLive(func() poisonedDirectory { return poisonedDirectory{memory.NewDirectory(), bad} })
	slots, apps := projections.NewLive(memory.NewSlots), projections.NewLive(memory.NewAppointments)
	r, err := projections.NewRunner(projections.RunnerConfig{
		Store: w.store, Registry: w.reg, Projections: []projections.Runnable{dir, slots, apps},
		Publisher: pub, Subscriber: sub, Logger: logger, Forward: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, r, nil)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	select {
	case m := <-poisoned:
		if got := m.Metadata.Get(projections.MetaPosition); got != fmt.Sprint(bad) {
			t.Errorf("set aside the event at %s, want %d", got, bad)
		}
		m.Ack()
	case <-ctx.Done():
		t.Fatalf("nothing was set aside:\n%s", logs.String())
	}
	for _, n := range names {
		if err := r.WaitFor(ctx, n, head); err != nil {
			t.Fatalf("%s did not reach %d past the set-aside event at %d: %v\n%s", n, head, bad, err, logs.String())
		}
	}
	select {
	case m := <-poisoned:
		t.Errorf("set aside a second time, the event at %s:\n%s", m.Metadata.Get(projections.MetaPosition), logs.String())
	case <-time.After(100 * time.Millisecond):
	}
	if strings.Contains(logs.String(), "republish") {
		t.Errorf("the set-aside event was taken for a gap:\n%s", logs.String())
	}
	// The other projections are as a replay has them (the directory asked
	// is the replay's in both: the poisoned one lacks the event set aside).
	want := replay(t, w)
	got := want
	la := projections.LiveAppointments[*memory.Appointments]{L: apps}
	got.Slots, got.Appointments, got.Dashboards, got.Payments = projections.LiveSlots[*memory.Slots]{L: slots}, la, la, la
	readmodeltest.SameSnapshot(t, "slots and appointments beside a poisoned directory",
		readmodeltest.Snapshot(context.Background(), t, got, w.probe()),
		readmodeltest.Snapshot(context.Background(), t, want, w.probe()))
}
