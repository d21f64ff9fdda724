package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections/readmodeltest"
	"github.com/prescripto/prescripto/workers/payments"
)

// The soak's child processes (see runChildRole) read these.
const (
	// soakRazorpayEnv is "keyID|keySecret|webhookSecret|baseURL" of the
	// Razorpay emulator the child's payments worker calls.
	soakRazorpayEnv = "PRESCRIPTO_TEST_CHILD_RAZORPAY"
	// soakNowEnv is the child's clock (RFC 3339): the api's test clock.
	soakNowEnv = "PRESCRIPTO_TEST_CHILD_NOW"
	// soakStatsEnv names a file the child rewrites every second with its
	// goroutine count and Go heap.
	soakStatsEnv = "PRESCRIPTO_TEST_CHILD_STATS"
)

// soakChild configures a child role process from the soak's variables.
func soakChild(ctx context.Context, o *app.Options) {
	if v := os.Getenv(soakRazorpayEnv); v != "" {
		if p := strings.Split(v, "|"); len(p) == 4 {
			o.Payments = app.PaymentOptions{
				KeyID: p[0], KeySecret: p[1], WebhookSecret: p[2], BaseURL: p[3],
				Timeout: 5 * time.Second, Worker: payments.Config{Tick: 100 * time.Millisecond},
			}
		}
	}
	if v := os.Getenv(soakNowEnv); v != "" {
		if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
			o.Now = func() time.Time { return at }
		}
	}
	if path := os.Getenv(soakStatsEnv); path != "" {
		go func() {
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				line := fmt.Sprintf("%d %d\n", runtime.NumGoroutine(), ms.HeapAlloc)
				if os.WriteFile(path+".tmp", []byte(line), 0o600) == nil {
					_ = os.Rename(path+".tmp", path)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}()
	}
}

// soakDuration is how long TestSoak loads the engine: PRESCRIPTO_SOAK
// (`make soak`: 1h), else 3 minutes in CI, else 30 s (skipped with -short).
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("PRESCRIPTO_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("PRESCRIPTO_SOAK=%q: want a duration of at least 10s", v)
		}
		return d
	}
	if os.Getenv("CI") != "" {
		return 3 * time.Minute
	}
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	return 30 * time.Second
}

// TestSoak runs mixed load (bookings, payments, cancellations,
// reschedules, reads) against the production wiring with the projector
// and the worker in processes of their own, SIGKILLed in turn every
// twelfth of the run and restarted. It reports, per window of a twelfth of
// the run, the latency percentiles of each kind of request, and over time
// the goroutines and heap of the api's process and of the children. It
// requires that every request is answered (no timeout, no 5xx other than
// a clean 503 while a read model is behind), that the api's process has
// as many goroutines after the load as before it, that every booking answered 201 is in the log and nothing else is
// booked there, that the payment provider made exactly the refunds the log
// records, and that the read models equal a fresh fold of the log.
//
// It does not run in parallel with the other tests of the package: their
// goroutines and load would be counted as its own.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	window := dur / 12
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true, ExternalProjector: true, ExternalWorker: true, MaxWait: 2 * time.Second})
	o := e.Options()
	statsDir := t.TempDir()
	env := []string{
		soakRazorpayEnv + "=" + strings.Join([]string{e.Razorpay.KeyID(), e.Razorpay.KeySecret(), e.Razorpay.WebhookSecret(), e.RazorpayURL()}, "|"),
		soakNowEnv + "=" + e.Clock.Now().Format(time.RFC3339Nano),
	}
	children := map[app.Role]*childProcess{}
	var childMu sync.Mutex
	start := func(role app.Role) {
		c := startChild(t, role, o, append(slices.Clone(env), soakStatsEnv+"="+filepath.Join(statsDir, string(role)))...)
		childMu.Lock()
		children[role] = c
		childMu.Unlock()
	}
	start(app.RoleProjector)
	start(app.RoleWorker)
	t.Cleanup(func() {
		childMu.Lock()
		defer childMu.Unlock()
		for _, c := range children {
			c.kill(t)
		}
	})

	// Six doctors on a 24-hour grid of 5-minute slots, 30 days ahead: one
	// takes payment before the visit (held until paid), one optionally.
	var doctors []string
	for i := range 6 {
		d := e.NewDoctor(t, fmt.Sprintf("Dr. Soak %d", i), []string{"Dermatologist", "Neurologist", "Cardiology"}[i%3])
		weekly := []map[string]any{}
		for wd := 1; wd <= 7; wd++ {
			weekly = append(weekly, map[string]any{"weekday": wd, "start": "00:00", "end": "24:00"})
		}
		policy := map[int]string{0: "required", 1: "optional"}[i]
		if policy == "" {
			policy = "none"
		}
		e.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + d.ID + "/schedule", Token: e.AdminToken, Body: map[string]any{
			"timezone": testenv.Zone, "slotMinutes": 5, "bookingWindowDays": 30, "minNoticeMinutes": 30,
			"paymentPolicy": policy, "holdMinutes": 60, "weekly": weekly,
		}}).Must(t, http.StatusOK)
		doctors = append(doctors, d.ID)
	}
	type patient struct{ id, token string }
	var patients []patient
	for i := range 20 {
		p := e.Register(t, fmt.Sprintf("Sam Soak %d", i))
		patients = append(patients, patient{p.User.ID, p.Token})
	}

	s := &soak{base: e.URL, began: time.Now(), window: window, client: &http.Client{Timeout: 10 * time.Second}}
	type booking struct{ id, token string }
	var (
		mu     sync.Mutex
		held   []booking // to pay
		active []booking // to cancel or reschedule
		acked  = map[string]bool{}
	)
	take := func(list *[]booking, r *rand.Rand) (booking, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(*list) == 0 {
			return booking{}, false
		}
		i := r.IntN(len(*list))
		b := (*list)[i]
		*list = slices.Delete(*list, i, i+1)
		return b, true
	}
	put := func(list *[]booking, b booking) {
		mu.Lock()
		*list = append(*list, b)
		mu.Unlock()
	}
	slot := func(r *rand.Rand) time.Time {
		return testenv.At(1+r.IntN(28), 0, 0).Add(time.Duration(r.IntN(288)) * 5 * time.Minute)
	}
	ops := func(r *rand.Rand) {
		switch n := r.IntN(100); {
		case n < 40: // book
			p := patients[r.IntN(len(patients))]
			d := r.IntN(len(doctors))
			status, body := s.do("book", http.MethodPost, "/appointments", p.token, map[string]string{"doctorId": doctors[d], "start": testenv.RFC3339(slot(r))}, 201, 409)
			if status != http.StatusCreated {
				return
			}
			var a struct{ ID string }
			if err := json.Unmarshal(body, &a); err != nil || a.ID == "" {
				s.fail(fmt.Errorf("book answered %s", body))
				return
			}
			mu.Lock()
			acked[a.ID] = true
			mu.Unlock()
			if d == 0 {
				put(&held, booking{a.ID, p.token})
			} else {
				put(&active, booking{a.ID, p.token})
			}
		case n < 50: // pay a held booking
			b, ok := take(&held, r)
			if !ok {
				return
			}
			status, body := s.do("pay", http.MethodPost, "/appointments/"+b.id+"/payment", b.token, nil, 200, 201, 503)
			var ord struct{ OrderID string }
			if status == http.StatusServiceUnavailable || json.Unmarshal(body, &ord) != nil || ord.OrderID == "" {
				put(&held, b) // not caught up yet: later
				return
			}
			c, err := e.Razorpay.Pay(ord.OrderID)
			if err != nil {
				s.fail(fmt.Errorf("pay %s: %w", ord.OrderID, err))
				return
			}
			if st, _ := s.do("verify", http.MethodPost, "/payments/razorpay/verify", b.token, map[string]string{
				"razorpay_order_id": c.OrderID, "razorpay_payment_id": c.PaymentID, "razorpay_signature": c.Signature,
			}, 200); st == http.StatusOK {
				put(&active, b)
			}
		case n < 60: // cancel
			b, ok := take(&active, r)
			if !ok {
				return
			}
			if st, _ := s.do("cancel", http.MethodPost, "/appointments/"+b.id+"/cancel", b.token, map[string]string{"reason": "soak"}, 200, 503); st == http.StatusServiceUnavailable {
				put(&active, b)
			}
		case n < 67: // reschedule
			b, ok := take(&active, r)
			if !ok {
				return
			}
			s.do("reschedule", http.MethodPost, "/appointments/"+b.id+"/reschedule", b.token, map[string]string{"start": testenv.RFC3339(slot(r))}, 200, 409, 503)
			put(&active, b)
		case n < 90: // free slots
			s.do("slots", http.MethodGet, "/doctors/"+doctors[r.IntN(len(doctors))]+"/slots?from="+testenv.Date(1+r.IntN(20))+"&days=7", "", nil, 200)
		default: // an appointment
			b, ok := take(&active, r)
			if !ok {
				return
			}
			s.do("get", http.MethodGet, "/appointments/"+b.id, b.token, nil, 200, 404, 503)
			put(&active, b)
		}
	}

	// The goroutines of this process (the api, the test's servers) before
	// the load, to compare with those after it.
	settle := func() int {
		time.Sleep(2 * time.Second)
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()

	// The load: PRESCRIPTO_SOAK_RATE requests a second (default 8), open
	// loop, for dur. The production wiring's read models on FerretDB apply
	// about a hundred events a second on this kind of machine (see
	// docs/performance.md): much above 8 requests a second the projector
	// falls behind for good and the soak measures FerretDB's backlog.
	rate := 8.0
	if v := os.Getenv("PRESCRIPTO_SOAK_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 1000 {
			t.Fatalf("PRESCRIPTO_SOAK_RATE=%q: want requests a second, (0, 1000]", v)
		}
		rate = r
	}
	stop := make(chan struct{})
	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		sem := make(chan struct{}, 64)
		var seq atomic.Uint64
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				s.dropped.Add(1) // 64 in flight: the machine is saturated
				continue
			}
			load.Add(1)
			go func() {
				defer load.Done()
				defer func() { <-sem }()
				n := seq.Add(1)
				ops(rand.New(rand.NewPCG(n, 1)))
			}()
		}
	}()

	// Every second: restart a child that exited on its own (as a
	// supervisor would: a role exits when a server does not answer at its
	// start); every window/3 a sample; every window a kill, projector and
	// worker in turn.
	exits := 0
	supervise := func() {
		childMu.Lock()
		var dead []app.Role
		for role, c := range children {
			select {
			case <-c.done:
				dead = append(dead, role)
				t.Logf("soak: the %s exited on its own after %v; restarting it. Its log ends:\n%s", role, time.Since(c.started).Round(time.Second), tail(c.stderr.String(), 800))
			default:
			}
		}
		childMu.Unlock()
		for _, role := range dead {
			exits++
			start(role)
		}
	}
	deadline := time.Now().Add(dur)
	nextSample, nextKill, kills := time.Now().Add(window/3), time.Now().Add(window), 0
	for time.Now().Before(deadline) {
		time.Sleep(min(time.Second, time.Until(deadline)))
		supervise()
		if time.Now().After(nextSample) {
			childMu.Lock()
			s.sample(statsDir, children)
			childMu.Unlock()
			nextSample = nextSample.Add(window / 3)
		}
		if time.Now().After(nextKill) && time.Until(deadline) > window/2 {
			role := []app.Role{app.RoleProjector, app.RoleWorker}[kills%2]
			childMu.Lock()
			children[role].kill(t)
			childMu.Unlock()
			kills++
			time.Sleep(time.Second)
			start(role)
			nextKill = nextKill.Add(window)
		}
	}
	close(stop)
	load.Wait()
	s.client.CloseIdleConnections()
	// Requests a client gave up on may still be running in the server:
	// give them a minute to end.
	after := settle()
	for end := time.Now().Add(time.Minute); after > before+before/10+10 && time.Now().Before(end); {
		after = settle()
	}
	s.report(t, kills)
	if after > before+before/10+10 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines of the api's process: %d before the load, %d a minute after it (leak):\n%s", before, after, tail(string(buf[:runtime.Stack(buf, true)]), 20000))
	}
	t.Logf("goroutines of the api's process: %d before the load, %d after it; children restarted after exiting on their own: %d", before, after, exits)
	supervise()

	// Convergence: the children catch up, the payments settle.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := e.App.CaughtUp(ctx); err != nil {
		t.Fatalf("the projector did not catch up after the soak: %v\nprojector log:\n%s", err, children[app.RoleProjector].stderr)
	}
	refunds := refundsInLog(t, e)
	for settle := time.Now().Add(time.Minute); e.Razorpay.RefundCount() != refunds && time.Now().Before(settle); {
		time.Sleep(100 * time.Millisecond)
		refunds = refundsInLog(t, e)
	}
	if n := e.Razorpay.RefundCount(); n != refunds {
		t.Errorf("the payment provider made %d refunds, the log records %d", n, refunds)
	}
	if err := e.App.CaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ids := slices.Sorted(maps.Keys(acked))
	mu.Unlock()
	what := fmt.Sprintf("after a %v soak, %d kills", dur, kills)
	checkAckedEqualsLog(t, what, e, ids)
	var pids []string
	for _, p := range patients {
		pids = append(pids, p.id)
	}
	checkMongoEqualsReplay(t, "MongoDB read models "+what, e, o.MongoURI, readmodeltest.Probe{
		DoctorIDs: doctors, PatientIDs: pids, AppointmentIDs: ids,
		From: doctor.DateOf(testenv.At(1, 12, 0).In(testenv.IST)), Days: 28, Now: e.Clock.Now(), PageSize: 200,
	})
	t.Logf("soak %v: %d bookings answered 201; %d refunds, as the log records", dur, len(ids), refunds)
}

// refundsInLog counts the refunds the log records as issued.
func refundsInLog(t *testing.T, e *testenv.Env) int {
	t.Helper()
	n := 0
	for _, ev := range logEvents(t, e) {
		if _, ok := ev.Data.(doctor.RefundIssued); ok {
			n++
		}
	}
	return n
}

// soak drives requests and keeps what it measured.
type soak struct {
	base   string
	client *http.Client
	began  time.Time
	window time.Duration

	dropped atomic.Int64 // arrivals not sent: 64 requests were in flight

	mu      sync.Mutex
	lat     map[string]map[int][]time.Duration // kind -> window -> latencies
	status  map[string]map[int]int             // "kind status" -> count
	errs    []error
	samples []soakSample
}

type soakSample struct {
	At         time.Duration
	Goroutines int
	HeapMB     float64
	Children   map[app.Role]childStats
}

type childStats struct {
	RSSMB      float64
	Goroutines int
	HeapMB     float64
	Age        time.Duration
}

// do sends one request and records its latency; a status outside ok, a
// timeout or a transport error is a failure of the soak.
func (s *soak) do(kind, method, path, token string, body any, ok ...int) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.fail(err)
		return 0, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	t0 := time.Now()
	res, err := s.client.Do(req)
	if err != nil {
		s.fail(fmt.Errorf("%s %s: %w", method, path, err))
		return 0, nil
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(t0)
	if err != nil {
		s.fail(fmt.Errorf("%s %s: %w", method, path, err))
		return 0, nil
	}
	w := int(t0.Sub(s.began) / s.window)
	s.mu.Lock()
	if s.lat == nil {
		s.lat, s.status = map[string]map[int][]time.Duration{}, map[string]map[int]int{}
	}
	if s.lat[kind] == nil {
		s.lat[kind] = map[int][]time.Duration{}
	}
	s.lat[kind][w] = append(s.lat[kind][w], took)
	k := kind + " " + strconv.Itoa(res.StatusCode)
	if s.status[k] == nil {
		s.status[k] = map[int]int{}
	}
	s.status[k][w]++
	s.mu.Unlock()
	if !slices.Contains(ok, res.StatusCode) {
		s.fail(fmt.Errorf("%s %s -> %d %s", method, path, res.StatusCode, data))
	}
	return res.StatusCode, data
}

func (s *soak) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 1000 {
		s.errs = append(s.errs, err)
	}
}

// sample records this process's goroutines and heap and each child's.
func (s *soak) sample(statsDir string, children map[app.Role]*childProcess) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sm := soakSample{At: time.Since(s.began), Goroutines: runtime.NumGoroutine(), HeapMB: float64(ms.HeapAlloc) / (1 << 20), Children: map[app.Role]childStats{}}
	for role, c := range children {
		st := childStats{Age: time.Since(c.started)}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid)); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					kb, _ := strconv.Atoi(strings.Fields(v)[0])
					st.RSSMB = float64(kb) / 1024
				}
			}
		}
		if b, err := os.ReadFile(filepath.Join(statsDir, string(role))); err == nil {
			var heap uint64
			fmt.Sscanf(string(b), "%d %d", &st.Goroutines, &heap)
			st.HeapMB = float64(heap) / (1 << 20)
		}
		sm.Children[role] = st
	}
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
}

// report logs (and with PRESCRIPTO_SOAK_REPORT writes as JSON) the
// windows' latencies and the samples, and fails the test on errors or on
// goroutines that grow.
func (s *soak) report(t *testing.T, kills int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	type windowRow struct {
		Window        int
		Kind          string
		N             int
		P50, P95, P99 time.Duration
		Statuses      map[string]int
	}
	var rows []windowRow
	var b strings.Builder
	fmt.Fprintf(&b, "latency per window of %v (ms: p50 p95 p99, count):\n", s.window)
	for _, kind := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.lat {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "  %-10s", kind)
		for w := range 13 {
			l := slices.Clone(s.lat[kind][w])
			if len(l) == 0 {
				continue
			}
			slices.Sort(l)
			q := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
			r := windowRow{Window: w, Kind: kind, N: len(l), P50: q(0.50), P95: q(0.95), P99: q(0.99), Statuses: map[string]int{}}
			for k, byW := range s.status {
				if strings.HasPrefix(k, kind+" ") && byW[w] > 0 {
					r.Statuses[strings.TrimPrefix(k, kind+" ")] = byW[w]
				}
			}
			rows = append(rows, r)
			fmt.Fprintf(&b, " | %.0f %.0f %.0f n=%d", ms(r.P50), ms(r.P95), ms(r.P99), r.N)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "samples (api process: goroutines, heap MB; children: RSS MB, goroutines, age):\n")
	for _, sm := range s.samples {
		fmt.Fprintf(&b, "  %6.0fs api %4d %6.1f", sm.At.Seconds(), sm.Goroutines, sm.HeapMB)
		for _, role := range []app.Role{app.RoleProjector, app.RoleWorker} {
			c := sm.Children[role]
			fmt.Fprintf(&b, " | %s %5.1f MB %3d gor %4.0fs", role, c.RSSMB, c.Goroutines, c.Age.Seconds())
		}
		b.WriteString("\n")
	}
	t.Logf("soak: %d kills, %d arrivals dropped (64 requests in flight)\n%s", kills, s.dropped.Load(), b.String())
	if path := os.Getenv("PRESCRIPTO_SOAK_REPORT"); path != "" {
		out, _ := json.MarshalIndent(map[string]any{"window": s.window.String(), "kills": kills, "dropped": s.dropped.Load(), "latency": rows, "samples": s.samples, "errors": len(s.errs)}, "", "  ")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Error(err)
		}
	}
	for i, err := range s.errs {
		if i == 10 {
			t.Errorf("... and %d more", len(s.errs)-10)
			break
		}
		t.Errorf("soak: %v", err)
	}
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
