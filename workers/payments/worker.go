// Package payments is the payments worker: it reads the log for the
// payment work of every appointment that takes online payment and does
// it through the payment provider and the commands. It
//
//   - acts on verified webhooks (recorded in the log by the webhook route):
//     settles captured payments, records failed ones and refund outcomes;
//   - reconciles: asks the provider about open orders (soon after they are
//     made, backing off, and just before a hold runs out), settles what was
//     paid, and expires the holds that were not;
//   - adopts the order of a request that claimed its creation and died;
//   - refunds what is due back (a paid appointment cancelled in time, a
//     payment that arrived after its hold expired) under an idempotency key
//     per attempt, and follows each refund until it is processed or failed
//     (a failed one is issued again).
//
// Its timers come from the log, never from memory alone: a restart folds
// the log again and finds the same work due. Two worker processes may act
// on the same appointment; every effect is idempotent (commands decide on
// the doctor's stream once; refunds carry the same key at the provider),
// so each hold expires or confirms once and each refund is made once.
package payments

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/projections"
)

// Name is the worker's projection name.
const Name = "payments"

// Commands are the commands the worker runs (*commands.Handler).
type Commands interface {
	SettlePayment(ctx context.Context, m commands.Meta, c commands.SettlePayment) (commands.AppointmentResult, error)
	FailPayment(ctx context.Context, m commands.Meta, c commands.FailPayment) (commands.AppointmentResult, error)
	CreatePaymentOrder(ctx context.Context, m commands.Meta, c commands.CreatePaymentOrder) (commands.AppointmentResult, error)
	ExpireHold(ctx context.Context, m commands.Meta, c commands.ExpireHold) (commands.AppointmentResult, error)
	IssueRefund(ctx context.Context, m commands.Meta, c commands.IssueRefund) (commands.AppointmentResult, error)
	ProcessRefund(ctx context.Context, m commands.Meta, c commands.ProcessRefund) (commands.AppointmentResult, error)
	FailRefund(ctx context.Context, m commands.Meta, c commands.FailRefund) (commands.AppointmentResult, error)
}

// Config of a Worker.
type Config struct {
	Commands Commands
	Gateway  commands.Gateway
	Now      func() time.Time
	Logger   zerolog.Logger
	Metrics  *Metrics // nil: not counted
	// PollAfter is when an open order or refund is first asked about
	// (default 1 min); later asks back off, doubling, to MaxPoll (10 min).
	PollAfter, MaxPoll time.Duration
	// ExpiryLead is how long before a hold runs out its order is asked
	// about (default 30 s).
	ExpiryLead time.Duration
	// OrderLease is the commands' order lease (default 30 s): a claim older
	// than it whose order was not recorded had its claimer die.
	OrderLease time.Duration
	// Tick is how often due work is looked for (default 1 s).
	Tick time.Duration
	// Parallel bounds the actions run at once (default 8).
	Parallel int
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PollAfter, time.Minute)
	def(&c.MaxPoll, 10*time.Minute)
	def(&c.ExpiryLead, 30*time.Second)
	def(&c.OrderLease, 30*time.Second)
	def(&c.Tick, time.Second)
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
}

// Worker is the payments projector ("payments").
type Worker struct {
	projections.Progress
	cfg     Config
	metrics *Metrics

	mu       sync.Mutex
	appts    map[string]*appt  // appointment id -> its payment work
	orders   map[string]string // order id -> appointment id
	payments map[string]string // payment id -> appointment id
	orphans  []fact            // webhooks about orders not recorded yet
	due      dueHeap           // when to look at which appointment
}

// New returns a Worker.
func New(cfg Config) *Worker {
	cfg.defaults()
	return &Worker{
		cfg: cfg, metrics: cfg.Metrics,
		appts: map[string]*appt{}, orders: map[string]string{}, payments: map[string]string{},
	}
}

// Name implements projections.Projection.
func (*Worker) Name() string { return Name }

// Checkpoint implements projections.Projection.
func (w *Worker) Checkpoint(context.Context) (uint64, error) { return w.Position(), nil }

// Apply implements projections.Projection: it only folds; the work is done
// by Tick.
func (w *Worker) Apply(_ context.Context, e projections.Event) error {
	if e.Position <= w.Position() {
		return nil
	}
	w.mu.Lock()
	if a := w.fold(e); a != nil {
		w.schedule(a)
	}
	w.mu.Unlock()
	w.Advance(e.Position)
	return nil
}

// schedule puts the appointment's next wake time on the heap (w.mu held),
// unless an entry at or before it is there already (an entry that turns
// out early is looked at, found not due, and scheduled again).
func (w *Worker) schedule(a *appt) {
	at := a.wake(w.cfg)
	if at.IsZero() || (!a.scheduled.IsZero() && !at.Before(a.scheduled)) {
		return
	}
	a.scheduled = at
	heap.Push(&w.due, dueEntry{at: at, id: a.id})
}

// Tick does the work due now and returns how many actions it ran.
func (w *Worker) Tick(ctx context.Context) int {
	now := w.cfg.Now()
	jobs := w.dueJobs(now)
	if len(jobs) == 0 {
		return 0
	}
	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.runJob(ctx, j)
		}()
	}
	wg.Wait()
	return len(jobs)
}

// job is one appointment's due actions, decided on a copy of its state.
type job struct {
	a       *appt
	actions []action
}

type action struct {
	name string
	fact string // the event id of the webhook the action is for, if any
	run  func(ctx context.Context) error
}

// dueJobs pops the appointments due at now and decides their actions. An
// appointment whose last action failed waits out its back-off (in real
// time: retries are about the provider, not about the log's time).
func (w *Worker) dueJobs(now time.Time) []job {
	w.mu.Lock()
	defer w.mu.Unlock()
	var oldest time.Time
	seen := map[string]bool{}
	var jobs []job
	var deferred []*appt
	defer func() {
		for _, a := range deferred {
			a.scheduled = now
			heap.Push(&w.due, dueEntry{at: now, id: a.id})
		}
	}()
	wall := time.Now()
	for w.due.Len() > 0 && !w.due[0].at.After(now) {
		e := heap.Pop(&w.due).(dueEntry)
		if oldest.IsZero() {
			oldest = e.at
		}
		a := w.appts[e.id]
		if a == nil || seen[e.id] {
			continue
		}
		seen[e.id] = true
		if !e.at.Before(a.scheduled) {
			a.scheduled = time.Time{}
		}
		if at := a.wake(w.cfg); at.IsZero() || at.After(now) {
			w.schedule(a) // its state moved on since this entry was pushed
			continue
		}
		if wall.Before(a.retryAt) {
			deferred = append(deferred, a)
			continue
		}
		if acts := w.decide(a, now); len(acts) > 0 {
			jobs = append(jobs, job{a: a, actions: acts})
		} else {
			w.schedule(a)
		}
	}
	if !oldest.IsZero() {
		w.metrics.lag(now.Sub(oldest))
	} else {
		w.metrics.lag(0)
	}
	return jobs
}

// runJob runs a job's actions in order, stopping at the first error; the
// appointment is then retried with back-off.
func (w *Worker) runJob(ctx context.Context, j job) {
	var failed error
	var handled []string
	for _, act := range j.actions {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := act.run(actx)
		cancel()
		if err != nil {
			failed = fmt.Errorf("%s: %w", act.name, err)
			break
		}
		if act.fact != "" {
			handled = append(handled, act.fact)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	a := j.a
	// A webhook acted on is done with, also when it changed nothing (a
	// payment that is not ours to take): it is not acted on again.
	for _, id := range handled {
		if a.handled == nil {
			a.handled = map[string]bool{}
		}
		a.handled[id] = true
	}
	if failed == nil {
		a.retries, a.retryAt = 0, time.Time{}
	} else {
		a.retries++
		a.retryAt = time.Now().Add(backoff(a.retries, w.cfg.Tick, w.cfg.MaxPoll))
		w.metrics.failure()
		lvl := w.cfg.Logger.Warn()
		if errors.Is(failed, commands.ErrGatewayUnavailable) {
			lvl = w.cfg.Logger.Info()
		}
		lvl.Err(failed).Str("appointment_id", a.id).Int("attempt", a.retries).Time("retry_at", a.retryAt).Msg("payments: action failed; will retry")
	}
	w.schedule(a)
}

// backoff is the wait after n failures: base doubling, capped.
func backoff(n int, base, capped time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < capped; i++ {
		d *= 2
	}
	return min(d, capped)
}

type dueEntry struct {
	at time.Time
	id string
}

// dueHeap is a min-heap of wake times; an appointment may have stale
// entries, which are skipped.
type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
