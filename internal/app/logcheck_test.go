package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

// The fault tests' final checks, against the log rather than against
// another read model: what the clients were told (201 and an id) is what
// the event store holds, and the read models are what a fresh replay of
// that log gives.

// logEvents reads the whole log through the store and decodes it with the
// engine's registry (events of unknown types are skipped, as the readers
// skip them).
func logEvents(t *testing.T, e *testenv.Env) []projections.Event {
	t.Helper()
	ctx := context.Background()
	var out []projections.Event
	var after uint64
	for {
		recs, err := e.App.Store.ReadAll(ctx, after, 1000)
		if err != nil {
			t.Fatalf("ReadAll after %d: %v", after, err)
		}
		for _, rec := range recs {
			after = rec.Position
			ev, err := projections.Decode(e.App.Registry, rec)
			if errors.Is(err, domain.ErrUnknownEventType) {
				continue
			}
			if err != nil {
				t.Fatalf("decode %s@%d: %v", rec.StreamID, rec.Revision, err)
			}
			out = append(out, ev)
		}
		if len(recs) < 1000 {
			return out
		}
	}
}

// bookedInLog folds the log into the appointments it booked: every
// doctor.SlotReserved, by appointment id, counted (an id booked twice is a
// duplicate the caller reports).
func bookedInLog(t *testing.T, e *testenv.Env) map[string][]doctor.SlotReserved {
	t.Helper()
	out := map[string][]doctor.SlotReserved{}
	for _, ev := range logEvents(t, e) {
		if r, ok := ev.Data.(doctor.SlotReserved); ok {
			out[r.AppointmentID] = append(out[r.AppointmentID], r)
		}
	}
	return out
}

// checkAckedEqualsLog: the set of appointment ids the API answered 201
// for equals the set of appointments booked in the log, each booked
// once. A 201 missing from the log is a lost acknowledged booking; a
// booking in the log nobody was told about is a write the client saw
// fail (its retry would book twice).
func checkAckedEqualsLog(t *testing.T, what string, e *testenv.Env, acked []string) {
	t.Helper()
	inLog := bookedInLog(t, e)
	ackedSet := map[string]bool{}
	for _, id := range acked {
		if ackedSet[id] {
			t.Errorf("%s: appointment %s answered 201 twice", what, id)
		}
		ackedSet[id] = true
		if len(inLog[id]) == 0 {
			t.Errorf("%s: appointment %s was answered 201 but is not booked in the log: an acknowledged booking was lost", what, id)
		}
	}
	var extra []string
	for id, rs := range inLog {
		if len(rs) > 1 {
			t.Errorf("%s: appointment %s booked %d times in the log", what, id, len(rs))
		}
		if !ackedSet[id] {
			extra = append(extra, fmt.Sprintf("%s (doctor %s, %v)", id, rs[0].DoctorID, rs[0].Start))
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		t.Errorf("%s: %d appointments booked in the log were never answered 201: %v", what, len(extra), extra)
	}
	if !t.Failed() {
		t.Logf("%s: the %d appointments answered 201 are exactly the %d booked in the log", what, len(ackedSet), len(inLog))
	}
}

// checkMongoEqualsReplay: the MongoDB read models at mongoURI (caught up
// by the caller) answer every question of probe as the whole log replayed
// into fresh in-memory read models does.
func checkMongoEqualsReplay(t *testing.T, what string, e *testenv.Env, mongoURI string, probe readmodeltest.Probe) {
	t.Helper()
	ctx := context.Background()
	fresh := readmodeltest.Models{}
	dir, slots, appts := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
	fresh.Directory, fresh.Slots, fresh.Appointments, fresh.Dashboards = dir, slots, appts, appts
	replay(t, e, dir, slots, appts)
	models, err := mongo.New(ctx, mongoDatabase(t, mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	got := readmodeltest.Models{Directory: models.Directory, Slots: models.Slots, Appointments: models.Appointments, Dashboards: models.Appointments}
	readmodeltest.SameSnapshot(t, what, readmodeltest.Snapshot(ctx, t, got, probe), readmodeltest.Snapshot(ctx, t, fresh, probe))
}

// appointmentIDs lists the ids of as.
func appointmentIDs(as []testenv.Appointment) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}
