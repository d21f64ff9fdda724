package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/testenv"
)

// TestDoubleBookingRace: 200 registered patients race over HTTP for 20
// slots of one doctor, ten per slot, all released at once. Exactly one
// booking per slot wins (20 × 201), the rest are told slot_unavailable
// (180 × 409), and both read models agree once they have caught up.
func TestDoubleBookingRace(t *testing.T) {
	t.Parallel()
	doubleBookingRace(t, testenv.Options{})
}

// doubleBookingRace is TestDoubleBookingRace's body on the engine o starts.
func doubleBookingRace(t *testing.T, o testenv.Options) {
	const patients, slots = 200, 20
	e := testenv.Start(t, o)
	d := e.NewDoctor(t, "Dr. Christopher Lee", "Pediatricians")

	tokens := make([]string, patients)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			r := e.Post(t, "/auth/register", "", map[string]string{
				"name": "Racer", "email": e.Unique("racer") + "@example.test", "password": testenv.Password,
			})
			var a testenv.AuthResult
			if r.Expect(t, http.StatusCreated).Status == http.StatusCreated && json.Unmarshal(r.Body, &a) == nil {
				tokens[i] = a.Token
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	starts := make([]time.Time, slots)
	for i := range starts {
		starts[i] = testenv.At(1, 10, 0).Add(time.Duration(i) * 30 * time.Minute) // 10:00 ... 19:30
	}
	type outcome struct {
		status int
		code   string
		appt   testenv.Appointment
	}
	results := make([]outcome, patients)
	release := make(chan struct{})
	var ready sync.WaitGroup
	ready.Add(patients)
	for i := range patients {
		wg.Go(func() {
			ready.Done()
			<-release
			r := e.Book(t, tokens[i], d.ID, starts[i%slots])
			results[i].status = r.Status
			switch r.Status {
			case http.StatusCreated:
				_ = json.Unmarshal(r.Body, &results[i].appt)
			case http.StatusConflict:
				results[i].code = r.CheckProblem(t, http.StatusConflict, "slot_unavailable").Code
			}
		})
	}
	ready.Wait()
	close(release)
	wg.Wait()

	winners := map[time.Time][]testenv.Appointment{}
	var created, conflicts int
	var maxPos uint64
	for i, o := range results {
		switch {
		case o.status == http.StatusCreated:
			created++
			if !o.appt.Start.Equal(starts[i%slots]) || o.appt.Status != "confirmed" {
				t.Errorf("patient %d got %+v, asked for %v", i, o.appt, starts[i%slots])
			}
			winners[o.appt.Start] = append(winners[o.appt.Start], o.appt)
			maxPos = max(maxPos, o.appt.Position)
		case o.status == http.StatusConflict && o.code == "slot_unavailable":
			conflicts++
		default:
			t.Errorf("patient %d: status %d code %q", i, o.status, o.code)
		}
	}
	if created != slots || conflicts != patients-slots {
		t.Fatalf("%d × 201 and %d × 409 slot_unavailable, want %d and %d", created, conflicts, slots, patients-slots)
	}
	for _, s := range starts {
		if n := len(winners[s]); n != 1 {
			t.Errorf("slot %v has %d winners", s, n)
		}
	}

	if o.Production {
		// On the production wiring (FerretDB under the race detector,
		// Redis Streams delivering one entry per round trip) the ~400
		// events of the burst take the read models about 4 s to apply
		// (over 10 s with other test packages running), beyond the API's
		// 2 s X-Min-Position bound: wait for them first.
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		start := time.Now()
		if err := e.App.CaughtUp(ctx); err != nil {
			t.Fatalf("CaughtUp: %v", err)
		}
		t.Logf("production read models caught up with the burst in %v", time.Since(start).Round(time.Millisecond))
	}
	// Read your writes: the free-slot model no longer lists any of them.
	free := e.FreeSlots(t, d.ID, testenv.Date(1), 1, maxPos)
	for _, s := range starts {
		if free.Has(s) {
			t.Errorf("booked slot %v still listed free", s)
		}
	}
	if n := len(free.Days[0].Slots); n != 22-slots {
		t.Errorf("%d free slots left that day, want %d", n, 22-slots)
	}

	// And the appointments model holds each slot exactly once.
	e.CaughtUp(t)
	list := e.Appointments(t, e.AdminToken, "limit=200&doctorId="+d.ID, maxPos)
	held := map[time.Time][]string{}
	for _, a := range list.Appointments {
		if a.DoctorID != d.ID {
			t.Errorf("admin list filtered by doctor returned %+v", a)
		}
		held[a.Start] = append(held[a.Start], a.ID)
	}
	if len(list.Appointments) != slots || list.NextCursor != "" {
		t.Errorf("admin lists %d appointments (cursor %q), want %d", len(list.Appointments), list.NextCursor, slots)
	}
	for _, s := range starts {
		if ids := held[s]; len(ids) != 1 || ids[0] != winners[s][0].ID {
			t.Errorf("slot %v held by %v, want [%s]", s, ids, winners[s][0].ID)
		}
	}
	// Nothing was appended to the doctor's stream for the losers (their
	// patients' ledgers record each place taken and given back).
	last, err := e.App.Store.ReadStream(context.Background(), doctor.StreamID(d.ID), eventstore.EndOfStream, eventstore.Backward, 1)
	if err != nil || len(last) != 1 {
		t.Fatalf("the doctor's last event: %v %v", last, err)
	}
	if last[0].Position != maxPos {
		t.Errorf("the doctor's stream ends at %d after the race, last booking at %d", last[0].Position, maxPos)
	}
	// The log itself: one booking event per slot, the winner's.
	var acked []string
	for _, s := range starts {
		for _, a := range winners[s] {
			acked = append(acked, a.ID)
		}
	}
	checkOneWinnerPerSlotInLog(t, e, d.ID, starts, winners)
	checkAckedEqualsLog(t, "after the race", e, acked)
}

// checkOneWinnerPerSlotInLog: the log holds exactly one booking of doctor
// per slot of starts, and it is the appointment answered 201 for it.
func checkOneWinnerPerSlotInLog(t *testing.T, e *testenv.Env, doctorID string, starts []time.Time, winners map[time.Time][]testenv.Appointment) {
	t.Helper()
	perSlot := map[time.Time][]string{}
	for id, rs := range bookedInLog(t, e) {
		for _, r := range rs {
			if r.DoctorID == doctorID {
				perSlot[r.Start.UTC()] = append(perSlot[r.Start.UTC()], id)
			}
		}
	}
	for _, s := range starts {
		got := perSlot[s.UTC()]
		if len(got) != 1 || len(winners[s]) != 1 || got[0] != winners[s][0].ID {
			t.Errorf("slot %v: booked in the log by %v, answered 201 to %v; want exactly one, the same", s, got, winners[s])
		}
	}
}

// TestRolesTwoAPIReplicasRace: two api processes on the same servers, each
// with its own command cache, take bookings for one doctor at once: per
// slot exactly one wins across both (optimistic concurrency on the
// doctor's stream is the guard between processes), and bookings of
// different slots through both all succeed.
func TestRolesTwoAPIReplicasRace(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true})
	r := e.StartAPIReplica(t)
	d := e.NewDoctor(t, "Dr. Two Replicas", "Cardiologist")
	apis := []*testenv.Env{e, r}

	const patients = 40
	tokens := make([]string, patients)
	for i := range tokens {
		tokens[i] = apis[i%2].Register(t, "Replica Racer").Token
	}
	// Half race for one slot, half take a slot each, all released at once,
	// through both replicas alternately.
	contested := testenv.At(3, 10, 0)
	own := func(i int) time.Time { return testenv.At(3, 11, 0).Add(time.Duration(i) * 30 * time.Minute) }
	status := make([]int, patients)
	appts := make([]testenv.Appointment, patients)
	release := make(chan struct{})
	var wg, ready sync.WaitGroup
	ready.Add(patients)
	for i := range patients {
		wg.Go(func() {
			ready.Done()
			<-release
			start := contested
			if i%2 == 1 {
				start = own(i / 2)
			}
			r := apis[(i/2)%2].Book(t, tokens[i], d.ID, start)
			status[i] = r.Status
			if r.Status == http.StatusCreated {
				if err := json.Unmarshal(r.Body, &appts[i]); err != nil {
					t.Errorf("booking answer %s: %v", r, err)
				}
			}
		})
	}
	ready.Wait()
	close(release)
	wg.Wait()
	var won, lost, ownOK int
	for i, s := range status {
		switch {
		case i%2 == 1 && s == http.StatusCreated:
			ownOK++
		case i%2 == 0 && s == http.StatusCreated:
			won++
		case i%2 == 0 && s == http.StatusConflict:
			lost++
		default:
			t.Errorf("patient %d: %d", i, s)
		}
	}
	if won != 1 || lost != patients/2-1 || ownOK != patients/2 {
		t.Fatalf("contested slot: %d won, %d refused; own slots: %d of %d booked", won, lost, ownOK, patients/2)
	}
	// Per slot, the log has exactly one booking: the one answered 201.
	starts := []time.Time{contested}
	winners := map[time.Time][]testenv.Appointment{}
	var acked []string
	for i, a := range appts {
		if status[i] == http.StatusCreated {
			winners[a.Start] = append(winners[a.Start], a)
			acked = append(acked, a.ID)
		}
		if i%2 == 1 {
			starts = append(starts, own(i/2))
		}
	}
	checkOneWinnerPerSlotInLog(t, e, d.ID, starts, winners)
	checkAckedEqualsLog(t, "after the two-replica race", e, acked)
	// Both replicas read the same outcome once the projector caught up.
	e.CaughtUp(t)
	for _, api := range apis {
		list := api.Appointments(t, api.AdminToken, "limit=100&doctorId="+d.ID, e.Head(t))
		if len(list.Appointments) != 1+patients/2 {
			t.Errorf("%s lists %d appointments, want %d", api.URL, len(list.Appointments), 1+patients/2)
		}
	}
}
