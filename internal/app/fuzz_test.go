package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

// fuzzRoute is one route of FuzzAPI: the fuzzer picks it by index, so the
// order is part of the committed corpus (append, never reorder).
type fuzzRoute struct {
	method, path string
	token        string // "patient", "doctor", "admin" or "" (anonymous)
	// webhook: the body is signed with the engine's webhook secret (so the
	// parser behind the signature check is reached) unless badSig.
	webhook, badSig bool
}

// fuzzRig is the engine FuzzAPI talks to, built once per fuzzing process.
type fuzzRig struct {
	e      *testenv.Env
	tokens map[string]string
	// doctorID is the rig's doctor, for seeds that must reach the domain.
	doctorID string
	routes   []fuzzRoute
}

func newFuzzRig(f *testing.F) *fuzzRig {
	e := testenv.Start(f, testenv.Options{})
	d := e.NewDoctor(f, "Dr. Fuzz Target", "Neurologist")
	p := e.Register(f, "Fuzz Patient")
	victim := e.Register(f, "Fuzz Victim")
	appt := e.MustBook(f, p.Token, d.ID, testenv.At(2, 10, 0))
	gone := e.MustBook(f, p.Token, d.ID, testenv.At(2, 11, 0))
	rig := &fuzzRig{e: e, doctorID: d.ID, tokens: map[string]string{"patient": p.Token, "doctor": d.Token, "admin": e.AdminToken}}
	// Routes that would end the rig's sessions (logout, password change,
	// erasure, a deactivation of the rig's own users) are left out: after
	// one lucky input every later one would test only the 401.
	rig.routes = []fuzzRoute{
		{method: "POST", path: "/auth/register"},
		{method: "POST", path: "/auth/login"},
		{method: "POST", path: "/auth/forgot-password"},
		{method: "POST", path: "/auth/reset-password"},
		{method: "POST", path: "/auth/verify-email"},
		{method: "PATCH", path: "/me", token: "patient"},
		{method: "POST", path: "/admin/users", token: "admin"},
		{method: "POST", path: "/admin/doctors", token: "admin"},
		{method: "PATCH", path: "/admin/doctors/" + d.ID, token: "admin"},
		{method: "PUT", path: "/doctors/" + d.ID + "/schedule", token: "doctor"},
		{method: "POST", path: "/doctors/" + d.ID + "/time-off", token: "doctor"},
		{method: "PATCH", path: "/doctor/profile", token: "doctor"},
		{method: "POST", path: "/appointments", token: "patient"},
		{method: "POST", path: "/appointments/" + gone.ID + "/cancel", token: "patient"},
		{method: "POST", path: "/appointments/" + appt.ID + "/reschedule", token: "patient"},
		{method: "POST", path: "/appointments/" + appt.ID + "/complete", token: "doctor"},
		{method: "POST", path: "/appointments/" + appt.ID + "/payment", token: "patient"},
		{method: "POST", path: "/payments/razorpay/verify", token: "patient"},
		{method: "POST", path: "/webhooks/razorpay", webhook: true},
		{method: "POST", path: "/webhooks/razorpay", webhook: true, badSig: true},
		{method: "POST", path: "/admin/users/" + victim.User.ID + "/deactivate", token: "admin"},
		{method: "GET", path: "/doctors"},
		{method: "GET", path: "/doctors/" + d.ID + "/slots"},
		{method: "GET", path: "/appointments", token: "patient"},
		{method: "GET", path: "/appointments", token: "admin"},
		{method: "GET", path: "/admin/payments", token: "admin"},
		{method: "GET", path: "/audit/doctors/" + d.ID + "/schedule", token: "admin"},
		{method: "GET", path: "/audit/streams/doctor-" + d.ID + "/events", token: "admin"},
		{method: "GET", path: "/admin/notifications", token: "admin"},
		{method: "GET", path: "/doctor/dashboard", token: "doctor"},
		{method: "POST", path: "/appointments/" + appt.ID + "/no-show", token: "doctor"},
	}
	return rig
}

// FuzzAPI sends arbitrary bodies, query strings and Idempotency-Keys (for
// the webhook: event ids, or signatures) to the real router on the
// embedded wiring. Whatever arrives: no panic, no 5xx, every 4xx is an
// application/problem+json with a code, and a refused request appends
// nothing to the event log.
func FuzzAPI(f *testing.F) {
	rig := newFuzzRig(f)
	start := testenv.RFC3339(testenv.At(3, 10, 0))
	weekly := `{"weekday":1,"start":"09:00","end":"21:00"}`
	for d := 2; d <= 7; d++ {
		weekly += fmt.Sprintf(`,{"weekday":%d,"start":"09:00","end":"21:00"}`, d)
	}
	seeds := []struct {
		route      int
		query, key string
		body       string
	}{
		{0, "", "", `{"name":"Ann Seed","email":"ann.seed@example.test","password":"correct-horse-9"}`},
		{1, "", "", `{"email":"ann.seed@example.test","password":"wrong"}`},
		{2, "", "", `{"email":"nobody@example.test"}`},
		{3, "", "", `{"token":"abc.def","password":"correct-horse-9"}`},
		{4, "", "", `{"token":"abc.def"}`},
		{5, "", "", `{"name":"Fuzz Patient","phone":"+91 98765 43210","address":"1 Road","gender":"female","dob":"1990-01-02"}`},
		{6, "", "", `{"name":"Rex Reception","email":"rex@example.test","password":"correct-horse-9","role":"auditor"}`},
		{7, "", "", `{"name":"Dr. New","email":"dr.new@example.test","password":"correct-horse-9","speciality":"Neurologist","degree":"MBBS","experienceYears":3,"about":"x","fees":500,"address":"2 Road","timezone":"Asia/Kolkata","currency":"INR"}`},
		{8, "", "", `{"fees":700,"available":true}`},
		{9, "", "", `{"timezone":"Asia/Kolkata","slotMinutes":30,"bookingWindowDays":30,"minNoticeMinutes":30,"paymentPolicy":"none","weekly":[` + weekly + `]}`},
		{10, "", "", `{"from":"` + testenv.RFC3339(testenv.At(9, 0, 0)) + `","to":"` + testenv.RFC3339(testenv.At(10, 0, 0)) + `","reason":"leave"}`},
		{11, "", "", `{"about":"Seen it all","fees":800}`},
		{12, "", "seed-key-1", `{"doctorId":"` + rig.doctorID + `","start":"` + start + `"}`},
		{13, "", "", `{"reason":"changed my mind"}`},
		{14, "", "", `{"start":"` + start + `"}`},
		{15, "", "", ``},
		{16, "", "", `{}`},
		{17, "", "", `{"razorpay_order_id":"order_1","razorpay_payment_id":"pay_1","razorpay_signature":"00"}`},
		{18, "", "evt_seed_1", `{"entity":"event","event":"payment.captured","contains":["payment"],"payload":{"payment":{"entity":{"id":"pay_1","order_id":"order_1","amount":50000,"currency":"INR","status":"captured"}}},"created_at":1}`},
		{19, "", "deadbeef", `{"entity":"event","event":"order.paid","payload":{},"created_at":1}`},
		{20, "", "", ``},
		{21, "q=neuro&speciality=Neurologist&available=true&limit=5", "", ``},
		{22, "from=2031-03-03&days=7", "", ``},
		{23, "limit=2&cursor=YjEw&status=confirmed", "", ``},
		{24, "doctorId=x&from=2031-01-01T00:00:00Z&to=2031-02-01T00:00:00Z", "", ``},
		{25, "limit=3&cursor=cDE", "", ``},
		{26, "asOf=2031-01-01T00:00:00Z", "", ``},
		{27, "after=0&limit=10", "", ``},
		{28, "status=failed", "", ``},
		{29, "", "", ``},
		{30, "", "", `{}`},
	}
	for _, s := range seeds {
		f.Add(uint8(s.route), s.query, s.key, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, query, key string, body []byte) {
		rig.check(t, rig.routes[int(route)%len(rig.routes)], query, key, body)
	})
}

func (rig *fuzzRig) check(t *testing.T, r fuzzRoute, query, key string, body []byte) {
	e := rig.e
	target := "/api/v1" + r.path
	if query != "" {
		target += "?" + query
	}
	// httptest.NewRequest panics on a target it cannot parse: a client
	// could not send that either, so such an input tests nothing.
	if !validTarget(target) || (r.webhook && !validHeader(key)) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The login back-off delays attempts on a failing email (up to 5 s):
	// a request still unanswered after 2 s is abandoned, as a client
	// would, and must then answer 499, nothing else.
	timer := time.AfterFunc(2*time.Second, cancel)
	defer timer.Stop()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(r.method, target, nil).WithContext(ctx)
	if rd != nil {
		req = httptest.NewRequest(r.method, target, rd).WithContext(ctx)
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := rig.tokens[r.token]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	switch {
	case r.webhook && r.badSig:
		req.Header.Set("X-Razorpay-Event-Id", "evt_fuzz")
		req.Header.Set("X-Razorpay-Signature", key)
	case r.webhook:
		req.Header.Set("X-Razorpay-Event-Id", key)
		req.Header.Set("X-Razorpay-Signature", e.SignWebhook(string(body)))
	case key != "" && validHeader(key):
		req.Header.Set("Idempotency-Key", key)
	}
	head := e.Head(t)
	w := httptest.NewRecorder()
	e.App.Handler.ServeHTTP(w, req)
	status := w.Code
	desc := r.method + " " + target
	t.Logf("%s -> %d %.200s", desc, status, w.Body.String())
	if status >= 500 {
		t.Fatalf("%s with body %q: %d %s", desc, truncateBytes(body), status, w.Body.String())
	}
	if status < 400 {
		return
	}
	if status == 499 && ctx.Err() == nil {
		t.Fatalf("%s: 499 though the client did not go away", desc)
	}
	if status == 499 && r.path != "/auth/login" {
		t.Fatalf("%s: no answer within 2 s", desc)
	}
	if status != 499 { // the client is gone: nobody reads that answer
		checkFuzzProblem(t, desc, status, w)
	}
	if after := e.Head(t); after != head {
		t.Fatalf("%s with body %q: refused with %d, but the log moved from %d to %d", desc, truncateBytes(body), status, head, after)
	}
}

// checkFuzzProblem: a 4xx is problem+json carrying its status and a code.
func checkFuzzProblem(t *testing.T, desc string, status int, w *httptest.ResponseRecorder) {
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: %d with Content-Type %q", desc, status, ct)
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Code   string `json:"code"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("%s: problem is not JSON: %v: %s", desc, err, w.Body.String())
	}
	if p.Status != status || p.Code == "" || p.Title == "" || p.Type != "https://prescripto.dev/problems/"+p.Code {
		t.Fatalf("%s: %d with problem %s", desc, status, w.Body.String())
	}
}

// validTarget reports whether httptest.NewRequest accepts target.
func validTarget(target string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	httptest.NewRequest(http.MethodGet, target, nil)
	return true
}

// validHeader reports whether v may travel as a header value at all
// (net/http refuses to send CR, LF and NUL).
func validHeader(v string) bool { return !strings.ContainsAny(v, "\r\n\x00") }

func truncateBytes(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}
