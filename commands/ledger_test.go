package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain/ledger"
)

// rulesHandler is a Handler with the patient rules on e's store, as one
// more process.
func rulesHandler(t *testing.T, e *env, max int) *commands.Handler {
	t.Helper()
	h, err := commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost},
		BookingRules: ledger.Rules{MaxLive: max}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// raceBookings books one patient at each (doctor, start) at once, over
// two handlers (two processes), and returns the answers.
func raceBookings(t *testing.T, hs []*commands.Handler, m commands.Meta, docs []commands.DoctorResult, starts []time.Time) []error {
	t.Helper()
	errs := make([]error, len(docs))
	var wg sync.WaitGroup
	go1 := make(chan struct{})
	for i := range docs {
		wg.Go(func() {
			<-go1
			_, errs[i] = hs[i%len(hs)].ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "P", DoctorID: docs[i].ID, Start: starts[i]})
		})
	}
	close(go1)
	wg.Wait()
	return errs
}

func tally(t *testing.T, errs []error) (ok, limit, overlap int) {
	t.Helper()
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ledger.ErrBookingLimit):
			limit++
		case errors.Is(err, ledger.ErrOverlapping):
			overlap++
		default:
			t.Errorf("booking %d: %v", i, err)
		}
	}
	return ok, limit, overlap
}

// TestBookingLimitUnderRace: one patient fires 50 bookings of distinct
// times at 50 doctors at once, through two processes: exactly 5 succeed.
func TestBookingLimitUnderRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hs := []*commands.Handler{rulesHandler(t, e, 5), rulesHandler(t, e, 5)}
	var docs []commands.DoctorResult
	var starts []time.Time
	for i := range 50 {
		d := e.doctor(t, fmt.Sprintf("limit%02d", i))
		docs = append(docs, d)
		starts = append(starts, slots(t, d, 50)[i]) // every booking at its own time
	}
	ok, limit, _ := tally(t, raceBookings(t, hs, patient(1), docs, starts))
	if ok != 5 || limit != 45 {
		t.Fatalf("%d booked, %d refused booking_limit_reached; want 5 and 45", ok, limit)
	}
	if n := len(e.liveAppointments(t, ids(docs)...)); n != 5 {
		t.Fatalf("%d live appointments in the doctors' streams, want 5", n)
	}
}

// TestOverlapUnderRace: 20 bookings of the same instant at 20 doctors at
// once: exactly one.
func TestOverlapUnderRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hs := []*commands.Handler{rulesHandler(t, e, 5), rulesHandler(t, e, 5)}
	var docs []commands.DoctorResult
	var starts []time.Time
	for i := range 20 {
		d := e.doctor(t, fmt.Sprintf("overlap%02d", i))
		docs = append(docs, d)
		starts = append(starts, slots(t, d, 1)[0])
	}
	ok, _, overlap := tally(t, raceBookings(t, hs, patient(2), docs, starts))
	if ok != 1 || overlap != 19 {
		t.Fatalf("%d booked, %d refused overlapping_appointment; want 1 and 19", ok, overlap)
	}
}

// TestEndedAppointmentsFreeTheLimit: a cancelled appointment stops
// counting; a refused booking releases its place at once.
func TestEndedAppointmentsFreeTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := rulesHandler(t, e, 2)
	d := e.doctor(t, "freed")
	ss := slots(t, d, 5)
	p := patient(3)
	book := func(at time.Time) (commands.AppointmentResult, error) {
		return h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: at})
	}
	a, err := book(ss[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := book(ss[0]); err == nil { // taken: refused by the doctor's stream...
		t.Fatal("the same slot twice")
	}
	if _, err := book(ss[1]); err != nil { // ...whose place was released at once
		t.Fatalf("second: %v", err)
	}
	if _, err := book(ss[2]); !errors.Is(err, ledger.ErrBookingLimit) {
		t.Fatalf("third: %v", err)
	}
	if _, err := h.CancelAppointment(context.Background(), p, commands.CancelAppointment{DoctorID: d.ID, AppointmentID: a.Appointment.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := book(ss[2]); err != nil {
		t.Fatalf("after a cancellation: %v", err)
	}
}

// TestCrashBetweenLedgerAndDoctor: a crash after the patient's place was
// reserved and before the doctor's append holds the place for the grace
// period, then frees it: the bounded repair.
func TestCrashBetweenLedgerAndDoctor(t *testing.T) {
	t.Parallel()
	cs := &crashingStore{Store: newStore(t)}
	e := newEnvOn(t, cs)
	h := rulesHandler(t, e, 1)
	d := e.doctor(t, "crashy")
	ss := slots(t, d, 2)
	p := patient(4)
	cs.armed.Store(true)
	if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: ss[0]}); !errors.Is(err, errCrash) {
		t.Fatalf("crash: %v", err)
	}
	if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: ss[1]}); !errors.Is(err, ledger.ErrBookingLimit) {
		t.Fatalf("within the grace: %v", err)
	}
	e.clock.Advance(commands.DefaultLedgerGrace)
	if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: ss[1]}); err != nil {
		t.Fatalf("after the grace: %v", err)
	}
}

// TestRescheduleKeepsTheOverlapRule: a patient cannot move an appointment
// onto another of theirs (at another doctor), and a move the doctor's
// stream refuses leaves the old time held.
func TestRescheduleKeepsTheOverlapRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := rulesHandler(t, e, 5)
	a, b := e.doctor(t, "movea"), e.doctor(t, "moveb")
	ss := slots(t, a, 4)
	p := patient(5)
	x, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: a.ID, Start: ss[0]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: b.ID, Start: ss[2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RescheduleAppointment(context.Background(), p, commands.RescheduleAppointment{DoctorID: a.ID, AppointmentID: x.Appointment.ID, Start: ss[2]}); !errors.Is(err, ledger.ErrOverlapping) {
		t.Fatalf("onto my other appointment: %v", err)
	}
	// Another patient takes ss[3] at doctor a; the move there is refused by
	// the doctor's stream and the ledger keeps x at ss[0].
	if _, err := h.ReserveSlot(context.Background(), patient(6), commands.ReserveSlot{PatientName: "Q", DoctorID: a.ID, Start: ss[3]}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RescheduleAppointment(context.Background(), p, commands.RescheduleAppointment{DoctorID: a.ID, AppointmentID: x.Appointment.ID, Start: ss[3]}); err == nil {
		t.Fatal("moved onto a taken slot")
	}
	if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: b.ID, Start: ss[0]}); !errors.Is(err, ledger.ErrOverlapping) {
		t.Fatalf("the old time after a refused move: %v", err)
	}
	if _, err := h.RescheduleAppointment(context.Background(), p, commands.RescheduleAppointment{DoctorID: a.ID, AppointmentID: x.Appointment.ID, Start: ss[1]}); err != nil {
		t.Fatalf("a free time: %v", err)
	}
	if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "P", DoctorID: b.ID, Start: ss[0]}); err != nil {
		t.Fatalf("the time left behind: %v", err)
	}
}

func ids(docs []commands.DoctorResult) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}
