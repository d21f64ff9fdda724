package app_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections/mongo"
)

// TestWalkthrough is the README walk-through as a client does it: register,
// find a doctor by speciality, list slots, book, list, get, cancel (the slot
// is free again), reschedule, the doctor logs in, sees the dashboard and
// closes appointments once the clock passes their start, the admin
// dashboard. Every response is checked against openapi.yaml by testenv.
func TestWalkthrough(t *testing.T) {
	t.Parallel()
	walkthrough(t, testenv.Options{})
}

// walkthrough is TestWalkthrough's body on the engine o starts.
func walkthrough(t *testing.T, o testenv.Options) {
	e := testenv.Start(t, o)

	gp1 := e.NewDoctor(t, "Dr. Richard James", "General physician")
	gp2 := e.NewDoctor(t, "Dr. Chloe Evans", "General physician")
	derm := e.NewDoctor(t, "Dr. Sarah Patel", "Dermatologist")

	alice := e.Register(t, "Alice Patient")
	if alice.Position == 0 {
		t.Errorf("register answered position 0")
	}

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("doctors by speciality", func(t *testing.T) {
		q := url.Values{"speciality": {"General physician"}}
		r := e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/doctors?" + q.Encode(), MinPosition: derm.Position}).Must(t, http.StatusOK)
		var list struct{ Doctors []testenv.Doctor }
		r.Decode(t, &list)
		var ids []string
		for _, d := range list.Doctors {
			ids = append(ids, d.ID)
			if d.Speciality != "General physician" || d.Timezone != testenv.Zone || !d.Available || d.Fees != 50000 || d.Currency != "INR" {
				t.Errorf("listed doctor %+v", d)
			}
		}
		slices.Sort(ids)
		want := []string{gp1.ID, gp2.ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("general physicians %v, want %v", ids, want)
		}
		// Case-insensitive speciality and free text.
		r = e.Get(t, "/doctors?speciality=dermatologist", "").Must(t, http.StatusOK)
		r.Decode(t, &list)
		if len(list.Doctors) != 1 || list.Doctors[0].ID != derm.ID {
			t.Errorf("dermatologists %+v", list.Doctors)
		}
		r = e.Get(t, "/doctors?q=chloe", "").Must(t, http.StatusOK)
		r.Decode(t, &list)
		if len(list.Doctors) != 1 || list.Doctors[0].ID != gp2.ID {
			t.Errorf("q=chloe: %+v", list.Doctors)
		}
		r = e.Get(t, "/doctors/"+gp1.ID, "").Must(t, http.StatusOK)
		var one testenv.Doctor
		r.Decode(t, &one)
		if one.ID != gp1.ID || one.Name != "Dr. Richard James" {
			t.Errorf("GET /doctors/{id}: %+v", one)
		}
		r = e.Get(t, "/specialities", "").Must(t, http.StatusOK)
		var sp struct {
			Specialities []struct {
				Name    string
				Doctors int
			}
		}
		r.Decode(t, &sp)
		got := map[string]int{}
		for _, s := range sp.Specialities {
			got[s.Name] = s.Doctors
		}
		if got["General physician"] != 2 || got["Dermatologist"] != 1 || len(got) != 2 {
			t.Errorf("specialities %v", got)
		}
	})

	slot := testenv.At(1, 10, 0) // tomorrow 10:00 in Kolkata
	var booked testenv.Appointment

	step("slots", func(t *testing.T) {
		s := e.FreeSlots(t, gp1.ID, testenv.Date(1), 2, gp1.Position) // read-your-writes: the onboarding's position
		if s.DoctorID != gp1.ID || s.Timezone != testenv.Zone || len(s.Days) != 2 {
			t.Fatalf("slots %+v", s)
		}
		if s.Days[0].Date != testenv.Date(1) || len(s.Days[0].Slots) != 22 {
			t.Errorf("day 1: %s with %d slots, want %s with 22 (10:00-21:00 by 30 min)", s.Days[0].Date, len(s.Days[0].Slots), testenv.Date(1))
		}
		if first := s.Days[0].Slots[0]; !first.Start.Equal(slot) || !first.End.Equal(slot.Add(30*time.Minute)) {
			t.Errorf("first slot %+v, want %v", first, slot)
		}
		// Today: 09:00 now, so every slot from 10:00 is still bookable.
		today := e.FreeSlots(t, gp1.ID, testenv.Date(0), 1, gp1.Position)
		if len(today.Days[0].Slots) != 22 {
			t.Errorf("today has %d free slots, want 22", len(today.Days[0].Slots))
		}
		// Without from: today in the doctor's zone, 7 days.
		r := e.Get(t, "/doctors/"+gp1.ID+"/slots", "").Must(t, http.StatusOK)
		var def testenv.Slots
		r.Decode(t, &def)
		if len(def.Days) != 7 || def.Days[0].Date != testenv.Date(0) {
			t.Errorf("default slots: %d days from %s", len(def.Days), def.Days[0].Date)
		}
	})

	step("book", func(t *testing.T) {
		// As the README does it: with an Idempotency-Key, so a retry is safe.
		req := keyed(bookReq(alice.Token, gp1.ID, testenv.RFC3339(slot)), "walkthrough-1")
		e.Do(t, req).Must(t, http.StatusCreated).Decode(t, &booked)
		var retry testenv.Appointment
		e.Do(t, req).Must(t, http.StatusCreated).Decode(t, &retry)
		if retry.ID != booked.ID || retry.Position != booked.Position {
			t.Errorf("retry with the same key: %s at %d, want %s at %d", retry.ID, retry.Position, booked.ID, booked.Position)
		}
		if booked.ID == "" || booked.DoctorID != gp1.ID || booked.PatientID != alice.User.ID || booked.PatientName != "Alice Patient" ||
			booked.DoctorName != gp1.Name || !booked.Start.Equal(slot) || !booked.End.Equal(slot.Add(30*time.Minute)) ||
			booked.Status != "confirmed" || booked.Fees != 50000 || booked.Currency != "INR" ||
			booked.Payment.Status != "not_required" || booked.Position == 0 || !booked.CreatedAt.Equal(testenv.DefaultNow) {
			t.Errorf("booked %+v", booked)
		}
		// The doctor's zone turns the UTC instants into the local times the
		// schedule speaks of.
		if zone, err := time.LoadLocation(booked.Timezone); booked.Timezone != testenv.Zone || err != nil || booked.Start.In(zone).Format("15:04") != "10:00" {
			t.Errorf("booked timezone %q (%v): local start %s, want %s 10:00", booked.Timezone, err, booked.Start, testenv.Zone)
		}
		s := e.FreeSlots(t, gp1.ID, testenv.Date(1), 1, booked.Position)
		if s.Has(slot) {
			t.Errorf("booked slot still listed free")
		}
		if len(s.Days[0].Slots) != 21 {
			t.Errorf("%d free slots after booking one, want 21", len(s.Days[0].Slots))
		}
		// The same slot again, by someone else: taken.
		bob := e.Register(t, "Bob Patient")
		e.Book(t, bob.Token, gp1.ID, slot).CheckProblem(t, http.StatusConflict, "slot_unavailable")
	})

	step("list and get mine", func(t *testing.T) {
		l := e.Appointments(t, alice.Token, "", booked.Position)
		if len(l.Appointments) != 1 || l.Appointments[0].ID != booked.ID || l.Appointments[0].Status != "confirmed" || l.Appointments[0].Timezone != testenv.Zone {
			t.Fatalf("my appointments %+v", l)
		}
		r := e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + booked.ID, Token: alice.Token, MinPosition: booked.Position}).Must(t, http.StatusOK)
		var a testenv.Appointment
		r.Decode(t, &a)
		if a.ID != booked.ID || !a.Start.Equal(slot) || a.DoctorName != gp1.Name || a.Timezone != testenv.Zone || a.Status != "confirmed" {
			t.Errorf("GET /appointments/{id}: %+v", a)
		}
		l = e.Appointments(t, alice.Token, "status=cancelled", 0)
		if len(l.Appointments) != 0 {
			t.Errorf("status=cancelled lists %d", len(l.Appointments))
		}
		q := url.Values{"from": {testenv.RFC3339(slot)}, "to": {testenv.RFC3339(slot.Add(time.Hour))}}
		if l = e.Appointments(t, alice.Token, q.Encode(), 0); len(l.Appointments) != 1 {
			t.Errorf("from/to around the slot lists %d", len(l.Appointments))
		}
	})

	step("cancel frees the slot", func(t *testing.T) {
		r := e.Post(t, "/appointments/"+booked.ID+"/cancel", alice.Token, map[string]string{"reason": "feeling better"}).Must(t, http.StatusOK)
		var a testenv.Appointment
		r.Decode(t, &a)
		if a.Status != "cancelled" || a.CancelReason == nil || *a.CancelReason != "feeling better" || a.Position <= booked.Position {
			t.Errorf("cancelled %+v", a)
		}
		if s := e.FreeSlots(t, gp1.ID, testenv.Date(1), 1, a.Position); !s.Has(slot) {
			t.Errorf("cancelled slot not free again")
		}
		r = e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + booked.ID, Token: alice.Token, MinPosition: a.Position}).Must(t, http.StatusOK)
		r.Decode(t, &a)
		if a.Status != "cancelled" {
			t.Errorf("read model status %q after cancel", a.Status)
		}
		// Cancelling again is a conflict, not a silent success.
		e.Post(t, "/appointments/"+booked.ID+"/cancel", alice.Token, nil).CheckProblem(t, http.StatusConflict, "invalid_transition")
		// The slot can be booked again.
		again := e.MustBook(t, alice.Token, gp1.ID, slot)
		e.Post(t, "/appointments/"+again.ID+"/cancel", alice.Token, nil).Must(t, http.StatusOK)
	})

	var moved testenv.Appointment
	step("reschedule", func(t *testing.T) {
		a := e.MustBook(t, alice.Token, gp1.ID, testenv.At(1, 11, 0))
		r := e.Post(t, "/appointments/"+a.ID+"/reschedule", alice.Token, map[string]string{"start": testenv.RFC3339(testenv.At(1, 12, 0))}).Must(t, http.StatusOK)
		r.Decode(t, &moved)
		if moved.ID != a.ID || !moved.Start.Equal(testenv.At(1, 12, 0)) || moved.Status != "confirmed" || moved.Position <= a.Position {
			t.Errorf("rescheduled %+v", moved)
		}
		s := e.FreeSlots(t, gp1.ID, testenv.Date(1), 1, moved.Position)
		if !s.Has(testenv.At(1, 11, 0)) || s.Has(testenv.At(1, 12, 0)) {
			t.Errorf("after reschedule: 11:00 free %v (want true), 12:00 free %v (want false)", s.Has(testenv.At(1, 11, 0)), s.Has(testenv.At(1, 12, 0)))
		}
		// Atomic: onto a taken slot it fails and keeps the old one.
		bob := e.Register(t, "Bob Again")
		taken := e.MustBook(t, bob.Token, gp1.ID, testenv.At(1, 15, 0))
		e.Post(t, "/appointments/"+a.ID+"/reschedule", alice.Token, map[string]string{"start": testenv.RFC3339(taken.Start)}).
			CheckProblem(t, http.StatusConflict, "slot_unavailable")
		r = e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + a.ID, Token: alice.Token, MinPosition: taken.Position}).Must(t, http.StatusOK)
		var now testenv.Appointment
		r.Decode(t, &now)
		if !now.Start.Equal(testenv.At(1, 12, 0)) || now.Status != "confirmed" {
			t.Errorf("after a failed reschedule: %+v", now)
		}
		e.Post(t, "/appointments/"+taken.ID+"/cancel", bob.Token, nil).Must(t, http.StatusOK)
	})

	var closeLater testenv.Appointment
	step("doctor login and dashboard", func(t *testing.T) {
		carol := e.Register(t, "Carol Patient")
		closeLater = e.MustBook(t, carol.Token, gp1.ID, testenv.At(1, 13, 0))
		doc := e.Login(t, gp1.Email, testenv.Password)
		if doc.User.Role != "doctor" || doc.User.ID != gp1.ID || doc.User.DoctorID != gp1.ID {
			t.Errorf("doctor login user %+v", doc.User)
		}
		r := e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/doctor/dashboard", Token: doc.Token, MinPosition: closeLater.Position}).Must(t, http.StatusOK)
		var d struct {
			Earnings     int64
			Currency     string
			Appointments int
			Patients     int
			Latest       []testenv.Appointment
		}
		r.Decode(t, &d)
		// alice: cancelled, cancelled again, the moved one; bob: the
		// taken one (cancelled); carol: one.
		if d.Appointments != 5 || d.Patients != 3 || d.Earnings != 0 || d.Currency != "INR" || len(d.Latest) == 0 || d.Latest[0].ID != closeLater.ID {
			t.Errorf("doctor dashboard %+v", d)
		}
		l := e.Appointments(t, doc.Token, "status=confirmed", 0)
		if len(l.Appointments) != 2 {
			t.Errorf("doctor's confirmed appointments: %d, want 2", len(l.Appointments))
		}
		// Before the start, neither complete nor no-show.
		e.Post(t, "/appointments/"+moved.ID+"/complete", doc.Token, nil).CheckProblem(t, http.StatusUnprocessableEntity, "appointment_not_started")
		e.Post(t, "/appointments/"+closeLater.ID+"/no-show", doc.Token, nil).CheckProblem(t, http.StatusUnprocessableEntity, "appointment_not_started")
	})

	step("complete and no-show after the start", func(t *testing.T) {
		e.Clock.Set(testenv.At(1, 13, 10))
		// The old tokens (1 h) have expired meanwhile.
		e.Get(t, "/me", gp1.Token).CheckProblem(t, http.StatusUnauthorized, "invalid_token")
		doc := e.Login(t, gp1.Email, testenv.Password)
		r := e.Post(t, "/appointments/"+moved.ID+"/complete", doc.Token, nil).Must(t, http.StatusOK)
		var a testenv.Appointment
		r.Decode(t, &a)
		if a.Status != "completed" || a.ID != moved.ID {
			t.Errorf("completed %+v", a)
		}
		r = e.Post(t, "/appointments/"+closeLater.ID+"/no-show", doc.Token, map[string]any{}).Must(t, http.StatusOK)
		var n testenv.Appointment
		r.Decode(t, &n)
		if n.Status != "no_show" {
			t.Errorf("no-show %+v", n)
		}
		e.Post(t, "/appointments/"+moved.ID+"/no-show", doc.Token, nil).CheckProblem(t, http.StatusConflict, "invalid_transition")
		r = e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/doctor/dashboard", Token: doc.Token, MinPosition: n.Position}).Must(t, http.StatusOK)
		var d struct{ Earnings int64 }
		r.Decode(t, &d)
		if d.Earnings != 50000 {
			t.Errorf("earnings %d after one completed 50000 appointment", d.Earnings)
		}
		// The patient sees the outcome.
		alice2 := e.Login(t, alice.User.Email, testenv.Password)
		l := e.Appointments(t, alice2.Token, "status=completed", n.Position)
		if len(l.Appointments) != 1 || l.Appointments[0].ID != moved.ID {
			t.Errorf("alice's completed: %+v", l.Appointments)
		}
		// A past slot cannot be booked any more.
		e.Book(t, alice2.Token, gp2.ID, testenv.At(1, 12, 0)).CheckProblem(t, http.StatusUnprocessableEntity, "in_the_past")
	})

	step("admin dashboard", func(t *testing.T) {
		admin := e.Login(t, testenv.AdminEmail, testenv.AdminPassword)
		r := e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/admin/dashboard", Token: admin.Token, MinPosition: e.Head(t)}).Must(t, http.StatusOK)
		var d struct {
			Doctors, Patients, Appointments int
			Latest                          []testenv.Appointment
		}
		r.Decode(t, &d)
		if d.Doctors != 3 || d.Patients != 4 || d.Appointments != 5 || len(d.Latest) != 5 {
			t.Errorf("admin dashboard %+v", d)
		}
		l := e.Appointments(t, admin.Token, "limit=2", 0)
		if len(l.Appointments) != 2 || l.NextCursor == "" {
			t.Fatalf("admin page 1: %d appointments, cursor %q", len(l.Appointments), l.NextCursor)
		}
		seen := map[string]bool{}
		pages := 0
		for cursor := ""; ; pages++ {
			q := url.Values{"limit": {"2"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			l := e.Appointments(t, admin.Token, q.Encode(), 0)
			for _, a := range l.Appointments {
				if seen[a.ID] {
					t.Errorf("appointment %s on two pages", a.ID)
				}
				seen[a.ID] = true
			}
			if l.NextCursor == "" || pages > 10 {
				break
			}
			cursor = l.NextCursor
		}
		if len(seen) != 5 {
			t.Errorf("paging saw %d appointments, want 5", len(seen))
		}
	})
}

func TestMeAndStaff(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	p := e.Register(t, "Dana Patient")

	r := e.Get(t, "/me", p.Token).Must(t, http.StatusOK)
	me := r.Map(t)
	if me["id"] != p.User.ID || me["email"] != p.User.Email || me["role"] != "patient" || me["name"] != "Dana Patient" {
		t.Errorf("GET /me %v", me)
	}
	for _, f := range []string{"phone", "address", "gender", "dob"} {
		if v, ok := me[f]; !ok || v != "" {
			t.Errorf("GET /me %s = %v, want present and empty", f, v)
		}
	}
	r = e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/me", Token: p.Token,
		Body: map[string]string{"phone": "+91 98450 00000", "address": "MG Road", "gender": "female", "dob": "1990-04-01"}}).Must(t, http.StatusOK)
	upd := r.Map(t)
	if upd["phone"] != "+91 98450 00000" || upd["dob"] != "1990-04-01" || upd["name"] != "Dana Patient" {
		t.Errorf("PATCH /me %v", upd)
	}
	r = e.Get(t, "/me", p.Token).Must(t, http.StatusOK)
	if me = r.Map(t); me["address"] != "MG Road" || me["gender"] != "female" {
		t.Errorf("GET /me after PATCH %v", me)
	}
	// A new name shows on bookings made with a token issued before it.
	d := e.NewDoctor(t, "Dr. Richard James", "General physician")
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/me", Token: p.Token, Body: map[string]string{"name": "Dana Renamed"}}).Must(t, http.StatusOK)
	if a := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 0)); a.PatientName != "Dana Renamed" {
		t.Errorf("booking after a rename: patientName %q", a.PatientName)
	}

	// Role, email and id are not profile fields.
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/me", Token: p.Token, Body: map[string]string{"role": "admin"}}).
		CheckProblem(t, http.StatusBadRequest, "unknown_field")
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/me", Token: p.Token, Body: map[string]string{"dob": "01/04/1990"}}).
		CheckProblem(t, http.StatusBadRequest, "")

	// Staff accounts.
	for _, role := range []string{"auditor", "analyst", "admin"} {
		email := e.Unique(role) + "@clinic.test"
		r := e.Post(t, "/admin/users", e.AdminToken, map[string]string{"name": "Staff " + role, "email": email, "password": testenv.Password, "role": role}).Must(t, http.StatusCreated)
		u := r.Map(t)
		if u["role"] != role || u["email"] != email || u["id"] == "" {
			t.Errorf("created staff %v", u)
		}
		login := e.Login(t, email, testenv.Password)
		if login.User.Role != role || login.User.ID != u["id"] {
			t.Errorf("staff login %+v", login.User)
		}
		r = e.Get(t, "/me", login.Token).Must(t, http.StatusOK)
		if m := r.Map(t); m["role"] != role {
			t.Errorf("staff /me %v", m)
		}
	}
	// Neither patients nor doctors are staff.
	for _, role := range []string{"patient", "doctor", "system", "root"} {
		e.Post(t, "/admin/users", e.AdminToken, map[string]string{"name": "X", "email": e.Unique("x") + "@clinic.test", "password": testenv.Password, "role": role}).
			CheckProblem(t, http.StatusBadRequest, "")
	}
	e.Post(t, "/admin/users", e.AdminToken, map[string]string{"name": "Dup", "email": p.User.Email, "password": testenv.Password, "role": "analyst"}).
		CheckProblem(t, http.StatusConflict, "email_taken")
}

func TestScheduleByDoctorAndAdmin(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Zoe Kelly", "Gastroenterologist")

	weekdays := []map[string]any{}
	for wd := 1; wd <= 5; wd++ {
		weekdays = append(weekdays, map[string]any{"weekday": wd, "start": "09:00", "end": "13:00"})
	}
	body := map[string]any{"timezone": testenv.Zone, "slotMinutes": 20, "bookingWindowDays": 14, "minNoticeMinutes": 60,
		"paymentPolicy": "none", "holdMinutes": 0, "weekly": weekdays}
	r := e.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + d.ID + "/schedule", Token: d.Token, Body: body}).Must(t, http.StatusOK)
	got := r.Map(t)
	if got["doctorId"] != d.ID || got["slotMinutes"] != float64(20) || got["position"] == nil {
		t.Errorf("schedule answer %v", got)
	}
	pos := uint64(got["position"].(float64))
	// 2031-03-03 is a Monday; the 8th and 9th are the weekend.
	s := e.FreeSlots(t, d.ID, testenv.Date(1), 7, pos)
	for _, day := range s.Days {
		wd := mustDate(t, day.Date).Weekday()
		want := 12
		if wd == time.Saturday || wd == time.Sunday {
			want = 0
		}
		if len(day.Slots) != want {
			t.Errorf("%s (%s): %d slots, want %d", day.Date, wd, len(day.Slots), want)
		}
	}
	if first := s.Days[0].Slots[0]; !first.Start.Equal(testenv.At(1, 9, 0)) || first.End.Sub(first.Start) != 20*time.Minute {
		t.Errorf("first slot %+v", first)
	}
	// The notice: now is 09:00 today, so 09:00 and 09:20 are too soon.
	today := e.FreeSlots(t, d.ID, testenv.Date(0), 1, pos)
	if len(today.Days[0].Slots) != 9 || !today.Days[0].Slots[0].Start.Equal(testenv.At(0, 10, 0)) {
		t.Errorf("today with 60 min notice: %+v", today.Days[0].Slots)
	}
	p := e.Register(t, "Eve Patient")
	e.Book(t, p.Token, d.ID, testenv.At(0, 9, 40)).CheckProblem(t, http.StatusUnprocessableEntity, "insufficient_notice")
	e.Book(t, p.Token, d.ID, testenv.At(1, 9, 10)).CheckProblem(t, http.StatusUnprocessableEntity, "outside_schedule")
	e.Book(t, p.Token, d.ID, testenv.At(1, 14, 0)).CheckProblem(t, http.StatusUnprocessableEntity, "outside_schedule")
	e.Book(t, p.Token, d.ID, testenv.At(16, 9, 0)).CheckProblem(t, http.StatusUnprocessableEntity, "beyond_booking_window")
	e.MustBook(t, p.Token, d.ID, testenv.At(1, 9, 20))

	// The admin sets it back; the booking stays.
	body["slotMinutes"], body["bookingWindowDays"], body["minNoticeMinutes"] = 30, 30, 30
	body["weekly"] = []map[string]any{{"weekday": 1, "start": "10:00", "end": "21:00"}, {"weekday": 2, "start": "10:00", "end": "21:00"}}
	r = e.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + d.ID + "/schedule", Token: e.AdminToken, Body: body}).Must(t, http.StatusOK)
	pos = uint64(r.Map(t)["position"].(float64))
	s = e.FreeSlots(t, d.ID, testenv.Date(1), 2, pos)
	if len(s.Days[0].Slots) != 22 || len(s.Days[1].Slots) != 0 {
		t.Errorf("after the admin's schedule: %d and %d slots", len(s.Days[0].Slots), len(s.Days[1].Slots))
	}
	l := e.Appointments(t, p.Token, "", pos)
	if len(l.Appointments) != 1 || l.Appointments[0].Status != "confirmed" {
		t.Errorf("booking after a schedule change: %+v", l.Appointments)
	}
	// Setting the same schedule again changes nothing and still answers it.
	before := e.Head(t)
	e.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + d.ID + "/schedule", Token: d.Token, Body: body}).Must(t, http.StatusOK)
	if after := e.Head(t); after != before {
		t.Errorf("an unchanged schedule appended %d events", after-before)
	}
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTimeOff(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Patrick Harris", "Gastroenterologist")
	p := e.Register(t, "Frank Patient")
	a := e.MustBook(t, p.Token, d.ID, testenv.At(3, 15, 0))

	off := map[string]any{"from": testenv.RFC3339(testenv.At(3, 14, 0)), "to": testenv.RFC3339(testenv.At(3, 18, 0)), "reason": "conference"}
	e.Post(t, "/doctors/"+d.ID+"/time-off", d.Token, off).CheckProblem(t, http.StatusConflict, "bookings_in_range")
	off["cancelBookings"] = false
	e.Post(t, "/doctors/"+d.ID+"/time-off", d.Token, off).CheckProblem(t, http.StatusConflict, "bookings_in_range")
	// Still booked.
	r := e.Get(t, "/appointments/"+a.ID, p.Token).Must(t, http.StatusOK)
	var still testenv.Appointment
	r.Decode(t, &still)
	if still.Status != "confirmed" {
		t.Fatalf("after a refused time off the booking is %s", still.Status)
	}

	off["cancelBookings"] = true
	r = e.Post(t, "/doctors/"+d.ID+"/time-off", d.Token, off).Must(t, http.StatusCreated)
	var to struct {
		ID, DoctorID, Reason  string
		From, To              time.Time
		CancelledAppointments []string
		Position              uint64
	}
	r.Decode(t, &to)
	if to.ID == "" || to.DoctorID != d.ID || to.Reason != "conference" || !to.From.Equal(testenv.At(3, 14, 0)) ||
		!to.To.Equal(testenv.At(3, 18, 0)) || !slices.Equal(to.CancelledAppointments, []string{a.ID}) || to.Position == 0 {
		t.Errorf("time off %+v", to)
	}
	r = e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + a.ID, Token: p.Token, MinPosition: to.Position}).Must(t, http.StatusOK)
	var gone testenv.Appointment
	r.Decode(t, &gone)
	if gone.Status != "cancelled" || gone.CancelReason == nil || !strings.Contains(*gone.CancelReason, "conference") {
		t.Errorf("booking inside the time off: %+v", gone)
	}
	s := e.FreeSlots(t, d.ID, testenv.Date(3), 1, to.Position)
	for _, x := range s.All() {
		if x.Before(testenv.At(3, 18, 0)) && x.Add(30*time.Minute).After(testenv.At(3, 14, 0)) {
			t.Errorf("slot %v inside the time off is listed", x)
		}
	}
	if n := len(s.Days[0].Slots); n != 22-8 {
		t.Errorf("%d free slots on the day of a 4 h time off, want 14", n)
	}
	e.Book(t, p.Token, d.ID, testenv.At(3, 16, 0)).CheckProblem(t, http.StatusUnprocessableEntity, "doctor_time_off")

	// A time off without bookings, by the admin.
	r = e.Post(t, "/doctors/"+d.ID+"/time-off", e.AdminToken, map[string]any{"from": testenv.RFC3339(testenv.At(5, 0, 0)), "to": testenv.RFC3339(testenv.At(6, 0, 0))}).Must(t, http.StatusCreated)
	r.Decode(t, &to)
	if len(to.CancelledAppointments) != 0 {
		t.Errorf("time off without bookings cancelled %v", to.CancelledAppointments)
	}
	if s := e.FreeSlots(t, d.ID, testenv.Date(5), 1, to.Position); len(s.Days[0].Slots) != 0 {
		t.Errorf("a day off lists %d slots", len(s.Days[0].Slots))
	}
}

func TestDoctorAvailability(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Ava Mitchell", "Dermatologist")
	p := e.Register(t, "Gina Patient")

	r := e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + d.ID, Token: e.AdminToken, Body: map[string]any{"available": false}}).Must(t, http.StatusOK)
	var doc testenv.Doctor
	r.Decode(t, &doc)
	if doc.Available || doc.ID != d.ID || doc.Name != d.Name || doc.Position == 0 {
		t.Errorf("patched doctor %+v", doc)
	}
	e.Book(t, p.Token, d.ID, testenv.At(1, 10, 0)).CheckProblem(t, http.StatusUnprocessableEntity, "doctor_unavailable")
	r = e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/doctors?available=false", MinPosition: doc.Position}).Must(t, http.StatusOK)
	var list struct{ Doctors []testenv.Doctor }
	r.Decode(t, &list)
	if len(list.Doctors) != 1 || list.Doctors[0].ID != d.ID || list.Doctors[0].Available {
		t.Errorf("available=false lists %+v", list.Doctors)
	}
	r = e.Get(t, "/doctors?available=true", "").Must(t, http.StatusOK)
	r.Decode(t, &list)
	if len(list.Doctors) != 0 {
		t.Errorf("available=true lists %+v", list.Doctors)
	}
	if s := e.FreeSlots(t, d.ID, testenv.Date(1), 3, doc.Position); len(s.All()) != 0 {
		t.Errorf("an unavailable doctor lists %d free slots", len(s.All()))
	}

	// The doctor cannot come back on their own after an admin's
	// unavailable (nothing of the patch applies); after the admin's
	// available, the doctor's own profile changes apply.
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/doctor/profile", Token: d.Token, Body: map[string]any{"available": true, "fees": 70000}}).
		CheckProblem(t, http.StatusForbidden, "availability_locked")
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + d.ID, Token: e.AdminToken, Body: map[string]any{"available": true}}).Must(t, http.StatusOK)
	r = e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/doctor/profile", Token: d.Token, Body: map[string]any{"available": true, "fees": 70000}}).Must(t, http.StatusOK)
	r.Decode(t, &doc)
	if !doc.Available || doc.Fees != 70000 {
		t.Errorf("doctor's own patch %+v", doc)
	}
	a := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 0))
	if a.Fees != 70000 {
		t.Errorf("booked at fees %d, want the new 70000", a.Fees)
	}
	// A doctor may not change their own name or speciality.
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/doctor/profile", Token: d.Token, Body: map[string]any{"speciality": "Surgeon"}}).
		CheckProblem(t, http.StatusBadRequest, "unknown_field")
	// The admin may.
	r = e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + d.ID, Token: e.AdminToken, Body: map[string]any{"name": "Dr. Ava M. Mitchell", "experienceYears": 3}}).Must(t, http.StatusOK)
	r.Decode(t, &doc)
	if doc.Name != "Dr. Ava M. Mitchell" || doc.ExperienceYears != 3 || !doc.Available {
		t.Errorf("admin patch %+v", doc)
	}
	r = e.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + a.ID, Token: p.Token, MinPosition: doc.Position}).Must(t, http.StatusOK)
	var got testenv.Appointment
	r.Decode(t, &got)
	if got.DoctorName != "Dr. Ava M. Mitchell" {
		t.Errorf("appointment's doctorName %q after a rename", got.DoctorName)
	}
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/no-such-doctor", Token: e.AdminToken, Body: map[string]any{"available": true}}).
		CheckProblem(t, http.StatusNotFound, "doctor_not_found")
}

func TestOperations(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	e.CaughtUp(t)

	for _, path := range []string{"//healthz", "/healthz"} {
		r := e.Get(t, path, "").Must(t, http.StatusOK)
		if m := r.Map(t); m["status"] != "ok" {
			t.Errorf("%s: %v", path, m)
		}
	}
	for _, path := range []string{"//readyz", "/readyz"} {
		r := e.Get(t, path, "").Must(t, http.StatusOK)
		m := r.Map(t)
		checks, _ := m["checks"].(map[string]any)
		if len(checks) < 2 || checks["eventstore"] == nil || checks["projections"] == nil {
			t.Errorf("%s: %v", path, m)
		}
	}
	// Traffic, so the histogram has samples.
	e.Get(t, "/doctors", "").Must(t, http.StatusOK)
	for _, path := range []string{"//metrics", "/metrics"} {
		r := e.Get(t, path, "").Must(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s Content-Type %q", path, ct)
		}
		if !strings.Contains(string(r.Body), "http_request_duration_seconds") {
			t.Errorf("%s lacks http_request_duration_seconds", path)
		}
		if !strings.Contains(string(r.Body), `route="/api/v1/doctors"`) {
			t.Errorf("%s does not label requests by route pattern", path)
		}
	}
	r := e.Get(t, "/openapi.yaml", "").Must(t, http.StatusOK)
	if !strings.HasPrefix(string(r.Body), "openapi: 3.1.0") || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/yaml") {
		t.Errorf("openapi.yaml: %q, %q", r.Header.Get("Content-Type"), r.Body[:min(40, len(r.Body))])
	}
}

func TestProjectionsAdmin(t *testing.T) {
	t.Parallel()
	projectionsAdmin(t, testenv.Options{})
}

func projectionsAdmin(t *testing.T, o testenv.Options) {
	e := testenv.Start(t, o)
	o = e.Options()
	d := e.NewDoctor(t, "Dr. Jeffrey King", "Pediatricians")
	p := e.Register(t, "Hana Patient")
	a := e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))
	e.CaughtUp(t)
	head := e.Head(t)

	r := e.Get(t, "/admin/projections", e.AdminToken).Must(t, http.StatusOK)
	var st struct {
		Projections []struct {
			Name     string
			Position uint64
			Lag      uint64
			Status   string
		}
	}
	r.Decode(t, &st)
	var names []string
	for _, p := range st.Projections {
		names = append(names, p.Name)
		if p.Position != head || p.Lag != 0 || p.Status != "running" {
			t.Errorf("projection %+v, want position %d lag 0 running", p, head)
		}
	}
	for _, want := range []string{"appointments", "doctors", "free_slots"} {
		if !slices.Contains(names, want) {
			t.Fatalf("projections %v lack %s", names, want)
		}
	}

	before := snapshot(t, e, p.Token, d.ID)
	for _, name := range names {
		r := e.Post(t, "/admin/projections/"+name+"/rebuild", e.AdminToken, nil).Must(t, http.StatusAccepted)
		if m := r.Map(t); m["name"] != name {
			t.Errorf("rebuild answer %v", m)
		}
		// Reads keep working while it rebuilds.
		if got := snapshot(t, e, p.Token, d.ID); got != before {
			t.Errorf("during the rebuild of %s reads changed:\n%s\nwant\n%s", name, got, before)
		}
	}
	// Through an api process the request is taken by the projector or
	// worker process within a second; then the rebuild runs there.
	for _, name := range names {
		waitFor(t, 10*time.Second, "the rebuild request for "+name+" was taken", func() bool {
			pending, err := e.App.PendingRebuild(context.Background(), name)
			return err == nil && !pending
		})
	}
	waitProjectionsRunning(t, e)
	if o.MongoURI != "" {
		// The MongoDB models were rebuilt into a new generation and switched.
		db := mongoDatabase(t, o.MongoURI)
		for _, name := range []string{"doctors", "free_slots", "appointments"} {
			waitFor(t, 10*time.Second, name+" switched to a rebuilt generation", func() bool {
				var g struct{ Generation int64 }
				err := db.Collection(mongo.CollGenerations).FindOne(context.Background(), bson.D{{Key: "_id", Value: name}}).Decode(&g)
				return err == nil && g.Generation > 0
			})
		}
	}
	if got := snapshot(t, e, p.Token, d.ID); got != before {
		t.Errorf("after the rebuilds reads changed:\n%s\nwant\n%s", got, before)
	}
	// New writes still reach the rebuilt copies.
	c := e.Post(t, "/appointments/"+a.ID+"/cancel", p.Token, nil).Must(t, http.StatusOK)
	var ca testenv.Appointment
	c.Decode(t, &ca)
	if s := e.FreeSlots(t, d.ID, testenv.Date(2), 1, ca.Position); !s.Has(testenv.At(2, 10, 0)) {
		t.Errorf("a cancel after the rebuild did not free the slot")
	}
	e.Post(t, "/admin/projections/no_such_projection/rebuild", e.AdminToken, nil).CheckProblem(t, http.StatusNotFound, "unknown_projection")
}

// waitProjectionsRunning waits (bounded, by polling the status endpoint,
// which is the operator's way) until no projection is rebuilding.
func waitProjectionsRunning(t *testing.T, e *testenv.Env) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.Get(t, "/admin/projections", e.AdminToken).Must(t, http.StatusOK)
		var st struct {
			Projections []struct{ Name, Status string }
		}
		r.Decode(t, &st)
		done := true
		for _, p := range st.Projections {
			if p.Status == "failed" {
				t.Fatalf("projection %s failed", p.Name)
			}
			done = done && p.Status == "running"
		}
		if done {
			e.CaughtUp(t)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections still rebuilding: %+v", st.Projections)
		}
		time.Sleep(5 * time.Millisecond) // polling an async operation, not synchronising
	}
}

// snapshot reads what the three read models answer about one doctor and
// one patient, as text.
func snapshot(t *testing.T, e *testenv.Env, token, doctorID string) string {
	t.Helper()
	var b strings.Builder
	b.Write(e.Get(t, "/doctors", "").Must(t, http.StatusOK).Body)
	b.Write(e.Get(t, "/doctors/"+doctorID, "").Must(t, http.StatusOK).Body)
	b.Write(e.Get(t, "/specialities", "").Must(t, http.StatusOK).Body)
	b.Write(e.Get(t, "/doctors/"+doctorID+"/slots?from="+testenv.Date(0)+"&days=5", "").Must(t, http.StatusOK).Body)
	b.Write(e.Get(t, "/appointments", token).Must(t, http.StatusOK).Body)
	b.Write(e.Get(t, "/admin/dashboard", e.AdminToken).Must(t, http.StatusOK).Body)
	return b.String()
}

// TestDependencyDown: with the event store gone, /readyz answers 503 and
// names it, commands and reads that need the store answer 503 (never 500),
// and reads served by the in-memory read models keep working.
func TestDependencyDown(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Amelia Hill", "Dermatologist")
	p := e.Register(t, "Omar Patient")
	a := e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))
	e.CaughtUp(t)
	if err := e.App.Store.Close(); err != nil {
		t.Fatal(err)
	}

	r := e.Get(t, "/readyz", "").Must(t, http.StatusServiceUnavailable)
	m := r.Map(t)
	checks, _ := m["checks"].(map[string]any)
	if m["status"] != "unavailable" || checks["eventstore"] == "ok" || checks["eventstore"] == nil {
		t.Errorf("readyz with the store down: %v", m)
	}
	e.Get(t, "/healthz", "").Must(t, http.StatusOK) // the process is up

	for _, q := range []testenv.Req{
		{Method: http.MethodPost, Path: "/auth/register", Body: map[string]string{"name": "N", "email": "n@example.test", "password": testenv.Password}},
		{Method: http.MethodPost, Path: "/auth/login", Body: map[string]string{"email": p.User.Email, "password": testenv.Password}},
		{Method: http.MethodGet, Path: "/me", Token: p.Token},
		{Method: http.MethodPost, Path: "/appointments", Token: p.Token, Body: map[string]string{"doctorId": d.ID, "start": testenv.RFC3339(testenv.At(2, 11, 0))}},
		{Method: http.MethodPost, Path: "/appointments/" + a.ID + "/cancel", Token: p.Token},
		{Method: http.MethodGet, Path: "/appointments/no-such-appointment", Token: p.Token},
		{Method: http.MethodGet, Path: "/admin/projections", Token: e.AdminToken},
	} {
		e.Do(t, q).CheckProblem(t, http.StatusServiceUnavailable, "unavailable")
	}
	// The read models still answer.
	e.Get(t, "/doctors", "").Must(t, http.StatusOK)
	e.Get(t, "/doctors/"+d.ID+"/slots", "").Must(t, http.StatusOK)
	e.Get(t, "/appointments/"+a.ID, p.Token).Must(t, http.StatusOK)
}

// TestDocumentedLimits: a request at the limits openapi.yaml states is
// accepted, so a client that follows the document is not refused.
func TestDocumentedLimits(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{})
	doc := e.Valid.Document()
	maxLen := func(schema, prop string) int {
		t.Helper()
		s := doc.Components.Schemas[schema]
		if s == nil || s.Value.Properties[prop] == nil || s.Value.Properties[prop].Value.MaxLength == nil {
			t.Fatalf("openapi.yaml: %s.%s has no maxLength", schema, prop)
		}
		return int(*s.Value.Properties[prop].Value.MaxLength)
	}
	name := func(n int) string { return strings.Repeat("é", n) } // characters, not bytes
	email := func(n int) string {
		domain := "@example.test"
		return e.Unique("l")[:1] + strings.Repeat("x", n-len(domain)-1) + domain
	}

	reg := e.Post(t, "/auth/register", "", map[string]string{"name": name(maxLen("RegisterRequest", "name")), "email": email(maxLen("RegisterRequest", "email")), "password": strings.Repeat("p", 72)})
	reg.Expect(t, http.StatusCreated)
	var p testenv.AuthResult
	reg.Decode(t, &p)

	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/me", Token: p.Token, Body: map[string]string{
		"name":    name(maxLen("ProfileUpdateRequest", "name")),
		"phone":   strings.Repeat("9", maxLen("ProfileUpdateRequest", "phone")),
		"address": name(maxLen("ProfileUpdateRequest", "address")),
		"gender":  name(maxLen("ProfileUpdateRequest", "gender")),
	}}).Expect(t, http.StatusOK)

	e.Post(t, "/admin/users", e.AdminToken, map[string]string{"name": name(maxLen("StaffCreateRequest", "name")), "email": e.Unique("s") + "@clinic.test",
		"password": testenv.Password, "role": "auditor"}).Expect(t, http.StatusCreated)

	body := e.DoctorBody(name(maxLen("DoctorCreateRequest", "name")), "Neurologist")
	r := e.Post(t, "/admin/doctors", e.AdminToken, body).Must(t, http.StatusCreated)
	var d testenv.Doctor
	r.Decode(t, &d)
	e.Do(t, testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + d.ID, Token: e.AdminToken, Body: map[string]any{"name": name(maxLen("DoctorUpdateRequest", "name"))}}).
		Expect(t, http.StatusOK)

	e.Post(t, "/doctors/"+d.ID+"/time-off", e.AdminToken, map[string]any{"from": testenv.RFC3339(testenv.At(5, 0, 0)), "to": testenv.RFC3339(testenv.At(6, 0, 0)),
		"reason": name(maxLen("TimeOffRequest", "reason"))}).Expect(t, http.StatusCreated)

	a := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 0))
	e.Post(t, "/appointments/"+a.ID+"/cancel", p.Token, map[string]string{"reason": name(maxLen("CancelRequest", "reason"))}).Expect(t, http.StatusOK)
}
