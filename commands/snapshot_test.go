//go:build unix

package commands_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/snapshot"
)

// A cold load starts from the newest snapshot and reads only the events
// after it; the state it reaches is the fold of the whole stream, and a
// keyed retry of a command stored before the snapshot is still recognised.
func TestColdLoadStartsFromASnapshot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	d := e.benchDoctor(t, "snap")
	all := benchSlots(t)
	m := patient(1)
	m.IdempotencyKey = "book-before-the-snapshot"
	first, err := e.h.ReserveSlot(ctx, m, commands.ReserveSlot{PatientName: "Keyed Patient", DoctorID: d.ID, Start: all[0]})
	if err != nil {
		t.Fatal(err)
	}
	free := buildHistory(t, e, d.ID, all[1:], 2*commands.SnapshotEvery)

	snaps := snapshot.NewMemory()
	newHandler := func(st *countingStore) *commands.Handler {
		h, err := commands.New(commands.Config{Store: st, Registry: e.reg, Now: e.clock.Now, Snapshots: snaps})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// The first cold load folds the whole stream and saves a snapshot.
	h1 := newHandler(&countingStore{Store: e.store})
	if _, err := h1.ReserveSlot(ctx, patient(2), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: free[0]}); err != nil {
		t.Fatal(err)
	}
	if snaps.Len() != 1 {
		t.Fatalf("%d snapshots after a cold load of %d events, want 1", snaps.Len(), 2*commands.SnapshotEvery)
	}
	// Another process starts from it.
	cs := &countingStore{Store: e.store}
	h2 := newHandler(cs)
	again, err := h2.ReserveSlot(ctx, m, commands.ReserveSlot{PatientName: "Keyed Patient", DoctorID: d.ID, Start: all[0]})
	if err != nil || again.Appointment.ID != first.Appointment.ID || again.Position != first.Position {
		t.Fatalf("keyed retry after the snapshot: %s@%d %v, want %s@%d", again.Appointment.ID, again.Position, err, first.Appointment.ID, first.Position)
	}
	if n := cs.fromZero.Load(); n != 0 {
		t.Fatalf("the cold load read the stream from revision 0 %d times", n)
	}
	if _, err := h2.ReserveSlot(ctx, patient(3), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: free[0]}); err == nil {
		t.Fatal("a slot booked after the snapshot was booked again")
	}
	if _, err := h2.ReserveSlot(ctx, patient(3), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: free[1]}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := h2.Doctor(ctx, d.ID, func(d *doctor.Doctor) { got, _ = d.MarshalSnapshot() }); err != nil {
		t.Fatal(err)
	}
	want, _ := e.fold(t, d.ID).MarshalSnapshot()
	if !bytes.Equal(got, want) {
		t.Fatal("the state loaded from the snapshot differs from the fold of the whole stream")
	}
}

// A snapshot that does not name an event of this log (another log's, or
// one from before the log was replaced) is ignored: the stream is folded.
func TestSnapshotOfAnotherLogIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	snaps := snapshot.NewMemory()
	a := newEnv(t)
	d := a.benchDoctor(t, "twin")
	buildHistory(t, a, d.ID, benchSlots(t), commands.SnapshotEvery)
	ha, err := commands.New(commands.Config{Store: a.store, Registry: a.reg, Now: a.clock.Now, Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	if err := ha.Doctor(ctx, d.ID, func(*doctor.Doctor) {}); err != nil || snaps.Len() != 1 {
		t.Fatalf("load: %v, %d snapshots", err, snaps.Len())
	}
	// The same stream name in another log, shorter: the snapshot's revision
	// is not there.
	b := newEnv(t)
	reg := doctor.DoctorRegistered{DoctorID: d.ID, Profile: doctor.Profile{Name: "Other", Currency: "INR", Available: true}, RegisteredAt: t0}
	data, _ := domain.Encode(reg)
	if _, err := b.store.Append(ctx, doctor.StreamID(d.ID), eventstore.NoStream, []eventstore.EventData{{ID: uuid.New(), Type: reg.EventType(), Data: data, Metadata: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	hb, err := commands.New(commands.Config{Store: b.store, Registry: b.reg, Now: b.clock.Now, Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	var name string
	if err := hb.Doctor(ctx, d.ID, func(d *doctor.Doctor) { name = d.Profile().Name }); err != nil || name != "Other" {
		t.Fatalf("the other log's doctor: %q %v", name, err)
	}
}

// Two processes sharing a snapshot directory race for the same slots of a
// doctor whose cold loads start from a snapshot (and whose version
// conflicts reload from it): each slot is booked exactly once, and the
// state both reach is the fold of the stream.
func TestTwoProcessesRaceFromSnapshots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	d := e.benchDoctor(t, "race")
	free := buildHistory(t, e, d.ID, benchSlots(t), commands.SnapshotEvery+10)
	dir, err := snapshot.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]*commands.Handler, 2)
	for i := range hs {
		if hs[i], err = commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Snapshots: dir}); err != nil {
			t.Fatal(err)
		}
	}
	const slots, tries = 10, 4 // each slot tried by 4 goroutines, 2 in each process
	wins := make([]atomic.Int32, slots)
	var wg sync.WaitGroup
	for s := range slots {
		for k := range tries {
			wg.Go(func() {
				h := hs[k%2]
				_, err := h.ReserveSlot(ctx, patient(100+s*tries+k), commands.ReserveSlot{PatientName: "P", DoctorID: d.ID, Start: free[s]})
				switch {
				case err == nil:
					wins[s].Add(1)
				case errors.Is(err, doctor.ErrSlotUnavailable), errors.Is(err, commands.ErrConcurrency):
				default:
					t.Errorf("slot %d: %v", s, err)
				}
			})
		}
	}
	wg.Wait()
	for s := range wins {
		if n := wins[s].Load(); n != 1 {
			t.Errorf("slot %d booked %d times", s, n)
		}
	}
	want, _ := e.fold(t, d.ID).MarshalSnapshot()
	for i, h := range hs {
		var got []byte
		if err := h.Doctor(ctx, d.ID, func(d *doctor.Doctor) { got, _ = d.MarshalSnapshot() }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("process %d's state differs from the fold of the stream", i)
		}
	}
}
