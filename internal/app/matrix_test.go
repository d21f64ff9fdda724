package app_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

type who string

const (
	anonymous who = "anonymous"
	patientA  who = "patientA"
	patientB  who = "patientB"
	doctorX   who = "doctorX"
	doctorY   who = "doctorY"
	admin     who = "admin"
	auditor   who = "auditor"
	analyst   who = "analyst"
)

var everyone = []who{anonymous, patientA, patientB, doctorX, doctorY, admin, auditor, analyst}

// outcome is the status and code a cell must answer.
type outcome struct {
	status int
	code   string
}

// matrixRoute is one route of API.md with who may use it.
type matrixRoute struct {
	name    string
	public  bool  // anyone, anonymous included
	allowed []who // roles that pass the role check (ignored when public)
	ok      outcome
	// deny lists callers whose role passes but who must still be refused
	// (not theirs: 404, never a hint that it exists).
	deny  map[who]outcome
	req   func(t *testing.T, w who) testenv.Req
	check func(t *testing.T, w who, r *testenv.Res)
	// token, when set, is the token an allowed caller sends instead of its
	// usual one (routes that revoke the token they are sent with).
	token func(t *testing.T, w who) string
}

// TestRoleMatrix sends every route of API.md as every kind of caller and
// checks each answer: anonymous callers get 401 with a challenge on every
// protected route, wrong roles 403 (before anything else, also on the
// routes that are not implemented yet), other people's resources 404, and
// the allowed cells succeed.
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	roleMatrix(t, testenv.Options{TokenTTL: 30 * 24 * time.Hour})
}

// TestRolesRoleMatrix: the same through an api process of the production
// wiring.
func TestRolesRoleMatrix(t *testing.T) {
	t.Parallel()
	roleMatrix(t, testenv.Options{TokenTTL: 30 * 24 * time.Hour, Production: true, Roles: true})
}

func roleMatrix(t *testing.T, o testenv.Options) {
	e := testenv.Start(t, o)
	x := e.NewDoctor(t, "Dr. Jennifer Garcia", "Neurologist")
	y := e.NewDoctor(t, "Dr. Andrew Williams", "Neurologist")
	a := e.Register(t, "Anna Patient")
	b := e.Register(t, "Boris Patient")
	tokens := map[who]string{patientA: a.Token, patientB: b.Token, doctorX: x.Token, doctorY: y.Token, admin: e.AdminToken}
	emails := map[who]string{patientA: a.User.Email, patientB: b.User.Email, doctorX: x.Email, doctorY: y.Email, admin: testenv.AdminEmail}
	for _, role := range []who{auditor, analyst} {
		email := e.Unique(string(role)) + "@clinic.test"
		e.Post(t, "/admin/users", e.AdminToken, map[string]string{"name": string(role), "email": email, "password": testenv.Password, "role": string(role)}).Must(t, http.StatusCreated)
		tokens[role] = e.Login(t, email, testenv.Password).Token
		emails[role] = email
	}
	passwords := map[who]string{admin: testenv.AdminPassword}
	password := func(w who) string {
		if p, ok := passwords[w]; ok {
			return p
		}
		return testenv.Password
	}
	freshToken := func(t *testing.T, w who) string { return e.Login(t, emails[w], password(w)).Token }
	// A password change revokes the caller's other tokens: the matrix goes
	// on with the new one.
	newToken := func(t *testing.T, w who, r *testenv.Res) {
		tok, _ := r.Map(t)["token"].(string)
		if tok == "" {
			t.Fatalf("%s's password change answered no token", w)
		}
		tokens[w] = tok
		if w == admin {
			e.AdminToken = tok
		}
	}
	// setActiveRow is the route that (de)activates a fresh account.
	setActiveRow := func(verb string, active bool) matrixRoute {
		return matrixRoute{name: "POST /admin/users/{id}/" + verb, allowed: []who{admin}, ok: outcome{status: http.StatusOK},
			req: func(t *testing.T, w who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/admin/users/" + e.Register(t, "Throwaway Patient").User.ID + "/" + verb}
			},
			check: func(t *testing.T, _ who, r *testenv.Res) {
				if m := r.Map(t); m["active"] != active {
					t.Errorf("%s: %v", verb, m)
				}
			}}
	}
	everyRole := []who{patientA, patientB, doctorX, doctorY, admin, auditor, analyst}
	ids := map[who]string{patientA: a.User.ID, patientB: b.User.ID, doctorX: x.ID, doctorY: y.ID}

	// Appointments of A with X that have started (for complete and
	// no-show): one shared by the refused cells, one per allowed cell.
	pool := map[string]string{}
	for i, k := range []string{"shared", "complete/doctorX", "complete/admin", "no-show/doctorX", "no-show/admin"} {
		pool[k] = e.MustBook(t, a.Token, x.ID, testenv.At(1, 10+i, 0)).ID
	}
	e.Clock.Set(testenv.At(1, 16, 0))
	shared := e.MustBook(t, a.Token, x.ID, testenv.At(2, 10, 0))

	n := 0
	freeSlot := func() time.Time { // a fresh bookable slot of X
		n++
		return testenv.At(3+n/22, 10, 0).Add(time.Duration(n%22) * 30 * time.Minute)
	}
	fresh := func(t *testing.T) testenv.Appointment { return e.MustBook(t, tokens[patientA], x.ID, freeSlot()) }
	off := 0
	staff := func(role string) map[string]string {
		return map[string]string{"name": "Staff", "email": e.Unique("staff") + "@clinic.test", "password": testenv.Password, "role": role}
	}
	schedule := map[string]any{"timezone": testenv.Zone, "slotMinutes": 30, "bookingWindowDays": 30, "minNoticeMinutes": 30, "paymentPolicy": "none",
		"weekly": []map[string]any{{"weekday": 1, "start": "10:00", "end": "21:00"}, {"weekday": 2, "start": "10:00", "end": "21:00"},
			{"weekday": 3, "start": "10:00", "end": "21:00"}, {"weekday": 4, "start": "10:00", "end": "21:00"}, {"weekday": 5, "start": "10:00", "end": "21:00"},
			{"weekday": 6, "start": "10:00", "end": "21:00"}, {"weekday": 7, "start": "10:00", "end": "21:00"}}}

	get := func(path string) func(*testing.T, who) testenv.Req {
		return func(*testing.T, who) testenv.Req { return testenv.Req{Method: http.MethodGet, Path: path} }
	}
	post := func(path string, body any) func(*testing.T, who) testenv.Req {
		return func(*testing.T, who) testenv.Req { return testenv.Req{Method: http.MethodPost, Path: path, Body: body} }
	}
	notMine := outcome{http.StatusNotFound, "appointment_not_found"}
	notYourDoctor := outcome{http.StatusNotFound, "doctor_not_found"}
	ok := func(s int) outcome { return outcome{status: s} }
	// apptRoute is an appointment command: allowed owners act on a fresh
	// appointment (or a pool one), everyone else on the shared one.
	apptCmd := func(verb string, body func(who) any, own func(*testing.T, who) string) func(*testing.T, who) testenv.Req {
		return func(t *testing.T, w who) testenv.Req {
			id := own(t, w)
			q := testenv.Req{Method: http.MethodPost, Path: "/appointments/" + id + "/" + verb}
			if body != nil {
				q.Body = body(w)
			}
			return q
		}
	}
	sharedOr := func(owners ...who) func(*testing.T, who) string {
		return func(t *testing.T, w who) string {
			if slices.Contains(owners, w) {
				return fresh(t).ID
			}
			return shared.ID
		}
	}
	poolOr := func(verb string, owners ...who) func(*testing.T, who) string {
		return func(t *testing.T, w who) string {
			if slices.Contains(owners, w) {
				return pool[verb+"/"+string(w)]
			}
			return pool["shared"]
		}
	}
	listHas := func(r *testenv.Res, t *testing.T, id string) bool {
		var l testenv.AppointmentList
		r.Decode(t, &l)
		return slices.ContainsFunc(l.Appointments, func(x testenv.Appointment) bool { return x.ID == id })
	}

	// The admin notification routes answer from the process that runs the
	// worker; an api process of its own answers 503.
	roles := o.Roles
	notifications := func(want outcome) outcome {
		if roles {
			return outcome{http.StatusServiceUnavailable, "notifications_unavailable"}
		}
		return want
	}
	routes := []matrixRoute{
		{name: "POST /auth/register", public: true, ok: ok(201),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/auth/register", Body: map[string]string{"name": "New", "email": e.Unique("new") + "@example.test", "password": testenv.Password}}
			}},
		{name: "POST /auth/login", public: true, ok: ok(200), req: post("/auth/login", map[string]string{"email": b.User.Email, "password": testenv.Password})},
		{name: "GET /me", allowed: []who{patientA, patientB, doctorX, doctorY, admin, auditor, analyst}, ok: ok(200), req: get("/me"),
			check: func(t *testing.T, w who, r *testenv.Res) {
				m := r.Map(t)
				if id, known := ids[w]; known && m["id"] != id {
					t.Errorf("%s's /me is %v", w, m["id"])
				}
			}},
		{name: "PATCH /me", allowed: []who{patientA, patientB, doctorX, doctorY, admin, auditor, analyst}, ok: ok(200),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPatch, Path: "/me", Body: map[string]string{"phone": "+91 80 1234 5678"}}
			}},
		{name: "POST /admin/users", allowed: []who{admin}, ok: ok(201),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/admin/users", Body: staff("analyst")}
			}},
		{name: "POST /auth/logout", allowed: everyRole, ok: ok(204), token: freshToken, req: post("/auth/logout", nil)},
		{name: "POST /auth/forgot-password", public: true, ok: ok(202), req: post("/auth/forgot-password", map[string]string{"email": b.User.Email})},
		{name: "POST /auth/reset-password", public: true, ok: outcome{http.StatusBadRequest, "invalid_token"},
			req: post("/auth/reset-password", map[string]string{"token": "not-a-token", "password": testenv.Password})},
		{name: "POST /auth/verify-email", public: true, ok: outcome{http.StatusBadRequest, "invalid_token"},
			req: post("/auth/verify-email", map[string]string{"token": "not-a-token"})},
		{name: "POST /auth/resend-verification", allowed: everyRole, ok: ok(202), req: post("/auth/resend-verification", nil)},
		{name: "POST /me/password", allowed: everyRole, ok: ok(200), check: newToken,
			req: func(_ *testing.T, w who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/me/password", Body: map[string]string{"currentPassword": password(w), "newPassword": password(w)}}
			}},
		setActiveRow("deactivate", false),
		setActiveRow("activate", true),
		{name: "GET /me/export", allowed: []who{patientA, patientB}, ok: ok(200), req: get("/me/export"),
			check: func(t *testing.T, w who, r *testenv.Res) {
				var ex struct{ Profile struct{ ID string } }
				r.Decode(t, &ex)
				if ex.Profile.ID != ids[w] {
					t.Errorf("%s's export is of %q", w, ex.Profile.ID)
				}
			}},
		{name: "POST /admin/patients/{id}/erase", allowed: []who{admin}, ok: ok(200),
			req: func(t *testing.T, _ who) testenv.Req {
				victim := e.Register(t, "Erasable Patient") // each call its own: an erasure is final
				return testenv.Req{Method: http.MethodPost, Path: "/admin/patients/" + victim.User.ID + "/erase"}
			}},
		{name: "GET /doctors", public: true, ok: ok(200), req: get("/doctors")},
		{name: "GET /doctors/{id}", public: true, ok: ok(200), req: get("/doctors/" + x.ID)},
		{name: "GET /doctors/{id}/slots", public: true, ok: ok(200), req: get("/doctors/" + x.ID + "/slots?days=2")},
		{name: "GET /specialities", public: true, ok: ok(200), req: get("/specialities")},
		{name: "POST /admin/doctors", allowed: []who{admin}, ok: ok(201),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/admin/doctors", Body: e.DoctorBody("Dr. Matrix", "Neurologist")}
			}},
		{name: "PATCH /admin/doctors/{id}", allowed: []who{admin}, ok: ok(200),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPatch, Path: "/admin/doctors/" + x.ID, Body: map[string]any{"about": "Edited by the admin."}}
			}},
		{name: "PUT /doctors/{id}/schedule", allowed: []who{doctorX, doctorY, admin}, ok: ok(200), deny: map[who]outcome{doctorY: notYourDoctor},
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPut, Path: "/doctors/" + x.ID + "/schedule", Body: schedule}
			}},
		{name: "POST /doctors/{id}/time-off", allowed: []who{doctorX, doctorY, admin}, ok: ok(201), deny: map[who]outcome{doctorY: notYourDoctor},
			req: func(*testing.T, who) testenv.Req {
				off++ // night hours of day 29: no slots, no bookings
				return testenv.Req{Method: http.MethodPost, Path: "/doctors/" + x.ID + "/time-off", Body: map[string]string{
					"from": testenv.RFC3339(testenv.At(29, off%10, 0)), "to": testenv.RFC3339(testenv.At(29, off%10, 30)), "reason": fmt.Sprint("off ", off)}}
			}},
		{name: "PATCH /doctor/profile", allowed: []who{doctorX, doctorY}, ok: ok(200),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPatch, Path: "/doctor/profile", Body: map[string]any{"address": "MG Road"}}
			},
			check: func(t *testing.T, w who, r *testenv.Res) {
				if m := r.Map(t); m["id"] != ids[w] {
					t.Errorf("%s patched doctor %v", w, m["id"])
				}
			}},
		{name: "GET /doctor/dashboard", allowed: []who{doctorX, doctorY}, ok: ok(200), req: get("/doctor/dashboard"),
			check: func(t *testing.T, w who, r *testenv.Res) {
				var d struct {
					Appointments int
					Latest       []testenv.Appointment
				}
				r.Decode(t, &d)
				for _, l := range d.Latest {
					if l.DoctorID != ids[w] {
						t.Errorf("%s's dashboard shows %+v", w, l)
					}
				}
				if w == doctorY && d.Appointments != 0 {
					t.Errorf("doctor Y's dashboard counts %d appointments", d.Appointments)
				}
			}},
		{name: "GET /admin/dashboard", allowed: []who{admin}, ok: ok(200), req: get("/admin/dashboard")},
		{name: "POST /appointments", allowed: []who{patientA, patientB}, ok: ok(201),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/appointments", Body: map[string]string{"doctorId": x.ID, "start": testenv.RFC3339(freeSlot())}}
			}},
		{name: "GET /appointments", allowed: []who{patientA, patientB, doctorX, doctorY, admin}, ok: ok(200),
			req: func(_ *testing.T, w who) testenv.Req {
				// Ask for the others' appointments: ignored but for admins.
				return testenv.Req{Method: http.MethodGet, Path: "/appointments?limit=200&patientId=" + a.User.ID + "&doctorId=" + x.ID}
			},
			check: func(t *testing.T, w who, r *testenv.Res) {
				has := listHas(r, t, shared.ID)
				mine := w == patientA || w == doctorX || w == admin
				if has != mine {
					t.Errorf("%s's list has A's appointment with X: %v, want %v", w, has, mine)
				}
			}},
		{name: "GET /appointments/{id}", allowed: []who{patientA, patientB, doctorX, doctorY, admin}, ok: ok(200),
			deny: map[who]outcome{patientB: notMine, doctorY: notMine}, req: get("/appointments/" + shared.ID)},
		{name: "POST /appointments/{id}/cancel", allowed: []who{patientA, patientB, doctorX, doctorY, admin}, ok: ok(200),
			deny: map[who]outcome{patientB: notMine, doctorY: notMine},
			req:  apptCmd("cancel", func(who) any { return map[string]string{"reason": "matrix"} }, sharedOr(patientA, doctorX, admin)),
			check: func(t *testing.T, w who, r *testenv.Res) {
				if m := r.Map(t); m["status"] != "cancelled" {
					t.Errorf("cancel by %s: %v", w, m["status"])
				}
			}},
		{name: "POST /appointments/{id}/reschedule", allowed: []who{patientA, patientB, admin}, ok: ok(200),
			deny: map[who]outcome{patientB: notMine},
			req:  apptCmd("reschedule", func(who) any { return map[string]string{"start": testenv.RFC3339(freeSlot())} }, sharedOr(patientA, admin))},
		{name: "POST /appointments/{id}/complete", allowed: []who{doctorX, doctorY, admin}, ok: ok(200),
			deny: map[who]outcome{doctorY: notMine}, req: apptCmd("complete", nil, poolOr("complete", doctorX, admin)),
			check: func(t *testing.T, w who, r *testenv.Res) {
				if m := r.Map(t); m["status"] != "completed" {
					t.Errorf("complete by %s: %v", w, m["status"])
				}
			}},
		{name: "POST /appointments/{id}/no-show", allowed: []who{doctorX, doctorY, admin}, ok: ok(200),
			deny: map[who]outcome{doctorY: notMine}, req: apptCmd("no-show", nil, poolOr("no-show", doctorX, admin))},
		// The shared appointment's doctor takes no online payment.
		{name: "POST /appointments/{id}/payment", allowed: []who{patientA, patientB}, ok: outcome{http.StatusConflict, "payment_not_needed"},
			deny: map[who]outcome{patientB: notMine}, req: post("/appointments/"+shared.ID+"/payment", nil)},
		{name: "POST /payments/razorpay/verify", allowed: []who{patientA, patientB}, ok: outcome{http.StatusBadRequest, "bad_signature"},
			req: post("/payments/razorpay/verify", map[string]string{"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1", "razorpay_signature": "sig"})},
		{name: "POST /webhooks/razorpay", public: true, ok: outcome{http.StatusBadRequest, "bad_signature"},
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodPost, Path: "/webhooks/razorpay", Body: `{"event":"payment.captured"}`, Header: http.Header{"X-Razorpay-Signature": {"sig"}, "X-Razorpay-Event-Id": {"evt_1"}}}
			}},
		{name: "GET /admin/payments", allowed: []who{admin}, ok: ok(200), req: get("/admin/payments?status=paid")},
		{name: "GET /audit/streams/{stream}/events", allowed: []who{auditor, admin}, ok: ok(200), req: get("/audit/streams/doctor-" + x.ID + "/events?limit=2"),
			check: func(t *testing.T, _ who, r *testenv.Res) {
				var l struct {
					Events []struct {
						Type     string `json:"type"`
						Revision uint64 `json:"revision"`
					} `json:"events"`
				}
				r.Decode(t, &l)
				if len(l.Events) != 2 || l.Events[0].Type != "doctor.DoctorRegistered.v1" || l.Events[1].Revision != 1 {
					t.Errorf("stream events: %+v", l.Events)
				}
			}},
		{name: "GET /audit/doctors/{id}/schedule", allowed: []who{auditor, admin}, ok: ok(200), req: get("/audit/doctors/" + x.ID + "/schedule?asOf=2199-01-01T00:00:00Z&days=1"),
			check: func(t *testing.T, _ who, r *testenv.Res) {
				var s struct {
					Appointments []testenv.Appointment `json:"appointments"`
				}
				r.Decode(t, &s)
				if !slices.ContainsFunc(s.Appointments, func(a testenv.Appointment) bool { return a.ID == shared.ID }) {
					t.Errorf("the schedule as of now lacks appointment %s: %+v", shared.ID, s.Appointments)
				}
			}},
		{name: "GET /audit/appointments/{id}/history", allowed: []who{auditor, admin}, ok: ok(200), req: get("/audit/appointments/" + shared.ID + "/history"),
			check: func(t *testing.T, _ who, r *testenv.Res) {
				var h struct {
					Events []struct {
						Type string `json:"type"`
					} `json:"events"`
				}
				r.Decode(t, &h)
				if len(h.Events) == 0 || h.Events[0].Type != "doctor.SlotReserved.v1" {
					t.Errorf("history: %+v", h.Events)
				}
			}},
		{name: "GET /audit/verify", allowed: []who{auditor, admin}, ok: ok(200), req: get("/audit/verify"),
			check: func(t *testing.T, _ who, r *testenv.Res) {
				var v struct {
					OK     bool   `json:"ok"`
					Events uint64 `json:"events"`
					Root   string `json:"root"`
				}
				r.Decode(t, &v)
				if !v.OK || v.Events == 0 || len(v.Root) != 64 {
					t.Errorf("verify: %+v", v)
				}
			}},
		{name: "GET /admin/notifications", allowed: []who{admin}, ok: notifications(ok(200)), req: get("/admin/notifications?status=failed")},
		{name: "POST /admin/notifications/{id}/retry", allowed: []who{admin}, ok: notifications(outcome{http.StatusNotFound, "notification_not_found"}),
			req: post("/admin/notifications/none/retry", nil)},
		{name: "GET /appointments/{id}/calendar.ics", allowed: []who{patientA, patientB, doctorX, doctorY}, ok: ok(200),
			deny: map[who]outcome{patientB: notMine, doctorY: notMine}, req: get("/appointments/" + shared.ID + "/calendar.ics")},
		{name: "GET /me/calendar-feed", allowed: []who{patientA, patientB, doctorX, doctorY}, ok: ok(200), req: get("/me/calendar-feed")},
		{name: "DELETE /me/calendar-feed", allowed: []who{patientA, patientB, doctorX, doctorY}, ok: ok(204),
			req: func(*testing.T, who) testenv.Req {
				return testenv.Req{Method: http.MethodDelete, Path: "/me/calendar-feed"}
			}},
		{name: "GET /calendar/{token}.ics", public: true, ok: outcome{http.StatusNotFound, "calendar_feed_not_found"}, req: get("/calendar/p_nobody_00.ics")},
		{name: "GET /analytics/bookings", allowed: []who{analyst, admin}, ok: ok(200), req: get("/analytics/bookings?from=" + testenv.Date(0) + "&to=" + testenv.Date(30) + "&groupBy=doctor")},
		{name: "GET /analytics/utilisation", allowed: []who{analyst, admin}, ok: ok(200), req: get("/analytics/utilisation?from=" + testenv.Date(0) + "&to=" + testenv.Date(30))},
		{name: "GET /healthz", public: true, ok: ok(200), req: get("/healthz")},
		{name: "GET /readyz", public: true, ok: ok(200), req: get("/readyz")},
		{name: "GET /metrics", public: true, ok: ok(200), req: get("/metrics")},
		{name: "GET /openapi.yaml", public: true, ok: ok(200), req: get("/openapi.yaml")},
		{name: "GET /admin/projections", allowed: []who{admin}, ok: ok(200), req: get("/admin/projections")},
		{name: "POST /admin/projections/{name}/rebuild", allowed: []who{admin}, ok: ok(202), req: post("/admin/projections/doctors/rebuild", nil)},
	}

	// Every route of API.md is in the matrix, and every route the document
	// has (the document is checked against API.md in package api).
	var docRoutes []string
	for path, item := range e.Valid.Document().Paths.Map() {
		for method := range item.Operations() {
			docRoutes = append(docRoutes, method+" "+path)
		}
	}
	for _, dr := range docRoutes {
		if !slices.ContainsFunc(routes, func(r matrixRoute) bool { return r.name == dr }) {
			t.Errorf("the matrix lacks %s", dr)
		}
	}

	cells := 0
	for _, rt := range routes {
		for _, w := range everyone {
			cells++
			want := rt.ok
			switch {
			case rt.public:
			case w == anonymous:
				want = outcome{http.StatusUnauthorized, "unauthorized"}
			case !slices.Contains(rt.allowed, w):
				want = outcome{http.StatusForbidden, "forbidden"}
			default:
				if d, ok := rt.deny[w]; ok {
					want = d
				}
			}
			t.Run(strings.ReplaceAll(rt.name, "/", "_")+"/"+string(w), func(t *testing.T) {
				q := rt.req(t, w)
				q.Token = tokens[w]
				if rt.token != nil && (rt.public || slices.Contains(rt.allowed, w)) {
					q.Token = rt.token(t, w)
				}
				r := e.Do(t, q)
				if want.status >= 400 {
					r.CheckProblem(t, want.status, want.code)
					return
				}
				r.Expect(t, want.status)
				if r.Status == want.status && rt.check != nil {
					rt.check(t, w, r)
				}
			})
		}
	}
	t.Logf("%d routes × %d callers = %d cells", len(routes), len(everyone), cells)

	// What the refused cells tried did not happen.
	r := e.Get(t, "/appointments/"+shared.ID, tokens[patientA]).Must(t, http.StatusOK)
	var s testenv.Appointment
	r.Decode(t, &s)
	if s.Status != "confirmed" || !s.Start.Equal(testenv.At(2, 10, 0)) {
		t.Errorf("the shared appointment was changed by a refused caller: %+v", s)
	}
	r = e.Get(t, "/appointments/"+pool["shared"], tokens[patientA]).Must(t, http.StatusOK)
	r.Decode(t, &s)
	if s.Status != "confirmed" {
		t.Errorf("the shared started appointment was closed by a refused caller: %+v", s)
	}
}
