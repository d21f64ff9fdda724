package commands_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/sqlite"
)

// t0 is the fake clock's start: Tuesday 2026-12-01 08:30 in Asia/Kolkata.
var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

var admin = commands.Meta{Actor: domain.Actor{UserID: "admin-1", Role: domain.RoleAdmin}}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	store eventstore.Store
	reg   *domain.Registry
	clock *fakeClock
	h     *commands.Handler
}

func newStore(t testing.TB) eventstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{store: newStore(t), clock: &fakeClock{now: t0}}
	var err error
	if e.reg, err = catalog.NewRegistry(); err != nil {
		t.Fatal(err)
	}
	e.h = e.handler(t)
	return e
}

// handler makes another Handler on the same store, as a second process would.
func (e *env) handler(t testing.TB) *commands.Handler {
	t.Helper()
	h, err := commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func schedule(policy doctor.PaymentPolicy) *doctor.Schedule {
	s := &doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 30, MinNoticeMinutes: 0, PaymentPolicy: policy}
	if policy == doctor.PaymentRequired {
		s.HoldMinutes = 15
	}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "10:00", End: "21:00"})
	}
	return s
}

func (e *env) doctor(t testing.TB, name string) commands.DoctorResult {
	t.Helper()
	res, err := e.h.RegisterDoctor(context.Background(), admin, commands.RegisterDoctor{
		Profile: doctor.Profile{Name: name, Speciality: "General physician", Degree: "MBBS", Fees: 50000, Currency: "INR", Available: true},
		Email:   fmt.Sprintf("%s@clinic.example", name), Password: "s3cret-pass", Schedule: schedule(doctor.PaymentNone),
	})
	if err != nil {
		t.Fatalf("register doctor: %v", err)
	}
	return res
}

func patient(i int) commands.Meta {
	return commands.Meta{Actor: domain.Actor{UserID: fmt.Sprintf("patient-%04d", i), Role: domain.RolePatient}}
}

// slots lists the doctor's first n free slots from t0 on.
func slots(t testing.TB, d commands.DoctorResult, n int) []time.Time {
	t.Helper()
	g, err := d.Schedule.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return nextSlots(g, t0, n)
}

// fold reads the doctor's stream afresh from the store.
func (e *env) fold(t testing.TB, id string) *doctor.Doctor {
	t.Helper()
	recs, err := e.store.ReadStream(context.Background(), doctor.StreamID(id), 0, eventstore.Forward, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := doctor.New(id)
	for _, r := range recs {
		ev, err := e.reg.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		d.Load(ev)
	}
	return d
}

func assertNoOverlap(t *testing.T, d *doctor.Doctor) {
	t.Helper()
	live := d.LiveAppointments()
	for i := 1; i < len(live); i++ {
		if live[i].Start.Before(live[i-1].End) {
			t.Fatalf("live appointments overlap: %v and %v", live[i-1], live[i])
		}
	}
}

func TestSameSlotRaceExactlyOneWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "race")
	slot := slots(t, d, 1)[0]
	const n = 1000
	var ok, taken atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := e.h.ReserveSlot(context.Background(), patient(i), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: slot})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, doctor.ErrSlotUnavailable):
				taken.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || taken.Load() != n-1 {
		t.Fatalf("got %d successes and %d slot_unavailable; want 1 and %d", ok.Load(), taken.Load(), n-1)
	}
	folded := e.fold(t, d.ID)
	if live := folded.LiveAppointments(); len(live) != 1 || !live[0].Start.Equal(slot) {
		t.Fatalf("stream folded afresh has live appointments %v; want exactly one at %v", live, slot)
	}
	if n := countInLog(t, e.store, doctor.TypeSlotReserved); n != 1 {
		t.Fatalf("%d SlotReserved events in the log; want 1", n)
	}
}

// TestSameSlotRaceAcrossTwoHandlers is the 1,000-goroutine race split over
// two handlers on one store, as two api processes would be: each
// handler's per-stream queue serialises only its own half, so the halves
// meet at the store's expected-revision check, and it alone lets one
// booking in.
//
// Not parallel: a second 1,000-goroutine burst beside the one-handler race
// would only measure the machine (a batch's store operations are bounded
// by batchTimeout).
func TestSameSlotRaceAcrossTwoHandlers(t *testing.T) {
	e := newEnv(t)
	d := e.doctor(t, "race2")
	slot := slots(t, d, 1)[0]
	cs := &countingStore{Store: e.store}
	var hs []*commands.Handler
	for range 2 {
		h, err := commands.New(commands.Config{Store: cs, Registry: e.reg, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	const n = 1000
	var ok, taken, concurrent atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := hs[i%2].ReserveSlot(context.Background(), patient(i), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: slot})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, doctor.ErrSlotUnavailable):
				taken.Add(1)
			case errors.Is(err, commands.ErrConcurrency): // retries ran out against the other handler
				concurrent.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	// The stale appends are the store's optimistic check at work between
	// the handlers (how many depends on the interleaving).
	t.Logf("%d won, %d slot_unavailable, %d concurrency_conflict; %d appends refused for a stale revision",
		ok.Load(), taken.Load(), concurrent.Load(), cs.conflicts.Load())
	if ok.Load() != 1 || ok.Load()+taken.Load()+concurrent.Load() != n {
		t.Fatalf("got %d successes of %d; want exactly 1", ok.Load(), n)
	}
	if n := countInLog(t, e.store, doctor.TypeSlotReserved); n != 1 {
		t.Fatalf("%d SlotReserved events in the log; want 1", n)
	}
	if live := e.fold(t, d.ID).LiveAppointments(); len(live) != 1 || !live[0].Start.Equal(slot) {
		t.Fatalf("stream folded afresh has live appointments %v; want exactly one at %v", live, slot)
	}
}

func TestDistinctSlotsOfOneDoctorAllSucceed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "busy")
	const n = 200
	ss := slots(t, d, n)
	cs := &countingStore{Store: e.store}
	h, err := commands.New(commands.Config{Store: cs, Registry: e.reg, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = h.ReserveSlot(context.Background(), patient(i), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[i]})
		})
	}
	close(start)
	wg.Wait()
	// Queued bookings of one doctor are appended together.
	if a := cs.appends.Load(); a >= n {
		t.Errorf("%d bookings took %d appends; want them batched", n, a)
	} else {
		t.Logf("%d bookings in %d appends", n, a)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("booking %d: %v", i, err)
		}
	}
	folded := e.fold(t, d.ID)
	if got := len(folded.LiveAppointments()); got != n {
		t.Fatalf("folded stream has %d live appointments; want %d", got, n)
	}
	if got := countInLog(t, e.store, doctor.TypeSlotReserved); got != n {
		t.Fatalf("%d SlotReserved events in the log; want %d", got, n)
	}
	assertNoOverlap(t, folded)
}

// Two handlers on one store stand for two processes: the per-stream queue
// does not span them, so optimistic concurrency must.
func TestTwoProcessesRaceThroughOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "shared")
	other := e.handler(t)
	ss := slots(t, d, 41)
	var wg sync.WaitGroup
	var won atomic.Int64
	errs := make(chan error, 200)
	for i := range 40 {
		h := e.h
		if i%2 == 1 {
			h = other
		}
		wg.Go(func() {
			if _, err := h.ReserveSlot(context.Background(), patient(i), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[i]}); err != nil {
				errs <- fmt.Errorf("distinct slot %d: %w", i, err)
			}
		})
		wg.Go(func() { // everyone also fights for the last slot
			_, err := h.ReserveSlot(context.Background(), patient(100+i), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[40]})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, doctor.ErrSlotUnavailable), errors.Is(err, commands.ErrConcurrency):
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err) // an uncontested booking goes through, however busy the doctor
	}
	if won.Load() != 1 {
		t.Fatalf("%d patients got the contested slot; want 1", won.Load())
	}
	assertNoOverlap(t, e.fold(t, d.ID))
}

func TestIdempotencyKeyReplaysWithoutAppending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "idem")
	slot := slots(t, d, 1)[0]
	m := patient(1)
	m.IdempotencyKey = "key-123"
	before := mustHead(t, e.store)
	var wg sync.WaitGroup
	results := make([]commands.AppointmentResult, 20)
	errs := make([]error, 20)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = e.h.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: slot})
		})
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("retry %d: %v", i, errs[i])
		}
		if results[i].Appointment.ID != results[0].Appointment.ID || results[i].Position != results[0].Position {
			t.Fatalf("retry %d returned %s@%d; want %s@%d", i, results[i].Appointment.ID, results[i].Position, results[0].Appointment.ID, results[0].Position)
		}
	}
	after := mustHead(t, e.store)
	if after != before+3 {
		t.Fatalf("20 keyed retries appended %d events; want 3 (the patient's ledger entry, the key's claim and the booking)", after-before)
	}
	// A fresh process (cold cache) recognises the key from the stream.
	res, err := e.handler(t).ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: slot})
	if err != nil || res.Appointment.ID != results[0].Appointment.ID {
		t.Fatalf("cold retry: %v %v", res.Appointment.ID, err)
	}
	// The same key with another body is refused.
	_, err = e.h.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: slot.Add(30 * time.Minute)})
	if !errors.Is(err, commands.ErrIdempotencyKeyReused) {
		t.Fatalf("reused key with another start: %v", err)
	}
}

func TestRescheduleRacesBookingOfTheTarget(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		e := newEnv(t)
		d := e.doctor(t, fmt.Sprintf("resched%d", round))
		ss := slots(t, d, 2)
		a, err := e.h.ReserveSlot(context.Background(), patient(1), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[0]})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var rErr, bErr error
		wg.Go(func() {
			_, rErr = e.h.RescheduleAppointment(context.Background(), patient(1), commands.RescheduleAppointment{DoctorID: d.ID, AppointmentID: a.Appointment.ID, Start: ss[1]})
		})
		wg.Go(func() {
			_, bErr = e.h.ReserveSlot(context.Background(), patient(2), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[1]})
		})
		wg.Wait()
		if (rErr == nil) == (bErr == nil) {
			t.Fatalf("reschedule err %v, booking err %v: want exactly one to win", rErr, bErr)
		}
		folded := e.fold(t, d.ID)
		assertNoOverlap(t, folded)
		got, _ := folded.Appointment(a.Appointment.ID)
		want := ss[0]
		if rErr == nil {
			want = ss[1]
		}
		if !got.Start.Equal(want) || !got.Status.Live() {
			t.Fatalf("appointment at %v (%s); want live at %v", got.Start, got.Status, want)
		}
	}
}

func TestEmailClaimRaceOneAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ok, taken atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			_, err := e.h.RegisterPatient(context.Background(), commands.Meta{}, fmt.Sprintf("P %d", i), " Same@Example.com ", "password-1")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, account.ErrEmailTaken):
				taken.Add(1)
			default:
				t.Errorf("register: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || taken.Load() != 49 {
		t.Fatalf("%d registrations succeeded, %d email_taken; want 1 and 49", ok.Load(), taken.Load())
	}
	for _, typ := range []string{account.TypeEmailClaimed, account.TypeRegistered} {
		if n := countInLog(t, e.store, typ); n != 1 {
			t.Fatalf("%d %s events in the log; want 1", n, typ)
		}
	}
	acc, err := e.h.Login(context.Background(), "same@example.com", "password-1")
	if err != nil || acc.Role != domain.RolePatient {
		t.Fatalf("login: %+v %v", acc, err)
	}
	if _, err := e.h.Login(context.Background(), "same@example.com", "wrong-password"); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := e.h.Login(context.Background(), "nobody@example.com", "password-1"); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("unknown email: %v", err)
	}
}

func TestDoctorLoginAndScheduleOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "owner")
	other := e.doctor(t, "other")
	acc, err := e.h.Login(context.Background(), "owner@clinic.example", "s3cret-pass")
	if err != nil || acc.Role != domain.RoleDoctor || acc.DoctorID != d.ID || acc.ID != d.ID {
		t.Fatalf("doctor login: %+v %v", acc, err)
	}
	self := commands.Meta{Actor: domain.Actor{UserID: d.ID, Role: domain.RoleDoctor}}
	s := schedule(doctor.PaymentNone)
	if _, err := e.h.SetSchedule(context.Background(), self, commands.SetSchedule{DoctorID: d.ID, Schedule: *s}); err != nil {
		t.Fatalf("own schedule: %v", err)
	}
	if _, err := e.h.SetSchedule(context.Background(), self, commands.SetSchedule{DoctorID: other.ID, Schedule: *s}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another doctor's schedule: %v", err)
	}
	s.PaymentPolicy, s.HoldMinutes = doctor.PaymentRequired, 10
	if _, err := e.h.SetSchedule(context.Background(), admin, commands.SetSchedule{DoctorID: d.ID, Schedule: *s}); !errors.Is(err, commands.ErrPaymentsDisabled) {
		t.Fatalf("required without payment keys: %v", err)
	}
	s.PaymentPolicy = doctor.PaymentOptional
	if _, err := e.h.SetSchedule(context.Background(), admin, commands.SetSchedule{DoctorID: d.ID, Schedule: *s}); !errors.Is(err, commands.ErrPaymentsDisabled) {
		t.Fatalf("optional without payment keys: %v", err)
	}
}

func TestHoldPaymentAndExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h, err := commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}, PaymentsEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	d := e.doctor(t, "paid")
	if _, err := h.SetSchedule(context.Background(), admin, commands.SetSchedule{DoctorID: d.ID, Schedule: *schedule(doctor.PaymentRequired)}); err != nil {
		t.Fatal(err)
	}
	ss := slots(t, d, 2)
	paid, err := h.ReserveSlot(context.Background(), patient(1), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[0]})
	if err != nil || paid.Appointment.Status != doctor.StatusHeld {
		t.Fatalf("reserve: %+v %v", paid.Appointment, err)
	}
	unpaid, err := h.ReserveSlot(context.Background(), patient(2), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[1]})
	if err != nil {
		t.Fatal(err)
	}
	sys := commands.Meta{Actor: domain.System}
	order := doctor.Order{ID: "order_1", Amount: paid.Appointment.Fees, Currency: paid.Appointment.Currency}
	if _, err := h.CreatePaymentOrder(context.Background(), sys, commands.CreatePaymentOrder{DoctorID: d.ID, AppointmentID: paid.Appointment.ID, Order: order}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the same payment twice is one fact
		res, err := h.CapturePayment(context.Background(), sys, commands.CapturePayment{DoctorID: d.ID, AppointmentID: paid.Appointment.ID, PaymentID: "pay_1", OrderID: "order_1", Amount: order.Amount, Currency: order.Currency})
		if err != nil || res.Appointment.Status != doctor.StatusConfirmed {
			t.Fatalf("capture: %+v %v", res.Appointment, err)
		}
	}
	if _, err := h.ExpireHold(context.Background(), sys, commands.ExpireHold{DoctorID: d.ID, AppointmentID: unpaid.Appointment.ID}); !errors.Is(err, doctor.ErrHoldActive) {
		t.Fatalf("early expiry: %v", err)
	}
	e.clock.Advance(16 * time.Minute)
	if res, err := h.ExpireHold(context.Background(), sys, commands.ExpireHold{DoctorID: d.ID, AppointmentID: unpaid.Appointment.ID}); err != nil || res.Appointment.Status != doctor.StatusExpired {
		t.Fatalf("expiry: %+v %v", res.Appointment, err)
	}
	if _, err := h.ReserveSlot(context.Background(), patient(3), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: ss[1]}); err != nil {
		t.Fatalf("expired slot is not free again: %v", err)
	}
	folded := e.fold(t, d.ID)
	captured := 0
	for _, a := range folded.LiveAppointments() {
		if a.ID == paid.Appointment.ID && a.Payment.Status == doctor.PaymentPaid {
			captured++
		}
	}
	if captured != 1 {
		t.Fatalf("paid appointment not confirmed and paid once in the stream")
	}
}

// countingStore counts stream reads, to show that commands do not re-read
// history.
// countingStore counts the reads and appends of doctor streams (the
// patients' ledgers and key claims are other streams, counted apart).
type countingStore struct {
	eventstore.Store
	reads, fromZero, appends atomic.Int64
	otherAppends             atomic.Int64
	// conflicts counts appends to doctor streams refused for a stale
	// expected revision.
	conflicts atomic.Int64
}

func (c *countingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if !strings.HasPrefix(stream, doctor.Category+"-") {
		c.otherAppends.Add(1)
		return c.Store.Append(ctx, stream, expected, events)
	}
	c.appends.Add(1)
	res, err := c.Store.Append(ctx, stream, expected, events)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		c.conflicts.Add(1)
	}
	return res, err
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.RecordedEvent, error) {
	if strings.HasPrefix(stream, doctor.Category+"-") {
		c.reads.Add(1)
		if from == 0 {
			c.fromZero.Add(1)
		}
	}
	return c.Store.ReadStream(ctx, stream, from, dir, limit)
}

func TestCommandsUseCachedStateNotHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "cached")
	cs := &countingStore{Store: e.store}
	h, err := commands.New(commands.Config{Store: cs, Registry: e.reg, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range slots(t, d, 50) {
		if _, err := h.ReserveSlot(context.Background(), patient(i), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: s}); err != nil {
			t.Fatal(err)
		}
	}
	if got := cs.reads.Load(); got != 1 {
		t.Fatalf("50 commands read the stream %d times; want 1 (the first load)", got)
	}
}

func TestUnknownDoctorIsNotFoundAndNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.h.ReserveSlot(context.Background(), patient(1), commands.ReserveSlot{PatientName: "Test Patient", DoctorID: "no-such-doctor", Start: t0.Add(time.Hour)})
	if !errors.Is(err, doctor.ErrDoctorNotFound) || !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	if _, err := e.store.ReadStream(context.Background(), doctor.StreamID("no-such-doctor"), 0, eventstore.Forward, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("a failed command created the stream: %v", err)
	}
}

func TestBookingRecordsThePatientsCurrentName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "names")
	acc, err := e.h.RegisterPatient(context.Background(), commands.Meta{}, "Old Name", "names@example.com", "password-1")
	if err != nil {
		t.Fatal(err)
	}
	m := commands.Meta{Actor: domain.Actor{UserID: acc.ID, Role: domain.RolePatient}}
	ss := slots(t, d, 2)
	a, err := e.h.ReserveSlot(context.Background(), m, commands.ReserveSlot{DoctorID: d.ID, Start: ss[0]})
	if err != nil || a.Appointment.PatientName != "Old Name" {
		t.Fatalf("first booking: %q %v", a.Appointment.PatientName, err)
	}
	newName := "New Name"
	if _, err := e.h.UpdateAccountProfile(context.Background(), m, commands.ProfilePatchAccount{Name: &newName}); err != nil {
		t.Fatal(err)
	}
	a, err = e.h.ReserveSlot(context.Background(), m, commands.ReserveSlot{DoctorID: d.ID, Start: ss[1]})
	if err != nil || a.Appointment.PatientName != newName {
		t.Fatalf("booking after the rename recorded %q (%v); want %q", a.Appointment.PatientName, err, newName)
	}
	if _, err := e.h.ReserveSlot(context.Background(), patient(9), commands.ReserveSlot{DoctorID: d.ID, Start: ss[1].Add(time.Hour)}); !errors.Is(err, account.ErrAccountNotFound) {
		t.Fatalf("a patient without an account booked: %v", err)
	}
}

// mustHead is the log's head, failing t if the store cannot say: a "nothing
// was appended" check must not pass because the store errored twice.
func mustHead(t testing.TB, s eventstore.Store) uint64 {
	t.Helper()
	h, err := s.HeadPosition(context.Background())
	if err != nil {
		t.Fatalf("HeadPosition: %v", err)
	}
	return h
}

// countInLog counts the events of type typ in the whole log: what a race
// test's return codes claim, checked where it counts.
func countInLog(t testing.TB, s eventstore.Store, typ string) int {
	t.Helper()
	n := 0
	var after uint64
	for {
		recs, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatalf("ReadAll after %d: %v", after, err)
		}
		for _, r := range recs {
			if r.Type == typ {
				n++
			}
			after = r.Position
		}
		if len(recs) == 0 {
			return n
		}
	}
}
