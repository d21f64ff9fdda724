package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/prescripto/prescripto/internal/testenv"
)

func keyed(q testenv.Req, key string) testenv.Req {
	q.Header = http.Header{"Idempotency-Key": {key}}
	return q
}

func bookReq(token, doctorID string, start string) testenv.Req {
	return testenv.Req{Method: http.MethodPost, Path: "/appointments", Token: token, Body: map[string]string{"doctorId": doctorID, "start": start}}
}

// TestIdempotentBooking: a retried POST /appointments with the same
// Idempotency-Key and body returns the original appointment and position
// and appends nothing, also when the retries race; the same key with a
// different body is refused.
func TestIdempotentBooking(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Emily Larson", "Gynecologist")
	d2 := e.NewDoctor(t, "Dr. Timothy White", "Gynecologist")
	p := e.Register(t, "Lena Patient")
	slot := testenv.RFC3339(testenv.At(1, 10, 0))

	r := e.Do(t, keyed(bookReq(p.Token, d.ID, slot), "book-1")).Must(t, http.StatusCreated)
	var first testenv.Appointment
	r.Decode(t, &first)
	head := e.Head(t)
	if first.Position != head {
		t.Errorf("position %d, head %d", first.Position, head)
	}

	t.Run("replay", func(t *testing.T) {
		r := e.Do(t, keyed(bookReq(p.Token, d.ID, slot), "book-1")).Must(t, http.StatusCreated)
		var again testenv.Appointment
		r.Decode(t, &again)
		if again.ID != first.ID || again.Position != first.Position || !again.Start.Equal(first.Start) || again.Status != "confirmed" {
			t.Errorf("replay %+v, want %+v", again, first)
		}
		if h := e.Head(t); h != head {
			t.Errorf("a replay appended %d events", h-head)
		}
	})

	t.Run("10 concurrent replays", func(t *testing.T) {
		var wg sync.WaitGroup
		got := make([]testenv.Appointment, 10)
		start := make(chan struct{})
		for i := range got {
			wg.Go(func() {
				<-start
				r := e.Do(t, keyed(bookReq(p.Token, d.ID, slot), "book-1"))
				if r.Expect(t, http.StatusCreated).Status == http.StatusCreated {
					_ = jsonInto(r, &got[i])
				}
			})
		}
		close(start)
		wg.Wait()
		for i, a := range got {
			if a.ID != first.ID || a.Position != first.Position {
				t.Errorf("replay %d: id %s position %d, want %s %d", i, a.ID, a.Position, first.ID, first.Position)
			}
		}
		if h := e.Head(t); h != head {
			t.Errorf("concurrent replays appended %d events", h-head)
		}
	})

	t.Run("10 concurrent first tries", func(t *testing.T) {
		before := e.Head(t)
		var wg sync.WaitGroup
		got := make([]testenv.Appointment, 10)
		start := make(chan struct{})
		other := testenv.RFC3339(testenv.At(1, 11, 0))
		for i := range got {
			wg.Go(func() {
				<-start
				r := e.Do(t, keyed(bookReq(p.Token, d.ID, other), "book-race"))
				if r.Expect(t, http.StatusCreated).Status == http.StatusCreated {
					_ = jsonInto(r, &got[i])
				}
			})
		}
		close(start)
		wg.Wait()
		for i, a := range got {
			if a.ID != got[0].ID || a.Position != got[0].Position || a.ID == "" {
				t.Errorf("try %d: id %s position %d, want %s %d", i, a.ID, a.Position, got[0].ID, got[0].Position)
			}
		}
		if h := e.Head(t); h != before+3 {
			t.Errorf("10 tries of one keyed booking appended %d events, want 3 (the patient's ledger entry, the key's claim and the booking)", h-before)
		}
		l := e.Appointments(t, p.Token, "", e.Head(t))
		if len(l.Appointments) != 2 {
			t.Errorf("patient has %d appointments, want 2", len(l.Appointments))
		}
	})

	t.Run("same key, other slot", func(t *testing.T) {
		before := e.Head(t)
		e.Do(t, keyed(bookReq(p.Token, d.ID, testenv.RFC3339(testenv.At(1, 12, 0))), "book-1")).
			CheckProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if h := e.Head(t); h != before {
			t.Errorf("a reused key appended %d events", h-before)
		}
	})

	t.Run("same key, other doctor", func(t *testing.T) {
		before := e.Head(t)
		e.Do(t, keyed(bookReq(p.Token, d2.ID, slot), "book-1")).
			CheckProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if h := e.Head(t); h != before {
			t.Errorf("a reused key appended %d events", h-before)
		}
		l := e.Appointments(t, p.Token, "", e.Head(t))
		if len(l.Appointments) != 2 {
			t.Errorf("patient has %d appointments after a reused key, want 2", len(l.Appointments))
		}
	})

	t.Run("same key, other patient", func(t *testing.T) {
		// Keys are scoped to the caller: another patient's "book-1" is
		// another request.
		q := e.Register(t, "Mona Patient")
		r := e.Do(t, keyed(bookReq(q.Token, d2.ID, slot), "book-1")).Must(t, http.StatusCreated)
		var a testenv.Appointment
		r.Decode(t, &a)
		if a.ID == first.ID || a.PatientID != q.User.ID {
			t.Errorf("other patient's booking %+v", a)
		}
	})

	t.Run("keyed cancel replay", func(t *testing.T) {
		path := "/appointments/" + first.ID + "/cancel"
		req := keyed(testenv.Req{Method: http.MethodPost, Path: path, Token: p.Token, Body: map[string]string{"reason": "x"}}, "cancel-1")
		r := e.Do(t, req).Must(t, http.StatusOK)
		var c1, c2 testenv.Appointment
		r.Decode(t, &c1)
		before := e.Head(t)
		r = e.Do(t, req).Must(t, http.StatusOK)
		r.Decode(t, &c2)
		if c1.ID != c2.ID || c1.Position != c2.Position || c2.Status != "cancelled" {
			t.Errorf("cancel replay %+v, want %+v", c2, c1)
		}
		if h := e.Head(t); h != before {
			t.Errorf("a cancel replay appended %d events", h-before)
		}
		// Without the key a second cancel is a conflict.
		e.Post(t, path, p.Token, nil).CheckProblem(t, http.StatusConflict, "invalid_transition")
	})

	t.Run("cancel key reused on another appointment", func(t *testing.T) {
		a := e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))
		b := e.MustBook(t, p.Token, d.ID, testenv.At(2, 11, 0))
		cancel := func(id string) *testenv.Res {
			return e.Do(t, keyed(testenv.Req{Method: http.MethodPost, Path: "/appointments/" + id + "/cancel", Token: p.Token}, "cancel-2"))
		}
		cancel(a.ID).Must(t, http.StatusOK)
		before := e.Head(t)
		// Not a retry (another appointment), so not a 200 that claims b is
		// dealt with while nothing happened to it.
		cancel(b.ID).CheckProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if h := e.Head(t); h != before {
			t.Errorf("a reused key appended %d events", h-before)
		}
		r := e.Get(t, "/appointments/"+b.ID, p.Token).Must(t, http.StatusOK)
		var got testenv.Appointment
		r.Decode(t, &got)
		if got.Status != "confirmed" {
			t.Errorf("b is %s after a refused cancel", got.Status)
		}
		// The retry of a's cancel is still recognised.
		cancel(a.ID).Must(t, http.StatusOK)
	})
}

func jsonInto(r *testenv.Res, v any) error {
	return json.Unmarshal(r.Body, v)
}

// TestIdempotentRegistration: a keyed POST /auth/register retried returns
// the same user and appends nothing; the key with another body is refused
// and never hands out someone else's account.
func TestIdempotentRegistration(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	reg := func(name, email, password, key string) *testenv.Res {
		return e.Do(t, keyed(testenv.Req{Method: http.MethodPost, Path: "/auth/register",
			Body: map[string]string{"name": name, "email": email, "password": password}}, key))
	}
	r := reg("Nora Patient", "nora@example.test", testenv.Password, "reg-1").Must(t, http.StatusCreated)
	var first testenv.AuthResult
	r.Decode(t, &first)
	head := e.Head(t)

	r = reg("Nora Patient", "nora@example.test", testenv.Password, "reg-1").Must(t, http.StatusCreated)
	var again testenv.AuthResult
	r.Decode(t, &again)
	if again.User.ID != first.User.ID || again.User.Email != first.User.Email || again.Position != first.Position {
		t.Errorf("retried registration %+v, want %+v", again.User, first.User)
	}
	if h := e.Head(t); h != head {
		t.Errorf("a retried registration appended %d events", h-head)
	}
	e.Get(t, "/me", again.Token).Must(t, http.StatusOK)

	// Concurrent retries.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			r := reg("Nora Patient", "nora@example.test", testenv.Password, "reg-1")
			var a testenv.AuthResult
			if r.Expect(t, http.StatusCreated).Status == http.StatusCreated && jsonInto(r, &a) == nil {
				ids[i] = a.User.ID
			}
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id != first.User.ID {
			t.Errorf("concurrent retry %d: user %q, want %q", i, id, first.User.ID)
		}
	}
	if h := e.Head(t); h != head {
		t.Errorf("concurrent retries appended %d events", h-head)
	}

	// Concurrent first tries of a new keyed registration: one account.
	before := e.Head(t)
	first2 := make([]string, 8)
	release := make(chan struct{})
	for i := range first2 {
		wg.Go(func() {
			<-release
			r := reg("Rita Patient", "rita@example.test", testenv.Password, "reg-2")
			var a testenv.AuthResult
			if r.Expect(t, http.StatusCreated).Status == http.StatusCreated && jsonInto(r, &a) == nil {
				first2[i] = a.User.ID
			}
		})
	}
	close(release)
	wg.Wait()
	for i, id := range first2 {
		if id == "" || id != first2[0] {
			t.Errorf("concurrent first try %d: user %q, want %q", i, id, first2[0])
		}
	}
	if h := e.Head(t); h != before+2 { // the email claim and the account
		t.Errorf("8 concurrent tries of one registration appended %d events, want 2", h-before)
	}
	e.Login(t, "rita@example.test", testenv.Password)

	// Another client reusing the key for another account (anonymous
	// callers share one key space): refused, and it must never receive
	// Nora's account.
	for _, c := range []struct{ name, email, password string }{
		{"Oscar Attacker", "oscar@example.test", testenv.Password},
		{"Nora Patient", "nora@example.test", "another-password"},
		{"Someone Else", "nora@example.test", testenv.Password},
	} {
		t.Run(fmt.Sprintf("reuse %s %s", c.name, c.email), func(t *testing.T) {
			before := e.Head(t)
			r := reg(c.name, c.email, c.password, "reg-1")
			if r.Status == http.StatusCreated {
				var stolen testenv.AuthResult
				r.Decode(t, &stolen)
				if stolen.User.ID == first.User.ID {
					t.Fatalf("a reused key with another body got Nora's account and token: %+v", stolen.User)
				}
			}
			r.CheckProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
			if h := e.Head(t); h != before {
				t.Errorf("a reused key appended %d events", h-before)
			}
		})
	}
	// The attacker's email is still free, and logs in to nothing.
	e.Post(t, "/auth/login", "", map[string]string{"email": "oscar@example.test", "password": testenv.Password}).
		CheckProblem(t, http.StatusUnauthorized, "invalid_credentials")
	e.Register(t, "Oscar Later")
	e.Login(t, "nora@example.test", testenv.Password)

	// Doctor onboarding by the admin, keyed.
	body := e.DoctorBody("Dr. Ryan Martinez", "Gynecologist")
	req := keyed(testenv.Req{Method: http.MethodPost, Path: "/admin/doctors", Token: e.AdminToken, Body: body}, "doc-1")
	r = e.Do(t, req).Must(t, http.StatusCreated)
	var d1, d2 testenv.Doctor
	r.Decode(t, &d1)
	before = e.Head(t)
	r = e.Do(t, req).Must(t, http.StatusCreated)
	r.Decode(t, &d2)
	if d1.ID != d2.ID || d1.Position != d2.Position {
		t.Errorf("retried onboarding %+v, want %+v", d2, d1)
	}
	if h := e.Head(t); h != before {
		t.Errorf("a retried onboarding appended %d events", h-before)
	}
	other := e.DoctorBody("Dr. Other", "Gynecologist")
	e.Do(t, keyed(testenv.Req{Method: http.MethodPost, Path: "/admin/doctors", Token: e.AdminToken, Body: other}, "doc-1")).
		CheckProblem(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if h := e.Head(t); h != before {
		t.Errorf("a reused onboarding key appended %d events", h-before)
	}
}
