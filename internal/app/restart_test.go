package app_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

// reads is what clients see of the state, by request.
type reads map[string]string

func readAll(t *testing.T, e *testenv.Env, tokens map[string]string, doctorIDs, apptIDs []string) reads {
	t.Helper()
	out := reads{}
	get := func(key, path, token string) {
		r := e.Get(t, path, token).Must(t, http.StatusOK)
		out[key] = string(r.Body)
	}
	get("doctors", "/doctors", "")
	get("specialities", "/specialities", "")
	for _, id := range doctorIDs {
		get("doctor "+id, "/doctors/"+id, "")
		get("slots "+id, "/doctors/"+id+"/slots?from="+testenv.Date(0)+"&days=7", "")
	}
	for name, tok := range tokens {
		get("me "+name, "/me", tok)
		if name != "admin" {
			get("appointments "+name, "/appointments?limit=200", tok)
		}
	}
	get("all appointments", "/appointments?limit=200", tokens["admin"])
	get("admin dashboard", "/admin/dashboard", tokens["admin"])
	for _, id := range apptIDs {
		get("appointment "+id, "/appointments/"+id, tokens["admin"])
	}
	return out
}

func diffReads(t *testing.T, what string, got, want reads) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%s: %s differs:\n got %s\nwant %s", what, k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d reads, want %d", what, len(got), len(want))
	}
}

// TestRestart: an App on a data dir takes traffic and stops; a new App on
// the same data dir answers every read identically once caught up, logins
// and tokens still work, keyed retries are still recognised, and rebuilding
// the projections through the endpoint gives the incremental state again.
func TestRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := testenv.NewClock(testenv.DefaultNow)
	e1 := testenv.Start(t, testenv.Options{DataDir: dir, Clock: clock})

	x := e1.NewDoctor(t, "Dr. Christopher Davis", "General physician")
	y := e1.NewDoctor(t, "Dr. Zoe Kelly", "Gastroenterologist")
	p := e1.Register(t, "Pia Patient")
	q := e1.Register(t, "Quinn Patient")
	var appts []string
	book := func(tok, doc string, at time.Time) testenv.Appointment {
		a := e1.MustBook(t, tok, doc, at)
		appts = append(appts, a.ID)
		return a
	}
	a1 := book(p.Token, x.ID, testenv.At(1, 10, 0))
	book(q.Token, x.ID, testenv.At(1, 10, 30))
	a3 := book(p.Token, y.ID, testenv.At(2, 15, 0))
	a4 := book(q.Token, y.ID, testenv.At(3, 11, 0))
	keyedReq := keyed(bookReq(p.Token, y.ID, testenv.RFC3339(testenv.At(4, 12, 0))), "restart-key")
	r := e1.Do(t, keyedReq).Must(t, http.StatusCreated)
	var k1 testenv.Appointment
	r.Decode(t, &k1)
	appts = append(appts, k1.ID)
	e1.Post(t, "/appointments/"+a1.ID+"/cancel", p.Token, map[string]string{"reason": "travel"}).Must(t, http.StatusOK)
	e1.Post(t, "/appointments/"+a3.ID+"/reschedule", p.Token, map[string]string{"start": testenv.RFC3339(testenv.At(2, 16, 0))}).Must(t, http.StatusOK)
	e1.Post(t, "/doctors/"+y.ID+"/time-off", y.Token, map[string]any{"from": testenv.RFC3339(testenv.At(3, 10, 0)), "to": testenv.RFC3339(testenv.At(3, 13, 0)), "cancelBookings": true}).Must(t, http.StatusCreated)
	e1.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + x.ID + "/schedule", Token: x.Token, Body: map[string]any{
		"timezone": testenv.Zone, "slotMinutes": 15, "bookingWindowDays": 20, "minNoticeMinutes": 0, "paymentPolicy": "optional",
		"weekly": []map[string]any{{"weekday": 2, "start": "08:00", "end": "12:00"}, {"weekday": 2, "start": "14:00", "end": "18:00"}}}}).Must(t, http.StatusOK)
	e1.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + y.ID, Token: e1.AdminToken, Body: map[string]any{"fees": 65000, "about": "Endoscopy."}}).Must(t, http.StatusOK)
	e1.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/me", Token: q.Token, Body: map[string]string{"phone": "+91 99000 11111", "dob": "1985-02-03"}}).Must(t, http.StatusOK)
	booked := e1.MustBook(t, q.Token, x.ID, testenv.At(1, 8, 15)) // on the new 15-minute grid, with payment optional
	appts = append(appts, booked.ID)
	if booked.Payment.Status != "pending" {
		t.Errorf("payment optional booking: payment %q", booked.Payment.Status)
	}
	_ = a4

	tokens := map[string]string{"p": p.Token, "q": q.Token, "x": x.Token, "y": y.Token, "admin": e1.AdminToken}
	e1.CaughtUp(t)
	before := readAll(t, e1, tokens, []string{x.ID, y.ID}, appts)
	headBefore := e1.Head(t)
	e1.Stop()

	e2 := testenv.Start(t, testenv.Options{DataDir: dir, Clock: clock})
	if h := e2.Head(t); h != headBefore {
		t.Fatalf("head %d after the restart, %d before", h, headBefore)
	}
	e2.CaughtUp(t)
	tokens["admin"] = e2.AdminToken // issued at the same instant: same reads
	diffReads(t, "after the restart", readAll(t, e2, tokens, []string{x.ID, y.ID}, appts), before)

	// Logins still work, for every kind of account.
	for _, c := range []struct{ email, role string }{{p.User.Email, "patient"}, {q.User.Email, "patient"}, {x.Email, "doctor"}, {y.Email, "doctor"}, {testenv.AdminEmail, "admin"}} {
		pw := testenv.Password
		if c.role == "admin" {
			pw = testenv.AdminPassword
		}
		if got := e2.Login(t, c.email, pw); got.User.Role != c.role {
			t.Errorf("login of %s after the restart: role %s", c.email, got.User.Role)
		}
	}
	// A keyed retry from before the restart is still recognised.
	r = e2.Do(t, keyedReq).Must(t, http.StatusCreated)
	var k2 testenv.Appointment
	r.Decode(t, &k2)
	if k2.ID != k1.ID || k2.Position != k1.Position {
		t.Errorf("keyed retry after the restart: %s at %d, want %s at %d", k2.ID, k2.Position, k1.ID, k1.Position)
	}
	if h := e2.Head(t); h != headBefore {
		t.Errorf("the retry after the restart appended %d events", h-headBefore)
	}
	// The double-booking guard survives the restart (cold command cache).
	e2.Book(t, q.Token, y.ID, testenv.At(2, 16, 0)).CheckProblem(t, http.StatusConflict, "slot_unavailable")
	// The bootstrap admin is not re-created, whatever ADMIN_PASSWORD says now.
	created, err := e2.App.EnsureAdmin(context.Background(), "Clinic Admin", testenv.AdminEmail, "a-new-password-1")
	if err != nil || created {
		t.Errorf("EnsureAdmin with another password after a restart: created %v, err %v", created, err)
	}
	e2.Login(t, testenv.AdminEmail, testenv.AdminPassword)
	e2.Post(t, "/auth/login", "", map[string]string{"email": testenv.AdminEmail, "password": "a-new-password-1"}).
		CheckProblem(t, http.StatusUnauthorized, "invalid_credentials")

	// Projection idempotency: rebuilding every projection from the log
	// through the endpoint gives the state the incremental projectors built.
	for _, name := range []string{"doctors", "free_slots", "appointments"} {
		e2.Post(t, "/admin/projections/"+name+"/rebuild", e2.AdminToken, nil).Must(t, http.StatusAccepted)
	}
	waitProjectionsRunning(t, e2)
	diffReads(t, "after the rebuild", readAll(t, e2, tokens, []string{x.ID, y.ID}, appts), before)

	// And the engine keeps going: a new booking after the restart and the
	// rebuild shows everywhere.
	n := e2.MustBook(t, p.Token, y.ID, testenv.At(5, 10, 0))
	after := readAll(t, e2, tokens, []string{x.ID, y.ID}, append(appts, n.ID))
	if after["appointment "+n.ID] == "" || after["all appointments"] == before["all appointments"] {
		t.Errorf("a booking after the restart is not visible")
	}
	if s := e2.FreeSlots(t, y.ID, testenv.Date(5), 1, n.Position); s.Has(testenv.At(5, 10, 0)) {
		t.Errorf("booked slot still free after the restart")
	}

	// A third start on the same dir sees the new booking too.
	e2.Stop()
	e3 := testenv.Start(t, testenv.Options{DataDir: dir, Clock: clock})
	e3.CaughtUp(t)
	tokens["admin"] = e3.AdminToken
	diffReads(t, fmt.Sprintf("after the second restart (head %d)", e3.Head(t)), readAll(t, e3, tokens, []string{x.ID, y.ID}, append(appts, n.ID)), after)
}
