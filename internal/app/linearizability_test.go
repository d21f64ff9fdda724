package app_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"

	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/faultproxy"
	"github.com/prescripto/prescripto/internal/testenv"
)

// Linearizability of the booking commands, checked with porcupine on
// histories recorded over HTTP: many patients book, cancel and reschedule
// over a handful of one doctor's slots through TWO api processes on the
// same servers (the production wiring behind faultproxies), some
// histories with network faults injected. Each history is one partition:
// its slots start free and nothing else touches them.
//
// The model (linModel): a slot is free or held by one appointment. A
// booking succeeds only on a free slot; a 409 slot_unavailable is a valid
// answer only while it is held; a cancellation frees it; a reschedule
// moves the appointment to a free slot (409 when the new one is held). A
// 503 or no answer is an unknown outcome: the operation returns "at the
// end of time" and may or may not have taken effect.
//
// Reads through X-Min-Position must observe their own writes: after a 201
// with position p, the slot is not free in a read that waited for p.
//
// Every third wave runs under a network fault on all three proxies, and
// every third wave (others) with the projector process SIGKILLed and
// restarted in its middle.

const linSlots = 4

type linInput struct {
	Op     string // book, cancel, reschedule
	Slot   int    // book
	To     int    // reschedule
	Appt   string // cancel, reschedule
	Key    string // names an unknown booking's appointment in the model
	Client int
}

type linOutput struct {
	Result string // ok, taken, unknown, patient (refused by the patient's own rules)
	Appt   string // the booked appointment (book ok)
}

// linState: the appointment holding each slot ("" free; "?key" an
// appointment of a booking whose outcome is unknown).
type linState [linSlots]string

func (s linState) holding(appt string) int {
	for i, a := range s {
		if a == appt {
			return i
		}
	}
	return -1
}

var linModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{linState{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.Op {
		case "book":
			switch out.Result {
			case "ok":
				if s[in.Slot] == "" && s.holding(out.Appt) < 0 {
					s[in.Slot] = out.Appt
					return []any{s}
				}
			case "taken":
				if s[in.Slot] != "" {
					return []any{s}
				}
			case "patient":
				return []any{s}
			case "unknown":
				next := []any{s}
				if s[in.Slot] == "" {
					n := s
					n[in.Slot] = "?" + in.Key
					next = append(next, n)
				}
				return next
			}
		case "cancel":
			i := s.holding(in.Appt)
			switch out.Result {
			case "ok":
				if i >= 0 {
					s[i] = ""
					return []any{s}
				}
			case "unknown":
				next := []any{s}
				if i >= 0 {
					n := s
					n[i] = ""
					next = append(next, n)
				}
				return next
			}
		case "reschedule":
			i := s.holding(in.Appt)
			switch out.Result {
			case "ok":
				if i >= 0 && s[in.To] == "" {
					s[i], s[in.To] = "", in.Appt
					return []any{s}
				}
			case "taken":
				if i >= 0 && s[in.To] != "" {
					return []any{s}
				}
			case "patient":
				return []any{s}
			case "unknown":
				next := []any{s}
				if i >= 0 && s[in.To] == "" {
					n := s
					n[i], n[in.To] = "", in.Appt
					next = append(next, n)
				}
				return next
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch in.Op {
		case "book":
			return fmt.Sprintf("c%d book(%d) -> %s %s", in.Client, in.Slot, out.Result, short(out.Appt))
		case "cancel":
			return fmt.Sprintf("c%d cancel(%s) -> %s", in.Client, short(in.Appt), out.Result)
		default:
			return fmt.Sprintf("c%d reschedule(%s, %d) -> %s", in.Client, short(in.Appt), in.To, out.Result)
		}
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		parts := make([]string, len(s))
		for i, a := range s {
			parts[i] = fmt.Sprintf("%d:%s", i, short(a))
			if a == "" {
				parts[i] = fmt.Sprintf("%d:free", i)
			}
		}
		return strings.Join(parts, " ")
	},
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// linUnknownReturn is the return time of an operation whose outcome is
// unknown: after every other event of the history.
const linUnknownReturn = int64(1) << 62

// linReadFor bounds how long a client keeps asking to read its own write
// while the read answers 503 not_caught_up.
const linReadFor = 15 * time.Second

// TestLinearizabilityChecker: the checker and the model catch a violation:
// two bookings of one free slot that both succeed one after the other.
func TestLinearizabilityChecker(t *testing.T) {
	t.Parallel()
	m := linModel.ToModel()
	legal := []porcupine.Operation{
		{ClientId: 0, Input: linInput{Op: "book", Slot: 0}, Call: 0, Output: linOutput{Result: "ok", Appt: "a"}, Return: 10},
		{ClientId: 1, Input: linInput{Op: "book", Slot: 0}, Call: 20, Output: linOutput{Result: "taken"}, Return: 30},
		{ClientId: 0, Input: linInput{Op: "reschedule", Appt: "a", To: 1}, Call: 40, Output: linOutput{Result: "ok"}, Return: 50},
		{ClientId: 1, Input: linInput{Op: "book", Slot: 0}, Call: 60, Output: linOutput{Result: "ok", Appt: "b"}, Return: 70},
		{ClientId: 2, Input: linInput{Op: "book", Slot: 1, Key: "k"}, Call: 65, Output: linOutput{Result: "unknown"}, Return: linUnknownReturn},
		{ClientId: 0, Input: linInput{Op: "cancel", Appt: "a"}, Call: 80, Output: linOutput{Result: "ok"}, Return: 90},
	}
	if res, _ := porcupine.CheckOperationsVerbose(m, legal, 0); res != porcupine.Ok {
		t.Fatalf("a legal history: %s", res)
	}
	cases := map[string][]porcupine.Operation{
		"double booking": {
			{ClientId: 0, Input: linInput{Op: "book", Slot: 0}, Call: 0, Output: linOutput{Result: "ok", Appt: "a"}, Return: 10},
			{ClientId: 1, Input: linInput{Op: "book", Slot: 0}, Call: 20, Output: linOutput{Result: "ok", Appt: "b"}, Return: 30},
		},
		"taken while free": {
			{ClientId: 1, Input: linInput{Op: "book", Slot: 2}, Call: 0, Output: linOutput{Result: "taken"}, Return: 10},
		},
		"stale refusal after a cancel": {
			{ClientId: 0, Input: linInput{Op: "book", Slot: 0}, Call: 0, Output: linOutput{Result: "ok", Appt: "a"}, Return: 10},
			{ClientId: 0, Input: linInput{Op: "cancel", Appt: "a"}, Call: 20, Output: linOutput{Result: "ok"}, Return: 30},
			{ClientId: 1, Input: linInput{Op: "book", Slot: 0}, Call: 40, Output: linOutput{Result: "taken"}, Return: 50},
		},
		"reschedule onto a held slot": {
			{ClientId: 0, Input: linInput{Op: "book", Slot: 0}, Call: 0, Output: linOutput{Result: "ok", Appt: "a"}, Return: 10},
			{ClientId: 1, Input: linInput{Op: "book", Slot: 1}, Call: 0, Output: linOutput{Result: "ok", Appt: "b"}, Return: 10},
			{ClientId: 0, Input: linInput{Op: "reschedule", Appt: "a", To: 1}, Call: 20, Output: linOutput{Result: "ok"}, Return: 30},
		},
	}
	for name, h := range cases {
		res, info := porcupine.CheckOperationsVerbose(m, h, 0)
		if res != porcupine.Illegal {
			t.Errorf("%s: %s, want Illegal", name, res)
			continue
		}
		// The visualisation of a failure is what a developer reads.
		path := filepath.Join(t.TempDir(), "history.html")
		if err := porcupine.VisualizePath(m, info, path); err != nil {
			t.Errorf("%s: visualisation: %v", name, err)
		}
	}
}

// linClient sends one history's requests.
type linClient struct {
	http *http.Client
}

type linAnswer struct {
	status   int
	code     string
	appt     string
	position uint64
	err      error
}

func (c *linClient) do(method, url, token string, body any, minPos uint64) linAnswer {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if minPos != 0 {
		req.Header.Set("X-Min-Position", fmt.Sprint(minPos))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return linAnswer{err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return linAnswer{status: res.StatusCode, err: err}
	}
	a := linAnswer{status: res.StatusCode}
	var v struct {
		ID       string `json:"id"`
		Position uint64 `json:"position"`
		Code     string `json:"code"`
	}
	_ = json.Unmarshal(data, &v)
	a.appt, a.position, a.code = v.ID, v.Position, v.Code
	if res.StatusCode >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		a.err = fmt.Errorf("%d without problem+json: %s", res.StatusCode, data)
	}
	return a
}

// TestLinearizability: see the top of this file. PRESCRIPTO_LIN_HISTORIES
// sets the number of histories (default 100; make proof runs more).
//
// Not parallel, for the same reason as TestProductionNetworkFaults.
func TestLinearizability(t *testing.T) {
	histories := faultEnvInt(t, "PRESCRIPTO_LIN_HISTORIES", 100)
	const (
		lanes      = 10 // histories run at once, each on its own doctor
		clients    = 6  // patients per history
		opsPerUser = 4
	)
	rig := startFaultRig(t)
	e := testenv.Start(t, testenv.Options{
		Production: true, Roles: true, ExternalProjector: true, ESDBURL: rig.esdbURL, MongoURI: rig.mongoURI, RedisURL: rig.redisURL,
		MaxWait: 2 * time.Second, RequestTimeout: faultRequestTimeout,
	})
	// The projector is a process of its own (behind the proxies too), so
	// that it can be SIGKILLed in the middle of a wave.
	proj := startChild(t, app.RoleProjector, e.Options())
	t.Cleanup(func() { proj.kill(t) })
	apis := []*testenv.Env{e, e.StartAPIReplica(t)}
	// Wave w runs its lanes' histories at once, lane l on doctor
	// l + lanes*(w/perDoctor), on the slots of block w%perDoctor (5 blocks
	// of linSlots a day), so a patient (one lane's) never holds two
	// appointments at the same time.
	const perDoctor = 125 // 25 days of the 30-day window
	waves := (histories + lanes - 1) / lanes
	doctors := lanes * ((waves + perDoctor - 1) / perDoctor)
	docs := make([]testenv.DoctorLogin, doctors)
	for i := range docs {
		docs[i] = e.NewDoctor(t, fmt.Sprintf("Dr. Linear %d", i), "General physician")
	}
	patients := make([]testenv.AuthResult, lanes*clients)
	for i := range patients {
		patients[i] = e.Register(t, fmt.Sprintf("Linear Patient %d", i))
	}
	e.CaughtUp(t)
	client := &linClient{http: &http.Client{Timeout: faultClientTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}

	var (
		ops, unknowns, illegal, readChecks, readVerified atomic.Int64
		faulted, killed                                  atomic.Int64
		codesMu                                          sync.Mutex
		unknownCodes                                     = map[string]int{}
	)
	faults := []func(p *faultproxy.Proxy){
		func(p *faultproxy.Proxy) { p.SetLatency(500 * time.Millisecond) },
		func(p *faultproxy.Proxy) { p.ResetAll() },
		func(p *faultproxy.Proxy) { p.SetBlackout(true) },
		func(p *faultproxy.Proxy) { p.SetHalfOpen(faultproxy.Downstream) },
	}
	runHistory := func(h, lane int, doc testenv.DoctorLogin, day, block int) {
		slotAt := func(i int) time.Time {
			return testenv.At(day, 10, 0).Add(time.Duration(block*linSlots+i) * 30 * time.Minute)
		}
		base := time.Now()
		var mu sync.Mutex
		var history []porcupine.Operation
		record := func(op porcupine.Operation) {
			mu.Lock()
			history = append(history, op)
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(h), uint64(c)))
				p := patients[lane*clients+c]
				type holding struct {
					appt string
					slot int
				}
				var held []holding // appointments of this client known to be held
				for range opsPerUser {
					api := apis[rng.IntN(len(apis))]
					var in linInput
					switch r := rng.IntN(10); {
					case len(held) == 0 || r < 4:
						in = linInput{Op: "book", Slot: rng.IntN(linSlots), Key: uuid.NewString()}
					case r < 7:
						in = linInput{Op: "cancel", Appt: held[0].appt}
					default:
						// Another slot than its own.
						in = linInput{Op: "reschedule", Appt: held[0].appt, To: (held[0].slot + 1 + rng.IntN(linSlots-1)) % linSlots}
					}
					in.Client = c
					call := time.Since(base).Nanoseconds()
					var a linAnswer
					switch in.Op {
					case "book":
						a = client.do(http.MethodPost, api.URL+"/appointments", p.Token, map[string]string{"doctorId": doc.ID, "start": testenv.RFC3339(slotAt(in.Slot))}, 0)
					case "cancel":
						a = client.do(http.MethodPost, api.URL+"/appointments/"+in.Appt+"/cancel", p.Token, map[string]string{"reason": "linearizability"}, 0)
					case "reschedule":
						a = client.do(http.MethodPost, api.URL+"/appointments/"+in.Appt+"/reschedule", p.Token, map[string]string{"start": testenv.RFC3339(slotAt(in.To))}, 0)
					}
					ret := time.Since(base).Nanoseconds()
					out := linOutput{}
					okStatus := http.StatusOK
					if in.Op == "book" {
						okStatus = http.StatusCreated
					}
					switch {
					case a.err == nil && a.status == okStatus:
						out.Result = "ok"
						if in.Op == "book" {
							out.Appt = a.appt
						}
					case a.err == nil && a.status == http.StatusConflict && a.code == "slot_unavailable" && in.Op != "cancel":
						out.Result = "taken"
					case a.err == nil && a.status == http.StatusConflict && a.code == "overlapping_appointment" && in.Op != "cancel":
						// The patient's ledger holds that time: a booking of it
						// whose answer was lost (503) took effect, or one whose
						// doctor's append has an unknown outcome and that the
						// ledger keeps for its grace period although the
						// doctor's stream never took it (commands/reserve_slot.go:
						// only a refusal releases it at once). Either way it is
						// the patient's rule, not the slot's state: the answer
						// says nothing about the slot.
						out.Result = "patient"
					case a.status == http.StatusServiceUnavailable || a.status == 0:
						out.Result, ret = "unknown", linUnknownReturn
						unknowns.Add(1)
						codesMu.Lock()
						unknownCodes[in.Op+":"+cmp.Or(a.code, "no answer")]++
						codesMu.Unlock()
					default:
						t.Errorf("history %d: %+v: %d %s %v", h, in, a.status, a.code, a.err)
						out.Result, ret = "unknown", linUnknownReturn
					}
					record(porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
					ops.Add(1)
					// Keep what this client holds: an unknown outcome on its
					// appointment means it no longer uses it.
					switch {
					case in.Op == "book" && out.Result == "ok":
						held = append(held, holding{out.Appt, in.Slot})
					case in.Op == "cancel", in.Op == "reschedule" && out.Result == "unknown":
						held = held[1:]
					case in.Op == "reschedule" && out.Result == "ok":
						held[0].slot = in.To
					}
					// Read your own write, through the other api process.
					if in.Op == "book" && out.Result == "ok" {
						other := apis[0]
						if other == api {
							other = apis[1]
						}
						// A read that cannot wait long enough answers 503
						// not_caught_up (a slow projector): ask again, up to
						// linReadFor; the first 200 must show the slot taken.
						readChecks.Add(1)
						deadline := time.Now().Add(linReadFor)
						for {
							free, status := slotsFree(t, other, doc.ID, day, a.position, client)
							if status == http.StatusOK {
								readVerified.Add(1)
								if free[slotAt(in.Slot).Unix()] {
									t.Errorf("history %d: appointment %s booked at position %d, yet a read that waited for it lists slot %d free", h, out.Appt, a.position, in.Slot)
								}
								break
							}
							if status != http.StatusServiceUnavailable && status != 0 {
								t.Errorf("history %d: read after a booking: %d", h, status)
								break
							}
							if time.Now().After(deadline) {
								break
							}
						}
					}
				}
			})
		}
		wg.Wait()
		res, info := porcupine.CheckOperationsVerbose(linModel.ToModel(), history, time.Minute)
		if res != porcupine.Ok {
			illegal.Add(1)
			dir, err := os.MkdirTemp("", "prescripto-linearizability-")
			if err == nil {
				path := filepath.Join(dir, fmt.Sprintf("history-%d.html", h))
				if err := porcupine.VisualizePath(linModel.ToModel(), info, path); err == nil {
					t.Errorf("history %d (%d operations) is %s: visualisation at %s", h, len(history), res, path)
					return
				}
			}
			t.Errorf("history %d (%d operations) is %s", h, len(history), res)
		}
	}

	start := time.Now()
	for wave := 0; wave*lanes < histories; wave++ {
		// Every third wave runs under a fault, applied a little after the
		// histories start and healed before they end.
		stop := make(chan struct{})
		var faultDone sync.WaitGroup
		if wave%3 == 2 {
			f := faults[(wave/3)%len(faults)]
			faulted.Add(int64(min(lanes, histories-wave*lanes)))
			faultDone.Go(func() {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				for _, p := range rig.all() {
					f(p)
				}
				select {
				case <-stop:
				case <-time.After(2 * time.Second):
				}
				for _, p := range rig.all() {
					p.Heal()
				}
			})
		}
		var lanesDone sync.WaitGroup
		for lane := range lanes {
			h := wave*lanes + lane
			if h >= histories {
				break
			}
			n := wave % perDoctor
			lanesDone.Go(func() {
				runHistory(h, lane, docs[lane+lanes*(wave/perDoctor)], 1+n/5, n%5)
			})
		}
		if wave%3 == 1 {
			// Every third wave (between the faulted ones) SIGKILLs the
			// projector a little after its histories start and starts
			// another a second later: reads of own writes wait for it.
			// (Here, not on a goroutine: kill and startChild may fail t.)
			killed.Add(int64(min(lanes, histories-wave*lanes)))
			time.Sleep(300 * time.Millisecond)
			proj.kill(t)
			time.Sleep(time.Second)
			proj = startChild(t, app.RoleProjector, e.Options())
		}
		lanesDone.Wait()
		close(stop)
		faultDone.Wait()
		if done := min((wave+1)*lanes, histories); wave%5 == 4 {
			t.Logf("%d histories checked in %v", done, time.Since(start).Round(time.Second))
		}
		if t.Failed() {
			break
		}
	}
	codesMu.Lock()
	t.Logf("%d histories (%d under network faults, %d with the projector killed), %d operations (%d of unknown outcome: %v), %d not linearizable; %d reads of own writes, %d answered 200 within %v and checked, in %v",
		histories, faulted.Load(), killed.Load(), ops.Load(), unknowns.Load(), unknownCodes, illegal.Load(), readChecks.Load(), readVerified.Load(), linReadFor, time.Since(start).Round(time.Millisecond))
	codesMu.Unlock()
	if readChecks.Load() > 0 && readVerified.Load() == 0 {
		t.Errorf("no read of an own write answered 200 within %v: the read-your-writes check proved nothing", linReadFor)
	}
}

// slotsFree reads the free slots of one day after minPos and returns them
// by start (Unix seconds) with the answer's status (0: no answer).
func slotsFree(t *testing.T, api *testenv.Env, doctorID string, day int, minPos uint64, c *linClient) (map[int64]bool, int) {
	q := url.Values{"from": {testenv.Date(day)}, "days": {"1"}}
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/doctors/"+doctorID+"/slots?"+q.Encode(), nil)
	req.Header.Set("X-Min-Position", fmt.Sprint(minPos))
	res, err := c.http.Do(req)
	if err != nil {
		return nil, 0
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, res.StatusCode
	}
	var s testenv.Slots
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Errorf("slots answer: %v", err)
		return nil, 0
	}
	out := map[int64]bool{}
	for _, st := range s.All() {
		out[st.Unix()] = true
	}
	return out, res.StatusCode
}
