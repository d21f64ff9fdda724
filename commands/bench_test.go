//go:build unix

package commands_test

// Benchmarks of the command path on the durable embedded store (a SQLite
// file under b.TempDir(), WAL, synchronous=FULL: every commit is fsynced).
//
// Each benchmark builds its fixture once in the parent and measures in a
// sub-benchmark, so the rounds the testing package runs to size b.N share
// one store, and slots consumed by one round are never offered to the next.
//
//	go test -run '^$' -bench . -benchtime=2s ./commands/
//
// PRESCRIPTO_BENCH_CHAIN=1 runs the command benchmarks through the hash
// chain (eventstore/chain), each Handler with a decorator of its own as
// each process of the production wiring has; unset, on the bare store.
//
// Custom metrics: bookings/s (achieved throughput over the measured phase),
// p50-ms / p99-ms (per-booking latency as the client sees it), retries/op
// (version-conflict retries seen by a commands.Observer), cpu-us/op (CPU
// time of the whole process per booking, user+system, from getrusage: on a
// shared machine it tells the cost apart from the share of the CPU the
// benchmark happened to get; 2 cores / cpu-us/op is the CPU-bound ceiling),
// appends/commit (how many appends the store's group commit put in one
// transaction, i.e. one fsync).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/chain"
	"github.com/prescripto/prescripto/eventstore/snapshot"
	"github.com/prescripto/prescripto/eventstore/sqlite"
)

// benchSchedule is open around the clock in 5-minute slots, bookable a
// year ahead: 288 slots a day, about 105,000 per doctor.
func benchSchedule() *doctor.Schedule {
	s := &doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 5, BookingWindowDays: doctor.MaxBookingWindowDays, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:00", End: "24:00"})
	}
	return s
}

// benchDoctor registers a doctor with benchSchedule.
func (e *env) benchDoctor(b testing.TB, name string) commands.DoctorResult {
	b.Helper()
	res, err := e.h.RegisterDoctor(context.Background(), admin, commands.RegisterDoctor{
		Profile: doctor.Profile{Name: name, Speciality: "General physician", Degree: "MBBS", Fees: 50000, Currency: "INR", Available: true},
		Email:   name + "@bench.example", Password: "s3cret-pass", Schedule: benchSchedule(),
	})
	if err != nil {
		b.Fatalf("register doctor %s: %v", name, err)
	}
	return res
}

// benchSlots lists every bookable slot of benchSchedule seen from t0 (the
// fake clock stays there while bookings are measured), in order.
func benchSlots(b testing.TB) []time.Time {
	b.Helper()
	return benchSlotsFrom(b, t0)
}

// benchSlotsFrom lists every slot of benchSchedule bookable at now.
func benchSlotsFrom(b testing.TB, now time.Time) []time.Time {
	b.Helper()
	g, err := benchSchedule().Compile()
	if err != nil {
		b.Fatal(err)
	}
	var out []time.Time
	last := g.LastBookableDate(now)
	for day := g.DateIn(now); !last.Before(day); day = day.AddDays(1) {
		for _, s := range g.Slots(day) {
			if s.Start.After(now) {
				out = append(out, s.Start)
			}
		}
	}
	return out
}

// counter is a commands.Observer that counts.
type counter struct{ conflicts, retries atomic.Int64 }

func (c *counter) Conflict(string) { c.conflicts.Add(1) }
func (c *counter) Retry(string)    { c.retries.Add(1) }

func (e *env) observedHandler(b testing.TB, obs commands.Observer) *commands.Handler {
	b.Helper()
	return e.warmHandler(b, obs)
}

// warmHandler is observedHandler with its cache warmed with the doctors
// warm (so that a handler made between measured phases does not load their
// streams inside one).
func (e *env) warmHandler(b testing.TB, obs commands.Observer, warm ...string) *commands.Handler {
	b.Helper()
	store := e.store
	if os.Getenv("PRESCRIPTO_BENCH_CHAIN") == "1" {
		store = chain.Wrap(store)
	}
	h, err := commands.New(commands.Config{Store: store, Registry: e.reg, Now: e.clock.Now, Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range warm {
		if err := h.Doctor(context.Background(), id, func(*doctor.Doctor) {}); err != nil {
			b.Fatal(err)
		}
	}
	return h
}

// latencies collects per-operation durations from many goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

// quantile of sorted durations, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuTime is the CPU time (user + system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// probe samples CPU time and the store's group-commit counters before a
// measured phase; report adds cpu-us/op and appends/commit after it.
type probe struct {
	store            eventstore.Store
	cpu              time.Duration
	commits, appends uint64
}

func startProbe(store eventstore.Store) probe {
	p := probe{store: store, cpu: cpuTime()}
	if s, ok := store.(*sqlite.Store); ok {
		st := s.Stats()
		p.commits, p.appends = st.Commits, st.Appends
	}
	return p
}

func (p probe) report(b *testing.B, ops int) {
	b.ReportMetric(us(cpuTime()-p.cpu)/float64(ops), "cpu-us/op")
	if s, ok := p.store.(*sqlite.Store); ok {
		st := s.Stats()
		if c := st.Commits - p.commits; c > 0 {
			b.ReportMetric(float64(st.Appends-p.appends)/float64(c), "appends/commit")
		}
	}
}

// reportThroughput reports bookings/s, p50-ms and p99-ms.
func reportThroughput(b *testing.B, n int, elapsed time.Duration, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "bookings/s")
	b.ReportMetric(ms(quantile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(quantile(lat, 0.99)), "p99-ms")
}

// keyModes are the ways a benchmark's bookings are sent: without a key,
// and with a key (the booking then first claims its key in the key's own
// stream: one more append).
var keyModes = []struct {
	name  string
	keyed bool
}{{"keyed=false", false}, {"keyed=true", true}}

// benchKeys numbers the Idempotency-Keys of keyed benchmark bookings, so
// that no two bookings of one process share a key.
var benchKeys atomic.Int64

// benchPatients numbers the patients of benchmark bookings: one each.
var benchPatients atomic.Int64

// runClients books b.N slots with `clients` goroutines; next(i) names the
// i-th booking (a doctor and a slot; every i is distinct) and returns the
// client's identity for it. With keyed, every booking carries its own
// Idempotency-Key, as the README's clients send it.
func runClients(b *testing.B, h *commands.Handler, clients int, keyed bool, next func(i int64) (doctorID string, start time.Time)) (time.Duration, []time.Duration) {
	return runClientsOn(b, []*commands.Handler{h}, clients, keyed, next)
}

// runClientsOn is runClients with client c sending through hs[c%len(hs)]
// (handlers on one store stand for processes).
func runClientsOn(b *testing.B, hs []*commands.Handler, clients int, keyed bool, next func(i int64) (doctorID string, start time.Time)) (time.Duration, []time.Duration) {
	var cursor atomic.Int64
	var lat latencies
	var failed atomic.Int64
	var firstErr atomic.Value
	metas := make([]commands.Meta, clients)
	for c := range metas {
		metas[c] = patient(c)
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	begin := time.Now()
	for c := range clients {
		wg.Go(func() {
			own := make([]time.Duration, 0, b.N/clients+1)
			for {
				i := cursor.Add(1) - 1
				if i >= int64(b.N) {
					break
				}
				id, start := next(i)
				// Every booking is another patient's, as in a clinic: one
				// patient's bookings are bounded (MAX_LIVE_BOOKINGS) and
				// never overlap.
				m := metas[c]
				m.Actor.UserID = "bench-patient-" + strconv.FormatInt(benchPatients.Add(1), 10)
				if keyed {
					m.IdempotencyKey = "bench-" + strconv.FormatInt(benchKeys.Add(1), 10)
				}
				t := time.Now()
				_, err := hs[c%len(hs)].ReserveSlot(context.Background(), m, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: id, Start: start})
				own = append(own, time.Since(t))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
			lat.add(own)
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d bookings failed; first: %v", n, b.N, firstErr.Load())
	}
	return elapsed, lat.all
}

// BenchmarkReserveDisjointDoctors: 64 concurrent clients book distinct free
// slots across 50 doctors. Commands for different doctors run in parallel
// and their appends share group commits.
func BenchmarkReserveDisjointDoctors(b *testing.B) {
	const doctors, clients = 50, 64
	e := newEnv(b)
	obs := &counter{}
	ids := make([]string, doctors)
	for i := range ids {
		ids[i] = e.benchDoctor(b, fmt.Sprintf("disjoint%02d", i)).ID
	}
	all := benchSlots(b)
	var used atomic.Int64 // bookings made by earlier rounds
	for _, mode := range keyModes {
		h, keyed := e.warmHandler(b, obs, ids...), mode.keyed
		b.Run(fmt.Sprintf("doctors=%d/clients=%d/%s", doctors, clients, mode.name), func(b *testing.B) {
			base := used.Load()
			if need := (base + int64(b.N)) / doctors; need >= int64(len(all)) {
				b.Fatalf("b.N=%d needs %d slots per doctor; the schedule has %d", b.N, need, len(all))
			}
			retries0 := obs.retries.Load()
			pr := startProbe(e.store)
			elapsed, lat := runClients(b, h, clients, keyed, func(i int64) (string, time.Time) {
				k := base + i
				return ids[k%doctors], all[k/doctors]
			})
			pr.report(b, b.N)
			used.Add(int64(b.N))
			reportThroughput(b, b.N, elapsed, lat)
			b.ReportMetric(float64(obs.retries.Load()-retries0)/float64(b.N), "retries/op")
		})
	}
}

// BenchmarkHotDoctor: 64 clients book distinct slots of ONE doctor. The
// per-stream queue serializes them, so each booking waits for the previous
// one's commit: throughput is bounded by the commit (fsync) latency.
func BenchmarkHotDoctor(b *testing.B) {
	const clients = 64
	e := newEnv(b)
	obs := &counter{}
	doctors := 0
	id := e.benchDoctor(b, "hot").ID
	all := benchSlots(b)
	var used atomic.Int64
	for _, mode := range keyModes {
		h, keyed := e.warmHandler(b, obs, id), mode.keyed
		b.Run(fmt.Sprintf("clients=%d/%s", clients, mode.name), func(b *testing.B) {
			if b.N > len(all) {
				b.Fatalf("b.N=%d exceeds the %d slots of a doctor", b.N, len(all))
			}
			if used.Load()+int64(b.N) > int64(len(all)) {
				// This doctor is fully booked: the next one (warm).
				doctors++
				id = e.benchDoctor(b, fmt.Sprintf("hot%d", doctors)).ID
				if err := h.Doctor(context.Background(), id, func(*doctor.Doctor) {}); err != nil {
					b.Fatal(err)
				}
				used.Store(0)
			}
			base := used.Load()
			retries0 := obs.retries.Load()
			pr := startProbe(e.store)
			elapsed, lat := runClients(b, h, clients, keyed, func(i int64) (string, time.Time) { return id, all[base+i] })
			pr.report(b, b.N)
			used.Add(int64(b.N))
			reportThroughput(b, b.N, elapsed, lat)
			b.ReportMetric(float64(obs.retries.Load()-retries0)/float64(b.N), "retries/op")
		})
	}
}

// BenchmarkReserveESDBEmulator: BenchmarkReserveDisjointDoctors on the
// EventStoreDB adapter against the in-process protocol emulator (an
// in-memory log over gRPC on loopback: no disk, so it shows the claim's
// extra round trips rather than a commit). On this store a keyed booking
// always claims its key: the store does not refuse an event id stored in
// another stream.
func BenchmarkReserveESDBEmulator(b *testing.B) {
	for _, doctors := range []int{50, 1} {
		benchmarkReserveESDBEmulator(b, doctors)
	}
}

// benchmarkReserveESDBEmulator books on doctors doctors of one emulator;
// with one doctor, as BenchmarkHotDoctor, the per-stream queue serializes
// the bookings.
func benchmarkReserveESDBEmulator(b *testing.B, doctors int) {
	const clients = 64
	e := newEnvOn(b, newESDBStore(b))
	obs := &counter{}
	h := e.observedHandler(b, obs)
	ids := make([]string, doctors)
	for i := range ids {
		ids[i] = e.benchDoctor(b, fmt.Sprintf("esdb%02d", i)).ID
	}
	all := benchSlots(b)
	var used atomic.Int64
	for _, keyed := range []bool{false, true} {
		b.Run(fmt.Sprintf("doctors=%d/clients=%d/keyed=%t", doctors, clients, keyed), func(b *testing.B) {
			base := used.Load()
			if need := (base + int64(b.N)) / int64(doctors); need >= int64(len(all)) {
				b.Fatalf("b.N=%d needs %d slots per doctor; the schedule has %d", b.N, need, len(all))
			}
			retries0 := obs.retries.Load()
			pr := startProbe(e.store)
			elapsed, lat := runClients(b, h, clients, keyed, func(i int64) (string, time.Time) {
				k := base + i
				return ids[k%int64(doctors)], all[k/int64(doctors)]
			})
			pr.report(b, b.N)
			used.Add(int64(b.N))
			reportThroughput(b, b.N, elapsed, lat)
			b.ReportMetric(float64(obs.retries.Load()-retries0)/float64(b.N), "retries/op")
		})
	}
}

// BenchmarkTwoReplicas: 64 clients book distinct slots through two
// Handlers on one store, standing for two api replicas: within a replica
// the queue batches a doctor's bookings, between them optimistic
// concurrency decides and the loser retries. It reports the retries and
// the bookings given up (409 concurrency_conflict) per booking. (With
// every client on one doctor, about 1% give up after 9 conflicts, which
// fails the benchmark: see docs/performance.md.)
func BenchmarkTwoReplicas(b *testing.B) {
	const clients = 64
	for _, doctors := range []int{50} {
		e := newEnv(b)
		obs := &counter{}
		ids := make([]string, doctors)
		for i := range ids {
			ids[i] = e.benchDoctor(b, fmt.Sprintf("replicas%02d", i)).ID
		}
		hs := []*commands.Handler{e.warmHandler(b, obs, ids...), e.warmHandler(b, obs, ids...)}
		all := benchSlots(b)
		var used atomic.Int64
		b.Run(fmt.Sprintf("doctors=%d/clients=%d", doctors, clients), func(b *testing.B) {
			base := used.Load()
			if need := (base + int64(b.N)) / int64(doctors); need >= int64(len(all)) {
				b.Skipf("b.N=%d needs %d slots per doctor; the schedule has %d", b.N, need, len(all))
			}
			retries0, conflicts0 := obs.retries.Load(), obs.conflicts.Load()
			elapsed, lat := runClientsOn(b, hs, clients, false, func(i int64) (string, time.Time) {
				k := base + i
				return ids[k%int64(doctors)], all[k/int64(doctors)]
			})
			used.Add(int64(b.N))
			reportThroughput(b, b.N, elapsed, lat)
			b.ReportMetric(float64(obs.retries.Load()-retries0)/float64(b.N), "retries/op")
			b.ReportMetric(float64(obs.conflicts.Load()-conflicts0)/float64(b.N), "gave-up/op")
		})
	}
}

// BenchmarkSameSlotStorm: per iteration, 1,000 goroutines try to book the
// same slot at once. Exactly one must win; the rest get slot_unavailable.
// handlers=2 runs the storm through two Handlers on one store, standing for
// two processes: there the per-stream queue does not span them and
// optimistic concurrency (retries) decides.
func BenchmarkSameSlotStorm(b *testing.B) {
	const goroutines = 1000
	for _, handlers := range []int{1, 2} {
		e := newEnv(b)
		obs := &counter{}
		hs := make([]*commands.Handler, handlers)
		for i := range hs {
			hs[i] = e.observedHandler(b, obs)
		}
		id := e.benchDoctor(b, fmt.Sprintf("storm%d", handlers)).ID
		all := benchSlots(b)
		var used atomic.Int64
		b.Run(fmt.Sprintf("goroutines=%d/handlers=%d", goroutines, handlers), func(b *testing.B) {
			base := used.Load()
			if base+int64(b.N) > int64(len(all)) {
				b.Fatalf("b.N=%d exceeds the %d slots left", b.N, int64(len(all))-base)
			}
			retries0, conflicts0 := obs.retries.Load(), obs.conflicts.Load()
			var wins, taken, gaveUp int64
			drains := make([]time.Duration, 0, b.N)
			metas := make([]commands.Meta, goroutines)
			for g := range metas {
				metas[g] = patient(g)
			}
			b.ResetTimer()
			for it := range b.N {
				slot := all[base+int64(it)]
				var ok, unavailable, concurrency, other atomic.Int64
				var firstErr atomic.Value
				var ready, done sync.WaitGroup
				start := make(chan struct{})
				for g := range goroutines {
					ready.Add(1)
					done.Go(func() {
						ready.Done()
						<-start
						_, err := hs[g%handlers].ReserveSlot(context.Background(), metas[g], commands.ReserveSlot{PatientName: "Test Patient", DoctorID: id, Start: slot})
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, doctor.ErrSlotUnavailable):
							unavailable.Add(1)
						case errors.Is(err, commands.ErrConcurrency):
							concurrency.Add(1) // a 409 too: never a double booking
						default:
							other.Add(1)
							firstErr.CompareAndSwap(nil, err)
						}
					})
				}
				ready.Wait()
				t := time.Now()
				close(start)
				done.Wait()
				drains = append(drains, time.Since(t))
				if ok.Load() != 1 || other.Load() != 0 {
					b.Fatalf("iteration %d: %d successes (want 1), %d unexpected errors (first: %v)", it, ok.Load(), other.Load(), firstErr.Load())
				}
				wins += ok.Load()
				taken += unavailable.Load()
				gaveUp += concurrency.Load()
			}
			b.StopTimer()
			used.Add(int64(b.N))
			slices.Sort(drains)
			n := float64(b.N)
			b.ReportMetric(float64(wins)/n, "successes/op")
			b.ReportMetric(float64(taken)/n, "conflicts/op")
			b.ReportMetric(float64(gaveUp)/n, "gaveup/op")
			b.ReportMetric(float64(obs.retries.Load()-retries0)/n, "retries/op")
			b.ReportMetric(float64(obs.conflicts.Load()-conflicts0)/n, "exhausted/op")
			b.ReportMetric(ms(quantile(drains, 0.50)), "drain-p50-ms")
			b.ReportMetric(ms(quantile(drains, 0.99)), "drain-p99-ms")
		})
	}
}

// appendTimer wraps the store to measure how long each Append takes, so
// the command's own cost (everything but the append) can be told apart
// from the commit latency.
type appendTimer struct {
	eventstore.Store
	last atomic.Int64 // ns of the last Append (one client at a time)
}

func (a *appendTimer) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	t := time.Now()
	res, err := a.Store.Append(ctx, stream, expected, events)
	a.last.Store(int64(time.Since(t)))
	return res, err
}

// historySize is the number of events BenchmarkLongHistory puts in front of
// the measured bookings.
const historySize = 100_000

// buildHistory appends n events to doctor id's stream straight to the
// store, in large batches: reservations of consecutive slots, every third
// one cancelled again, decided by the real aggregate so the history is
// valid. It returns the slots left free (the cancelled ones, spread over
// the whole window, then the ones after the history), in order.
func buildHistory(b testing.TB, e *env, id string, all []time.Time, n int) []time.Time {
	b.Helper()
	ctx := context.Background()
	recs, err := e.store.ReadStream(ctx, doctor.StreamID(id), 0, eventstore.Forward, 0)
	if err != nil {
		b.Fatal(err)
	}
	d := e.fold(b, id)
	rev := recs[len(recs)-1].Revision
	now := e.clock.Now()
	const batch = 2000
	var free []time.Time
	var pending []eventstore.EventData
	flush := func() {
		res, err := e.store.Append(ctx, doctor.StreamID(id), eventstore.Exact(rev), pending)
		if err != nil {
			b.Fatalf("append history: %v", err)
		}
		rev = res.NextExpectedRevision
		pending = pending[:0]
	}
	written, slot := 0, 0
	for written < n {
		start := all[slot]
		apptID := uuid.Must(uuid.NewV7()).String()
		p := patient(slot % 1000)
		if err := d.Reserve(doctor.Reservation{AppointmentID: apptID, PatientID: p.Actor.UserID, PatientName: "History Patient", Start: start}, now); err != nil {
			b.Fatalf("history reserve %v: %v", start, err)
		}
		if slot%3 == 2 && written+2 <= n {
			if err := d.Cancel(apptID, "history", p.Actor, now); err != nil {
				b.Fatalf("history cancel: %v", err)
			}
			free = append(free, start)
		}
		slot++
		for _, ev := range d.Changes() {
			data, err := domain.Encode(ev)
			if err != nil {
				b.Fatal(err)
			}
			evID := uuid.Must(uuid.NewV7())
			md, err := json.Marshal(domain.Metadata{EventID: evID, Actor: p.Actor, CorrelationID: "history", OccurredAt: now})
			if err != nil {
				b.Fatal(err)
			}
			pending = append(pending, eventstore.EventData{ID: evID, Type: ev.EventType(), Data: data, Metadata: md})
			written++
		}
		d.ClearChanges()
		if len(pending) >= batch {
			flush()
		}
	}
	if len(pending) > 0 {
		flush()
	}
	return append(free, all[slot:]...)
}

// BenchmarkLongHistory: the latency of a booking on a doctor whose stream
// holds 100,000 earlier events against one on a fresh doctor, one client,
// alternating between the two so both see the same machine. The handler's
// cache is warmed by one command first (its time is cold-load-ms); after
// that a command must read no history, so the ratio should stay near 1.
// cmd-us is the command's own time, the booking latency minus its Append:
// the part that would grow if a command re-read or re-folded history.
//
// Two histories:
//   - past: a year of bookings before now (every third cancelled), then
//     bookings after them, as a long-lived doctor sees it;
//   - future: the same events, but their ~50,000 live appointments fill the
//     coming year and the measured bookings fall between them (a doctor
//     booked solid a year ahead): this measures the cost of the number of
//     live appointments rather than of the history.
func BenchmarkLongHistory(b *testing.B) {
	e := newEnv(b)
	timer := &appendTimer{Store: e.store}
	h, err := commands.New(commands.Config{Store: timer, Registry: e.reg, Now: e.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	const year = 367 * 24 * time.Hour
	e.clock.Advance(-year)
	past := e.benchDoctor(b, "past").ID
	t := time.Now()
	buildHistory(b, e, past, benchSlotsFrom(b, e.clock.Now()), historySize)
	b.Logf("past history: %d events appended in %v", historySize, time.Since(t))
	e.clock.Advance(year)
	future := e.benchDoctor(b, "future").ID
	futureFree := buildHistory(b, e, future, benchSlots(b), historySize)
	variants := []struct {
		name, long, fresh string
		slots             []time.Time
	}{
		{"past", past, e.benchDoctor(b, "fresh-a").ID, benchSlots(b)},
		{"future", future, e.benchDoctor(b, "fresh-b").ID, futureFree},
	}
	p := patient(1)
	for _, v := range variants {
		warm := func(id string) time.Duration {
			t := time.Now()
			if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: id, Start: v.slots[0]}); err != nil {
				b.Fatalf("warm-up %s: %v", id, err)
			}
			return time.Since(t)
		}
		coldLong, coldFresh := warm(v.long), warm(v.fresh)
		used := 1
		b.Run(fmt.Sprintf("history=%d/%s", historySize, v.name), func(b *testing.B) {
			if used+b.N > len(v.slots) {
				b.Fatalf("b.N=%d exceeds the %d free slots left", b.N, len(v.slots)-used)
			}
			lat := map[string][]time.Duration{}
			cmd := map[string][]time.Duration{}
			b.ResetTimer()
			for i := range b.N {
				start := v.slots[used+i]
				for _, id := range []string{v.long, v.fresh} {
					t := time.Now()
					if _, err := h.ReserveSlot(context.Background(), p, commands.ReserveSlot{PatientName: "Test Patient", DoctorID: id, Start: start}); err != nil {
						b.Fatalf("booking %d on %s: %v", i, id, err)
					}
					d := time.Since(t)
					lat[id] = append(lat[id], d)
					cmd[id] = append(cmd[id], d-time.Duration(timer.last.Load()))
				}
			}
			b.StopTimer()
			used += b.N
			for _, m := range []map[string][]time.Duration{lat, cmd} {
				for _, v := range m {
					slices.Sort(v)
				}
			}
			long, fresh := v.long, v.fresh
			b.ReportMetric(ms(quantile(lat[long], 0.5)), "long-p50-ms")
			b.ReportMetric(ms(quantile(lat[fresh], 0.5)), "fresh-p50-ms")
			b.ReportMetric(ms(quantile(lat[long], 0.99)), "long-p99-ms")
			b.ReportMetric(ms(quantile(lat[fresh], 0.99)), "fresh-p99-ms")
			b.ReportMetric(float64(quantile(lat[long], 0.5))/float64(quantile(lat[fresh], 0.5)), "p50-ratio")
			b.ReportMetric(us(quantile(cmd[long], 0.5)), "long-cmd-us")
			b.ReportMetric(us(quantile(cmd[fresh], 0.5)), "fresh-cmd-us")
			b.ReportMetric(float64(quantile(cmd[long], 0.5))/float64(quantile(cmd[fresh], 0.5)), "cmd-ratio")
			b.ReportMetric(ms(coldLong), "cold-load-long-ms")
			b.ReportMetric(ms(coldFresh), "cold-load-fresh-ms")
		})
	}
}

// BenchmarkStoreAppend is the baseline under the command path: raw appends
// of one pre-encoded SlotReserved-sized event to the same kind of store,
// from one client (each append waits for its own fsync) and from 64
// clients on distinct streams (group commit); on the bare store and
// through the hash chain (eventstore/chain: the decorator's cost per
// append, its cache warm as on the command path).
func BenchmarkStoreAppend(b *testing.B) {
	data := []byte(`{"doctorId":"0190f3c4-0000-7000-8000-000000000000","appointmentId":"0190f3c4-0000-7000-8000-000000000001","patientId":"patient-0001","patientName":"Bench Patient","start":"2026-12-02T04:30:00Z","end":"2026-12-02T04:35:00Z","status":"confirmed","fees":50000,"currency":"INR","paymentStatus":"not_required","reservedAt":"2026-12-01T03:00:00Z"}`)
	md := []byte(`{"eventId":"0190f3c4-0000-7000-8000-000000000002","actor":{"userId":"patient-0001","role":"patient"},"occurredAt":"2026-12-01T03:00:00Z"}`)
	for _, cfg := range []struct {
		clients int
		chained bool
	}{{1, false}, {1, true}, {64, false}, {64, true}} {
		clients := cfg.clients
		store := newStore(b)
		target := store
		if cfg.chained {
			target = chain.Wrap(store)
		}
		revs := make([]eventstore.ExpectedRevision, clients)
		for c := range revs {
			revs[c] = eventstore.NoStream
		}
		b.Run(fmt.Sprintf("clients=%d/chain=%v", clients, cfg.chained), func(b *testing.B) {
			var cursor atomic.Int64
			var lat latencies
			var wg sync.WaitGroup
			pr := startProbe(store)
			b.ResetTimer()
			begin := time.Now()
			for c := range clients {
				wg.Go(func() {
					stream := fmt.Sprintf("bench-%d", c)
					own := make([]time.Duration, 0, b.N/clients+1)
					for cursor.Add(1) <= int64(b.N) {
						t := time.Now()
						res, err := target.Append(context.Background(), stream, revs[c], []eventstore.EventData{{ID: uuid.Must(uuid.NewV7()), Type: doctor.TypeSlotReserved, Data: data, Metadata: md}})
						own = append(own, time.Since(t))
						if err != nil {
							b.Error(err)
							return
						}
						revs[c] = eventstore.Exact(res.NextExpectedRevision)
					}
					lat.add(own)
				})
			}
			wg.Wait()
			elapsed := time.Since(begin)
			b.StopTimer()
			pr.report(b, b.N)
			slices.Sort(lat.all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(ms(quantile(lat.all, 0.50)), "p50-ms")
			b.ReportMetric(ms(quantile(lat.all, 0.99)), "p99-ms")
		})
	}
}

// BenchmarkColdLoadFromSnapshot: the first command on a doctor whose stream
// holds 100,000 events, in a process that just started (an empty cache),
// without a snapshot (the whole stream is folded; that load saves one) and
// with one in a snapshot directory (the state is restored and only the
// events after it are read).
func BenchmarkColdLoadFromSnapshot(b *testing.B) {
	e := newEnv(b)
	id := e.benchDoctor(b, "long").ID
	buildHistory(b, e, id, benchSlots(b), historySize)
	snaps, err := snapshot.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	load := func(st snapshot.Store) time.Duration {
		h, err := commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Snapshots: st})
		if err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		if err := h.Doctor(context.Background(), id, func(*doctor.Doctor) {}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	without := load(nil)
	first := load(snaps) // folds everything and saves the snapshot
	b.Run(fmt.Sprintf("history=%d", historySize), func(b *testing.B) {
		var lat []time.Duration
		for range b.N {
			lat = append(lat, load(snaps))
		}
		slices.Sort(lat)
		b.ReportMetric(ms(without), "no-snapshot-ms")
		b.ReportMetric(ms(first), "saving-load-ms")
		b.ReportMetric(ms(quantile(lat, 0.5)), "p50-ms")
		b.ReportMetric(ms(quantile(lat, 0.99)), "p99-ms")
	})
}
