package ledger_test

import (
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/ledger"
	"github.com/prescripto/prescripto/internal/goldentest"
)

// go test ./domain/ledger -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var t0 = time.Date(2031, 3, 3, 4, 0, 0, 0, time.UTC)

func TestGolden(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Run(t, reg, ledger.Events(), []domain.Event{
		ledger.BookingReserved{PatientID: "p-1", AppointmentID: "a-1", DoctorID: "d-1", Start: t0, End: t0.Add(30 * time.Minute), ReservedAt: t0.Add(-time.Hour), KeyID: "6f1c8a52-3b0e-5d4f-9a61-2c7e8b9d0f13"},
		ledger.BookingMoved{PatientID: "p-1", AppointmentID: "a-1", Start: t0.Add(time.Hour), End: t0.Add(90 * time.Minute), MovedAt: t0.Add(-time.Minute)},
		ledger.BookingReleased{PatientID: "p-1", AppointmentID: "a-1", Reason: "ended", ReleasedAt: t0},
		ledger.MoveSettled{PatientID: "p-1", AppointmentID: "a-1", Start: t0, End: t0.Add(30 * time.Minute), SettledAt: t0},
	}, *update)
}

func at(h int) ledger.Entry {
	s := t0.Add(time.Duration(h) * time.Hour)
	return ledger.Entry{AppointmentID: "a" + s.Format("1504"), DoctorID: "d1", Start: s, End: s.Add(30 * time.Minute)}
}

func TestRules(t *testing.T) {
	t.Parallel()
	rules := ledger.Rules{MaxLive: 3, Grace: 2 * time.Minute}
	now := t0.Add(-time.Hour)
	l := ledger.New("p1")
	for h := range 3 {
		if err := l.Reserve(at(h+1), rules, now, nil); err != nil {
			t.Fatal(err)
		}
	}
	l.ClearChanges()
	if err := l.Reserve(at(5), rules, now, nil); !errors.Is(err, ledger.ErrBookingLimit) || len(l.Changes()) != 0 {
		t.Fatalf("fourth: %v, changes %v", err, l.Changes())
	}
	if err := l.Reserve(at(1), rules, now, nil); err != nil || len(l.Changes()) != 0 {
		t.Fatalf("the same appointment again: %v %v", err, l.Changes())
	}
	// One of the three ended (cancelled at its doctor's): it is released
	// and the booking taken, in one decision.
	obs := map[string]ledger.Observation{at(1).AppointmentID: {Exists: true, Live: false}}
	if err := l.Reserve(at(5), rules, now, obs); err != nil {
		t.Fatal(err)
	}
	if got := l.Changes(); len(got) != 2 {
		t.Fatalf("changes %v", got)
	}
	// Overlap: another doctor, the same time.
	l.ClearChanges()
	other := at(2)
	other.AppointmentID, other.DoctorID = "b1", "d2"
	obs = map[string]ledger.Observation{}
	if err := l.Reserve(other, ledger.Rules{Grace: time.Minute}, now, obs); !errors.Is(err, ledger.ErrOverlapping) {
		t.Fatalf("overlap: %v", err)
	}
	// A reservation never booked counts within the grace, and not after.
	fresh := ledger.New("p2")
	if err := fresh.Reserve(at(1), rules, now, nil); err != nil {
		t.Fatal(err)
	}
	missing := map[string]ledger.Observation{at(1).AppointmentID: {Exists: false}}
	if err := fresh.Reserve(at(1+0), ledger.Rules{MaxLive: 1, Grace: 2 * time.Minute}, now.Add(time.Minute), missing); err != nil {
		t.Fatal(err) // the same appointment: a retry
	}
	b := at(3)
	if err := fresh.Reserve(b, ledger.Rules{MaxLive: 1, Grace: 2 * time.Minute}, now.Add(time.Minute), missing); !errors.Is(err, ledger.ErrBookingLimit) {
		t.Fatalf("within the grace: %v", err)
	}
	if err := fresh.Reserve(b, ledger.Rules{MaxLive: 1, Grace: 2 * time.Minute}, now.Add(2*time.Minute), missing); err != nil {
		t.Fatalf("after the grace: %v", err)
	}
	// Past appointments do not count.
	past := ledger.New("p3")
	for h := range 3 {
		if err := past.Reserve(at(h+1), rules, now, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := past.Reserve(at(10), rules, t0.Add(4*time.Hour), nil); err != nil {
		t.Fatalf("after the three ended: %v", err)
	}
}

func TestMove(t *testing.T) {
	t.Parallel()
	rules := ledger.Rules{MaxLive: 5, Grace: time.Minute}
	now := t0.Add(-time.Hour)
	l := ledger.New("p1")
	a, b := at(1), at(3)
	for _, e := range []ledger.Entry{a, b} {
		if err := l.Reserve(e, rules, now, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Move(a.AppointmentID, "d1", b.Start, b.End, rules, now, nil); !errors.Is(err, ledger.ErrOverlapping) {
		t.Fatalf("onto another: %v", err)
	}
	l.ClearChanges()
	if err := l.Move(a.AppointmentID, "d1", a.Start.Add(30*time.Minute), a.End.Add(30*time.Minute), rules, now, nil); err != nil || len(l.Changes()) != 1 {
		t.Fatalf("move: %v %v", err, l.Changes())
	}
	// Unknown to the ledger (booked before it kept them): reserved.
	l.ClearChanges()
	if err := l.Move("old", "d1", t0.Add(8*time.Hour), t0.Add(8*time.Hour+30*time.Minute), rules, now, nil); err != nil || !l.Has("old") {
		t.Fatalf("unknown: %v %v", err, l.Changes())
	}
}

func TestUnsettledMoveHoldsBothTimes(t *testing.T) {
	t.Parallel()
	rules := ledger.Rules{MaxLive: 5, Grace: time.Minute}
	now := t0.Add(-time.Hour)
	l := ledger.New("p1")
	a := at(1)
	if err := l.Reserve(a, rules, now, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(a.AppointmentID, "d1", t0.Add(5*time.Hour), t0.Add(5*time.Hour+30*time.Minute), rules, now, nil); err != nil {
		t.Fatal(err)
	}
	// Until settled, the old time is held too.
	if err := l.Reserve(withID(at(1), "b"), rules, now, nil); !errors.Is(err, ledger.ErrOverlapping) {
		t.Fatalf("the old time while the move is open: %v", err)
	}
	l.Settle(a.AppointmentID, t0.Add(5*time.Hour), t0.Add(5*time.Hour+30*time.Minute), now)
	if err := l.Reserve(withID(at(1), "b"), rules, now, nil); err != nil {
		t.Fatalf("the old time after the move settled: %v", err)
	}
}

func withID(e ledger.Entry, id string) ledger.Entry { e.AppointmentID = id; return e }
