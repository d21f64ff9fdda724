package api

import (
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain"
)

// stack is the recommended middleware chain around a few test routes.
func stack(t *testing.T, logs *logBuffer, tok *Tokens) http.Handler {
	t.Helper()
	r := chi.NewRouter()
	r.Use(RequestID, Logger(newLogger(logs)), AccessLog(ClientIP(false)), Recoverer, SecurityHeaders)
	if tok != nil {
		r.Use(tok.Authenticate)
	}
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/doctors/{id}", func(w http.ResponseWriter, r *http.Request) {
			zerolog.Ctx(r.Context()).Info().Msg("handler")
			_ = WriteJSON(w, http.StatusOK, map[string]string{
				"requestId":       RequestIDFrom(r.Context()),
				"correlationId":   CorrelationIDFrom(r.Context()),
				"clientRequestId": ClientRequestIDFrom(r.Context()),
			})
		})
		r.Get("/panic", func(w http.ResponseWriter, r *http.Request) { panic("nil map write") })
		r.Get("/panic-after-write", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial"))
			panic("late")
		})
		r.Get("/fail", func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, domain.ErrUnavailable) })
	})
	return r
}

// The server's request id is always its own (UUIDv7): a client's
// X-Request-ID is kept apart as client_request_id, and a client's
// X-Correlation-ID is carried when it is printable and at most 128 bytes.
func TestRequestAndCorrelationIDs(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 129)
	tests := []struct {
		name            string
		requestID       string
		correlationID   string
		wantClient      string // the client_request_id kept ("" : none)
		wantCorrelation string // "=" : same as request id
	}{
		{name: "none", wantCorrelation: "="},
		{name: "client request id kept apart", requestID: "abc-123_X.y", wantClient: "abc-123_X.y", wantCorrelation: "="},
		{name: "both", requestID: "r1", correlationID: "c1", wantClient: "r1", wantCorrelation: "c1"},
		{name: "128 bytes kept", requestID: long[:128], correlationID: long[:128], wantClient: long[:128], wantCorrelation: long[:128]},
		{name: "129 bytes dropped", requestID: long, correlationID: long, wantCorrelation: "="},
		{name: "printable with spaces kept", requestID: "a b/c:d", correlationID: "x/y", wantClient: "a b/c:d", wantCorrelation: "x/y"},
		{name: "newline injection dropped", requestID: "a\nlevel=error", correlationID: "a\rb", wantCorrelation: "="},
		{name: "unicode dropped", requestID: "ñ", correlationID: "ñ", wantCorrelation: "="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			h := stack(t, &logs, nil)
			req := httptest.NewRequest(http.MethodGet, "/api/v1/doctors/d1", nil)
			if tt.requestID != "" {
				req.Header[canonRequestID] = []string{tt.requestID}
			}
			if tt.correlationID != "" {
				req.Header[canonCorrelationID] = []string{tt.correlationID}
			}
			rec := serve(h, req)
			rid, cid := rec.Header().Get(HeaderRequestID), rec.Header().Get(HeaderCorrelationID)
			if id, err := uuid.Parse(rid); err != nil || id.Version() != 7 {
				t.Errorf("request id %q is not a server-made UUIDv7", rid)
			}
			want := tt.wantCorrelation
			if want == "=" {
				want = rid
			}
			if cid != want {
				t.Errorf("correlation id %q, want %q", cid, want)
			}
			body := rec.Body.String()
			if !strings.Contains(body, `"requestId":"`+rid+`"`) || !strings.Contains(body, `"correlationId":"`+cid+`"`) || !strings.Contains(body, `"clientRequestId":"`+tt.wantClient+`"`) {
				t.Errorf("context ids differ from headers: %s", body)
			}
			// Every line logged for the request carries the ids.
			lines := logs.lines(t)
			if len(lines) != 2 { // handler + access log
				t.Fatalf("%d log lines: %v", len(lines), lines)
			}
			for _, l := range lines {
				if l["request_id"] != rid || l["correlation_id"] != cid {
					t.Errorf("log line without ids: %v", l)
				}
				if got, _ := l["client_request_id"].(string); got != tt.wantClient {
					t.Errorf("client_request_id %q, want %q", got, tt.wantClient)
				}
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	c := &clock{now: t0}
	tok := newTestTokens(t, c)
	h := stack(t, &logs, tok)

	token, _, _ := tok.Issue("user-9", domain.RolePatient, "", "")
	req := httptest.NewRequest(http.MethodGet, "/api/v1/doctors/d42", nil)
	req.RemoteAddr = "203.0.113.9:5555"
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-For", "1.1.1.1") // not trusted
	serve(h, req)
	serve(h, httptest.NewRequest(http.MethodGet, "/api/v1/fail", nil))
	serve(h, httptest.NewRequest(http.MethodGet, "/api/v1/missing", nil))

	access := logs.withMessage(t, "request")
	if len(access) != 3 {
		t.Fatalf("%d access lines", len(access))
	}
	ok := access[0]
	if ok["level"] != "info" || ok["method"] != "GET" || ok["route"] != "/api/v1/doctors/{id}" || ok["path"] != "/api/v1/doctors/d42" ||
		ok["status"] != float64(200) || ok["remote_ip"] != "203.0.113.9" || ok["user_id"] != "user-9" || ok["role"] != "patient" {
		t.Errorf("access line %v", ok)
	}
	if b, _ := ok["bytes"].(float64); b <= 0 {
		t.Errorf("bytes %v", ok["bytes"])
	}
	if _, has := ok["duration"]; !has {
		t.Error("no duration")
	}
	fail := access[1]
	if fail["level"] != "error" || fail["status"] != float64(503) || fail["route"] != "/api/v1/fail" {
		t.Errorf("5xx access line %v", fail)
	}
	if _, has := fail["user_id"]; has {
		t.Error("anonymous request logged with a user")
	}
	if miss := access[2]; miss["level"] != "info" || miss["status"] != float64(404) || miss["route"] != "" {
		t.Errorf("404 access line %v", miss)
	}
	// The handler's own line carries the user too.
	for _, l := range logs.withMessage(t, "handler") {
		if l["user_id"] != "user-9" {
			t.Errorf("handler line %v", l)
		}
	}
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	h := stack(t, &logs, nil)

	rec := serve(h, httptest.NewRequest(http.MethodGet, "/api/v1/panic", nil))
	if rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	p := decodeProblem(t, rec)
	if p.Code != "internal" || strings.Contains(rec.Body.String(), "nil map") {
		t.Errorf("problem %+v", p)
	}
	if p.RequestID == "" || p.RequestID != rec.Header().Get(HeaderRequestID) {
		t.Errorf("problem requestId %q", p.RequestID)
	}
	panics := logs.withMessage(t, "panic while serving request (bug)")
	if len(panics) != 1 || panics[0]["panic"] != "nil map write" || panics[0]["level"] != "error" || panics[0]["stack"] == nil {
		t.Errorf("panic log %v", panics)
	}
	if access := logs.withMessage(t, "request"); len(access) != 1 || access[0]["status"] != float64(500) {
		t.Errorf("access log %v", access)
	}

	// The server keeps serving.
	if rec := serve(h, httptest.NewRequest(http.MethodGet, "/api/v1/doctors/1", nil)); rec.Code != 200 {
		t.Errorf("after panic: %d", rec.Code)
	}

	// A panic after the response started cannot change it; it is logged.
	rec = serve(h, httptest.NewRequest(http.MethodGet, "/api/v1/panic-after-write", nil))
	if rec.Code != 200 || rec.Body.String() != "partial" {
		t.Errorf("late panic: %d %q", rec.Code, rec.Body)
	}
	if n := len(logs.withMessage(t, "panic while serving request (bug)")); n != 2 {
		t.Errorf("%d panic lines", n)
	}
}

func TestRecovererRepanicsAbort(t *testing.T) {
	t.Parallel()
	h := Recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler { //nolint:errorlint
			t.Errorf("recovered %v, want http.ErrAbortHandler", rec)
		}
	}()
	serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	t.Error("ErrAbortHandler swallowed")
}

func TestRecovererOverRealServer(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	srv := httptest.NewServer(stack(t, &logs, nil))
	defer srv.Close()
	for range 3 {
		res, err := srv.Client().Get(srv.URL + "/api/v1/panic")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 500 {
			t.Errorf("status %d", res.StatusCode)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	h := stack(t, &logs, nil)
	for _, path := range []string{"/api/v1/doctors/1", "/api/v1/missing", "/api/v1/panic"} {
		rec := serve(h, httptest.NewRequest(http.MethodGet, path, nil))
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
			"Referrer-Policy":        "no-referrer",
			"X-Frame-Options":        "DENY",
		} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		trust  bool
		remote string
		xff    []string
		realIP string
		want   string
	}{
		{"remote only", false, "198.51.100.7:4000", nil, "", "198.51.100.7"},
		{"untrusted XFF ignored", false, "198.51.100.7:4000", []string{"1.2.3.4"}, "5.6.7.8", "198.51.100.7"},
		{"trusted rightmost XFF", true, "10.0.0.1:4000", []string{"6.6.6.6, 1.2.3.4"}, "", "1.2.3.4"},
		{"trusted XFF across headers", true, "10.0.0.1:4000", []string{"6.6.6.6", "1.2.3.4"}, "", "1.2.3.4"},
		{"trusted X-Real-IP", true, "10.0.0.1:4000", nil, "5.6.7.8", "5.6.7.8"},
		{"trusted garbage falls back to peer", true, "10.0.0.1:4000", []string{"1.2.3.4, nonsense"}, "", "10.0.0.1"},
		{"ipv6 peer", false, "[2001:db8::1]:443", nil, "", "2001:db8::1"},
		{"v4-mapped peer", false, "[::ffff:192.0.2.1]:443", nil, "", "192.0.2.1"},
		{"no port", false, "192.0.2.5", nil, "", "192.0.2.5"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if tt.realIP != "" {
			req.Header.Set("X-Real-IP", tt.realIP)
		}
		if got := ClientIP(tt.trust)(req); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLoggerWithoutRequestID(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	h := Logger(newLogger(&logs))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zerolog.Ctx(r.Context()).Info().Msg("x")
	}))
	serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	l := logs.lines(t)
	if len(l) != 1 {
		t.Fatalf("lines %v", l)
	}
	if _, has := l[0]["request_id"]; has {
		t.Error("request_id without RequestID middleware")
	}
}

// The header keys indexed directly are the canonical forms of the
// exported names, so the wire names and Header.Get still agree.
func TestCanonicalIDHeaders(t *testing.T) {
	t.Parallel()
	for name, canon := range map[string]string{HeaderRequestID: canonRequestID, HeaderCorrelationID: canonCorrelationID} {
		if got := textproto.CanonicalMIMEHeaderKey(name); got != canon {
			t.Errorf("canonical %q = %q, the code indexes %q", name, got, canon)
		}
	}
	for _, k := range []string{"X-Content-Type-Options", "Cache-Control", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy", "Content-Type", "Content-Length"} {
		if got := textproto.CanonicalMIMEHeaderKey(k); got != k {
			t.Errorf("%q is set directly but is not canonical (%q)", k, got)
		}
	}
}
