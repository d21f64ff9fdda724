package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"

	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/smtptest"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

type notificationList struct {
	Notifications []struct {
		ID, Kind, To, Subject, Status, LastError string
		Attempts                                 int
	} `json:"notifications"`
}

// With SMTP_URL, a booking's mails reach the SMTP server over a real
// connection (the patient's and the doctor's); a mail the server keeps
// refusing is parked as failed, listed by GET /admin/notifications?status=failed
// and sent by POST /admin/notifications/{id}/retry once the server takes it.
func TestNotificationsOverSMTPAndAdminRetry(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	e := testenv.Start(t, testenv.Options{Mail: app.MailOptions{
		SMTPURL: srv.URL(), From: "Clinic <clinic@prescripto.example>",
		Delivery: notify.DeliveryConfig{MaxAttempts: 2, Backoff: time.Millisecond, Poll: 20 * time.Millisecond},
	}})
	doc := e.NewDoctor(t, "Dr. Smtp", "Dermatologist")
	p := e.Register(t, "Sam Smtp")
	slots := e.FreeSlots(t, doc.ID, testenv.Date(1), 1, 0).All()
	e.MustBook(t, p.Token, doc.ID, slots[0])
	msgs := srv.WaitFor(t, 2, 10*time.Second)
	to := map[string]bool{}
	for _, m := range msgs {
		to[m.To[0]] = true
		if m.From != "clinic@prescripto.example" {
			t.Fatalf("MAIL FROM %q", m.From)
		}
	}
	if !to[p.User.Email] || len(to) != 2 {
		t.Fatalf("mails to %v; want the patient %s and the doctor", to, p.User.Email)
	}

	srv.TempFail(1000)
	e.MustBook(t, p.Token, doc.ID, slots[1])
	var failed notificationList
	deadline := time.Now().Add(10 * time.Second)
	for len(failed.Notifications) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed mails: %+v", failed)
		}
		e.Clock.Advance(time.Second) // past the backoff
		time.Sleep(20 * time.Millisecond)
		e.Get(t, "/admin/notifications?status=failed", e.AdminToken).Must(t, http.StatusOK).Decode(t, &failed)
	}
	f := failed.Notifications[0]
	if f.Attempts != 2 || !strings.Contains(f.LastError, "451") {
		t.Fatalf("failed mail %+v; want 2 attempts and the 451", f)
	}
	srv.TempFail(0)
	before := len(srv.Messages())
	e.Post(t, "/admin/notifications/"+f.ID+"/retry", e.AdminToken, nil).Must(t, http.StatusAccepted)
	srv.WaitFor(t, before+1, 10*time.Second)
	e.Post(t, "/admin/notifications/"+f.ID+"/retry", e.AdminToken, nil).CheckProblem(t, http.StatusConflict, "notification_not_failed")
	e.Post(t, "/admin/notifications/nope/retry", e.AdminToken, nil).CheckProblem(t, http.StatusNotFound, "notification_not_found")
	e.Get(t, "/admin/notifications?status=lost", e.AdminToken).CheckProblem(t, http.StatusBadRequest, "invalid_query")
	e.Get(t, "/admin/notifications", p.Token).CheckProblem(t, http.StatusForbidden, "forbidden")
	var sent notificationList
	e.Get(t, "/admin/notifications?status=sent", e.AdminToken).Must(t, http.StatusOK).Decode(t, &sent)
	if len(sent.Notifications) != 3 {
		t.Fatalf("%d sent; want 3", len(sent.Notifications))
	}
	metrics := string(e.Get(t, "//metrics", "").Must(t, http.StatusOK).Body)
	for _, want := range []string{`prescripto_mails_total{event="sent"} 3`, `prescripto_mails_total{event="failed"} 2`,
		`prescripto_mails_total{event="retried"} 2`, "prescripto_mail_queue_age_seconds", "prescripto_mail_delivery_seconds_count 3"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// calendarOf fetches GET /appointments/{id}/calendar.ics with token and
// parses it with an iCalendar parser.
func calendarOf(t *testing.T, e *testenv.Env, id, token string) *ics.VEvent {
	t.Helper()
	r := e.Get(t, "/appointments/"+id+"/calendar.ics", token).Must(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/calendar") {
		t.Fatalf("Content-Type %q", ct)
	}
	cal, err := ics.ParseCalendar(strings.NewReader(string(r.Body)))
	if err != nil {
		t.Fatalf("ics: %v\n%s", err, r.Body)
	}
	ev := cal.Events()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	return ev[0]
}

// GET /appointments/{id}/calendar.ics: its patient's and its doctor's, the
// same UID throughout, a greater SEQUENCE after a reschedule, cancelled
// after the cancel; 404 for another patient.
func TestAppointmentCalendar(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	doc := e.NewDoctor(t, "Dr. Cal, Endar; MD", "Dermatologist")
	p := e.Register(t, "Cal Patient")
	other := e.Register(t, "Other Patient")
	slots := e.FreeSlots(t, doc.ID, testenv.Date(1), 1, 0).All()
	a := e.MustBook(t, p.Token, doc.ID, slots[0])
	ev := calendarOf(t, e, a.ID, p.Token)
	uid := ev.GetProperty(ics.ComponentPropertyUniqueId).Value
	seq := ev.GetProperty(ics.ComponentPropertySequence).Value
	start, err := ev.GetStartAt()
	if err != nil || !start.Equal(a.Start) || uid != a.ID+"@prescripto" {
		t.Fatalf("UID %s, DTSTART %v (%v); want %s, %v", uid, start, err, a.ID, a.Start)
	}
	if s := ev.GetProperty(ics.ComponentPropertySummary).Value; s != "Appointment with Dr. Cal, Endar; MD" {
		t.Fatalf("SUMMARY %q", s)
	}
	calendarOf(t, e, a.ID, doc.Token)
	e.Get(t, "/appointments/"+a.ID+"/calendar.ics", other.Token).CheckProblem(t, http.StatusNotFound, "appointment_not_found")
	e.Post(t, "/appointments/"+a.ID+"/reschedule", p.Token, map[string]string{"start": testenv.RFC3339(slots[1])}).Must(t, http.StatusOK)
	e.CaughtUp(t)
	ev = calendarOf(t, e, a.ID, p.Token)
	if moved := ev.GetProperty(ics.ComponentPropertySequence).Value; len(moved) < len(seq) || (len(moved) == len(seq) && moved <= seq) {
		t.Fatalf("SEQUENCE %s after a reschedule; was %s", moved, seq)
	}
	if s, _ := ev.GetStartAt(); !s.Equal(slots[1]) {
		t.Fatalf("DTSTART %v after a reschedule", s)
	}
	e.Post(t, "/appointments/"+a.ID+"/cancel", p.Token, nil).Must(t, http.StatusOK)
	e.CaughtUp(t)
	if st := calendarOf(t, e, a.ID, p.Token).GetProperty(ics.ComponentPropertyStatus).Value; st != "CANCELLED" {
		t.Fatalf("STATUS %s after the cancel", st)
	}
}

// The private calendar feed: GET /me/calendar-feed gives a URL (the same
// each time) that serves the owner's appointments without a bearer token,
// to the patient and to the doctor; DELETE revokes it (404 after) and the
// next URL works.
func TestCalendarFeed(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	doc := e.NewDoctor(t, "Dr. Feed", "Dermatologist")
	p := e.Register(t, "Fay Feed")
	slots := e.FreeSlots(t, doc.ID, testenv.Date(1), 1, 0).All()
	a1 := e.MustBook(t, p.Token, doc.ID, slots[0])
	a2 := e.MustBook(t, p.Token, doc.ID, slots[1])
	e.Post(t, "/appointments/"+a2.ID+"/cancel", p.Token, nil).Must(t, http.StatusOK)
	e.CaughtUp(t)
	feedPath := func(token string) string {
		t.Helper()
		var f struct{ URL string }
		e.Get(t, "/me/calendar-feed", token).Must(t, http.StatusOK).Decode(t, &f)
		_, path, ok := strings.Cut(f.URL, "/api/v1")
		if !ok || !strings.HasPrefix(path, "/calendar/") || !strings.HasSuffix(path, ".ics") {
			t.Fatalf("feed URL %q", f.URL)
		}
		return path
	}
	feed := func(path string, want int) map[string]string {
		t.Helper()
		r := e.Do(t, testenv.Req{Method: http.MethodGet, Path: path}).Must(t, want)
		if want != http.StatusOK {
			return nil
		}
		cal, err := ics.ParseCalendar(strings.NewReader(string(r.Body)))
		if err != nil {
			t.Fatalf("ics: %v\n%s", err, r.Body)
		}
		out := map[string]string{}
		for _, ev := range cal.Events() {
			out[strings.TrimSuffix(ev.GetProperty(ics.ComponentPropertyUniqueId).Value, "@prescripto")] = ev.GetProperty(ics.ComponentPropertyStatus).Value
		}
		return out
	}
	path := feedPath(p.Token)
	if again := feedPath(p.Token); again != path {
		t.Fatalf("a second GET gave another URL: %s, %s", path, again)
	}
	if got := feed(path, http.StatusOK); got[a1.ID] != "CONFIRMED" || got[a2.ID] != "CANCELLED" || len(got) != 2 {
		t.Fatalf("patient feed %v", got)
	}
	if got := feed(feedPath(doc.Token), http.StatusOK); len(got) != 2 {
		t.Fatalf("doctor feed %v", got)
	}
	for _, bad := range []string{"/calendar/x.ics", "/calendar/p_" + p.User.ID + "_00.ics", strings.Replace(path, "/p_", "/d_", 1)} {
		e.Do(t, testenv.Req{Method: http.MethodGet, Path: bad}).CheckProblem(t, http.StatusNotFound, "calendar_feed_not_found")
	}
	e.Do(t, testenv.Req{Method: http.MethodDelete, Path: "/me/calendar-feed", Token: p.Token}).Must(t, http.StatusNoContent)
	e.Do(t, testenv.Req{Method: http.MethodGet, Path: path}).CheckProblem(t, http.StatusNotFound, "calendar_feed_not_found")
	next := feedPath(p.Token)
	if next == path {
		t.Fatal("the URL did not change after the revocation")
	}
	feed(next, http.StatusOK)
}

// With SMTP_URL, the api's account mails (here the email verification)
// go to the SMTP server too, carrying the token that verifies the address.
func TestAccountMailOverSMTP(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	e := testenv.Start(t, testenv.Options{VerifyEmail: true, Mail: app.MailOptions{SMTPURL: srv.URL()}})
	p := e.Register(t, "Vera Verify")
	m := srv.WaitFor(t, 1, 10*time.Second)[0]
	parsed, err := m.Parse()
	if err != nil {
		t.Fatal(err)
	}
	body, err := notify.TextBody(parsed)
	if err != nil || m.To[0] != p.User.Email || !strings.Contains(parsed.Header.Get("Subject"), "Verify your email") {
		t.Fatalf("mail to %v, subject %q, %v", m.To, parsed.Header.Get("Subject"), err)
	}
	// The mail links to the web client's page with the token.
	_, rest, ok := strings.Cut(body, "/verify-email?token=")
	token, _, _ := strings.Cut(rest, "\n")
	if !ok || token == "" {
		t.Fatalf("no verification link in %q", body)
	}
	e.Post(t, "/auth/verify-email", "", map[string]string{"token": token}).Must(t, http.StatusOK)
}
