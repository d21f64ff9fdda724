package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

// MongoDB stopped mid-run, on the production wiring with a private FerretDB
// the tests may kill: commands need only the event store, so bookings keep
// succeeding (and a taken slot is still refused); reads that must reach
// MongoDB answer 503 "unavailable" promptly, never 500 and never a hang;
// and once MongoDB is back the projections catch up with every event
// appended meanwhile, each applied exactly once.

// mongoDownReadLimit bounds every answer while MongoDB is down: a read that
// cannot reach it must say so (503), not wait for the driver's 30 s
// timeouts (the production server's write timeout is 30 s too).
const mongoDownReadLimit = 10 * time.Second

// mongoDownAtLeast is how long TestProductionMongoDown keeps MongoDB down:
// longer than the projection runner's retry middleware would retry one
// event before handing it to the poison queue (6 attempts of up to 2 s,
// the driver's server selection timeout, plus 1.55 s of backoff: about
// 14 s), so an engine that does not hold an event while its read model is
// unavailable loses the first booking made in the outage, and (c) says so.
const mongoDownAtLeast = 16 * time.Second

// TestProductionMongoDown: MongoDB stopped between requests.
func TestProductionMongoDown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFerretDB(t)
	logs := captureLogs(t)
	e := testenv.Start(t, testenv.Options{Production: true, MongoURI: srv.URI(), Logger: logs.logger(), MaxWait: 2 * time.Second})
	speciality := "Nephrologist " + e.Unique("mongo-down")
	d := e.NewDoctor(t, "Dr. Mongo Down", speciality)
	cold := e.NewDoctor(t, "Dr. Never Read", speciality) // no read ever fills the cache for it
	alice := e.Register(t, "Alice")
	bob := e.Register(t, "Bob")
	carol := e.Register(t, "Carol") // books for the first time while MongoDB is down

	// Before: two bookings, applied everywhere; the profile of d is cached.
	before := []testenv.Appointment{
		e.MustBook(t, alice.Token, d.ID, testenv.At(1, 10, 0)),
		e.MustBook(t, bob.Token, d.ID, testenv.At(1, 10, 30)),
	}
	e.CaughtUp(t)
	e.Get(t, "/doctors/"+d.ID, "").Must(t, http.StatusOK)
	if free := e.FreeSlots(t, d.ID, testenv.Date(1), 1, before[1].Position); free.Has(testenv.At(1, 10, 0)) || free.Has(testenv.At(1, 10, 30)) {
		t.Fatalf("slots booked before the fault listed free: %+v", free)
	}
	e.Get(t, "//readyz", "").Must(t, http.StatusOK)

	srv.Stop()
	stopped := time.Now()

	// (a) Commands need only the event store: bookings succeed, a new
	// patient registers, and a taken slot is still refused. A booking comes
	// first: it is the event the projections meet first with MongoDB gone,
	// the one an engine that gives up on an event would lose visibly.
	type booking struct {
		who   string
		token string
		appt  testenv.Appointment
	}
	var during []booking
	book := func(who, token, doctorID string, start time.Time) {
		t.Helper()
		sent := time.Now()
		r := e.Book(t, token, doctorID, start)
		if took := time.Since(sent); took > mongoDownReadLimit {
			t.Errorf("%s took %v with MongoDB down", r, took)
		}
		r.Must(t, http.StatusCreated)
		var a testenv.Appointment
		r.Decode(t, &a)
		if a.ID == "" || a.Position == 0 || !a.Start.Equal(start) || a.DoctorID != doctorID {
			t.Fatalf("booking with MongoDB down: %s", r)
		}
		during = append(during, booking{who, token, a})
	}
	book("alice", alice.Token, d.ID, testenv.At(1, 11, 0))
	// A new patient's data key is made in MongoDB, the key store of this
	// wiring (docs/security.md): registering needs it, and says so at once.
	sent := time.Now()
	reg := e.Post(t, "/auth/register", "", map[string]string{"name": "Dora", "email": e.Unique("dora") + "@example.test", "password": testenv.Password})
	if reg.Status != http.StatusServiceUnavailable || time.Since(sent) > mongoDownReadLimit {
		t.Errorf("registering with MongoDB down: %s after %v, want a 503 within %v", reg, time.Since(sent), mongoDownReadLimit)
	}
	book("alice", alice.Token, d.ID, testenv.At(2, 11, 0))
	book("bob", bob.Token, d.ID, testenv.At(1, 11, 30))
	book("carol", carol.Token, d.ID, testenv.At(1, 12, 0))
	book("carol", carol.Token, cold.ID, testenv.At(1, 12, 30))
	last := during[len(during)-1].appt.Position
	e.Book(t, bob.Token, d.ID, testenv.At(1, 11, 0)).CheckProblem(t, http.StatusConflict, "slot_unavailable")
	e.Book(t, carol.Token, d.ID, testenv.At(1, 10, 0)).CheckProblem(t, http.StatusConflict, "slot_unavailable")

	// (b) Reads. Each runs concurrently with the others, so a read that
	// hangs costs its own bound, not the sum of all of them.
	tokenOf := map[string]string{"alice": alice.Token, "bob": bob.Token, "carol": carol.Token}
	slotsPath := func(id string) string {
		return "/doctors/" + id + "/slots?" + url.Values{"from": {testenv.Date(1)}, "days": {"2"}}.Encode()
	}
	client := &http.Client{Timeout: mongoDownReadLimit + 5*time.Second}
	type read struct {
		name string
		req  testenv.Req
		// want: "unavailable" the read must reach MongoDB, so 503
		// unavailable; "waiting" it waits for a position the read models
		// cannot reach (503 not_caught_up, or unavailable); "cached" a
		// cache hit may answer 200, else 503 unavailable.
		want string
	}
	reads := []read{
		{"patient list", testenv.Req{Method: http.MethodGet, Path: "/appointments", Token: alice.Token}, "unavailable"},
		{"patient list of a patient registered while down", testenv.Req{Method: http.MethodGet, Path: "/appointments", Token: carol.Token}, "unavailable"},
		{"one appointment", testenv.Req{Method: http.MethodGet, Path: "/appointments/" + before[0].ID, Token: alice.Token}, "unavailable"},
		{"doctor's list", testenv.Req{Method: http.MethodGet, Path: "/appointments", Token: d.Token}, "unavailable"},
		{"admin list", testenv.Req{Method: http.MethodGet, Path: "/appointments?doctorId=" + d.ID, Token: e.AdminToken}, "unavailable"},
		{"directory by speciality", testenv.Req{Method: http.MethodGet, Path: "/doctors?" + url.Values{"speciality": {speciality}}.Encode()}, "unavailable"},
		{"directory", testenv.Req{Method: http.MethodGet, Path: "/doctors"}, "unavailable"},
		{"specialities", testenv.Req{Method: http.MethodGet, Path: "/specialities"}, "unavailable"},
		{"doctor dashboard", testenv.Req{Method: http.MethodGet, Path: "/doctor/dashboard", Token: d.Token}, "unavailable"},
		{"admin dashboard", testenv.Req{Method: http.MethodGet, Path: "/admin/dashboard", Token: e.AdminToken}, "unavailable"},
		{"uncached profile", testenv.Req{Method: http.MethodGet, Path: "/doctors/" + cold.ID}, "unavailable"},
		{"slots of an uncached doctor", testenv.Req{Method: http.MethodGet, Path: slotsPath(cold.ID)}, "unavailable"},
		{"slots after the last booking", testenv.Req{Method: http.MethodGet, Path: slotsPath(d.ID), MinPosition: last}, "waiting"},
		{"patient list after the last booking", testenv.Req{Method: http.MethodGet, Path: "/appointments", Token: carol.Token, MinPosition: last}, "waiting"},
		{"cached profile", testenv.Req{Method: http.MethodGet, Path: "/doctors/" + d.ID}, "cached"},
		{"slots", testenv.Req{Method: http.MethodGet, Path: slotsPath(d.ID)}, "cached"},
	}
	var wg sync.WaitGroup
	for _, rd := range reads {
		wg.Go(func() {
			q := rd.req
			q.Client = client
			start := time.Now()
			r := e.Do(t, q)
			took := time.Since(start)
			t.Logf("MongoDB down: %s: %d %s in %v", rd.name, r.Status, problemCode(r), took.Round(time.Millisecond))
			if took > mongoDownReadLimit {
				t.Errorf("%s (%s) with MongoDB down: answered after %v, want within %v", rd.name, r, took.Round(time.Millisecond), mongoDownReadLimit)
			}
			switch {
			case r.Status == 0: // transport error, reported by Do
			case rd.want == "cached" && r.Status == http.StatusOK:
			case rd.want == "waiting":
				if p := r.CheckProblem(t, http.StatusServiceUnavailable, ""); p.Code != "not_caught_up" && p.Code != "unavailable" {
					t.Errorf("%s (%s) with MongoDB down: code %q, want not_caught_up or unavailable", rd.name, r, p.Code)
				}
			default:
				if r.Status != http.StatusServiceUnavailable {
					t.Errorf("%s with MongoDB down: %s, want 503 unavailable", rd.name, r)
					return
				}
				r.CheckProblem(t, http.StatusServiceUnavailable, "unavailable")
			}
		})
	}
	wg.Wait()

	r := e.Get(t, "//readyz", "")
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if r.Status != http.StatusServiceUnavailable || json.Unmarshal(r.Body, &ready) != nil ||
		ready.Checks["mongodb"] == "" || ready.Checks["mongodb"] == "ok" {
		t.Errorf("/readyz with MongoDB down: %s, want 503 naming mongodb", r)
	} else if ready.Checks["eventstore"] != "ok" || ready.Checks["redis"] != "ok" {
		t.Errorf("/readyz with MongoDB down blames more than MongoDB: %s", r)
	}
	// Keep MongoDB down past the retry middleware's budget (see
	// mongoDownAtLeast).
	time.Sleep(time.Until(stopped.Add(mongoDownAtLeast)))

	// (c) MongoDB returns with its data: the projections catch up with
	// everything appended meanwhile, each event applied exactly once.
	srv.Restart()
	e.CaughtUp(t)
	want := map[string][]testenv.Appointment{
		"alice": {before[0]},
		"bob":   {before[1]},
	}
	for _, b := range during {
		want[b.who] = append(want[b.who], b.appt)
	}
	for who, appts := range want {
		got := allAppointments(t, e, tokenOf[who], "", last)
		checkSameAppointments(t, who+"'s appointments after MongoDB came back", got, appts, "made while MongoDB was down")
	}
	var ofD []testenv.Appointment
	for _, as := range want {
		for _, a := range as {
			if a.DoctorID == d.ID {
				ofD = append(ofD, a)
			}
		}
	}
	checkSameAppointments(t, "the admin's list of "+d.ID, allAppointments(t, e, e.AdminToken, "doctorId="+d.ID, last), ofD, "")
	for _, b := range during {
		r := e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + b.appt.ID, Token: b.token, MinPosition: last})
		if r.Expect(t, http.StatusOK).Status != http.StatusOK {
			continue
		}
		var a testenv.Appointment
		r.Decode(t, &a)
		if a.ID != b.appt.ID || !a.Start.Equal(b.appt.Start) || a.DoctorID != b.appt.DoctorID || a.Status != b.appt.Status {
			t.Errorf("appointment booked while MongoDB was down reads %s, booked as %+v", r, b.appt)
		}
	}
	free := e.FreeSlots(t, d.ID, testenv.Date(1), 2, last)
	for _, a := range ofD {
		if free.Has(a.Start) {
			t.Errorf("slot %v booked (appointment %s, position %d) is listed free after MongoDB came back", a.Start, a.ID, a.Position)
		}
	}
	for _, s := range []time.Time{testenv.At(1, 12, 30), testenv.At(2, 10, 0), testenv.At(2, 20, 30)} {
		if !free.Has(s) {
			t.Errorf("slot %v, never booked, is not listed free after MongoDB came back", s)
		}
	}
	if e.FreeSlots(t, cold.ID, testenv.Date(1), 1, last).Has(testenv.At(1, 12, 30)) {
		t.Errorf("slot booked with %s while MongoDB was down is listed free after it came back", cold.ID)
	}
	r = e.Get(t, "/doctors?"+url.Values{"speciality": {speciality}}.Encode(), "").Must(t, http.StatusOK)
	var dir struct {
		Doctors []testenv.Doctor `json:"doctors"`
	}
	r.Decode(t, &dir)
	if len(dir.Doctors) != 2 {
		t.Errorf("directory by speciality after MongoDB came back: %s, want the 2 doctors", r)
	}
	acked := appointmentIDs(before)
	for _, b := range during {
		acked = append(acked, b.appt.ID)
	}
	checkAckedEqualsLog(t, "after the MongoDB outage", e, acked)
	checkMongoEqualsReplay(t, "MongoDB read models after the outage", e, e.Options().MongoURI, readmodeltest.Probe{
		DoctorIDs: []string{d.ID, cold.ID}, PatientIDs: []string{alice.User.ID, bob.User.ID, carol.User.ID}, AppointmentIDs: acked,
		From: doctor.DateOf(testenv.At(0, 12, 0).In(testenv.IST)), Days: 3, Now: e.Clock.Now(),
	})
	checkProjectionsHealthy(t, e)
	waitReady(t, e)
}

// TestProductionMongoDownDuringBurst: MongoDB is killed while patients
// book concurrently and comes back about a second later. Every booking
// answers 201 or 409 slot_unavailable throughout (never 5xx), each slot has
// exactly one winner, and once MongoDB is back every 201 is in the read
// models exactly once and its slot is no longer free.
func TestProductionMongoDownDuringBurst(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFerretDB(t)
	logs := captureLogs(t)
	e := testenv.Start(t, testenv.Options{Production: true, MongoURI: srv.URI(), Logger: logs.logger(), MaxWait: 2 * time.Second})
	d := e.NewDoctor(t, "Dr. Burst", "Cardiologist")
	const pairs = 4       // two patients per pair race over one list of slots
	const daysPerPair = 6 // 22 slots a day: more than a pair books in the run
	patients := make([]testenv.AuthResult, 2*pairs)
	for i := range patients {
		patients[i] = e.Register(t, fmt.Sprintf("Burst %d", i))
	}
	e.CaughtUp(t)

	type outcome struct {
		patient int
		start   time.Time
		status  int
		appt    testenv.Appointment
		// sent and answered bound when the booking was decided.
		sent, answered time.Time
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range patients {
		wg.Go(func() {
			pair := i / 2
			var slots []time.Time
			for day := 1 + pair*daysPerPair; day <= (pair+1)*daysPerPair; day++ {
				for s := testenv.At(day, 10, 0); s.Before(testenv.At(day, 21, 0)); s = s.Add(30 * time.Minute) {
					slots = append(slots, s)
				}
			}
			for _, s := range slots {
				select {
				case <-done:
					return
				default:
				}
				sent := time.Now()
				r := e.Book(t, patients[i].Token, d.ID, s)
				o := outcome{patient: i, start: s, status: r.Status, sent: sent, answered: time.Now()}
				if took := o.answered.Sub(sent); took > mongoDownReadLimit {
					t.Errorf("%s took %v", r, took)
				}
				switch r.Status {
				case http.StatusCreated:
					if err := json.Unmarshal(r.Body, &o.appt); err != nil || o.appt.ID == "" || !o.appt.Start.Equal(s) {
						t.Errorf("booking answer %s", r)
					}
				case http.StatusConflict:
					r.CheckProblem(t, http.StatusConflict, "slot_unavailable")
				default:
					t.Errorf("booking during the MongoDB fault: %s, want 201 or 409", r)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(30 * time.Millisecond)
			}
			t.Errorf("patient %d ran out of slots before the burst ended: give the pairs more days", i)
		})
	}
	// Stop MongoDB once the burst has made a booking, keep it down at
	// least a second and until a booking sent after the stop succeeded
	// (on a loaded machine the first answers can take a while).
	booked := func(since time.Time) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, o := range outcomes {
				if o.status == http.StatusCreated && o.sent.After(since) {
					return true
				}
			}
			return false
		}
	}
	waitFor(t, 30*time.Second, "the burst booked a slot", booked(time.Time{}))
	stopped := time.Now()
	srv.Stop()
	time.Sleep(time.Second)
	waitFor(t, 30*time.Second, "a booking succeeded while MongoDB was down", booked(stopped))
	srv.Start()
	restarted := time.Now()
	time.Sleep(300 * time.Millisecond)
	close(done)
	wg.Wait()
	var before, whileDown, after int
	for _, o := range outcomes {
		switch {
		case o.status != http.StatusCreated:
		case o.answered.Before(stopped):
			before++
		case o.sent.After(stopped) && o.answered.Before(restarted):
			whileDown++
		default:
			after++
		}
	}
	t.Logf("%d booking attempts; 201s: %d before MongoDB was stopped, %d while it was down, %d around or after its return",
		len(outcomes), before, whileDown, after)
	if before == 0 || whileDown == 0 {
		t.Fatalf("the burst did not span the fault: %d bookings before the stop, %d while MongoDB was down", before, whileDown)
	}

	// Each slot attempted has exactly one winner.
	winners := map[time.Time][]testenv.Appointment{}
	attempted := map[time.Time]bool{}
	byPatient := map[int][]testenv.Appointment{}
	var created []testenv.Appointment
	var head uint64
	for _, o := range outcomes {
		attempted[o.start] = true
		if o.status == http.StatusCreated {
			winners[o.start] = append(winners[o.start], o.appt)
			byPatient[o.patient] = append(byPatient[o.patient], o.appt)
			created = append(created, o.appt)
			head = max(head, o.appt.Position)
		}
	}
	for s := range attempted {
		if n := len(winners[s]); n != 1 {
			t.Errorf("slot %v: %d bookings answered 201, want exactly 1: %+v", s, n, winners[s])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	e.CaughtUp(t)
	for i, p := range patients {
		got := allAppointments(t, e, p.Token, "", head)
		checkSameAppointments(t, fmt.Sprintf("patient %d's appointments after MongoDB came back", i), got, byPatient[i], "")
	}
	checkSameAppointments(t, "the admin's list of the doctor", allAppointments(t, e, e.AdminToken, "doctorId="+d.ID, head), created, "")
	free := e.FreeSlots(t, d.ID, testenv.Date(1), pairs*daysPerPair, head)
	for _, a := range created {
		if free.Has(a.Start) {
			t.Errorf("slot %v booked (appointment %s, position %d) is listed free after MongoDB came back", a.Start, a.ID, a.Position)
		}
	}
	for day := 1; day <= pairs*daysPerPair; day++ {
		for s := testenv.At(day, 10, 0); s.Before(testenv.At(day, 21, 0)); s = s.Add(30 * time.Minute) {
			if !attempted[s] && !free.Has(s) {
				t.Errorf("slot %v, never booked, is not listed free after MongoDB came back", s)
			}
		}
	}
	checkAckedEqualsLog(t, "after the MongoDB kill during the burst", e, appointmentIDs(created))
	var patientIDs []string
	for _, p := range patients {
		patientIDs = append(patientIDs, p.User.ID)
	}
	checkMongoEqualsReplay(t, "MongoDB read models after the burst", e, e.Options().MongoURI, readmodeltest.Probe{
		DoctorIDs: []string{d.ID}, PatientIDs: patientIDs, AppointmentIDs: appointmentIDs(created),
		From: doctor.DateOf(testenv.At(0, 12, 0).In(testenv.IST)), Days: pairs*daysPerPair + 1, Now: e.Clock.Now(), PageSize: 50,
	})
	checkProjectionsHealthy(t, e)
	waitReady(t, e)
}

// allAppointments pages through GET /appointments (with query) for token,
// after minPos.
func allAppointments(t *testing.T, e *testenv.Env, token, query string, minPos uint64) []testenv.Appointment {
	t.Helper()
	var out []testenv.Appointment
	cursor := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatalf("GET /appointments?%s: more than 100 pages", query)
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		q.Set("limit", "200")
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		l := e.Appointments(t, token, q.Encode(), minPos)
		out = append(out, l.Appointments...)
		if l.NextCursor == "" {
			return out
		}
		cursor = l.NextCursor
	}
}

// checkSameAppointments reports every appointment of want missing from got
// (an event the read model lost), every id got lists twice (an event
// applied twice) and every one got lists that want lacks.
func checkSameAppointments(t *testing.T, what string, got, want []testenv.Appointment, wantNote string) {
	t.Helper()
	seen := map[string]int{}
	for _, a := range got {
		seen[a.ID]++
	}
	wanted := map[string]bool{}
	for _, a := range want {
		wanted[a.ID] = true
		switch n := seen[a.ID]; {
		case n == 0:
			note := ""
			if wantNote != "" {
				note = ", " + wantNote
			}
			t.Errorf("%s: appointment %s (slot %v, position %d%s) is missing: the read model lost its event", what, a.ID, a.Start, a.Position, note)
		case n > 1:
			t.Errorf("%s: appointment %s listed %d times", what, a.ID, n)
		}
	}
	for id, n := range seen {
		if !wanted[id] {
			t.Errorf("%s: appointment %s listed %d times, but no booking made it", what, id, n)
		}
	}
	if len(got) != len(want) {
		ids := make([]string, 0, len(got))
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		slices.Sort(ids)
		t.Errorf("%s: %d listed, want %d: %v", what, len(got), len(want), ids)
	}
}

// checkProjectionsHealthy: no projection failed or poisoned an event.
func checkProjectionsHealthy(t *testing.T, e *testenv.Env) {
	t.Helper()
	r := e.Get(t, "/admin/projections", e.AdminToken).Must(t, http.StatusOK)
	var st struct {
		Projections []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Lag    uint64 `json:"lag"`
			Error  string `json:"error"`
		} `json:"projections"`
	}
	r.Decode(t, &st)
	if len(st.Projections) == 0 {
		t.Errorf("GET /admin/projections lists no projection: nothing to call healthy")
	}
	for _, p := range st.Projections {
		if p.Status != "running" {
			t.Errorf("projection %s is %s after MongoDB came back (error %q)", p.Name, p.Status, p.Error)
		}
	}
}

// problemCode is the code of a problem answer, else "".
func problemCode(r *testenv.Res) string {
	var p struct {
		Code string `json:"code"`
	}
	if r.Header.Get("Content-Type") == "application/problem+json" {
		_ = json.Unmarshal(r.Body, &p)
	}
	return p.Code
}

// waitReady waits (at most 10 s) for /readyz to answer 200.
func waitReady(t *testing.T, e *testenv.Env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.Get(t, "//readyz", "")
		if r.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("/readyz after MongoDB came back: %s, want 200", r)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logCapture keeps the engine's log, shown when the test fails.
type logCapture struct {
	mu  sync.Mutex
	buf strings.Builder
}

func captureLogs(t *testing.T) *logCapture {
	c := &logCapture{}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.buf.String()
		if len(s) > 12000 {
			s = "..." + s[len(s)-12000:]
		}
		t.Logf("engine log (info and above, access log left out):\n%s", s)
	})
	return c
}

func (c *logCapture) Write(p []byte) (int, error) {
	if strings.Contains(string(p), `"message":"request"`) {
		return len(p), nil // the access log
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf.Len() < 4<<20 {
		c.buf.Write(p)
	}
	return len(p), nil
}

func (c *logCapture) logger() *zerolog.Logger {
	l := zerolog.New(c).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	return &l
}
