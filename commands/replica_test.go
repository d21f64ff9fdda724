package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/ledger"
)

// Two handlers on one store stand for two api replicas. Each caches the
// doctor's decided state; a command refused on that cache must look at the
// stream before answering, since the other replica may have changed it.

func TestRefusalOnAStaleCacheCatchesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "replicas")
	ss := slots(t, d, 2)
	a, b := e.h, e.handler(t)
	ctx := context.Background()
	// Both replicas have the doctor cached.
	for _, h := range []*commands.Handler{a, b} {
		if err := h.Doctor(ctx, d.ID, func(*doctor.Doctor) {}); err != nil {
			t.Fatal(err)
		}
	}

	// Booked through B, cancelled through A: A has never seen the
	// appointment.
	booked, err := b.ReserveSlot(ctx, patient(1), commands.ReserveSlot{PatientName: "P One", DoctorID: d.ID, Start: ss[0]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CancelAppointment(ctx, patient(1), commands.CancelAppointment{DoctorID: d.ID, AppointmentID: booked.Appointment.ID, Reason: "plans changed"}); err != nil {
		t.Fatalf("cancel through the replica that did not book: %v", err)
	}

	// Booked through A, cancelled through B, booked again through A: A's
	// cache still holds the slot as taken.
	first, err := a.ReserveSlot(ctx, patient(2), commands.ReserveSlot{PatientName: "P Two", DoctorID: d.ID, Start: ss[1]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CancelAppointment(ctx, patient(2), commands.CancelAppointment{DoctorID: d.ID, AppointmentID: first.Appointment.ID}); err != nil {
		t.Fatalf("cancel through the other replica: %v", err)
	}
	again, err := a.ReserveSlot(ctx, patient(3), commands.ReserveSlot{PatientName: "P Three", DoctorID: d.ID, Start: ss[1]})
	if err != nil {
		t.Fatalf("book a slot freed through the other replica: %v", err)
	}

	// A refusal that holds on the stored state is still a refusal.
	if _, err := b.ReserveSlot(ctx, patient(4), commands.ReserveSlot{PatientName: "P Four", DoctorID: d.ID, Start: ss[1]}); !errors.Is(err, doctor.ErrSlotUnavailable) {
		t.Fatalf("booking a taken slot: %v; want slot unavailable", err)
	}
	live := e.fold(t, d.ID).LiveAppointments()
	if len(live) != 1 || live[0].ID != again.Appointment.ID {
		t.Fatalf("live appointments folded from the log: %v; want only %s", live, again.Appointment.ID)
	}
}

// A refusal on current state costs one read of the stream's tail, never a
// fold of the whole stream.
func TestRefusalReadsOnlyTheTail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "tail")
	cs := &countingStore{Store: e.store}
	h, err := commands.New(commands.Config{Store: cs, Registry: e.reg, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	slot := slots(t, d, 1)[0]
	if _, err := h.ReserveSlot(context.Background(), patient(1), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: slot}); err != nil {
		t.Fatal(err)
	}
	before := cs.reads.Load()
	for i := range 10 {
		if _, err := h.ReserveSlot(context.Background(), patient(2+i), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: slot}); !errors.Is(err, doctor.ErrSlotUnavailable) {
			t.Fatalf("got %v", err)
		}
	}
	if got := cs.reads.Load() - before; got != 10 {
		t.Fatalf("10 refusals read the stream %d times; want 10 (one tail read each)", got)
	}
	if got := cs.fromZero.Load(); got != 1 {
		t.Fatalf("%d reads from revision 0; want 1 (the first load)", got)
	}
}

// Uncontested bookings never fail because another replica books the same
// doctor at the same time: conflicts are retried (with a jittered
// back-off) until they go through.
func TestTwoReplicasBookDistinctSlotsOfOneDoctor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "two-replicas")
	obs := &counter{}
	hs := [2]*commands.Handler{}
	for i := range hs {
		h, err := commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	const n = 40
	ss := slots(t, d, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if _, err := hs[i%2].ReserveSlot(context.Background(), patient(i), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: ss[i]}); err != nil {
				failed.Add(1)
				t.Errorf("booking %d through replica %d: %v", i, i%2, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if live := e.fold(t, d.ID).LiveAppointments(); len(live) != n {
		t.Fatalf("%d live appointments folded from the log; want %d", len(live), n)
	}
	t.Logf("%d bookings over two replicas: %d retries, %d gave up", n, obs.retries.Load(), obs.conflicts.Load())
}

// bcrypt compares only the first 72 bytes of a password: a longer password
// that starts with the right 72 bytes does not log in.
func TestLoginRefusesPasswordsOver72Bytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pw := strings.Repeat("p", 72)
	if _, err := e.h.RegisterPatient(context.Background(), commands.Meta{Actor: domain.System}, "Long Pass", "long@example.com", pw); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.Login(context.Background(), "long@example.com", pw); err != nil {
		t.Fatalf("the 72-byte password: %v", err)
	}
	if _, err := e.h.Login(context.Background(), "long@example.com", pw+"anything"); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("the same 72 bytes and more: %v; want invalid credentials", err)
	}
}

// A full-width look-alike of an address is that address: one account.
func TestLookAlikeEmailsAreOneAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sys := commands.Meta{Actor: domain.System}
	if _, err := e.h.RegisterPatient(context.Background(), sys, "Asha Rao", "asha@example.com", "password-1"); err != nil {
		t.Fatal(err)
	}
	const wide = "ＡＳＨＡ＠ｅｘａｍｐｌｅ．ｃｏｍ"
	if _, err := e.h.RegisterPatient(context.Background(), sys, "Mallory", wide, "password-2"); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("registering the full-width look-alike: %v; want email taken", err)
	}
	if acc, err := e.h.Login(context.Background(), wide, "password-1"); err != nil || acc.Email != "asha@example.com" {
		t.Fatalf("login with the look-alike: %+v %v", acc, err)
	}
}

// A command that decides to change nothing ("already there") is as much an
// answer about the stream as a refusal: on a stale cache it must look at
// the stream first. Here an appointment moves from ss[1] to ss[0] through
// A, and back to ss[1] through B, which still has it at ss[1]: without a
// look B answers "done" and appends nothing, leaving ss[0] taken for good
// (a linearizability history of the fault suite caught this), and the
// patient's ledger at the wrong time.
func TestNoChangeOnAStaleCacheCatchesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := rulesHandler(t, e, 5), rulesHandler(t, e, 5)
	d, other := e.doctor(t, "noop-replicas"), e.doctor(t, "noop-other")
	ss := slots(t, d, 3)
	ctx := context.Background()
	p := patient(1)
	x, err := a.ReserveSlot(ctx, p, commands.ReserveSlot{PatientName: "P One", DoctorID: d.ID, Start: ss[1]})
	if err != nil {
		t.Fatal(err)
	}
	// B caches the doctor with x at ss[1].
	if err := b.Doctor(ctx, d.ID, func(*doctor.Doctor) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RescheduleAppointment(ctx, p, commands.RescheduleAppointment{DoctorID: d.ID, AppointmentID: x.Appointment.ID, Start: ss[0]}); err != nil {
		t.Fatal(err)
	}
	back, err := b.RescheduleAppointment(ctx, p, commands.RescheduleAppointment{DoctorID: d.ID, AppointmentID: x.Appointment.ID, Start: ss[1]})
	if err != nil {
		t.Fatalf("move back through the replica that did not see the first move: %v", err)
	}
	if !back.Appointment.Start.Equal(ss[1]) {
		t.Fatalf("answered start %v; want %v", back.Appointment.Start, ss[1])
	}
	if got, ok := e.fold(t, d.ID).Appointment(x.Appointment.ID); !ok || !got.Start.Equal(ss[1]) {
		t.Fatalf("stored appointment at %v; want %v", got.Start, ss[1])
	}
	// ss[0] is free again, for another patient through either replica.
	if _, err := a.ReserveSlot(ctx, patient(2), commands.ReserveSlot{PatientName: "P Two", DoctorID: d.ID, Start: ss[0]}); err != nil {
		t.Fatalf("the slot left behind: %v", err)
	}
	// The patient's ledger holds ss[1]'s time, not ss[0]'s.
	if _, err := b.ReserveSlot(ctx, p, commands.ReserveSlot{PatientName: "P One", DoctorID: other.ID, Start: ss[0]}); err != nil {
		t.Fatalf("the time the appointment left, at another doctor: %v", err)
	}
	if _, err := b.ReserveSlot(ctx, p, commands.ReserveSlot{PatientName: "P One", DoctorID: other.ID, Start: ss[1]}); !errors.Is(err, ledger.ErrOverlapping) {
		t.Fatalf("the appointment's time, at another doctor: %v; want overlapping", err)
	}
}
