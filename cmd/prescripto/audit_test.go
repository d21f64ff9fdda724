package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/sqlite"
)

// seedLog writes a doctor stream with two appointments into the embedded
// store of dir: registered, a1 booked, a2 booked, a1 cancelled.
func seedLog(t *testing.T, dir string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2031, 3, 1, 8, 0, 0, 0, time.UTC)
	reserve := func(id string, start time.Time) domain.Event {
		return doctor.SlotReserved{DoctorID: "d1", AppointmentID: id, PatientID: "p1", Start: start, End: start.Add(time.Hour),
			Status: doctor.StatusConfirmed, Currency: "INR", PaymentStatus: doctor.PaymentNotRequired, ReservedAt: at}
	}
	evs := []domain.Event{
		doctor.DoctorRegistered{DoctorID: "d1", Profile: doctor.Profile{Name: "Dr One", Currency: "INR", Available: true}, RegisteredAt: at},
		reserve("a1", at.Add(24*time.Hour)), reserve("a2", at.Add(25*time.Hour)),
		doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: "a1", CancelledBy: domain.RolePatient, CancelledAt: at},
	}
	for i, e := range evs {
		b, _ := domain.Encode(e)
		md, _ := json.Marshal(domain.Metadata{Actor: domain.Actor{UserID: "p1", Role: domain.RolePatient}, CorrelationID: "c", OccurredAt: at})
		exp := eventstore.NoStream
		if i > 0 {
			exp = eventstore.Exact(uint64(i - 1))
		}
		if _, err := st.Append(context.Background(), doctor.StreamID("d1"), exp, []eventstore.EventData{{ID: uuid.New(), Type: e.EventType(), Data: b, Metadata: md}}); err != nil {
			t.Fatal(err)
		}
	}
}

// lines parses JSON lines into their type and position.
func lines(t *testing.T, out string) (types []string, positions []uint64) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e struct {
			Type     string `json:"type"`
			Position uint64 `json:"position"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		types, positions = append(types, e.Type), append(positions, e.Position)
	}
	return types, positions
}

func TestHistoryPrintsTheAppointmentsEvents(t *testing.T) {
	dir := t.TempDir()
	seedLog(t, dir)
	var out, errb bytes.Buffer
	if err := run([]string{"history", "--appointment", "a1", "--data", dir}, &out, &errb); err != nil {
		t.Fatalf("history: %v (%s)", err, errb.String())
	}
	types, positions := lines(t, out.String())
	if strings.Join(types, ",") != doctor.TypeSlotReserved+","+doctor.TypeAppointmentCancelled || positions[0] != 2 || positions[1] != 4 {
		t.Fatalf("history of a1: %v %v", types, positions)
	}
	out.Reset()
	if err := run([]string{"history", "--appointment", "nope", "--data", dir}, &out, &errb); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown appointment: %v", err)
	}
	if err := run([]string{"history", "--data", dir}, &out, &errb); err == nil {
		t.Fatal("history without --appointment succeeded")
	}
}

func TestAuditExportPrintsTheLogAsJSONLines(t *testing.T) {
	dir := t.TempDir()
	seedLog(t, dir)
	var out, errb bytes.Buffer
	if err := run([]string{"audit", "export", "--data", dir}, &out, &errb); err != nil {
		t.Fatalf("export: %v (%s)", err, errb.String())
	}
	if _, positions := lines(t, out.String()); len(positions) != 4 || positions[3] != 4 {
		t.Fatalf("export: %v", positions)
	}
	out.Reset()
	if err := run([]string{"audit", "export", "--from", "3", "--stream", "doctor-d1", "--data", dir}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if _, positions := lines(t, out.String()); len(positions) != 2 || positions[0] != 3 {
		t.Fatalf("export --from 3: %v", positions)
	}
}

// projections list and rebuild reach the server of the data dir through
// its admin socket; the rebuild is followed to its end, with its rate.
func TestProjectionsListAndRebuild(t *testing.T) {
	dir := t.TempDir()
	seedLog(t, dir)
	a, _ := startEmbedded(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveAdminSocket(ctx, dir, a, zerolog.Nop()) }()
	var out, errb bytes.Buffer
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out.Reset()
		if err = run([]string{"projections", "list", "--data", dir}, &out, &errb); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(out.String(), "appointments") || !strings.Contains(out.String(), "POSITION") {
		t.Fatalf("projections list: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"projections", "rebuild", "appointments", "--data", dir}, &out, &errb); err != nil {
		t.Fatalf("projections rebuild: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "appointments rebuilt and swapped in") || !strings.Contains(out.String(), "events/s") {
		t.Fatalf("projections rebuild said:\n%s", out.String())
	}
	out.Reset()
	if err := run([]string{"projections", "list", "--data", dir}, &out, &errb); err != nil || !strings.Contains(out.String(), "events/s") {
		t.Fatalf("projections list after the rebuild: %v\n%s", err, out.String())
	}
	if err := run([]string{"projections", "rebuild", "nothing", "--data", dir}, &out, &errb); err == nil {
		t.Fatal("rebuild of an unknown projection succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestProgressLine(t *testing.T) {
	if got := progressLine(45, 100, 10, false); got != " 45% 45/100 10 events/s ETA 6s" {
		t.Errorf("plain: %q", got)
	}
	if got := progressLine(50, 100, 0, true); !strings.HasPrefix(got, "[###############               ]  50% 50/100 0 events/s ETA -") {
		t.Errorf("bar: %q", got)
	}
}
