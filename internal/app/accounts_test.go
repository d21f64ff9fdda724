package app_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/internal/testenv"
)

// user reads GET /me with token and fails t unless it answers 200.
func user(t *testing.T, e *testenv.Env, token string) testenv.UserJSON {
	t.Helper()
	var u testenv.UserJSON
	e.Get(t, "/me", token).Must(t, http.StatusOK).Decode(t, &u)
	return u
}

func refused(t *testing.T, e *testenv.Env, token string) {
	t.Helper()
	e.Get(t, "/me", token).CheckProblem(t, http.StatusUnauthorized, "invalid_token")
}

// Logout revokes the token it is sent with, from the very next request,
// and no other token of the account.
func TestLogoutRevokesThisToken(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Lena Logout")
	other := e.Login(t, p.User.Email, testenv.Password)
	if u := user(t, e, p.Token); !u.Active || u.EmailVerified {
		t.Errorf("a new patient: %+v, want active and not verified", u)
	}
	e.Post(t, "/auth/logout", p.Token, nil).Must(t, http.StatusNoContent)
	refused(t, e, p.Token)
	e.Post(t, "/auth/logout", p.Token, nil).CheckProblem(t, http.StatusUnauthorized, "invalid_token")
	user(t, e, other.Token)
	e.Post(t, "/auth/logout", other.Token, nil).Must(t, http.StatusNoContent)
	refused(t, e, other.Token)
	user(t, e, e.Login(t, p.User.Email, testenv.Password).Token)
}

// A deactivated account's tokens are refused from the next request on, it
// cannot log in (the same answer as a wrong password), and an activation
// lets it log in again without bringing the old tokens back.
func TestDeactivatedAccountIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Dora Deactivated")
	d := e.NewDoctor(t, "Dr. Deactivated", "Dermatologist")
	user(t, e, p.Token)
	var u testenv.UserJSON
	e.Post(t, "/admin/users/"+p.User.ID+"/deactivate", e.AdminToken, nil).Must(t, http.StatusOK).Decode(t, &u)
	if u.Active || u.ID != p.User.ID {
		t.Errorf("deactivate answered %+v", u)
	}
	refused(t, e, p.Token)
	e.Book(t, p.Token, d.ID, testenv.At(2, 10, 0)).CheckProblem(t, http.StatusUnauthorized, "invalid_token")
	right := e.Post(t, "/auth/login", "", map[string]string{"email": p.User.Email, "password": testenv.Password})
	wrong := e.Post(t, "/auth/login", "", map[string]string{"email": p.User.Email, "password": "wrong-password"})
	for _, r := range []*testenv.Res{right, wrong} {
		if pr := r.CheckProblem(t, http.StatusUnauthorized, "invalid_credentials"); pr.Detail != "invalid email or password" {
			t.Errorf("login of a deactivated account: %+v", pr)
		}
	}
	// No reset mail for a deactivated account either. The request's work
	// runs after its answer: give it time before the account is active
	// again (then a reset mail would be right).
	e.Post(t, "/auth/forgot-password", "", map[string]string{"email": p.User.Email}).Must(t, http.StatusAccepted)
	time.Sleep(500 * time.Millisecond)
	noMail(t, e, "Reset your Prescripto password")

	e.Post(t, "/admin/users/"+p.User.ID+"/activate", e.AdminToken, nil).Must(t, http.StatusOK).Decode(t, &u)
	if !u.Active {
		t.Errorf("activate answered %+v", u)
	}
	refused(t, e, p.Token)
	user(t, e, e.Login(t, p.User.Email, testenv.Password).Token)

	// A doctor's account too.
	e.Post(t, "/admin/users/"+d.ID+"/deactivate", e.AdminToken, nil).Must(t, http.StatusOK)
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": true}).CheckProblem(t, http.StatusUnauthorized, "invalid_token")
}

// noMail fails t if the outbox holds a mail with subject.
func noMail(t *testing.T, e *testenv.Env, subject string) {
	t.Helper()
	for _, m := range e.Mails(t) {
		if m.Header.Get("Subject") == subject {
			t.Errorf("a %q mail went to %s", subject, m.Header.Get("To"))
		}
	}
}

// A password change answers a working token and revokes every other one;
// the old password stops working.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Pia Password")
	other := e.Login(t, p.User.Email, testenv.Password)
	const next = "a-new-password-2"
	var res testenv.AuthResult
	e.Post(t, "/me/password", p.Token, map[string]string{"currentPassword": testenv.Password, "newPassword": next}).Must(t, http.StatusOK).Decode(t, &res)
	if res.Token == "" || res.User.ID != p.User.ID {
		t.Fatalf("password change answered %+v", res)
	}
	user(t, e, res.Token)
	refused(t, e, p.Token)
	refused(t, e, other.Token)
	e.Post(t, "/auth/login", "", map[string]string{"email": p.User.Email, "password": testenv.Password}).CheckProblem(t, http.StatusUnauthorized, "invalid_credentials")
	user(t, e, e.Login(t, p.User.Email, next).Token)
}

// Concurrent password changes from one current password: exactly one wins,
// the others find the password changed under them.
func TestConcurrentPasswordChanges(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Cora Concurrent")
	const n = 8
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = e.Login(t, p.User.Email, testenv.Password).Token
	}
	var ok, wrong atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e.Post(t, "/me/password", tokens[i], map[string]string{"currentPassword": testenv.Password, "newPassword": "concurrent-" + string(rune('a'+i)) + "-password"})
			switch {
			case r.Status == http.StatusOK:
				ok.Add(1)
			case r.Status == http.StatusForbidden, r.Status == http.StatusUnauthorized: // wrong_password, or the token revoked by the winner
				wrong.Add(1)
			default:
				t.Errorf("concurrent change: %s", r)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || wrong.Load() != n-1 {
		t.Errorf("%d changes succeeded, %d refused; want 1 and %d", ok.Load(), wrong.Load(), n-1)
	}
}

// Forgot-password answers 202 for every email; an existing account gets a
// mail with a single-use token that expires after an hour; the reset
// revokes every older token.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Rita Reset")
	e.Post(t, "/auth/forgot-password", "", map[string]string{"email": "nobody-" + e.Unique("x") + "@example.test"}).Must(t, http.StatusAccepted)
	e.Post(t, "/auth/forgot-password", "", map[string]string{"email": "not-an-email"}).Must(t, http.StatusAccepted)
	e.Post(t, "/auth/forgot-password", "", map[string]string{"email": p.User.Email}).Must(t, http.StatusAccepted)
	token := e.WaitMailedToken(t, p.User.Email, "Reset your Prescripto password", 1)

	const next = "reset-password-3"
	var u testenv.UserJSON
	e.Post(t, "/auth/reset-password", "", map[string]string{"token": token, "password": next}).Must(t, http.StatusOK).Decode(t, &u)
	if u.ID != p.User.ID {
		t.Errorf("reset answered %+v", u)
	}
	refused(t, e, p.Token)
	e.Post(t, "/auth/reset-password", "", map[string]string{"token": token, "password": "yet-another-pass"}).CheckProblem(t, http.StatusBadRequest, "invalid_token")
	user(t, e, e.Login(t, p.User.Email, next).Token)

	// Expiry: a token an hour old is refused.
	e.Post(t, "/auth/forgot-password", "", map[string]string{"email": p.User.Email}).Must(t, http.StatusAccepted)
	late := e.WaitMailedToken(t, p.User.Email, "Reset your Prescripto password", 2)
	e.Clock.Advance(time.Hour)
	e.Post(t, "/auth/reset-password", "", map[string]string{"token": late, "password": "too-late-password"}).CheckProblem(t, http.StatusBadRequest, "invalid_token")
	user(t, e, e.Login(t, p.User.Email, next).Token)

	// Concurrent uses of one token: exactly one succeeds.
	e.Post(t, "/auth/forgot-password", "", map[string]string{"email": p.User.Email}).Must(t, http.StatusAccepted)
	race := e.WaitMailedToken(t, p.User.Email, "Reset your Prescripto password", 3)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r := e.Post(t, "/auth/reset-password", "", map[string]string{"token": race, "password": "raced-password-4"})
			if r.Status == http.StatusOK {
				ok.Add(1)
			} else if r.Status != http.StatusBadRequest {
				t.Errorf("concurrent reset: %s", r)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d resets with one token succeeded, want 1", ok.Load())
	}
	for _, m := range e.Mails(t) {
		if to := m.Header.Get("To"); to != "" && !strings.Contains(to, p.User.Email) {
			t.Errorf("a mail went to %s", to)
		}
	}
}

// With verification on, registration mails a token, an unverified patient
// cannot book, and the mailed token verifies the email.
func TestEmailVerification(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{VerifyEmail: true})
	d := e.NewDoctor(t, "Dr. Verify", "Dermatologist")
	p := e.Register(t, "Vera Verify")
	if p.User.EmailVerified || !p.User.Active {
		t.Errorf("registered %+v", p.User)
	}
	first := e.WaitMailedToken(t, p.User.Email, "Verify your email address", 1)
	e.Book(t, p.Token, d.ID, testenv.At(2, 10, 0)).CheckProblem(t, http.StatusForbidden, "email_unverified")

	e.Post(t, "/auth/resend-verification", p.Token, nil).Must(t, http.StatusAccepted)
	second := e.WaitMailedToken(t, p.User.Email, "Verify your email address", 2)
	e.Post(t, "/auth/verify-email", "", map[string]string{"token": first}).CheckProblem(t, http.StatusBadRequest, "invalid_token") // superseded
	var u testenv.UserJSON
	e.Post(t, "/auth/verify-email", "", map[string]string{"token": second}).Must(t, http.StatusOK).Decode(t, &u)
	if !u.EmailVerified || u.ID != p.User.ID {
		t.Errorf("verify answered %+v", u)
	}
	e.Post(t, "/auth/verify-email", "", map[string]string{"token": second}).Must(t, http.StatusOK) // a second click
	if u := user(t, e, p.Token); !u.EmailVerified {
		t.Errorf("/me after verification: %+v", u)
	}
	e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))

	// Nothing more is sent once verified; an expired token is refused.
	e.Post(t, "/auth/resend-verification", p.Token, nil).Must(t, http.StatusAccepted)
	q := e.Register(t, "Quinn Late")
	late := e.WaitMailedToken(t, q.User.Email, "Verify your email address", 1)
	e.Clock.Advance(49 * time.Hour)
	e.Post(t, "/auth/verify-email", "", map[string]string{"token": late}).CheckProblem(t, http.StatusBadRequest, "invalid_token")
	n := 0
	for _, m := range e.Mails(t) {
		if strings.Contains(m.Header.Get("To"), p.User.Email) && m.Header.Get("Subject") == "Verify your email address" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d verification mails to %s, want 2", n, p.User.Email)
	}
}

// Without verification (the default), nothing is mailed at registration
// and unverified patients book.
func TestEmailVerificationOff(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Open", "Dermatologist")
	p := e.Register(t, "Otto Open")
	e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))
	noMail(t, e, "Verify your email address")
}

// A doctor an admin made unavailable cannot make themselves available
// again; the admin can.
func TestDoctorCannotUndoAdminUnavailability(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Locked", "Dermatologist")
	// The doctor's own toggle is free.
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": false}).Must(t, http.StatusOK)
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": true}).Must(t, http.StatusOK)

	e.Patch(t, "/admin/doctors/"+d.ID, e.AdminToken, map[string]any{"available": false}).Must(t, http.StatusOK)
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": true}).CheckProblem(t, http.StatusForbidden, "availability_locked")
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"about": "Still here."}).Must(t, http.StatusOK)
	e.Patch(t, "/admin/doctors/"+d.ID, e.AdminToken, map[string]any{"about": "Edited by the admin."}).Must(t, http.StatusOK)
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": true}).CheckProblem(t, http.StatusForbidden, "availability_locked")

	e.Patch(t, "/admin/doctors/"+d.ID, e.AdminToken, map[string]any{"available": true}).Must(t, http.StatusOK)
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": false}).Must(t, http.StatusOK)
	e.Patch(t, "/doctor/profile", d.Token, map[string]any{"available": true}).Must(t, http.StatusOK)
}

// Two api processes of the production wiring: a logout, a password change
// and a deactivation taken by one are honoured by that one at once and by
// the other within the session TTL (plus a stream read).
func TestRevocationAcrossAPIProcesses(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true})
	r := e.StartAPIReplica(t)
	bound := api.DefaultSessionTTL + time.Second // the TTL, plus slack for a loaded CI machine
	// honoured waits until r refuses token, and fails t if that takes
	// longer than bound.
	honoured := func(what, token string) {
		t.Helper()
		start := time.Now()
		for {
			res := r.Get(t, "/me", token)
			if res.Status == http.StatusUnauthorized {
				res.CheckProblem(t, http.StatusUnauthorized, "invalid_token")
				t.Logf("%s: the other api process refused the token after %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			res.Must(t, http.StatusOK)
			if time.Since(start) > bound {
				t.Fatalf("%s: the other api process still takes the token after %v", what, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	p := e.Register(t, "Riya Replica")
	user(t, r, p.Token) // cached in r
	e.Post(t, "/auth/logout", p.Token, nil).Must(t, http.StatusNoContent)
	refused(t, e, p.Token)
	honoured("logout", p.Token)

	q := e.Login(t, p.User.Email, testenv.Password)
	user(t, r, q.Token)
	var changed testenv.AuthResult
	e.Post(t, "/me/password", q.Token, map[string]string{"currentPassword": testenv.Password, "newPassword": "replica-password-5"}).Must(t, http.StatusOK).Decode(t, &changed)
	refused(t, e, q.Token)
	honoured("password change", q.Token)
	user(t, r, changed.Token)

	d := e.Register(t, "Dev Deactivated")
	user(t, r, d.Token)
	e.Post(t, "/admin/users/"+d.User.ID+"/deactivate", e.AdminToken, nil).Must(t, http.StatusOK)
	refused(t, e, d.Token)
	honoured("deactivation", d.Token)
	r.Post(t, "/auth/login", "", map[string]string{"email": d.User.Email, "password": testenv.Password}).CheckProblem(t, http.StatusUnauthorized, "invalid_credentials")

	// Taken by the replica, honoured by the first process.
	s := e.Register(t, "Sam Second")
	user(t, e, s.Token)
	r.Post(t, "/auth/logout", s.Token, nil).Must(t, http.StatusNoContent)
	refused(t, r, s.Token)
	start := time.Now()
	for e.Get(t, "/me", s.Token).Status != http.StatusUnauthorized {
		if time.Since(start) > bound {
			t.Fatalf("the first api process still takes a token logged out on the replica after %v", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Requests with a token racing its revocation: every request answers 200
// or 401, and once the logout answered, none answers 200.
func TestRequestsRacingLogout(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Rex Racer")
	var loggedOut atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				after := loggedOut.Load()
				r := e.Get(t, "/me", p.Token)
				switch {
				case r.Status == http.StatusUnauthorized:
				case r.Status == http.StatusOK && !after:
				default:
					t.Errorf("after logout %v: %s", after, r)
				}
			}
		})
	}
	e.Post(t, "/auth/logout", p.Token, nil).Must(t, http.StatusNoContent)
	loggedOut.Store(true)
	wg.Wait()
}
