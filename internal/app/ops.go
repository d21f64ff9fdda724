package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/rediscache"
	"github.com/prescripto/prescripto/workers/payments"
)

// projectionOps is what the App does with projections, wherever they run:
// the API's Operations, and the names of the projections it knows.
type projectionOps interface {
	WaitFor(ctx context.Context, projection string, pos uint64) error
	Statuses(ctx context.Context) ([]projections.Status, error)
	StartRebuild(ctx context.Context, name string) error
	names() []string
}

// operations routes the API's projection operations to the runner of this
// process that runs each projection.
type operations struct {
	runners []*projections.Runner
	byName  map[string]*projections.Runner
	// also names the projections a wait for a projection waits for too
	// (the cache invalidation in front of a cached read model).
	also map[string][]string
}

// add registers a runner of this process.
func (o *operations) add(r *projections.Runner) {
	if o.byName == nil {
		o.byName = map[string]*projections.Runner{}
	}
	o.runners = append(o.runners, r)
	for _, n := range r.Names() {
		o.byName[n] = r
	}
}

func (o operations) WaitFor(ctx context.Context, name string, pos uint64) error {
	r, ok := o.byName[name]
	if !ok {
		return projections.ErrUnknownProjection
	}
	if err := r.WaitFor(ctx, name, pos); err != nil {
		return err
	}
	for _, n := range o.also[name] {
		if err := o.byName[n].WaitFor(ctx, n, pos); err != nil {
			return err
		}
	}
	return nil
}

func (o operations) Statuses(ctx context.Context) ([]projections.Status, error) {
	var out []projections.Status
	for _, r := range o.runners {
		st, err := r.Statuses(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, st...)
	}
	return out, nil
}

func (o operations) StartRebuild(ctx context.Context, name string) error {
	if r, ok := o.byName[name]; ok {
		return r.StartRebuild(ctx, name)
	}
	return projections.ErrUnknownProjection
}

func (o operations) names() []string {
	out := make([]string, 0, len(o.byName))
	for n := range o.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ---- the control loop of a process that runs projections ----

// controlEvery is how often a process that runs projections reports their
// status and looks for rebuild requests filed through an api process.
const controlEvery = 500 * time.Millisecond

// controlLoop reports the statuses of this process's projections to the
// shared database and starts the rebuilds asked for through the API.
func (a *App) controlLoop(ctx context.Context) error {
	owner := processName(a.opts.Role)
	t := time.NewTicker(controlEvery)
	defer t.Stop()
	for {
		a.controlOnce(ctx, owner)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *App) controlOnce(ctx context.Context, owner string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pending, err := a.control.PendingRebuilds(cctx)
	if err != nil && ctx.Err() == nil {
		a.opts.Logger.Warn().Err(err).Msg("cannot read rebuild requests")
	}
	for _, name := range pending {
		if !slices.Contains(a.local.names(), name) {
			continue // a projection another process runs
		}
		took, err := a.control.TakeRebuildRequest(cctx, name)
		if err != nil || !took {
			continue // gone meanwhile, or the database is away: next round
		}
		switch err := a.local.StartRebuild(ctx, name); {
		case errors.Is(err, projections.ErrRebuilding):
		case err != nil:
			a.opts.Logger.Error().Err(err).Str("projection", name).Msg("requested rebuild refused")
		default:
			a.opts.Logger.Info().Str("projection", name).Msg("rebuild requested through the API started")
		}
	}
	st, err := a.local.Statuses(cctx)
	if err != nil {
		return
	}
	if err := a.control.Report(cctx, owner, a.opts.Now(), st); err != nil && ctx.Err() == nil {
		a.opts.Logger.Warn().Err(err).Msg("cannot report projection statuses")
	}
}

func processName(r Role) string {
	host, _ := os.Hostname()
	return string(r) + "@" + host + "/" + strconv.Itoa(os.Getpid())
}

// ---- a process without runners: projections run elsewhere ----

// staleAfter: a status not reported for this long is reported stale (its
// runner is down or cut off from the database).
const staleAfter = 15 * time.Second

// remoteOps serves the API's projection operations in an api process: it
// waits on the checkpoints the projector stores with the read models, and
// reports and requests through mongo.Control.
type remoteOps struct {
	control *mongo.Control
	store   eventstore.Store
	now     func() time.Time
	// progress polls one stored checkpoint per projection.
	progress map[string]*polledProgress
	order    []string
	also     map[string][]string
}

func newRemoteOps(sh *shared) *remoteOps {
	c := sh.control
	r := &remoteOps{control: c, store: sh.store, now: sh.opts.Now, progress: map[string]*polledProgress{}, also: sh.models.waitAlso}
	for _, m := range sh.models.all() {
		read := m.Checkpoint
		if m.Name() == rediscache.InvalidationName {
			// Kept in Redis, where the projector stores it, but only with
			// the doctor events it invalidates on: past events that need no
			// invalidation (accounts, ledgers), what the projector reports
			// stands for it, else a wait for a head that is such an event
			// would never end.
			rc := sh.redis.Client()
			read = func(ctx context.Context) (uint64, error) {
				stored, err := rediscache.StoredCheckpoint(ctx, rc, redisCachePrefix)
				if err != nil {
					return 0, err
				}
				if st, err := c.Statuses(ctx); err == nil {
					stored = max(stored, st[rediscache.InvalidationName].Position)
				}
				return stored, nil
			}
		}
		r.add(m.Name(), read)
	}
	// The workers keep no checkpoint of their own in a shared store: their
	// reported position stands for it.
	workers := []string{notificationsName}
	if sh.opts.Payments.enabled() {
		workers = append(workers, payments.Name)
	}
	for _, name := range workers {
		r.add(name, func(ctx context.Context) (uint64, error) {
			st, err := c.Statuses(ctx)
			if err != nil {
				return 0, err
			}
			return st[name].Position, nil
		})
	}
	return r
}

func (r *remoteOps) add(name string, read func(context.Context) (uint64, error)) {
	r.progress[name] = &polledProgress{read: read}
	r.order = append(r.order, name)
}

func (r *remoteOps) names() []string { return slices.Clone(r.order) }

func (r *remoteOps) WaitFor(ctx context.Context, name string, pos uint64) error {
	p, ok := r.progress[name]
	if !ok {
		return projections.ErrUnknownProjection
	}
	if err := p.WaitFor(ctx, pos); err != nil {
		return err
	}
	for _, n := range r.also[name] {
		if err := r.WaitFor(ctx, n, pos); err != nil {
			return err
		}
	}
	return nil
}

func (r *remoteOps) Statuses(ctx context.Context) ([]projections.Status, error) {
	head, err := r.store.HeadPosition(ctx)
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: event store: %w", domain.ErrUnavailable, err)
		}
		return nil, err
	}
	reported, err := r.control.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]projections.Status, 0, len(r.order))
	for _, name := range r.order {
		s, ok := reported[name]
		st := s.Status
		switch {
		case !ok:
			st = projections.Status{Name: name, Status: "unknown", Error: "no process has reported this projection yet"}
		case now.Sub(s.At) > staleAfter:
			st.Status = "stale"
			st.Error = fmt.Sprintf("last reported %s ago by %s", now.Sub(s.At).Round(time.Second), s.Owner)
		}
		// A stored checkpoint is fresher than the last report.
		if p, err := r.progress[name].read(ctx); err == nil && p > st.Position {
			st.Position = p
		}
		if head > st.Position {
			st.Lag = head - st.Position
		}
		out = append(out, st)
	}
	return out, nil
}

// StartRebuild files a request that the process running the projection
// takes within a second.
func (r *remoteOps) StartRebuild(ctx context.Context, name string) error {
	if _, ok := r.progress[name]; !ok {
		return projections.ErrUnknownProjection
	}
	reported, err := r.control.Statuses(ctx)
	if err != nil {
		return err
	}
	if reported[name].Status.Status == "rebuilding" {
		return projections.ErrRebuilding
	}
	if err := r.control.RequestRebuild(ctx, name, r.now()); err != nil {
		return err
	}
	return nil
}

// polledProgress is a checkpoint stored by another process, polled while
// someone waits for it: one poller per projection however many requests
// wait.
type polledProgress struct {
	read    func(context.Context) (uint64, error)
	p       projections.Progress
	mu      sync.Mutex
	polling bool
	waiters atomic.Int64
}

// pollEvery is the polling interval of a stored checkpoint.
const pollEvery = 5 * time.Millisecond

func (pp *polledProgress) WaitFor(ctx context.Context, pos uint64) error {
	if pp.p.Position() >= pos {
		return nil
	}
	pp.waiters.Add(1)
	defer pp.waiters.Add(-1)
	pp.mu.Lock()
	if !pp.polling {
		pp.polling = true
		go pp.poll()
	}
	pp.mu.Unlock()
	return pp.p.WaitFor(ctx, pos)
}

func (pp *polledProgress) poll() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if c, err := pp.read(ctx); err == nil {
			pp.p.Advance(c)
		}
		cancel()
		pp.mu.Lock()
		if pp.waiters.Load() == 0 {
			pp.polling = false
			pp.mu.Unlock()
			return
		}
		pp.mu.Unlock()
		time.Sleep(pollEvery)
	}
}
