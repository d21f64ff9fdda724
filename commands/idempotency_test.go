package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/idempotency"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
)

// newESDBStore opens the real EventStoreDB adapter against a fresh
// in-process EventStoreDB protocol emulator: a store that, like
// EventStoreDB, writes an event id again in another stream instead of
// refusing it.
func newESDBStore(t testing.TB) eventstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, esdbtest.Start(t))
	if err != nil {
		t.Fatalf("open esdb adapter on the emulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newEnvOn is newEnv on store.
func newEnvOn(t testing.TB, store eventstore.Store) *env {
	t.Helper()
	e := &env{store: store, clock: &fakeClock{now: t0}}
	var err error
	if e.reg, err = catalog.NewRegistry(); err != nil {
		t.Fatal(err)
	}
	e.h = e.handlerOn(t, store)
	return e
}

func (e *env) handlerOn(t testing.TB, store eventstore.Store) *commands.Handler {
	t.Helper()
	h, err := commands.New(commands.Config{Store: store, Registry: e.reg, Now: e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// storeKinds are the stores the idempotency tests run on: EventStoreDB
// (through the emulator), which does not refuse an event id stored in
// another stream, and the embedded SQLite store. The commands take the same
// path on both: the key claims decide.
var storeKinds = []struct {
	name string
	open func(testing.TB) eventstore.Store
}{
	{"esdb", newESDBStore},
	{"sqlite", newStore},
}

// liveAppointments lists the live appointments of the doctors, folded
// afresh from the store.
func (e *env) liveAppointments(t testing.TB, doctorIDs ...string) []doctor.Appointment {
	t.Helper()
	var out []doctor.Appointment
	for _, id := range doctorIDs {
		out = append(out, e.fold(t, id).LiveAppointments()...)
	}
	return out
}

// eventsOfType counts the events of typ in the whole log.
func (e *env) eventsOfType(t testing.TB, typ string) int {
	t.Helper()
	n := 0
	var after uint64
	for {
		recs, err := e.store.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Type == typ {
				n++
			}
			after = r.Position
		}
		if len(recs) < 1000 {
			return n
		}
	}
}

// The premise of the tests on "esdb": the store writes an event id again in
// another stream, so store-wide id uniqueness cannot be what refuses a key
// reused for another doctor.
func TestESDBEmulatorDoesNotRefuseAnIDStoredElsewhere(t *testing.T) {
	t.Parallel()
	s := newESDBStore(t)
	id := uuid.New()
	ev := []eventstore.EventData{{ID: id, Type: "test.Happened.v1", Data: []byte(`{}`)}}
	for _, stream := range []string{"test-a", "test-b"} {
		if _, err := s.Append(context.Background(), stream, eventstore.NoStream, ev); err != nil {
			t.Fatalf("append the id to %s: %v", stream, err)
		}
	}
}

func TestKeyReusedForAnotherDoctorIsRefused(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOn(t, k.open(t))
			a, b := e.doctor(t, "kra"), e.doctor(t, "krb")
			slot := slots(t, a, 1)[0]
			m := patient(1)
			m.IdempotencyKey = "book-once"
			first, err := e.h.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: a.ID, Start: slot})
			if err != nil {
				t.Fatal(err)
			}
			head := mustHead(t, e.store)
			for _, h := range []*commands.Handler{e.h, e.handlerOn(t, e.store)} { // warm and cold
				_, err := h.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: b.ID, Start: slot})
				if !errors.Is(err, commands.ErrIdempotencyKeyReused) {
					t.Fatalf("the key reused for another doctor: %v, want idempotency_key_reused", err)
				}
				// The retry of the first request is still answered like it.
				again, err := h.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: a.ID, Start: slot})
				if err != nil || again.Appointment.ID != first.Appointment.ID || again.Position != first.Position {
					t.Fatalf("retry: %s@%d %v, want %s@%d", again.Appointment.ID, again.Position, err, first.Appointment.ID, first.Position)
				}
			}
			if h := mustHead(t, e.store); h != head {
				t.Errorf("a reused key and retries appended %d events", h-head)
			}
			if live := e.liveAppointments(t, a.ID, b.ID); len(live) != 1 || live[0].ID != first.Appointment.ID {
				t.Fatalf("live appointments %v; want only %s", live, first.Appointment.ID)
			}
			// The same key with another slot of the same doctor.
			_, err = e.h.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: a.ID, Start: slot.Add(30 * time.Minute)})
			if !errors.Is(err, commands.ErrIdempotencyKeyReused) {
				t.Fatalf("the key reused for another slot: %v", err)
			}
			if n := e.eventsOfType(t, idempotency.TypeKeyClaimed); n != 1 {
				t.Errorf("%d key claims stored, want 1", n)
			}
		})
	}
}

// TestSameKeyTwoDoctorsRace: 50 goroutines (over two handlers, as two
// processes) send one key, half of them for one doctor and half for
// another: exactly one booking exists, and every answer is that booking or
// idempotency_key_reused.
func TestSameKeyTwoDoctorsRace(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOn(t, k.open(t))
			docs := []commands.DoctorResult{e.doctor(t, "racea"), e.doctor(t, "raceb")}
			hs := []*commands.Handler{e.h, e.handlerOn(t, e.store)}
			slot := slots(t, docs[0], 1)[0]
			m := patient(7)
			m.IdempotencyKey = "double-click"
			const n = 50
			results := make([]commands.AppointmentResult, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					results[i], errs[i] = hs[i%2].ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: docs[(i/2)%2].ID, Start: slot})
				})
			}
			close(start)
			wg.Wait()
			live := e.liveAppointments(t, docs[0].ID, docs[1].ID)
			if len(live) != 1 {
				t.Fatalf("%d live appointments after one key raced for two doctors; want 1: %v", len(live), live)
			}
			ok, reused := 0, 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
					if results[i].Appointment.ID != live[0].ID {
						t.Errorf("answer %d: appointment %s; the one booking is %s", i, results[i].Appointment.ID, live[0].ID)
					}
				case errors.Is(err, commands.ErrIdempotencyKeyReused):
					reused++
				default:
					t.Errorf("answer %d: %v", i, err)
				}
			}
			if ok == 0 || reused == 0 {
				t.Errorf("%d answered the booking, %d idempotency_key_reused; want both kinds", ok, reused)
			}
		})
	}
}

// crashingStore fails the first append to a doctor stream after it is
// armed, as a process that crashed between the key claim and the booking
// would leave the store.
type crashingStore struct {
	eventstore.Store
	armed atomic.Bool
}

var errCrash = fmt.Errorf("%w: simulated crash before the append", eventstore.ErrUnavailable)

func (c *crashingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if strings.HasPrefix(stream, doctor.StreamID("")) && c.armed.CompareAndSwap(true, false) {
		return eventstore.AppendResult{}, errCrash
	}
	return c.Store.Append(ctx, stream, expected, events)
}

func TestRetryAfterCrashBetweenClaimAndBooking(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds {
		if k.name == "sqlite" {
			continue // no claim there for a booking
		}
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			cs := &crashingStore{Store: k.open(t)}
			e := newEnvOn(t, cs)
			a, b := e.doctor(t, "crasha"), e.doctor(t, "crashb")
			slot := slots(t, a, 1)[0]
			m := patient(3)
			m.IdempotencyKey = "crash-key"
			req := commands.ReserveSlot{PatientName: "Test Patient", DoctorID: a.ID, Start: slot}
			cs.armed.Store(true)
			if _, err := e.h.ReserveSlot(context.Background(), m, req); !errors.Is(err, errCrash) {
				t.Fatalf("first try: %v, want the simulated crash", err)
			}
			if n := e.eventsOfType(t, idempotency.TypeKeyClaimed); n != 1 {
				t.Fatalf("%d key claims after the crash, want 1", n)
			}
			if live := e.liveAppointments(t, a.ID); len(live) != 0 {
				t.Fatalf("booked before the retry: %v", live)
			}
			// The key is bound to the crashed request: not to another doctor.
			restarted := e.handlerOn(t, cs)
			if _, err := restarted.ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: b.ID, Start: slot}); !errors.Is(err, commands.ErrIdempotencyKeyReused) {
				t.Fatalf("the crashed request's key for another doctor: %v", err)
			}
			// The retry completes it, exactly once, and further retries
			// answer with the same booking.
			first, err := restarted.ReserveSlot(context.Background(), m, req)
			if err != nil {
				t.Fatalf("retry after the crash: %v", err)
			}
			again, err := e.h.ReserveSlot(context.Background(), m, req)
			if err != nil || again.Appointment.ID != first.Appointment.ID || again.Position != first.Position {
				t.Fatalf("second retry: %s@%d %v, want %s@%d", again.Appointment.ID, again.Position, err, first.Appointment.ID, first.Position)
			}
			live := e.liveAppointments(t, a.ID, b.ID)
			if len(live) != 1 || live[0].ID != first.Appointment.ID || !live[0].Start.Equal(slot) {
				t.Fatalf("live appointments %v; want only %s at %v", live, first.Appointment.ID, slot)
			}
			if n := e.eventsOfType(t, doctor.TypeSlotReserved); n != 1 {
				t.Fatalf("%d SlotReserved events, want 1", n)
			}
			if n := e.eventsOfType(t, idempotency.TypeKeyClaimed); n != 1 {
				t.Fatalf("%d key claims, want 1", n)
			}
		})
	}
}

// TestKeyedAppointmentCommandsBindTheirKey: the commands on an existing
// appointment take their doctor stream and appointment from the request,
// so their key is claimed too, on every store: reused for an appointment of
// another doctor, or with another body, it is refused, and a retry is
// answered like the first request.
func TestKeyedAppointmentCommandsBindTheirKey(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOn(t, k.open(t))
			a, b := e.doctor(t, "binda"), e.doctor(t, "bindb")
			ss := slots(t, a, 4)
			p := patient(4)
			book := func(d commands.DoctorResult, at time.Time) commands.AppointmentResult {
				t.Helper()
				r, err := e.h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: at})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			x, y, z := book(a, ss[0]), book(b, ss[3]), book(a, ss[1]) // one patient: never two at one time
			m := p
			m.IdempotencyKey = "cancel-1"
			cancel := func(d commands.DoctorResult, appt commands.AppointmentResult, reason string) (commands.AppointmentResult, error) {
				return e.h.CancelAppointment(context.Background(), m, commands.CancelAppointment{DoctorID: d.ID, AppointmentID: appt.Appointment.ID, Reason: reason})
			}
			first, err := cancel(a, x, "travel")
			if err != nil {
				t.Fatal(err)
			}
			head := mustHead(t, e.store)
			for name, try := range map[string]func() (commands.AppointmentResult, error){
				"another doctor's appointment": func() (commands.AppointmentResult, error) { return cancel(b, y, "travel") },
				"another appointment":          func() (commands.AppointmentResult, error) { return cancel(a, z, "travel") },
				"another reason":               func() (commands.AppointmentResult, error) { return cancel(a, x, "ill") },
			} {
				if _, err := try(); !errors.Is(err, commands.ErrIdempotencyKeyReused) {
					t.Errorf("%s: %v, want idempotency_key_reused", name, err)
				}
			}
			again, err := cancel(a, x, "travel")
			if err != nil || again.Position != first.Position || again.Appointment.Status != doctor.StatusCancelled {
				t.Errorf("retry: %+v %v", again, err)
			}
			if h := mustHead(t, e.store); h != head {
				t.Errorf("refused keys and a retry appended %d events", h-head)
			}
			if got := len(e.liveAppointments(t, a.ID, b.ID)); got != 2 {
				t.Errorf("%d live appointments, want 2 (y and z untouched)", got)
			}
			// Reschedule: the same key with another start is another request.
			rm := p
			rm.IdempotencyKey = "move-1"
			move := func(at time.Time) (commands.AppointmentResult, error) {
				return e.h.RescheduleAppointment(context.Background(), rm, commands.RescheduleAppointment{DoctorID: a.ID, AppointmentID: z.Appointment.ID, Start: at})
			}
			moved, err := move(ss[2])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := move(ss[0]); !errors.Is(err, commands.ErrIdempotencyKeyReused) {
				t.Errorf("reschedule key reused with another start: %v", err)
			}
			if r, err := move(ss[2]); err != nil || r.Position != moved.Position || !r.Appointment.Start.Equal(ss[2]) {
				t.Errorf("reschedule retry: %+v %v", r.Appointment, err)
			}
		})
	}
}

// TestKeyedProfileUpdate: a keyed profile update retried is answered like
// the first; the key with another patch is refused (it used to collide on
// the event id: a store error on SQLite, a second event with one id on
// EventStoreDB).
func TestKeyedProfileUpdate(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvOn(t, k.open(t))
			acc, err := e.h.RegisterPatient(context.Background(), commands.Meta{}, "Prof Patient", "prof@example.com", "password-1")
			if err != nil {
				t.Fatal(err)
			}
			m := commands.Meta{Actor: domain.Actor{UserID: acc.ID, Role: domain.RolePatient}, IdempotencyKey: "patch-1"}
			phone, other := "+91 80 1234", "+91 80 9999"
			first, err := e.h.UpdateAccountProfile(context.Background(), m, commands.ProfilePatchAccount{Phone: &phone})
			if err != nil {
				t.Fatal(err)
			}
			// Someone changes the profile meanwhile; the retry still
			// answers like the first request and appends nothing.
			name := "Renamed"
			if _, err := e.h.UpdateAccountProfile(context.Background(), commands.Meta{Actor: m.Actor}, commands.ProfilePatchAccount{Name: &name}); err != nil {
				t.Fatal(err)
			}
			head := mustHead(t, e.store)
			again, err := e.h.UpdateAccountProfile(context.Background(), m, commands.ProfilePatchAccount{Phone: &phone})
			if err != nil || again.Position != first.Position {
				t.Fatalf("retry: position %d %v, want %d", again.Position, err, first.Position)
			}
			if _, err := e.h.UpdateAccountProfile(context.Background(), m, commands.ProfilePatchAccount{Phone: &other}); !errors.Is(err, commands.ErrIdempotencyKeyReused) {
				t.Fatalf("the key with another patch: %v", err)
			}
			if h := mustHead(t, e.store); h != head {
				t.Errorf("a retry and a reused key appended %d events", h-head)
			}
		})
	}
}
