package app_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/testenv"
)

// TestReadModelsRestartFromSavedState: the in-memory read models save their
// state in the data dir and a restart replays only the log after it. From
// the state saved at a clean stop, from an older state with a tail of
// cancellations, reschedules, payments, schedule and profile changes and
// an erasure after it (a crash after a save), beside the torn file of a
// save the crash interrupted, and from damaged, cut or missing states, a
// restart answers every read as the models that applied the whole log
// once did; the erased patient reads "[erased]" from every state; and no
// saved state holds a patient's data in the clear.
func TestReadModelsRestartFromSavedState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	states := filepath.Join(dir, app.ReadModelsDir)
	clock := testenv.NewClock(testenv.DefaultNow)
	// Mails leave the system (see TestErasure): keep them out of the dir.
	box := &mailbox{}
	e1 := testenv.Start(t, testenv.Options{DataDir: dir, Clock: clock, Mailer: box})
	ctx := context.Background()

	x := e1.NewDoctor(t, "Dr. Stateful Xavier", "General physician")
	y := e1.NewDoctor(t, "Dr. Stateful Yara", "Dermatologist")
	setSchedule := func(e *testenv.Env, doctorID string, slot int, policy string) {
		weekly := []map[string]any{}
		for wd := 1; wd <= 7; wd++ {
			weekly = append(weekly, map[string]any{"weekday": wd, "start": "08:00", "end": "18:00"})
		}
		e.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + doctorID + "/schedule", Token: e.AdminToken, Body: map[string]any{
			"timezone": testenv.Zone, "slotMinutes": slot, "bookingWindowDays": 20, "minNoticeMinutes": 0, "paymentPolicy": policy, "weekly": weekly,
		}}).Must(t, http.StatusOK)
	}
	setSchedule(e1, x.ID, 30, "optional")
	// The patient erased later: values found nowhere else.
	secretName, secretReason := "Ottoline Vexbramble", "the quokka bit my thumb"
	p := e1.Register(t, secretName)
	q := e1.Register(t, "Quentin Keeps")
	var appts []string
	book := func(e *testenv.Env, tok, doc string, at time.Time) testenv.Appointment {
		a := e.MustBook(t, tok, doc, at)
		appts = append(appts, a.ID)
		return a
	}
	pay := func(e *testenv.Env, doctorID string, a testenv.Appointment) {
		t.Helper()
		order := "order_" + strings.ReplaceAll(a.ID, "-", "")[:14]
		m := commands.Meta{Actor: domain.System, CorrelationID: "state-test"}
		if _, err := e.App.Commands.CreatePaymentOrder(ctx, m, commands.CreatePaymentOrder{DoctorID: doctorID, AppointmentID: a.ID, Order: doctor.Order{ID: order, Amount: a.Fees, Currency: "INR"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.App.Commands.CapturePayment(ctx, m, commands.CapturePayment{DoctorID: doctorID, AppointmentID: a.ID, PaymentID: "pay_" + order[6:], OrderID: order, Amount: a.Fees, Currency: "INR"}); err != nil {
			t.Fatal(err)
		}
	}
	pa1 := book(e1, p.Token, x.ID, testenv.At(1, 10, 0))
	pa2 := book(e1, p.Token, y.ID, testenv.At(1, 11, 0))
	qa1 := book(e1, q.Token, x.ID, testenv.At(1, 10, 30))
	qa2 := book(e1, q.Token, y.ID, testenv.At(2, 11, 0))
	pay(e1, x.ID, pa1)
	e1.CaughtUp(t)
	e1.App.SaveReadModels(ctx)
	older := map[string][]byte{}
	for _, name := range []string{"doctors", "free_slots", "appointments", "analytics"} {
		b, err := os.ReadFile(filepath.Join(states, name+".state"))
		if err != nil {
			t.Fatalf("no saved state of %s: %v", name, err)
		}
		older[name] = b
	}

	// The tail: everything that changes an appointment, a doctor or a
	// patient, ending with the erasure.
	pay(e1, x.ID, qa1)
	e1.Post(t, "/appointments/"+pa2.ID+"/cancel", p.Token, map[string]string{"reason": secretReason}).Must(t, http.StatusOK)
	e1.Post(t, "/appointments/"+qa2.ID+"/reschedule", q.Token, map[string]string{"start": testenv.RFC3339(testenv.At(2, 12, 0))}).Must(t, http.StatusOK)
	setSchedule(e1, y.ID, 15, "none")
	e1.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + x.ID, Token: e1.AdminToken, Body: map[string]any{"fees": 65000, "about": "Renamed."}}).Must(t, http.StatusOK)
	pa3 := book(e1, p.Token, y.ID, testenv.At(3, 9, 15))
	book(e1, q.Token, y.ID, testenv.At(3, 9, 30))
	_ = pa3
	e1.Post(t, "/admin/patients/"+p.User.ID+"/erase", e1.AdminToken, nil).Must(t, http.StatusOK)
	e1.CaughtUp(t)
	tokens := map[string]string{"q": q.Token, "x": x.Token, "y": y.Token, "admin": e1.AdminToken}
	want := readAllAnalytics(t, e1, tokens, []string{x.ID, y.ID}, appts)
	if !strings.Contains(want["appointment "+pa2.ID], `"cancelReason":"[erased]"`) || !strings.Contains(want["appointment "+pa1.ID], `"patientName":"[erased]"`) {
		t.Fatalf("the erasure does not show before any restart: %s", want["appointment "+pa2.ID])
	}
	if !strings.Contains(want["analytics bookings by doctor"], x.ID) {
		t.Fatalf("the analytics count no booking of %s: %s", x.ID, want["analytics bookings by doctor"])
	}
	e1.Stop() // saves the states once more

	restart := func(what string) {
		t.Helper()
		e := testenv.Start(t, testenv.Options{DataDir: dir, Clock: clock, Mailer: box})
		e.CaughtUp(t)
		tokens["admin"] = e.AdminToken
		diffReads(t, what, readAllAnalytics(t, e, tokens, []string{x.ID, y.ID}, appts), want)
		e.Stop()
	}
	restart("from the state saved at the stop")

	// A crash after the older save: its states, the tail to replay, and
	// the torn temporary file of the save that the crash interrupted.
	for name, b := range older {
		if err := os.WriteFile(filepath.Join(states, name+".state"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(states, ".tmp-4242"), older["appointments"][:len(older["appointments"])/2], 0o600); err != nil {
		t.Fatal(err)
	}
	restart("from the older states and the tail")
	if _, err := os.Stat(filepath.Join(states, ".tmp-4242")); !os.IsNotExist(err) {
		t.Errorf("the torn file of an interrupted save is still there (%v)", err)
	}

	// Damaged: cut short, a byte changed, another shape; then none at all.
	damage := map[string]func([]byte) []byte{
		"appointments": func(b []byte) []byte { return b[:len(b)-9] },
		"free_slots": func(b []byte) []byte {
			b = append([]byte(nil), b...)
			b[len(b)/2] ^= 0x40
			return b
		},
		"doctors":   func([]byte) []byte { return []byte("PRSTATE1\n\x07doctors\x63\x05") },
		"analytics": func(b []byte) []byte { return b[:len(b)/3] },
	}
	for name, f := range damage {
		if err := os.WriteFile(filepath.Join(states, name+".state"), f(older[name]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	restart("from damaged states")
	if err := os.RemoveAll(states); err != nil {
		t.Fatal(err)
	}
	restart("with no saved state (a full replay)")

	// Nothing of the erased patient is readable in the data dir, saved
	// states included.
	for _, s := range []string{secretName, secretReason} {
		for _, hit := range grepDir(t, dir, s) {
			t.Errorf("%q is readable in %s", s, hit)
		}
	}
	// Nor of the other patient in a saved state: names are kept sealed.
	for _, hit := range grepDir(t, states, "Quentin Keeps") {
		t.Errorf("a patient's name is readable in %s", hit)
	}
}

// readAllAnalytics is readAll with the analysts' reports (bookings under
// every grouping) over the days the test books.
func readAllAnalytics(t *testing.T, e *testenv.Env, tokens map[string]string, doctorIDs, apptIDs []string) reads {
	t.Helper()
	out := readAll(t, e, tokens, doctorIDs, apptIDs)
	span := "?from=" + testenv.Date(-1) + "&to=" + testenv.Date(5)
	for _, g := range []string{"day", "doctor", "speciality"} {
		out["analytics bookings by "+g] = string(e.Get(t, "/analytics/bookings"+span+"&groupBy="+g, tokens["admin"]).Must(t, http.StatusOK).Body)
	}
	out["analytics utilisation"] = string(e.Get(t, "/analytics/utilisation"+span, tokens["admin"]).Must(t, http.StatusOK).Body)
	return out
}
