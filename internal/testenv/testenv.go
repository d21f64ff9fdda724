// Package testenv runs the whole Prescripto engine (app.New on a temporary
// data dir, the projections, the real chi router behind httptest.NewServer)
// for end-to-end tests, and talks to it over real HTTP the way a client
// does. Every response it receives is checked against api/openapi.yaml.
//
// It imports testing: only tests may import it.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/api/apitest"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
	"github.com/prescripto/prescripto/workers/notify"
	"github.com/prescripto/prescripto/workers/payments"
)

// DefaultNow is the fake clock's start: Monday 3 March 2031, 09:00 in
// Asia/Kolkata (03:30 UTC), before the doctors' 10:00 opening.
var DefaultNow = time.Date(2031, time.March, 3, 3, 30, 0, 0, time.UTC)

// Zone is the doctors' zone in these tests (no DST).
const Zone = "Asia/Kolkata"

// IST is Zone loaded.
var IST = mustZone(Zone)

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// Secret is the JWT secret of every Env (32+ bytes).
var Secret = []byte("prescripto-e2e-test-secret-0123456789abcdef")

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Options tune Start.
type Options struct {
	// DataDir is the data dir; default a fresh t.TempDir().
	DataDir string
	// Clock is the engine's clock; default NewClock(DefaultNow).
	Clock *Clock
	// AuthRateLimit is the /auth/* limit per minute; default 1,000,000.
	AuthRateLimit int
	// TokenTTL is the access-token lifetime; default 1 h.
	TokenTTL time.Duration
	// Logger is the engine's logger; default a no-op logger.
	Logger *zerolog.Logger
	// NoAdminLogin leaves AdminToken empty (Start logs nobody in, so no
	// /auth request is spent).
	NoAdminLogin bool
	// VerifyEmail turns email verification on (PRESCRIPTO_VERIFY_EMAIL).
	VerifyEmail bool
	// SessionTTL is the api processes' session-state TTL; default
	// api.DefaultSessionTTL.
	SessionTTL time.Duration
	// OpsListener serves /metrics on App.OpsHandler only, as with
	// PRESCRIPTO_OPS_ADDR (the API port answers 404); MetricsToken is
	// METRICS_TOKEN.
	OpsListener  bool
	MetricsToken string
	// Mail configures mail (SMTP_URL, reminders, daily cap); default the
	// mbox in the data dir.
	Mail app.MailOptions

	// Production runs the engine on the production wiring: the event store
	// on EventStoreDB (the in-process esdbtest emulator), the read models
	// in MongoDB (MongoURI: FerretDB, or MONGODB_URI, in a database of the
	// test's own) and Redis (RedisURL: a private redis-server, or
	// REDIS_URL) for the transport, the cache and the rate limit. ESDBURL,
	// MongoURI and RedisURL, when set, are used instead of those.
	Production bool
	// Roles (with Production) runs the engine as separate roles sharing
	// the servers: a projector and a worker App running in the background
	// and an api App, whose handler the Env serves, as `prescripto
	// projector`, `worker` and `api` would.
	Roles bool
	// MaxWait bounds the API's X-Min-Position waits; default 2 s, 15 s
	// with Production (see maxWait).
	MaxWait time.Duration
	// ExternalProjector (with Roles) starts no projector: the test runs
	// its own (a child process it kills, say).
	ExternalProjector bool
	// ExternalWorker (with Roles) starts no worker either: the test runs
	// its own.
	ExternalWorker bool
	ESDBURL        string
	MongoURI       string
	RedisURL       string

	// MaxLiveBookings is a patient's bound of live future appointments;
	// default 1000 (tests book many as one patient); BookingRateLimit the
	// per-user bound of bookings a minute, default 1,000,000.
	MaxLiveBookings  int
	BookingRateLimit int

	// Mailer receives the engine's mails instead of the mbox in the data
	// dir.
	Mailer notify.Mailer

	// RunnerMiddleware wraps the handlers of every projection and worker
	// (app.Options.RunnerMiddleware): Watermill's Duplicator, RandomFail.
	RunnerMiddleware []message.HandlerMiddleware

	// NoPayments starts the engine without a payment provider (schedules
	// with online payment are refused, as without Razorpay keys).
	NoPayments bool
	// Sandbox pays through the in-process sandbox (RAZORPAY_SANDBOX=1)
	// instead of the emulator on a server of its own.
	Sandbox bool
	// PaymentWorker tunes the payments worker; default Tick 20 ms (its
	// clock is Clock: tests move time on, the worker looks every Tick).
	PaymentWorker payments.Config
	// razorpay is the emulator the engine's payments go to, over HTTP as
	// to Razorpay itself (shared by the processes of Roles and by a
	// restart that reuses these Options).
	razorpay *razorpayRig
}

// razorpayRig is a Razorpay emulator on an HTTP server of its own.
type razorpayRig struct {
	emu *sandbox.Emulator
	srv *httptest.Server
}

// startRazorpay starts the emulator unless payments are off or it runs.
func (o *Options) startRazorpay(t testing.TB) {
	if o.NoPayments || o.Sandbox || o.razorpay != nil {
		return
	}
	emu := sandbox.New(sandbox.Config{Now: o.Clock.Now, WebhookBackoff: 20 * time.Millisecond})
	srv := httptest.NewServer(emu.APIHandler())
	o.razorpay = &razorpayRig{emu: emu, srv: srv}
	t.Cleanup(func() { emu.Close(); srv.Close() })
}

// payments are the engine's payment options: the emulator's keys and
// address, as RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET, RAZORPAY_WEBHOOK_SECRET
// and RAZORPAY_BASE_URL would give them.
func (o Options) payments() app.PaymentOptions {
	w := o.PaymentWorker
	if w.Tick == 0 {
		w.Tick = 20 * time.Millisecond
	}
	if o.Sandbox {
		return app.PaymentOptions{Sandbox: true, OrderWait: time.Second, Worker: w}
	}
	if o.razorpay == nil {
		return app.PaymentOptions{}
	}
	e := o.razorpay.emu
	return app.PaymentOptions{
		KeyID: e.KeyID(), KeySecret: e.KeySecret(), WebhookSecret: e.WebhookSecret(), BaseURL: o.razorpay.srv.URL,
		Timeout: 5 * time.Second, OrderWait: time.Second, Worker: w,
	}
}

// production fills in the servers of the production wiring.
func (o *Options) production(t testing.TB) {
	t.Helper()
	if o.ESDBURL == "" {
		o.ESDBURL = esdbtest.Start(t)
	}
	if o.MongoURI == "" {
		uri, err := withDatabase(MongoURI(t), MongoDatabase(t))
		if err != nil {
			t.Fatalf("testenv: MongoDB URI: %v", err)
		}
		o.MongoURI = uri
	}
	if o.RedisURL == "" {
		o.RedisURL = RedisURL(t)
	}
}

// maxWait is the API's X-Min-Position bound: MaxWait if set, else the
// default 2 s embedded; on
// the production wiring 15 s, because FerretDB under the race detector,
// with other test packages on the same 2 cores, applies events at a few
// dozen per second (docs/performance.md) and a wait the engine would
// honour on MongoDB must not fail the test.
func (o Options) maxWait() time.Duration {
	if o.MaxWait != 0 {
		return o.MaxWait
	}
	if o.Production {
		return 15 * time.Second
	}
	return 0
}

// withDatabase returns uri with its path set to db.
func withDatabase(uri, db string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

// Admin credentials every Env bootstraps (EnsureAdmin, as ADMIN_EMAIL and
// ADMIN_PASSWORD do at start-up).
const (
	AdminEmail    = "admin@prescripto.test"
	AdminPassword = "admin-password-1"
)

// Env is a running engine and an HTTP client for it.
type Env struct {
	App *app.App
	// Roles holds, with Options.Roles, the projector and worker Apps
	// running beside App (the api).
	Roles   map[app.Role]*app.App
	Server  *httptest.Server
	URL     string // base URL including /api/v1
	Clock   *Clock
	DataDir string
	Valid   *apitest.Validator
	Client  *http.Client
	// Razorpay is the emulator of the engine's payments (nil with
	// NoPayments).
	Razorpay *sandbox.Emulator

	// AdminToken is a token of the bootstrapped admin.
	AdminToken string

	opts     Options
	seq      atomic.Int64
	stopOnce sync.Once
	stop     func()
}

// Start builds an App on a data dir, runs its projections, serves its
// handler and logs the admin in. Everything is stopped at t's cleanup (or
// earlier with Stop).
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Clock == nil {
		o.Clock = NewClock(DefaultNow)
	}
	if o.AuthRateLimit == 0 {
		o.AuthRateLimit = 1_000_000
	}
	if o.MaxLiveBookings == 0 {
		o.MaxLiveBookings = 1000
	}
	if o.BookingRateLimit == 0 {
		o.BookingRateLimit = 1_000_000
	}
	if o.Production {
		o.production(t)
	}
	o.startRazorpay(t)
	logger := zerolog.Nop()
	if o.Logger != nil {
		logger = *o.Logger
	}
	ctx := context.Background()
	var (
		stops []func()
		role  = app.RoleAll
		roles = map[app.Role]*app.App{}
	)
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if o.Roles {
		if !o.Production {
			t.Fatal("testenv: Roles needs Production")
		}
		role = app.RoleAPI
		for _, r := range []app.Role{app.RoleProjector, app.RoleWorker} {
			if (r == app.RoleProjector && o.ExternalProjector) || (r == app.RoleWorker && o.ExternalWorker) {
				continue
			}
			ra, stop := startRole(t, r, o, logger)
			roles[r] = ra
			stops = append(stops, stop)
		}
	}
	a, err := app.New(ctx, app.Options{
		Role:    role,
		DataDir: o.DataDir, JWTSecret: Secret, TokenTTL: o.TokenTTL, AuthRateLimit: o.AuthRateLimit,
		BcryptCost: 4, Logger: logger, Now: o.Clock.Now, MaxWait: o.maxWait(),
		ESDBURL: o.ESDBURL, MongoURI: o.MongoURI, RedisURL: o.RedisURL, Payments: o.payments(),
		MaxLiveBookings: o.MaxLiveBookings, BookingRateLimit: o.BookingRateLimit,
		VerifyEmail: o.VerifyEmail, SessionTTL: o.SessionTTL, OpsListener: o.OpsListener, MetricsToken: o.MetricsToken,
		Mailer: o.Mailer, Mail: o.Mail, RunnerMiddleware: o.RunnerMiddleware,
	})
	if err != nil {
		stopAll()
		t.Fatalf("app.New: %v", err)
	}
	if _, err := a.EnsureAdmin(ctx, "Clinic Admin", AdminEmail, AdminPassword); err != nil {
		_ = a.Close()
		stopAll()
		t.Fatalf("EnsureAdmin: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()
	srv := httptest.NewServer(a.Handler)
	if o.razorpay != nil {
		o.razorpay.emu.SetWebhookURL(srv.URL + "/api/v1/webhooks/razorpay")
	}
	e := &Env{
		App: a, Roles: roles, Server: srv, URL: srv.URL + "/api/v1", Clock: o.Clock, DataDir: o.DataDir, opts: o,
		Valid:  apitest.NewValidator(t),
		Client: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}},
	}
	if o.razorpay != nil {
		e.Razorpay = o.razorpay.emu
	}
	e.stop = func() {
		srv.Close()
		e.Client.CloseIdleConnections()
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("App.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("App.Run did not stop within 30 s")
		}
		if err := a.Close(); err != nil {
			t.Errorf("App.Close: %v", err)
		}
		stopAll()
	}
	t.Cleanup(e.Stop)
	if !o.NoAdminLogin {
		e.AdminToken = e.Login(t, AdminEmail, AdminPassword).Token
	}
	return e
}

// startRole builds and runs an App of role r in the background; the
// returned func stops it.
func startRole(t testing.TB, r app.Role, o Options, logger zerolog.Logger) (*app.App, func()) {
	t.Helper()
	a, err := app.New(context.Background(), app.Options{
		Role: r, DataDir: o.DataDir, Logger: logger.With().Str("role", string(r)).Logger(), Now: o.Clock.Now,
		JWTSecret: Secret, TokenTTL: o.TokenTTL, AuthRateLimit: o.AuthRateLimit, BcryptCost: 4, MaxWait: o.maxWait(),
		ESDBURL: o.ESDBURL, MongoURI: o.MongoURI, RedisURL: o.RedisURL, Payments: o.payments(),
		MaxLiveBookings: o.MaxLiveBookings, BookingRateLimit: o.BookingRateLimit,
		VerifyEmail: o.VerifyEmail, SessionTTL: o.SessionTTL, OpsListener: o.OpsListener, MetricsToken: o.MetricsToken,
		Mailer: o.Mailer, Mail: o.Mail, RunnerMiddleware: o.RunnerMiddleware,
	})
	if err != nil {
		t.Fatalf("app.New(%s): %v", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: App.Run: %v", r, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s: App.Run did not stop within 30 s", r)
		}
		if err := a.Close(); err != nil {
			t.Errorf("%s: App.Close: %v", r, err)
		}
	}
}

// StartAPIReplica starts another api process on the Env's servers (Roles
// only) and returns an Env whose requests go to it; the engine, the clock,
// the admin token and the HTTP client are shared. It stops at t's cleanup.
func (e *Env) StartAPIReplica(t testing.TB) *Env {
	t.Helper()
	if !e.opts.Roles {
		t.Fatal("testenv: StartAPIReplica needs Roles")
	}
	logger := zerolog.Nop()
	if e.opts.Logger != nil {
		logger = *e.opts.Logger
	}
	a, stop := startRole(t, app.RoleAPI, e.opts, logger)
	srv := httptest.NewServer(a.Handler)
	r := &Env{
		App: a, Roles: e.Roles, Server: srv, URL: srv.URL + "/api/v1", Clock: e.Clock, DataDir: e.DataDir, opts: e.opts,
		Valid: e.Valid, Client: e.Client, AdminToken: e.AdminToken, Razorpay: e.Razorpay,
	}
	r.seq.Store(1 << 40) // Unique values apart from the first Env's
	r.stop = func() { srv.Close(); stop() }
	t.Cleanup(r.Stop)
	return r
}

// SignWebhook signs body as Razorpay signs webhooks to this engine (the
// emulator's webhook secret); "" without payments.
func (e *Env) SignWebhook(body string) string {
	if e.Razorpay == nil {
		return ""
	}
	return e.Razorpay.SignWebhook([]byte(body))
}

// StartWorkerReplica starts another worker process on the Env's servers
// (Roles only); it stops at t's cleanup.
func (e *Env) StartWorkerReplica(t testing.TB) *app.App {
	t.Helper()
	if !e.opts.Roles {
		t.Fatal("testenv: StartWorkerReplica needs Roles")
	}
	logger := zerolog.Nop()
	if e.opts.Logger != nil {
		logger = *e.opts.Logger
	}
	a, stop := startRole(t, app.RoleWorker, e.opts, logger)
	t.Cleanup(stop)
	return a
}

// RazorpayURL is the address of the Razorpay emulator the engine's
// payments go to ("" without one), for a worker the test runs itself.
func (e *Env) RazorpayURL() string {
	if e.opts.razorpay == nil {
		return ""
	}
	return e.opts.razorpay.srv.URL
}

// Options are the options the Env was started with, defaults filled in
// (with Production, the servers' URLs).
func (e *Env) Options() Options { return e.opts }

// Stop shuts the server, the projections and the store down (once).
func (e *Env) Stop() { e.stopOnce.Do(e.stop) }

// CaughtUp waits (at most 10 s) until every projection has applied the
// log's head.
func (e *Env) CaughtUp(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.App.CaughtUp(ctx); err != nil {
		t.Fatalf("CaughtUp: %v", err)
	}
}

// Head is the event log's head position.
func (e *Env) Head(t testing.TB) uint64 {
	t.Helper()
	p, err := e.App.Store.HeadPosition(context.Background())
	if err != nil {
		t.Fatalf("HeadPosition: %v", err)
	}
	return p
}

// Unique returns a string unique within the Env, for emails and names.
func (e *Env) Unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, e.seq.Add(1))
}

// ---------------------------------------------------------------- requests

// Req is one HTTP request.
type Req struct {
	Method string
	Path   string // below /api/v1 unless it starts with "//" (then from the root: "//healthz")
	Token  string
	// Body: nil for none, a string or []byte sent as is, anything else
	// JSON-encoded.
	Body any
	// Header is added to the request. Content-Type defaults to
	// application/json when there is a body; set NoContentType to send none.
	Header        http.Header
	NoContentType bool
	// MinPosition, when not zero, is sent as X-Min-Position.
	MinPosition uint64
	// NoValidate skips the OpenAPI check (for responses to requests the
	// document cannot route, which the caller checks itself).
	NoValidate bool
	// Client, when set, sends the request instead of Env.Client.
	Client *http.Client
}

// Res is a response, read whole.
type Res struct {
	Status int
	Header http.Header
	Body   []byte
	req    string
}

func (r *Res) String() string {
	return fmt.Sprintf("%s -> %d %s", r.req, r.Status, truncate(r.Body))
}

// Decode JSON-decodes the body into v, failing t if it does not decode.
func (r *Res) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: decode %T: %v", r, v, err)
	}
}

// Map decodes the body as a JSON object.
func (r *Res) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.Decode(t, &m)
	return m
}

// Problem is an RFC 9457 problem as the API writes it.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Instance  string `json:"instance"`
	RequestID string `json:"requestId"`
	Errors    []struct {
		Field  string `json:"field"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// CheckProblem reports (with t.Errorf, so it is safe from any goroutine)
// unless r is an application/problem+json answer with status and code,
// carrying type, title, status, detail and code, consistent with each
// other.
func (r *Res) CheckProblem(t testing.TB, status int, code string) Problem {
	t.Helper()
	var p Problem
	if r.Status != status {
		t.Errorf("%s: status %d, want %d", r, r.Status, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", r, ct)
		return p
	}
	var raw map[string]any
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Errorf("%s: problem is not JSON: %v", r, err)
		return p
	}
	for _, f := range []string{"type", "title", "status", "detail", "code"} {
		if v, ok := raw[f]; !ok || v == "" || v == nil {
			t.Errorf("%s: problem lacks %q", r, f)
		}
	}
	_ = json.Unmarshal(r.Body, &p)
	if p.Status != r.Status {
		t.Errorf("%s: problem status %d differs from the response's", r, p.Status)
	}
	if code != "" && p.Code != code {
		t.Errorf("%s: code %q, want %q", r, p.Code, code)
	}
	if p.Type != "https://prescripto.dev/problems/"+p.Code {
		t.Errorf("%s: type %q does not match code %q", r, p.Type, p.Code)
	}
	if r.Status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: 401 without a Bearer WWW-Authenticate challenge", r)
	}
	return p
}

// Expect reports (t.Errorf) unless the status is status.
func (r *Res) Expect(t testing.TB, status int) *Res {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d", r, r.Status, status)
	}
	return r
}

// Must fails t now (t.Fatalf: only from the test's goroutine) unless the
// status is status.
func (r *Res) Must(t testing.TB, status int) *Res {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d", r, r.Status, status)
	}
	return r
}

// Do sends the request and reads the answer. A transport error is reported
// with t.Errorf and answered as status 0, so Do is safe to call from any
// goroutine. Unless NoValidate, the answer is checked against openapi.yaml.
func (e *Env) Do(t testing.TB, q Req) *Res {
	t.Helper()
	var body []byte
	switch b := q.Body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			t.Errorf("marshal body: %v", err)
			return &Res{}
		}
	}
	url := e.URL + q.Path
	if strings.HasPrefix(q.Path, "//") {
		url = e.Server.URL + q.Path[1:]
	}
	var rd io.Reader
	if q.Body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(q.Method, url, rd)
	if err != nil {
		t.Errorf("new request: %v", err)
		return &Res{}
	}
	for k, vs := range q.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if q.Body != nil && !q.NoContentType && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if q.Token != "" {
		req.Header.Set("Authorization", "Bearer "+q.Token)
	}
	if q.MinPosition != 0 {
		req.Header.Set("X-Min-Position", fmt.Sprint(q.MinPosition))
	}
	client := e.Client
	if q.Client != nil {
		client = q.Client
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", q.Method, q.Path, err)
		return &Res{req: q.Method + " " + q.Path}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: read body: %v", q.Method, q.Path, err)
	}
	r := &Res{Status: resp.StatusCode, Header: resp.Header, Body: data, req: q.Method + " " + q.Path}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s: server error", r)
	}
	if !q.NoValidate {
		// Validate against the request as sent, path rewritten to what
		// the document routes (the operations routes live at the root too).
		vreq := req.Clone(context.Background())
		if strings.HasPrefix(q.Path, "//") {
			vreq.URL.Path = "/api/v1" + q.Path[1:]
		}
		if err := e.Valid.CheckResponse(vreq, r.Status, r.Header, r.Body); err != nil {
			t.Errorf("%s: response does not match openapi.yaml: %s", r, shortErr(err))
		}
	}
	return r
}

// Get is Do for a GET.
func (e *Env) Get(t testing.TB, path, token string) *Res {
	t.Helper()
	return e.Do(t, Req{Method: http.MethodGet, Path: path, Token: token})
}

// Post is Do for a POST with a JSON body.
func (e *Env) Post(t testing.TB, path, token string, body any) *Res {
	t.Helper()
	return e.Do(t, Req{Method: http.MethodPost, Path: path, Token: token, Body: body})
}

// Patch is Do for a PATCH with a JSON body.
func (e *Env) Patch(t testing.TB, path, token string, body any) *Res {
	t.Helper()
	return e.Do(t, Req{Method: http.MethodPatch, Path: path, Token: token, Body: body})
}

// shortErr drops the schema and value dumps of a kin-openapi error.
func shortErr(err error) string {
	parts := strings.Split(err.Error(), " | ")
	for i, p := range parts {
		if j := strings.Index(p, "\nSchema:"); j >= 0 {
			parts[i] = p[:j]
		}
	}
	return strings.Join(parts, " | ")
}

func truncate(b []byte) string {
	const max = 600
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
