package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/workers/notify"
)

// Password is the password of every account the helpers create.
const Password = "correct-horse-9"

// UserJSON is the user object of an auth answer.
type UserJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	DoctorID string `json:"doctorId"`
	// EmailVerified and Active are always present.
	EmailVerified bool `json:"emailVerified"`
	Active        bool `json:"active"`
}

// AuthResult answers /auth/register and /auth/login.
type AuthResult struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      UserJSON  `json:"user"`
	Position  uint64    `json:"position"`
}

// Doctor is a doctor as the API returns it.
type Doctor struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Speciality      string `json:"speciality"`
	Degree          string `json:"degree"`
	ExperienceYears int    `json:"experienceYears"`
	About           string `json:"about"`
	Fees            int64  `json:"fees"`
	Currency        string `json:"currency"`
	Address         string `json:"address"`
	Available       bool   `json:"available"`
	ImageURL        string `json:"imageUrl"`
	Timezone        string `json:"timezone"`
	Position        uint64 `json:"position"`
}

// DoctorLogin is a doctor created through the API with its login.
type DoctorLogin struct {
	Doctor
	Email string
	Token string
}

// Payment of an appointment.
type Payment struct {
	Status         string  `json:"status"`
	OrderID        *string `json:"orderId"`
	PaymentID      *string `json:"paymentId"`
	Amount         int64   `json:"amount"`
	RefundedAmount int64   `json:"refundedAmount"`
}

// Appointment is an appointment as the API returns it.
type Appointment struct {
	ID           string    `json:"id"`
	DoctorID     string    `json:"doctorId"`
	DoctorName   string    `json:"doctorName"`
	PatientID    string    `json:"patientId"`
	PatientName  string    `json:"patientName"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Timezone     string    `json:"timezone"`
	Status       string    `json:"status"`
	Fees         int64     `json:"fees"`
	Currency     string    `json:"currency"`
	Payment      Payment   `json:"payment"`
	CreatedAt    time.Time `json:"createdAt"`
	CancelReason *string   `json:"cancelReason"`
	// HoldExpiresAt is set while the appointment is held.
	HoldExpiresAt *time.Time `json:"holdExpiresAt"`
	Position      uint64     `json:"position"`
}

// AppointmentList answers GET /appointments.
type AppointmentList struct {
	Appointments []Appointment `json:"appointments"`
	NextCursor   string        `json:"nextCursor"`
}

// Slot is a free slot.
type Slot struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Slots answers GET /doctors/{id}/slots.
type Slots struct {
	DoctorID string `json:"doctorId"`
	Timezone string `json:"timezone"`
	Days     []struct {
		Date  string `json:"date"`
		Slots []Slot `json:"slots"`
	} `json:"days"`
}

// Has reports whether start is one of the free slots.
func (s Slots) Has(start time.Time) bool {
	for _, d := range s.Days {
		if slices.ContainsFunc(d.Slots, func(x Slot) bool { return x.Start.Equal(start) }) {
			return true
		}
	}
	return false
}

// All lists every free slot start.
func (s Slots) All() []time.Time {
	var out []time.Time
	for _, d := range s.Days {
		for _, x := range d.Slots {
			out = append(out, x.Start)
		}
	}
	return out
}

// At is the instant of hour:min in the doctors' zone, days after the day of
// DefaultNow.
func At(days, hour, min int) time.Time {
	d := DefaultNow.In(IST)
	return time.Date(d.Year(), d.Month(), d.Day()+days, hour, min, 0, 0, IST).UTC()
}

// Date is the calendar date (doctors' zone) days after DefaultNow's.
func Date(days int) string { return At(days, 12, 0).In(IST).Format(time.DateOnly) }

// RFC3339 formats an instant as the API wants it.
func RFC3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Register registers a new patient with a unique email and Password.
func (e *Env) Register(t testing.TB, name string) AuthResult {
	t.Helper()
	email := e.Unique("patient") + "@example.test"
	r := e.Post(t, "/auth/register", "", map[string]string{"name": name, "email": email, "password": Password})
	r.Must(t, http.StatusCreated)
	var a AuthResult
	r.Decode(t, &a)
	if a.Token == "" || a.User.ID == "" || a.User.Role != "patient" || a.User.Email != email {
		t.Fatalf("register answer %s", r)
	}
	return a
}

// Login logs in and fails t unless it succeeds.
func (e *Env) Login(t testing.TB, email, password string) AuthResult {
	t.Helper()
	r := e.Post(t, "/auth/login", "", map[string]string{"email": email, "password": password})
	r.Must(t, http.StatusOK)
	var a AuthResult
	r.Decode(t, &a)
	if a.Token == "" {
		t.Fatalf("login answer %s", r)
	}
	return a
}

// DoctorBody is a valid POST /admin/doctors body with a unique email.
func (e *Env) DoctorBody(name, speciality string) map[string]any {
	return map[string]any{
		"name": name, "email": e.Unique("doctor") + "@clinic.test", "password": Password,
		"speciality": speciality, "degree": "MBBS", "experienceYears": 7, "about": "Sees patients.",
		"fees": 50000, "currency": "INR", "address": "57th Cross, Bengaluru",
		"imageUrl": "https://img.example.test/d.png", "timezone": Zone,
	}
}

// NewDoctor has the admin onboard a doctor (default schedule: every day
// 10:00-21:00 in 30-minute slots, 30 days ahead, 30 minutes' notice) and
// logs the doctor in.
func (e *Env) NewDoctor(t testing.TB, name, speciality string) DoctorLogin {
	t.Helper()
	body := e.DoctorBody(name, speciality)
	r := e.Post(t, "/admin/doctors", e.AdminToken, body)
	r.Must(t, http.StatusCreated)
	var d DoctorLogin
	r.Decode(t, &d.Doctor)
	if d.ID == "" || d.Position == 0 {
		t.Fatalf("create doctor answer %s", r)
	}
	d.Email = body["email"].(string)
	login := e.Login(t, d.Email, Password)
	if login.User.Role != "doctor" || login.User.ID != d.ID {
		t.Fatalf("doctor login %+v, want role doctor and id %s", login.User, d.ID)
	}
	d.Token = login.Token
	return d
}

// Book books the slot at start for the patient of token.
func (e *Env) Book(t testing.TB, token, doctorID string, start time.Time) *Res {
	t.Helper()
	return e.Post(t, "/appointments", token, map[string]string{"doctorId": doctorID, "start": RFC3339(start)})
}

// MustBook books and fails t unless it answers 201.
func (e *Env) MustBook(t testing.TB, token, doctorID string, start time.Time) Appointment {
	t.Helper()
	r := e.Book(t, token, doctorID, start).Must(t, http.StatusCreated)
	var a Appointment
	r.Decode(t, &a)
	return a
}

// FreeSlots reads the free slots of days dates from from (YYYY-MM-DD),
// after the read model reached minPos.
func (e *Env) FreeSlots(t testing.TB, doctorID, from string, days int, minPos uint64) Slots {
	t.Helper()
	q := url.Values{"from": {from}, "days": {fmt.Sprint(days)}}
	r := e.Do(t, Req{Method: http.MethodGet, Path: "/doctors/" + doctorID + "/slots?" + q.Encode(), MinPosition: minPos})
	r.Must(t, http.StatusOK)
	var s Slots
	r.Decode(t, &s)
	return s
}

// Appointments lists appointments with the token's view, after minPos.
func (e *Env) Appointments(t testing.TB, token, query string, minPos uint64) AppointmentList {
	t.Helper()
	path := "/appointments"
	if query != "" {
		path += "?" + query
	}
	r := e.Do(t, Req{Method: http.MethodGet, Path: path, Token: token, MinPosition: minPos})
	r.Must(t, http.StatusOK)
	var l AppointmentList
	r.Decode(t, &l)
	return l
}

// Mails returns the mails in the data dir's outbox (none before the first).
func (e *Env) Mails(t testing.TB) []*mail.Message {
	t.Helper()
	path := filepath.Join(e.DataDir, "mail", "outbox.mbox")
	msgs, err := notify.ReadMboxFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("testenv: read %s: %v", path, err)
	}
	return msgs
}

// mailedTokenRE finds the token in a verification or reset mail: the
// link's token parameter.
var mailedTokenRE = regexp.MustCompile(`\?token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\n`)

// WaitMailedToken waits (up to 10 s) for the n-th (from 1) mail to to whose
// subject contains subject, and returns the token it carries.
func (e *Env) WaitMailedToken(t testing.TB, to, subject string, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found []string
		for _, m := range e.Mails(t) {
			if !strings.Contains(m.Header.Get("To"), to) || !strings.Contains(m.Header.Get("Subject"), subject) {
				continue
			}
			body, err := notify.TextBody(m)
			if err != nil {
				t.Fatalf("testenv: read mail: %v", err)
			}
			if sm := mailedTokenRE.FindStringSubmatch(body); sm != nil {
				found = append(found, string(sm[1]))
			}
		}
		if len(found) >= n {
			return found[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: no mail %d %q to %s within 10 s (%d found)", n, subject, to, len(found))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
