// Command loadgen is Prescripto's open-model HTTP load generator.
//
// Arrivals follow a fixed schedule (request i is due at start + i/rate),
// independent of how fast the server answers: a slow answer does not delay
// the next request, and every latency is measured from the request's
// scheduled time, so queueing anywhere (in the generator, the network or the
// server) is counted instead of hidden (no coordinated omission). In-flight
// requests are capped; an arrival that finds the cap full is not sent and is
// reported as dropped, which means the target rate was not sustained.
//
// It talks to a running Prescripto on loopback only:
//
//	loadgen -base http://127.0.0.1:18080 -data ./data -scenarios book,slots,storm,lag
//
// Setup logs in as the admin (from -admin-email/-admin-password, or the
// data dir's demo-credentials file written by `prescripto serve --demo`),
// creates -doctors doctors open around the clock in 5-minute slots a year
// ahead (so bookings never run out) and registers -patients patients (run
// the server with AUTH_RATE_LIMIT raised and PRESCRIPTO_BCRYPT_COST=4).
//
// Scenarios:
//   - book:  POST /appointments at -book-rate for -book-duration, every
//     request a distinct doctor×slot pair spread over the created doctors;
//   - slots: GET /doctors/{id}/slots?days=N at -slots-rate for
//     -slots-duration over the demo doctors (or the created ones), after
//     the read models (not the notifications worker) have caught up with
//     the log; with -redis ADDR (the server's Redis), the Redis cache's
//     lookups, fills and hit ratio over the scenario, counted from the
//     deltas of Redis's INFO commandstats (see cacheStats);
//   - healthz: GET /healthz at -healthz-rate (default: -slots-rate) for
//     -healthz-duration (default: -slots-duration), the baseline of a
//     trivial handler behind the same middleware; with slots in the same
//     run, the report gives the ratio of their server CPU per request
//     ("slots-cpu": the aim is at most 2);
//   - storm: -storm requests released at once for one slot: exactly one 201,
//     the rest 409;
//   - lag:   append-to-visible: after a booking's 201, the time until the
//     slot is gone from the free-slots read model, and until GET
//     /appointments/{id} answers 200 (both without X-Min-Position),
//     optionally under background booking load (-lag-load-rate); it too
//     starts once the read models have caught up.
//
// The open-model scenarios (book, slots) also report latency per window of
// scheduled time (-window, 1 minute by default), so that a long run shows
// whether it degrades: book then has a "book-sustained" aim, its last
// window's p99 within 1.5x its first's.
//
// Each scenario also reports where the CPU went: the server (its
// process_cpu_seconds_total from /metrics), this generator, and the other
// processes of the machine (from /proc/stat), so a result on a shared
// machine can be read for what it is.
//
// Every loop is bounded in count and in time. The report is printed as text
// and, with -json FILE, written as JSON.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	base          string
	data          string
	adminEmail    string
	adminPassword string
	scenarios     string
	patients      int
	doctors       int
	maxInFlight   int
	timeout       time.Duration
	wait          time.Duration
	jsonOut       string
	window        time.Duration

	bookRate     float64
	bookDuration time.Duration

	slotsRate     float64
	slotsDuration time.Duration
	slotsDays     int
	slotsTarget   string
	redisAddr     string

	healthzRate     float64
	healthzDuration time.Duration

	storm int

	lagSamples      int
	lagLoadRate     float64
	lagPollInterval time.Duration
	lagMax          time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.base, "base", "http://127.0.0.1:8080", "base URL of a running Prescripto (loopback only)")
	flag.StringVar(&c.data, "data", "", "data dir of the server, to read demo-credentials for the admin login")
	flag.StringVar(&c.adminEmail, "admin-email", "", "admin email (default: from demo-credentials)")
	flag.StringVar(&c.adminPassword, "admin-password", "", "admin password (default: from demo-credentials)")
	flag.StringVar(&c.scenarios, "scenarios", "book,slots,storm,lag", "comma-separated scenarios: book, slots, healthz, storm, lag")
	flag.IntVar(&c.patients, "patients", 200, "patients to register")
	flag.IntVar(&c.doctors, "doctors", 50, "doctors to create (24 h, 5-minute slots, 365-day window)")
	flag.IntVar(&c.maxInFlight, "max-inflight", 512, "cap on requests in flight in the open-model scenarios")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.DurationVar(&c.wait, "wait", 60*time.Second, "how long to wait for /readyz")
	flag.StringVar(&c.jsonOut, "json", "", "also write the report as JSON to this file")
	flag.DurationVar(&c.window, "window", time.Minute, "open-model scenarios: also report latency per window of this length, by scheduled time (0: off)")
	flag.Float64Var(&c.bookRate, "book-rate", 2000, "book: arrivals per second")
	flag.DurationVar(&c.bookDuration, "book-duration", 10*time.Second, "book: duration")
	flag.Float64Var(&c.slotsRate, "slots-rate", 15000, "slots: arrivals per second")
	flag.DurationVar(&c.slotsDuration, "slots-duration", 10*time.Second, "slots: duration")
	flag.IntVar(&c.slotsDays, "slots-days", 7, "slots: days per read")
	flag.StringVar(&c.slotsTarget, "slots-doctors", "demo", "slots: read the demo doctors (demo) or the created ones (load)")
	flag.StringVar(&c.redisAddr, "redis", "", "slots: host:port (loopback) of the server's Redis, to measure the cache's hit ratio from INFO commandstats")
	flag.Float64Var(&c.healthzRate, "healthz-rate", 0, "healthz: arrivals per second (0: -slots-rate)")
	flag.DurationVar(&c.healthzDuration, "healthz-duration", 0, "healthz: duration (0: -slots-duration)")
	flag.IntVar(&c.storm, "storm", 1000, "storm: concurrent requests for one slot")
	flag.IntVar(&c.lagSamples, "lag-samples", 200, "lag: bookings to follow")
	flag.Float64Var(&c.lagLoadRate, "lag-load-rate", 0, "lag: background bookings per second while sampling (0: idle)")
	flag.DurationVar(&c.lagPollInterval, "lag-poll", 200*time.Microsecond, "lag: pause between polls of the slots read model")
	flag.DurationVar(&c.lagMax, "lag-max", 5*time.Second, "lag: give up following one booking after this long (counted at this value)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// ---- report ----

// Report is the whole run.
type Report struct {
	Base      string      `json:"base"`
	StartedAt time.Time   `json:"startedAt"`
	Setup     SetupReport `json:"setup"`
	Book      *OpenResult `json:"book,omitempty"`
	Slots     *OpenResult `json:"slots,omitempty"`
	Healthz   *OpenResult `json:"healthz,omitempty"`
	// SlotsOverHealthz is the slots read's server CPU per request over
	// healthz's, both measured in this run (0 when either is missing).
	SlotsOverHealthz float64           `json:"slotsOverHealthzServerCpu,omitempty"`
	Storm            *StormResult      `json:"storm,omitempty"`
	Lag              *LagResult        `json:"lag,omitempty"`
	Aims             map[string]string `json:"aims"`
}

// SetupReport tells what setup made.
type SetupReport struct {
	Doctors      int     `json:"doctors"`
	Patients     int     `json:"patients"`
	SlotDoctors  int     `json:"slotDoctors"`
	DoctorsSecs  float64 `json:"doctorsSeconds"`
	PatientsSecs float64 `json:"patientsSeconds"`
}

// Latency quantiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50Ms"`
	P90 float64 `json:"p90Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
	N   int     `json:"n"`
}

func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return Latency{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(s[len(s)-1]), N: len(s)}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

// CPU tells where the machine's CPU went during a scenario, in cores
// (CPU-seconds per second of wall time): the server (its
// process_cpu_seconds_total from /metrics), this generator, and everything
// else on the machine (from /proc/stat). On a shared machine "others" is
// the share this run did not get.
type CPU struct {
	ServerCores    float64 `json:"serverCores"`
	GeneratorCores float64 `json:"generatorCores"`
	OtherCores     float64 `json:"otherCores"`
	IdleCores      float64 `json:"idleCores"`
	ServerMsPerReq float64 `json:"serverCpuMsPerRequest"`
	GenMsPerReq    float64 `json:"generatorCpuMsPerRequest"`
}

// OpenResult is an open-model scenario's outcome.
type OpenResult struct {
	Name           string         `json:"name"`
	TargetRate     float64        `json:"targetRate"`
	DurationSecs   float64        `json:"durationSeconds"`
	Scheduled      int            `json:"scheduled"`
	Sent           int            `json:"sent"`
	Dropped        int            `json:"dropped"` // arrivals not sent: in-flight cap full
	Completed      int            `json:"completed"`
	TransportErrs  int            `json:"transportErrors"`
	Status         map[string]int `json:"status"`
	AchievedRate   float64        `json:"achievedRate"` // responses per second over the whole run
	SuccessRate    float64        `json:"successRate"`  // 2xx per second
	Latency        Latency        `json:"latency"`      // from scheduled time, every response
	DispatchLag    Latency        `json:"dispatchLag"`  // scheduled -> actually sent (generator lateness)
	MaxInFlight    int            `json:"maxInFlight"`
	CPU            *CPU           `json:"cpu,omitempty"`
	ProjLag        map[string]int `json:"projectionLagAtEnd,omitempty"` // behind the log's head when the scenario ended: events on SQLite, log positions on EventStoreDB
	SettleSecs     float64        `json:"settleSeconds,omitempty"`      // slots: wait for the read models before it
	Cache          *CacheStats    `json:"redisCache,omitempty"`         // slots with -redis
	FirstErr       string         `json:"firstError,omitempty"`
	FirstBadStatus string         `json:"firstBadStatus,omitempty"`
	// Windows splits the run by scheduled time (-window), so that a
	// degradation over a long run shows: the last window against the first.
	Windows []Window `json:"windows,omitempty"`
}

// Window is the part of an open-model run whose arrivals were scheduled in
// [FromSecs, ToSecs) after its start.
type Window struct {
	FromSecs  float64 `json:"fromSeconds"`
	ToSecs    float64 `json:"toSeconds"`
	Scheduled int     `json:"scheduled"`
	Dropped   int     `json:"dropped"`
	Completed int     `json:"completed"`
	OK        int     `json:"ok"` // 2xx
	Latency   Latency `json:"latency"`
}

// StormResult is the same-slot storm's outcome.
type StormResult struct {
	Requests  int            `json:"requests"`
	Status    map[string]int `json:"status"`
	Codes     map[string]int `json:"codes"`
	DrainMs   float64        `json:"drainMs"`
	Latency   Latency        `json:"latency"`
	CPU       *CPU           `json:"cpu,omitempty"`
	ExactlyOK bool           `json:"exactlyOneCreatedRestConflict"`
}

// LagResult is the append-to-visible outcome.
type LagResult struct {
	Samples         int         `json:"samples"`
	BackgroundRate  float64     `json:"backgroundRate"`
	BookLatency     Latency     `json:"bookLatency"`
	SlotGone        Latency     `json:"slotGone"`         // 201 -> slot absent from GET /doctors/{id}/slots
	AppointmentSeen Latency     `json:"appointmentSeen"`  // 201 -> GET /appointments/{id} answered 200
	TimeoutsGone    int         `json:"timeoutsSlotGone"` // counted in SlotGone at -lag-max
	TimeoutsSeen    int         `json:"timeoutsAppointmentSeen"`
	LagMaxMs        float64     `json:"lagMaxMs"`
	SettleSecs      float64     `json:"settleSeconds,omitempty"` // wait for the read models before it
	CPU             *CPU        `json:"cpu,omitempty"`
	Background      *OpenResult `json:"background,omitempty"`
}

// ---- HTTP ----

type client struct {
	base string
	hc   *http.Client
}

type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// do sends a request and reads the whole answer (so the connection is
// reused).
func (c *client) do(ctx context.Context, method, path, token string, body []byte, hdr map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, err
}

// doJSON sends v and decodes the answer into out when the status is want.
func (c *client) doJSON(ctx context.Context, method, path, token string, v any, want int, out any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return err
		}
	}
	st, b, err := c.do(ctx, method, path, token, body, nil)
	if err != nil {
		return err
	}
	if st != want {
		return &apiError{status: st, body: truncate(string(b), 300)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// loopbackOnly refuses a base URL whose host is not a loopback address.
func loopbackOnly(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("-base: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-base: want http(s)://127.0.0.1:PORT, got %q", base)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-base: %q is not a loopback address; this generator only targets 127.0.0.1/::1", host)
	}
	return nil
}

// ---- run ----

type patientLogin struct{ id, token string }

type state struct {
	c        config
	cl       *client
	admin    string
	doctors  []string // created doctors
	demo     []string // doctors that were there before (the demo catalogue)
	patients []patientLogin
	slot0    time.Time      // the first slot every created doctor offers us
	next     []atomic.Int64 // per created doctor: next slot index to hand out
	maxSlot  int64
}

const slotLen = 5 * time.Minute

// alloc hands out a slot of created doctor d that nobody used yet.
func (s *state) alloc(d int) (time.Time, error) {
	k := s.next[d].Add(1) - 1
	if k >= s.maxSlot {
		return time.Time{}, fmt.Errorf("doctor %d has no free slot left in its window", d)
	}
	return s.slot0.Add(time.Duration(k) * slotLen), nil
}

func run(c config) error {
	if err := loopbackOnly(c.base); err != nil {
		return err
	}
	if c.redisAddr != "" {
		if err := loopbackOnly("http://" + c.redisAddr); err != nil {
			return fmt.Errorf("-redis: %w", err)
		}
	}
	if c.patients < 1 || c.doctors < 1 || c.maxInFlight < 1 {
		return errors.New("-patients, -doctors and -max-inflight must be at least 1")
	}
	want := map[string]bool{}
	for _, s := range strings.Split(c.scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "book", "slots", "healthz", "storm", "lag":
			want[s] = true
		case "":
		default:
			return fmt.Errorf("-scenarios: unknown scenario %q", s)
		}
	}
	tr := &http.Transport{
		Proxy:               nil, // loopback: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: max(c.maxInFlight, c.storm) + 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	s := &state{c: c, cl: &client{base: strings.TrimRight(c.base, "/"), hc: &http.Client{Transport: tr, Timeout: c.timeout}}}
	rep := &Report{Base: c.base, StartedAt: time.Now().UTC(), Aims: map[string]string{}}

	ctx := context.Background()
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	if err := s.setup(ctx, &rep.Setup); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if want["book"] {
		a := s.sampleCPU(ctx)
		r, err := s.book(ctx, c.bookRate, c.bookDuration, "book")
		if err != nil {
			return err
		}
		r.CPU = cpuBetween(a, s.sampleCPU(ctx), r.Completed)
		r.ProjLag = s.projectionLag(ctx)
		rep.Book = r
		rep.Aims["book"] = aim(r, 2000, 20)
		if len(r.Windows) > 1 {
			rep.Aims["book-sustained"] = sustainedAim(r, 20, 1.5)
		}
	}
	if want["slots"] {
		settle, err := s.waitReadModels(ctx, 5*time.Minute)
		if err != nil {
			return err
		}
		var before map[string]int64
		if c.redisAddr != "" {
			if before, err = redisCounters(c.redisAddr); err != nil {
				return fmt.Errorf("-redis: %w", err)
			}
		}
		a := s.sampleCPU(ctx)
		r, err := s.slots(ctx)
		if err != nil {
			return err
		}
		r.CPU = cpuBetween(a, s.sampleCPU(ctx), r.Completed)
		r.SettleSecs = settle.Seconds()
		if c.redisAddr != "" {
			after, err := redisCounters(c.redisAddr)
			if err != nil {
				return fmt.Errorf("-redis: %w", err)
			}
			r.Cache = cacheStats(before, after, r.Completed)
		}
		r.ProjLag = s.projectionLag(ctx)
		rep.Slots = r
		rep.Aims["slots"] = aim(r, 15000, 5)
	}
	if want["healthz"] {
		rate, dur := c.healthzRate, c.healthzDuration
		if rate <= 0 {
			rate = c.slotsRate
		}
		if dur <= 0 {
			dur = c.slotsDuration
		}
		a := s.sampleCPU(ctx)
		r, err := s.healthz(ctx, rate, dur)
		if err != nil {
			return err
		}
		r.CPU = cpuBetween(a, s.sampleCPU(ctx), r.Completed)
		rep.Healthz = r
	}
	if rep.Slots != nil && rep.Healthz != nil && rep.Slots.CPU != nil && rep.Healthz.CPU != nil && rep.Healthz.CPU.ServerMsPerReq > 0 {
		ratio := rep.Slots.CPU.ServerMsPerReq / rep.Healthz.CPU.ServerMsPerReq
		rep.SlotsOverHealthz = ratio
		v := "NOT met"
		if ratio <= 2 {
			v = "met"
		}
		rep.Aims["slots-cpu"] = fmt.Sprintf("%s (aim: slots' server CPU per request <= 2x healthz's; got %.1f us / %.1f us = %.2fx)",
			v, rep.Slots.CPU.ServerMsPerReq*1000, rep.Healthz.CPU.ServerMsPerReq*1000, ratio)
	}
	if want["storm"] {
		a := s.sampleCPU(ctx)
		r, err := s.stormRun(ctx)
		if err != nil {
			return err
		}
		r.CPU = cpuBetween(a, s.sampleCPU(ctx), r.Requests)
		rep.Storm = r
		rep.Aims["storm"] = map[bool]string{true: "met: exactly one 201, the rest 409", false: "NOT met"}[r.ExactlyOK]
	}
	if want["lag"] {
		settle, err := s.waitReadModels(ctx, 5*time.Minute)
		if err != nil {
			return err
		}
		a := s.sampleCPU(ctx)
		r, err := s.lag(ctx)
		if err != nil {
			return err
		}
		r.CPU = cpuBetween(a, s.sampleCPU(ctx), 0)
		r.SettleSecs = settle.Seconds()
		rep.Lag = r
	}
	printReport(os.Stdout, rep)
	if c.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func aim(r *OpenResult, rate, p99 float64) string {
	// The rate is measured over the whole run including the last answers'
	// tail, so allow 1 % below the target.
	ok := r.SuccessRate >= 0.99*rate && r.Latency.P99 < p99 && r.Dropped == 0
	v := "NOT met"
	if ok {
		v = "met"
	}
	return fmt.Sprintf("%s (aim >= %.0f/s with p99 < %.0f ms; got %.0f/s ok, p99 %.2f ms, %d dropped)", v, rate, p99, r.SuccessRate, r.Latency.P99, r.Dropped)
}

// sustainedAim: over a long run at the target rate, p99 below p99 ms overall,
// nothing dropped, and the last window's p99 within ratio times the first's.
func sustainedAim(r *OpenResult, p99, ratio float64) string {
	first, last := r.Windows[0].Latency.P99, r.Windows[len(r.Windows)-1].Latency.P99
	got := math.Inf(1)
	if first > 0 {
		got = last / first
	}
	ok := r.Latency.P99 < p99 && r.Dropped == 0 && got <= ratio && r.SuccessRate >= 0.99*r.TargetRate
	v := "NOT met"
	if ok {
		v = "met"
	}
	return fmt.Sprintf("%s (aim at %.0f/s: p99 < %.0f ms, none dropped, last window's p99 <= %.1fx the first's; got %.0f/s ok, p99 %.2f ms, %d dropped, p99 first %.2f ms, last %.2f ms: %.2fx)",
		v, r.TargetRate, p99, ratio, r.SuccessRate, r.Latency.P99, r.Dropped, first, last, got)
}

func (s *state) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(s.c.wait)
	var last string
	for time.Now().Before(deadline) {
		st, b, err := s.cl.do(ctx, http.MethodGet, "/readyz", "", nil, nil)
		if err == nil && st == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %s %v", st, truncate(string(b), 200), err)
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s/readyz did not answer 200 within %v (last: %s)", s.c.base, s.c.wait, last)
}

func (s *state) credentials() (string, string, error) {
	email, pw := s.c.adminEmail, s.c.adminPassword
	if email != "" && pw != "" {
		return email, pw, nil
	}
	if s.c.data == "" {
		return "", "", errors.New("no admin login: give -admin-email and -admin-password, or -data with a demo-credentials file")
	}
	b, err := os.ReadFile(filepath.Join(s.c.data, "demo-credentials"))
	if err != nil {
		return "", "", fmt.Errorf("admin login: %w (start the server with --demo, or give -admin-email/-admin-password)", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "admin_email":
			if email == "" {
				email = v
			}
		case "admin_password":
			if pw == "" {
				pw = v
			}
		}
	}
	if email == "" || pw == "" {
		return "", "", errors.New("demo-credentials has no admin_email/admin_password")
	}
	return email, pw, nil
}

type authResp struct {
	Token string `json:"token"`
	User  struct {
		ID string `json:"id"`
	} `json:"user"`
}

type weekly struct {
	Weekday int    `json:"weekday"`
	Start   string `json:"start"`
	End     string `json:"end"`
}

type scheduleReq struct {
	Timezone          string   `json:"timezone"`
	SlotMinutes       int      `json:"slotMinutes"`
	BookingWindowDays int      `json:"bookingWindowDays"`
	MinNoticeMinutes  int      `json:"minNoticeMinutes"`
	PaymentPolicy     string   `json:"paymentPolicy"`
	HoldMinutes       int      `json:"holdMinutes"`
	Weekly            []weekly `json:"weekly"`
}

type doctorReq struct {
	Name            string       `json:"name"`
	Email           string       `json:"email"`
	Password        string       `json:"password"`
	Speciality      string       `json:"speciality"`
	Degree          string       `json:"degree"`
	ExperienceYears int          `json:"experienceYears"`
	About           string       `json:"about"`
	Fees            int64        `json:"fees"`
	Currency        string       `json:"currency"`
	Address         string       `json:"address"`
	Timezone        string       `json:"timezone"`
	Schedule        *scheduleReq `json:"schedule"`
}

type idPos struct {
	ID       string `json:"id"`
	Position uint64 `json:"position"`
}

// parallel runs f(0..n-1) on `workers` goroutines and returns the first
// error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop handing out work
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func (s *state) setup(ctx context.Context, out *SetupReport) error {
	email, pw, err := s.credentials()
	if err != nil {
		return err
	}
	var login authResp
	if err := s.cl.doJSON(ctx, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": pw}, http.StatusOK, &login); err != nil {
		return fmt.Errorf("admin login as %s: %w", email, err)
	}
	s.admin = login.Token

	// The demo catalogue must be in the directory before it is listed:
	// read models on a server (MongoDB) may still be applying the seed.
	if _, err := s.waitReadModels(ctx, s.c.wait); err != nil {
		return err
	}
	var before struct {
		Doctors []struct {
			ID string `json:"id"`
		} `json:"doctors"`
	}
	if err := s.cl.doJSON(ctx, http.MethodGet, "/api/v1/doctors", "", nil, http.StatusOK, &before); err != nil {
		return fmt.Errorf("list doctors: %w", err)
	}
	for _, d := range before.Doctors {
		s.demo = append(s.demo, d.ID)
	}

	runID := fmt.Sprintf("%x", time.Now().UnixNano())
	sched := &scheduleReq{Timezone: "UTC", SlotMinutes: 5, BookingWindowDays: 365, PaymentPolicy: "none"}
	for wd := 1; wd <= 7; wd++ {
		sched.Weekly = append(sched.Weekly, weekly{wd, "00:00", "24:00"})
	}
	now := time.Now().UTC()
	// First slot: an hour from now, on the 5-minute grid. Last: well inside
	// the 365-day window (the window ends on the date 365 days after today).
	s.slot0 = now.Truncate(slotLen).Add(time.Hour)
	s.maxSlot = int64((364 * 24 * time.Hour) / slotLen)
	s.doctors = make([]string, s.c.doctors)
	s.next = make([]atomic.Int64, s.c.doctors)
	var maxPos atomic.Uint64
	t := time.Now()
	err = parallel(s.c.doctors, 8, func(i int) error {
		var res idPos
		req := doctorReq{
			Name: fmt.Sprintf("Dr. Load %s-%03d", runID, i), Email: fmt.Sprintf("load-%s-d%03d@load.example", runID, i), Password: "load-pass-" + runID,
			Speciality: "General physician", Degree: "MBBS", ExperienceYears: 5, About: "Created by the load generator.",
			Fees: 50000, Currency: "INR", Address: "127.0.0.1", Timezone: "UTC", Schedule: sched,
		}
		if err := s.cl.doJSON(ctx, http.MethodPost, "/api/v1/admin/doctors", s.admin, req, http.StatusCreated, &res); err != nil {
			return fmt.Errorf("create doctor %d: %w", i, err)
		}
		s.doctors[i] = res.ID
		for p := maxPos.Load(); res.Position > p && !maxPos.CompareAndSwap(p, res.Position); p = maxPos.Load() {
		}
		return nil
	})
	if err != nil {
		return err
	}
	out.DoctorsSecs = time.Since(t).Seconds()
	out.Doctors = len(s.doctors)

	s.patients = make([]patientLogin, s.c.patients)
	t = time.Now()
	err = parallel(s.c.patients, 16, func(i int) error {
		var res authResp
		req := map[string]string{"name": fmt.Sprintf("Load Patient %d", i), "email": fmt.Sprintf("load-%s-p%05d@load.example", runID, i), "password": "load-pass-" + runID}
		if err := s.cl.doJSON(ctx, http.MethodPost, "/api/v1/auth/register", "", req, http.StatusCreated, &res); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusTooManyRequests {
				return fmt.Errorf("register patient %d: rate limited: start the server with AUTH_RATE_LIMIT raised (e.g. 1000000): %w", i, err)
			}
			return fmt.Errorf("register patient %d: %w", i, err)
		}
		s.patients[i] = patientLogin{id: res.User.ID, token: res.Token}
		return nil
	})
	if err != nil {
		return err
	}
	out.PatientsSecs = time.Since(t).Seconds()
	out.Patients = len(s.patients)

	// The read side must know the new doctors before anyone reads their
	// slots: wait (bounded by -wait) for the directory to reach the last
	// creation. The server waits up to 2 s per request and then answers 503
	// not_caught_up; read models on a server (MongoDB) can need longer.
	t = time.Now()
	for {
		st, b, err := s.cl.do(ctx, http.MethodGet, "/api/v1/doctors?q=Load", "", nil, map[string]string{"X-Min-Position": fmt.Sprint(maxPos.Load())})
		if err == nil && st == http.StatusOK {
			break
		}
		if (err == nil && st != http.StatusServiceUnavailable) || time.Since(t) > s.c.wait {
			return fmt.Errorf("directory did not catch up with the created doctors: %d %s %v", st, truncate(string(b), 200), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out.SlotDoctors = len(s.slotDoctors())
	return nil
}

func (s *state) slotDoctors() []string {
	if s.c.slotsTarget == "demo" && len(s.demo) > 0 {
		return s.demo
	}
	return s.doctors
}

// ---- open-model engine ----

// request is one prepared call: it returns the HTTP status (0 on a
// transport error).
type request func(ctx context.Context) (int, error)

// runOpen schedules n = rate×dur arrivals at start + i/rate and sends
// prepare(i) for each, never waiting for answers before sending the next.
//
// Requests are prepared one by one as they fall due (not all before the
// run), so a long run (10 minutes at 4,000/s: 2.4 million arrivals) does not
// hold millions of prepared requests; preparing one costs a microsecond or
// two of the dispatch loop, which the dispatch lag would show.
func runOpen(ctx context.Context, name string, rate float64, dur, window time.Duration, maxInFlight int, timeout time.Duration, prepare func(i int) (request, error)) (*OpenResult, error) {
	n := int(rate * dur.Seconds())
	if n < 1 {
		return nil, fmt.Errorf("%s: rate×duration is below one request", name)
	}
	lat := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	status := make([]int, n)
	sent := make([]bool, n)
	var errCount atomic.Int64
	var firstErr atomic.Value
	var inflight, peak atomic.Int64
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	// A hard end: the schedule plus one request timeout and a margin.
	hard := dur + timeout + 5*time.Second
	rctx, cancel := context.WithTimeout(ctx, hard)
	defer cancel()
	period := float64(time.Second) / rate
	start := time.Now().Add(20 * time.Millisecond)
	dropped := 0
	var prepErr error
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(float64(i) * period))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if rctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			dropped++
			continue
		}
		req, err := prepare(i)
		if err != nil {
			<-sem
			prepErr = fmt.Errorf("%s: prepare request %d: %w", name, i, err)
			break
		}
		sent[i] = true
		if v := inflight.Add(1); v > peak.Load() {
			peak.Store(v) // approximate peak: racing stores only lose ties
		}
		wg.Go(func() {
			defer func() { inflight.Add(-1); <-sem }()
			lag[i] = time.Since(at)
			st, err := req(rctx)
			lat[i] = time.Since(at)
			status[i] = st
			if err != nil {
				errCount.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	wg.Wait()
	if prepErr != nil {
		return nil, prepErr
	}
	end := time.Now()
	r := &OpenResult{Name: name, TargetRate: rate, DurationSecs: dur.Seconds(), Scheduled: n, Dropped: dropped, Status: map[string]int{}, MaxInFlight: int(peak.Load())}
	var all, allLag []time.Duration
	ok := 0
	for i := range n {
		if !sent[i] {
			continue
		}
		r.Sent++
		allLag = append(allLag, lag[i])
		if status[i] == 0 {
			continue
		}
		r.Completed++
		all = append(all, lat[i])
		r.Status[fmt.Sprint(status[i])]++
		if status[i] >= 200 && status[i] < 300 {
			ok++
		}
	}
	r.TransportErrs = int(errCount.Load())
	if v, _ := firstErr.Load().(string); v != "" {
		r.FirstErr = v
	}
	elapsed := end.Sub(start).Seconds()
	r.AchievedRate = float64(r.Completed) / elapsed
	r.SuccessRate = float64(ok) / elapsed
	r.Latency = latencyOf(all)
	r.DispatchLag = latencyOf(allLag)
	r.Windows = windows(n, period, window, sent, status, lat)
	return r, nil
}

// windows splits arrivals 0..n-1 (arrival i scheduled at i×period after the
// start) into windows of length w by scheduled time and reports each: what
// was scheduled, dropped and answered, and the latency of the answers. A
// last window shorter than half of w is merged into the one before, so
// that no window's p99 rests on a handful of arrivals.
func windows(n int, period float64, w time.Duration, sent []bool, status []int, lat []time.Duration) []Window {
	if w <= 0 || n == 0 {
		return nil
	}
	total := time.Duration(float64(n) * period)
	if total <= w {
		return nil // one window: the whole run says it
	}
	var bounds []time.Duration // window starts
	for t := time.Duration(0); t < total; t += w {
		bounds = append(bounds, t)
	}
	if k := len(bounds); k > 1 && total-bounds[k-1] < w/2 {
		bounds = bounds[:k-1]
	}
	out := make([]Window, len(bounds))
	lats := make([][]time.Duration, len(bounds))
	for i := range out {
		out[i].FromSecs = bounds[i].Seconds()
		out[i].ToSecs = total.Seconds()
		if i+1 < len(bounds) {
			out[i].ToSecs = bounds[i+1].Seconds()
		}
	}
	for i := range n {
		k := min(int(float64(i)*period/float64(w)), len(out)-1)
		o := &out[k]
		o.Scheduled++
		switch {
		case !sent[i]:
			o.Dropped++
		case status[i] != 0:
			o.Completed++
			if status[i] >= 200 && status[i] < 300 {
				o.OK++
			}
			lats[k] = append(lats[k], lat[i])
		}
	}
	for k := range out {
		out[k].Latency = latencyOf(lats[k])
	}
	return out
}

// ---- scenarios ----

type bookReq struct {
	DoctorID string `json:"doctorId"`
	Start    string `json:"start"`
}

// bookRequest prepares a booking of a fresh slot of created doctor d by
// patient p; bad holds the first non-2xx answer seen.
func (s *state) bookRequest(d, p int, bad *atomic.Value) (request, error) {
	start, err := s.alloc(d)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(bookReq{DoctorID: s.doctors[d], Start: start.Format(time.RFC3339)})
	if err != nil {
		return nil, err
	}
	token := s.patients[p].token
	return func(ctx context.Context) (int, error) {
		st, b, err := s.cl.do(ctx, http.MethodPost, "/api/v1/appointments", token, body, nil)
		if err == nil && st != http.StatusCreated && bad != nil {
			bad.CompareAndSwap(nil, fmt.Sprintf("%d %s", st, truncate(string(b), 300)))
		}
		return st, err
	}, nil
}

func (s *state) book(ctx context.Context, rate float64, dur time.Duration, name string) (*OpenResult, error) {
	// Requests are prepared as they fall due: check the slots suffice first.
	if need := int64(rate*dur.Seconds())/int64(len(s.doctors)) + 1; need+s.next[0].Load() > s.maxSlot {
		return nil, fmt.Errorf("%s: %d bookings per doctor do not fit in a doctor's %d slots: add doctors (-doctors)", name, need, s.maxSlot)
	}
	var bad atomic.Value
	r, err := runOpen(ctx, name, rate, dur, s.c.window, s.c.maxInFlight, s.c.timeout, func(i int) (request, error) {
		return s.bookRequest(i%len(s.doctors), i%len(s.patients), &bad)
	})
	if r != nil {
		r.FirstBadStatus, _ = bad.Load().(string)
	}
	return r, err
}

func (s *state) slots(ctx context.Context) (*OpenResult, error) {
	ids := s.slotDoctors()
	paths := make([]string, len(ids))
	for i, id := range ids {
		paths[i] = fmt.Sprintf("/api/v1/doctors/%s/slots?days=%d", id, s.c.slotsDays)
	}
	return s.getOpen(ctx, "slots", s.c.slotsRate, s.c.slotsDuration, func(i int) string { return paths[i%len(paths)] })
}

func (s *state) stormRun(ctx context.Context) (*StormResult, error) {
	n := s.c.storm
	start, err := s.alloc(0)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(bookReq{DoctorID: s.doctors[0], Start: start.Format(time.RFC3339)})
	if err != nil {
		return nil, err
	}
	// Open the connections first, so the storm measures booking rather
	// than 1,000 TCP handshakes.
	_ = parallel(n, n, func(int) error {
		_, _, _ = s.cl.do(ctx, http.MethodGet, "/healthz", "", nil, nil)
		return nil
	})
	sctx, cancel := context.WithTimeout(ctx, s.c.timeout+5*time.Second)
	defer cancel()
	status := make([]int, n)
	codes := make([]string, n)
	lat := make([]time.Duration, n)
	gate := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			token := s.patients[i%len(s.patients)].token
			ready.Done()
			<-gate
			t := time.Now()
			st, b, err := s.cl.do(sctx, http.MethodPost, "/api/v1/appointments", token, body, nil)
			lat[i] = time.Since(t)
			if err != nil {
				codes[i] = "transport: " + truncate(err.Error(), 80)
				return
			}
			status[i] = st
			var p struct {
				Code string `json:"code"`
			}
			if json.Unmarshal(b, &p) == nil {
				codes[i] = p.Code
			}
		})
	}
	ready.Wait()
	t := time.Now()
	close(gate)
	done.Wait()
	r := &StormResult{Requests: n, Status: map[string]int{}, Codes: map[string]int{}, DrainMs: ms(time.Since(t)), Latency: latencyOf(lat)}
	for i := range n {
		r.Status[fmt.Sprint(status[i])]++
		if codes[i] != "" {
			r.Codes[codes[i]]++
		}
	}
	r.ExactlyOK = r.Status["201"] == 1 && r.Status["409"] == n-1
	return r, nil
}

func (s *state) lag(ctx context.Context) (*LagResult, error) {
	r := &LagResult{BackgroundRate: s.c.lagLoadRate, LagMaxMs: ms(s.c.lagMax)}
	var bgRes *OpenResult
	var bgErr error
	bgDone := make(chan struct{})
	if s.c.lagLoadRate > 0 {
		// Background bookings on the same doctors; samples are taken while
		// it runs (and stop when it ends).
		go func() {
			defer close(bgDone)
			bgRes, bgErr = s.book(ctx, s.c.lagLoadRate, s.c.bookDuration, "lag-background")
		}()
		time.Sleep(time.Second) // let it reach its rate
	} else {
		close(bgDone)
	}
	running := func() bool {
		if s.c.lagLoadRate <= 0 {
			return true
		}
		select {
		case <-bgDone:
			return false
		default:
			return true
		}
	}
	var book, gone, seen []time.Duration
	deadline := time.Now().Add(s.c.bookDuration + 30*time.Second)
	for i := 0; i < s.c.lagSamples && time.Now().Before(deadline) && running(); i++ {
		d := i % len(s.doctors)
		p := s.patients[i%len(s.patients)]
		start, err := s.alloc(d)
		if err != nil {
			return nil, err
		}
		body, _ := json.Marshal(bookReq{DoctorID: s.doctors[d], Start: start.Format(time.RFC3339)})
		t0 := time.Now()
		st, b, err := s.cl.do(ctx, http.MethodPost, "/api/v1/appointments", p.token, body, nil)
		if err != nil || st != http.StatusCreated {
			return nil, fmt.Errorf("lag: booking: %d %s %v", st, truncate(string(b), 200), err)
		}
		t201 := time.Now()
		book = append(book, t201.Sub(t0))
		var appt idPos
		if err := json.Unmarshal(b, &appt); err != nil {
			return nil, err
		}
		var w sync.WaitGroup
		var goneAt, seenAt time.Duration
		var goneOK, seenOK bool
		w.Go(func() { goneAt, goneOK = s.pollSlotGone(ctx, s.doctors[d], start, t201) })
		w.Go(func() { seenAt, seenOK = s.pollAppointment(ctx, appt.ID, p.token, t201) })
		w.Wait()
		if !goneOK {
			r.TimeoutsGone++
			goneAt = s.c.lagMax
		}
		if !seenOK {
			r.TimeoutsSeen++
			seenAt = s.c.lagMax
		}
		gone, seen = append(gone, goneAt), append(seen, seenAt)
	}
	<-bgDone
	if bgErr != nil {
		return nil, bgErr
	}
	if bgRes != nil {
		bgRes.ProjLag = s.projectionLag(ctx)
	}
	r.Background = bgRes
	r.Samples = len(book)
	r.BookLatency, r.SlotGone, r.AppointmentSeen = latencyOf(book), latencyOf(gone), latencyOf(seen)
	return r, nil
}

// pollAppointment asks for the appointment (without X-Min-Position) until it
// answers 200, for at most -lag-max. The server itself waits, bounded, for
// its read model on a miss, so one request usually suffices.
func (s *state) pollAppointment(ctx context.Context, id, token string, since time.Time) (time.Duration, bool) {
	limit := since.Add(s.c.lagMax)
	for polls := 0; polls < 10_000 && time.Now().Before(limit); polls++ {
		st, _, err := s.cl.do(ctx, http.MethodGet, "/api/v1/appointments/"+id, token, nil, nil)
		if err == nil && st == http.StatusOK {
			return time.Since(since), true
		}
		if s.c.lagPollInterval > 0 {
			time.Sleep(s.c.lagPollInterval)
		}
	}
	return 0, false
}

// pollSlotGone reads the doctor's free slots of the slot's date until the
// slot is gone, for at most -lag-max (and 10,000 polls). The time it returns is
// an upper bound of the lag: the read that first missed the slot.
func (s *state) pollSlotGone(ctx context.Context, doctorID string, start, since time.Time) (time.Duration, bool) {
	path := fmt.Sprintf("/api/v1/doctors/%s/slots?from=%s&days=1", doctorID, start.Format("2006-01-02"))
	needle := []byte(`"start":"` + start.Format(time.RFC3339) + `"`)
	limit := since.Add(s.c.lagMax)
	for polls := 0; polls < 10_000 && time.Now().Before(limit); polls++ {
		st, b, err := s.cl.do(ctx, http.MethodGet, path, "", nil, nil)
		if err == nil && st == http.StatusOK && !bytes.Contains(b, needle) {
			return time.Since(since), true
		}
		if s.c.lagPollInterval > 0 {
			time.Sleep(s.c.lagPollInterval)
		}
	}
	return 0, false
}

// projectionLag asks /admin/projections how far each projection and worker
// is behind the log's head (in events) right now.
func (s *state) projectionLag(ctx context.Context) map[string]int {
	var out struct {
		Projections []struct {
			Name string `json:"name"`
			Lag  int    `json:"lag"`
		} `json:"projections"`
	}
	if err := s.cl.doJSON(ctx, http.MethodGet, "/api/v1/admin/projections", s.admin, nil, http.StatusOK, &out); err != nil {
		return nil
	}
	m := map[string]int{}
	for _, p := range out.Projections {
		m[p.Name] = p.Lag
	}
	return m
}

// healthz sends GET /healthz at rate for dur: the cost of a trivial
// handler behind the whole middleware chain, the baseline for slots.
func (s *state) healthz(ctx context.Context, rate float64, dur time.Duration) (*OpenResult, error) {
	return s.getOpen(ctx, "healthz", rate, dur, func(int) string { return "/healthz" })
}

// getOpen runs an open-model scenario of GETs of path(i), each expected to
// answer 200; the report keeps the first other answer.
func (s *state) getOpen(ctx context.Context, name string, rate float64, dur time.Duration, path func(i int) string) (*OpenResult, error) {
	var bad atomic.Value
	r, err := runOpen(ctx, name, rate, dur, s.c.window, s.c.maxInFlight, s.c.timeout, func(i int) (request, error) {
		p := path(i)
		return func(ctx context.Context) (int, error) {
			st, b, err := s.cl.do(ctx, http.MethodGet, p, "", nil, nil)
			if err == nil && st != http.StatusOK {
				bad.CompareAndSwap(nil, fmt.Sprintf("%d %s", st, truncate(string(b), 300)))
			}
			return st, err
		}, nil
	})
	if r != nil {
		r.FirstBadStatus, _ = bad.Load().(string)
	}
	return r, err
}

// ---- CPU accounting ----

type cpuSample struct {
	at            time.Time
	server, self  float64 // CPU seconds
	busy, total   float64 // machine, seconds summed over CPUs
	serverOK, sys bool
}

// sampleCPU reads the server's process CPU from /metrics, this process's
// from /proc/self/stat and the machine's from /proc/stat (Linux; missing
// parts are left out of the report).
func (s *state) sampleCPU(ctx context.Context) cpuSample {
	c := cpuSample{at: time.Now()}
	if st, b, err := s.cl.do(ctx, http.MethodGet, "/metrics", "", nil, nil); err == nil && st == http.StatusOK {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
				if _, err := fmt.Sscan(v, &c.server); err == nil {
					c.serverOK = true
				}
			}
		}
	}
	const hz = 100 // USER_HZ on Linux
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// Fields after the command name (which may hold spaces) start at
		// state; utime and stime are the 12th and 13th of those.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				var u, k float64
				fmt.Sscan(f[11], &u)
				fmt.Sscan(f[12], &k)
				c.self = (u + k) / hz
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) > 5 && f[0] == "cpu" {
			var vals []float64
			for _, x := range f[1:] {
				var v float64
				fmt.Sscan(x, &v)
				vals = append(vals, v)
			}
			for i, v := range vals {
				if i == 7 { // steal is not ours to use; guest times are already in user
					break
				}
				c.total += v / hz
				if i != 3 && i != 4 { // idle, iowait
					c.busy += v / hz
				}
			}
			c.sys = true
		}
	}
	return c
}

func cpuBetween(a, b cpuSample, requests int) *CPU {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 || !a.serverOK || !b.serverOK {
		return nil
	}
	c := &CPU{ServerCores: (b.server - a.server) / wall, GeneratorCores: (b.self - a.self) / wall}
	if requests > 0 {
		c.ServerMsPerReq = (b.server - a.server) * 1000 / float64(requests)
		c.GenMsPerReq = (b.self - a.self) * 1000 / float64(requests)
	}
	if a.sys && b.sys {
		busy := (b.busy - a.busy) / wall
		c.IdleCores = ((b.total - a.total) - (b.busy - a.busy)) / wall
		c.OtherCores = max(0, busy-c.ServerCores-c.GeneratorCores)
	}
	return c
}

// ---- printing ----

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "Prescripto load report: %s at %s\n", r.Base, r.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "setup: %d doctors in %.1fs, %d patients in %.1fs, %d doctors for slot reads\n",
		r.Setup.Doctors, r.Setup.DoctorsSecs, r.Setup.Patients, r.Setup.PatientsSecs, r.Setup.SlotDoctors)
	for _, o := range []*OpenResult{r.Book, r.Slots, r.Healthz} {
		if o != nil {
			printOpen(w, o)
		}
	}
	if r.SlotsOverHealthz > 0 {
		fmt.Fprintf(w, "\nserver CPU per request, slots / healthz: %.3f ms / %.3f ms = %.2fx\n",
			r.Slots.CPU.ServerMsPerReq, r.Healthz.CPU.ServerMsPerReq, r.SlotsOverHealthz)
	}
	if s := r.Storm; s != nil {
		fmt.Fprintf(w, "\n[storm] %d requests for one slot, released at once\n", s.Requests)
		fmt.Fprintf(w, "  status %v  codes %v\n", sortedMap(s.Status), sortedMap(s.Codes))
		fmt.Fprintf(w, "  drain %.1f ms; latency p50 %.2f  p99 %.2f  max %.2f ms\n", s.DrainMs, s.Latency.P50, s.Latency.P99, s.Latency.Max)
		fmt.Fprintf(w, "  exactly one 201 and the rest 409: %v\n", s.ExactlyOK)
		printCPU(w, s.CPU)
	}
	if l := r.Lag; l != nil {
		fmt.Fprintf(w, "\n[lag] append-to-visible over %d bookings (background load %.0f/s); not visible within %.0f ms (counted at that value): slots %d, appointment %d\n",
			l.Samples, l.BackgroundRate, l.LagMaxMs, l.TimeoutsGone, l.TimeoutsSeen)
		fmt.Fprintf(w, "  booking 201            p50 %7.2f  p99 %7.2f  max %7.2f ms\n", l.BookLatency.P50, l.BookLatency.P99, l.BookLatency.Max)
		fmt.Fprintf(w, "  slot gone from slots   p50 %7.2f  p99 %7.2f  max %7.2f ms (upper bound: first read that missed it)\n", l.SlotGone.P50, l.SlotGone.P99, l.SlotGone.Max)
		fmt.Fprintf(w, "  GET appointment 200    p50 %7.2f  p99 %7.2f  max %7.2f ms (includes one round trip)\n", l.AppointmentSeen.P50, l.AppointmentSeen.P99, l.AppointmentSeen.Max)
		printCPU(w, l.CPU)
		if l.SettleSecs > 0.05 {
			fmt.Fprintf(w, "  waited %.1fs for the read models to catch up before the scenario\n", l.SettleSecs)
		}
		if l.Background != nil {
			printOpen(w, l.Background)
		}
	}
	if len(r.Aims) > 0 {
		fmt.Fprintln(w, "\naims:")
		for _, k := range slices.Sorted(maps.Keys(r.Aims)) {
			fmt.Fprintf(w, "  %-9s %s\n", k, r.Aims[k])
		}
	}
}

func printOpen(w io.Writer, o *OpenResult) {
	fmt.Fprintf(w, "\n[%s] open model: target %.0f/s for %.0fs (%d scheduled)\n", o.Name, o.TargetRate, o.DurationSecs, o.Scheduled)
	fmt.Fprintf(w, "  sent %d, dropped %d (in-flight cap), completed %d, transport errors %d, peak in flight %d\n", o.Sent, o.Dropped, o.Completed, o.TransportErrs, o.MaxInFlight)
	fmt.Fprintf(w, "  achieved %.0f responses/s, %.0f successes/s; status %v\n", o.AchievedRate, o.SuccessRate, sortedMap(o.Status))
	fmt.Fprintf(w, "  latency from scheduled time: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms\n", o.Latency.P50, o.Latency.P90, o.Latency.P99, o.Latency.Max)
	fmt.Fprintf(w, "  generator dispatch lag:      p50 %.2f  p99 %.2f  max %.2f ms\n", o.DispatchLag.P50, o.DispatchLag.P99, o.DispatchLag.Max)
	printCPU(w, o.CPU)
	if k := o.Cache; k != nil {
		fmt.Fprintf(w, "  redis cache (INFO commandstats deltas): %d lookups for %d responses, %d hits, %d fills (misses): hit ratio %.4f; invalidations %d, failed calls %d\n",
			k.Lookups, o.Completed, k.Hits, k.Fills, k.HitRatio, k.Invalidations, k.FailedCalls)
		fmt.Fprintf(w, "  redis keyspace: hits %d, misses %d (key-level, not the cache's ratio: see cacheStats)\n", k.KeyspaceHits, k.KeyspaceMisses)
	}
	if o.SettleSecs > 0.05 {
		fmt.Fprintf(w, "  waited %.1fs for the read models to catch up before the scenario\n", o.SettleSecs)
	}
	if len(o.ProjLag) > 0 {
		fmt.Fprintf(w, "  behind the log at the end (events; log positions on EventStoreDB): %v\n", sortedMap(o.ProjLag))
	}
	if len(o.Windows) > 0 {
		fmt.Fprintf(w, "  per window of scheduled time (latency from scheduled time, ms):\n")
		fmt.Fprintf(w, "    %-13s %9s %8s %9s %8s %8s %8s %9s\n", "window", "scheduled", "dropped", "completed", "p50", "p90", "p99", "max")
		for _, x := range o.Windows {
			fmt.Fprintf(w, "    %-13s %9d %8d %9d %8.2f %8.2f %8.2f %9.2f\n", fmt.Sprintf("%.0f-%.0f s", x.FromSecs, x.ToSecs), x.Scheduled, x.Dropped, x.Completed, x.Latency.P50, x.Latency.P90, x.Latency.P99, x.Latency.Max)
		}
		first, last := o.Windows[0], o.Windows[len(o.Windows)-1]
		if first.Latency.P99 > 0 {
			fmt.Fprintf(w, "  p99 last window / first window: %.2f\n", last.Latency.P99/first.Latency.P99)
		}
	}
	if o.FirstErr != "" {
		fmt.Fprintf(w, "  first transport error: %s\n", o.FirstErr)
	}
	if o.FirstBadStatus != "" {
		fmt.Fprintf(w, "  first unexpected answer: %s\n", o.FirstBadStatus)
	}
}

func printCPU(w io.Writer, c *CPU) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "  cpu (cores): server %.2f, generator %.2f, other processes %.2f, idle %.2f", c.ServerCores, c.GeneratorCores, c.OtherCores, c.IdleCores)
	if c.ServerMsPerReq > 0 {
		fmt.Fprintf(w, "; per request: server %.3f ms, generator %.3f ms", c.ServerMsPerReq, c.GenMsPerReq)
	}
	fmt.Fprintln(w)
}

func sortedMap(m map[string]int) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", k, m[k])
	}
	return "{" + b.String() + "}"
}

// ---- read-model settling and the Redis cache's counters ----

// waitReadModels waits, at most limit, until every projection except the
// side-effect workers (notifications) is level with the log's head, so that
// a read scenario measures reads rather than reads racing a backlog.
func (s *state) waitReadModels(ctx context.Context, limit time.Duration) (time.Duration, error) {
	t := time.Now()
	for {
		lag := s.projectionLag(ctx)
		if lag == nil { // cannot tell (no admin view): do not wait
			return time.Since(t), nil
		}
		behind := 0
		for name, n := range lag {
			if name != "notifications" {
				behind += n
			}
		}
		if behind == 0 {
			return time.Since(t), nil
		}
		if time.Since(t) > limit {
			return time.Since(t), fmt.Errorf("read models still behind after %v: %v", limit, lag)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CacheStats is what the Redis cache (projections/rediscache) did during a
// scenario, from the deltas of Redis's INFO commandstats. Redis counts the
// commands a Lua script calls under their own names, so the cache's
// scripts can be told apart:
//
//   - lookup (every read of a profile or of free slots that is not joined
//     to a flight already in progress): HGET gen, HMGET value;
//   - store (after every miss that went to the backing read model): HGET,
//     HMGET, and when stored DEL, HSET, PEXPIRE;
//   - invalidation bump (per doctor event): HGET, HSET, maybe DEL, PEXPIRE;
//     its checkpoint script (per event): GET, maybe SET.
//
// Fills = PEXPIRE - GET (stores that wrote; a store refused because an
// invalidation raced it writes nothing and is counted as a lookup);
// lookups = HMGET - fills; hits = lookups - fills. The /auth rate limiter
// also uses PEXPIRE: do not log in during the scenario. A slots request
// makes two lookups (the doctor's profile and the free slots), so lookups
// are about twice the responses; concurrent misses of one key in one
// process share one flight, which can make them fewer.
type CacheStats struct {
	Lookups        int64            `json:"lookups"`
	Hits           int64            `json:"hits"`
	Fills          int64            `json:"fills"`
	HitRatio       float64          `json:"hitRatio"`
	Invalidations  int64            `json:"invalidationEvents"` // checkpoint-script runs (GET)
	FailedCalls    int64            `json:"failedCalls"`        // of the commands above
	KeyspaceHits   int64            `json:"keyspaceHits"`
	KeyspaceMisses int64            `json:"keyspaceMisses"`
	Deltas         map[string]int64 `json:"deltas"`
	Responses      int              `json:"responses"`
}

func cacheStats(a, b map[string]int64, responses int) *CacheStats {
	d := map[string]int64{}
	for k, v := range b {
		if v-a[k] != 0 {
			d[k] = v - a[k]
		}
	}
	c := &CacheStats{Deltas: d, Responses: responses, Invalidations: d["get"],
		KeyspaceHits: d["keyspace_hits"], KeyspaceMisses: d["keyspace_misses"]}
	c.Fills = max(0, d["pexpire"]-d["get"])
	c.Lookups = max(0, d["hmget"]-c.Fills)
	c.Hits = max(0, c.Lookups-c.Fills)
	if c.Lookups > 0 {
		c.HitRatio = math.Round(float64(c.Hits)/float64(c.Lookups)*1e4) / 1e4
	}
	for _, k := range []string{"evalsha", "eval", "hget", "hmget", "hset", "del", "pexpire"} {
		c.FailedCalls += d["failed:"+k] // evalsha: NOSCRIPT once per script, then EVAL
	}
	return c
}

// redisCounters reads INFO commandstats and INFO stats from the Redis at
// addr: calls per command (lower case), "failed:<command>" for failed and
// rejected calls, keyspace_hits and keyspace_misses. It speaks RESP itself
// to keep the generator free of a client library.
func redisCounters(addr string) (map[string]int64, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	out := map[string]int64{}
	for _, section := range []string{"commandstats", "stats"} {
		if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n", len(section), section); err != nil {
			return nil, err
		}
		head, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		var n int
		if !strings.HasPrefix(head, "$") {
			return nil, fmt.Errorf("INFO %s: %q", section, strings.TrimSpace(head))
		}
		if _, err := fmt.Sscan(strings.TrimSpace(head[1:]), &n); err != nil || n < 0 {
			return nil, fmt.Errorf("INFO %s: bad length %q", section, head)
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(body[:n]), "\n") {
			line = strings.TrimSpace(line)
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if cmd, ok := strings.CutPrefix(k, "cmdstat_"); ok {
				// calls=N,usec=...,rejected_calls=N,failed_calls=N
				for _, f := range strings.Split(v, ",") {
					fk, fv, _ := strings.Cut(f, "=")
					var x int64
					fmt.Sscan(fv, &x)
					switch fk {
					case "calls":
						out[cmd] = x
					case "rejected_calls", "failed_calls":
						out["failed:"+cmd] += x
					}
				}
				continue
			}
			if k == "keyspace_hits" || k == "keyspace_misses" {
				var x int64
				fmt.Sscan(v, &x)
				out[k] = x
			}
		}
	}
	return out, nil
}
