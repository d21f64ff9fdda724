// Package app wires Prescripto's parts into one running engine. A process
// opens the shared parts once (the event store, the event registry, the
// metrics, MongoDB and Redis when configured: shared.go) and then builds the
// parts its role runs, each with its own constructor: the read-model
// projector (projector.go), the notification worker (worker.go) and the
// HTTP API (api.go). `serve` runs all three in one process; the binary and
// the end-to-end tests build the same App.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/personal"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/web"
	"github.com/prescripto/prescripto/workers/notify"
	"github.com/prescripto/prescripto/workers/payments"
)

// Role is what a process runs: a set of parts.
type Role string

// Roles: serve runs everything in one process; api, projector and worker
// run one part each and share the servers (ESDB_URL, MONGODB_URI, REDIS_URL).
const (
	RoleAll       Role = "serve"
	RoleAPI       Role = "api"
	RoleProjector Role = "projector"
	RoleWorker    Role = "worker"
)

// parts are the parts of a process.
type parts struct{ api, projector, worker bool }

// roleParts is the one place that says what each role runs.
var roleParts = map[Role]parts{
	RoleAll:       {api: true, projector: true, worker: true},
	RoleAPI:       {api: true},
	RoleProjector: {projector: true},
	RoleWorker:    {worker: true},
}

// ServesAPI reports whether the role answers the REST API (and so needs a
// JWT secret).
func (r Role) ServesAPI() bool { return roleParts[r].api }

// Validate checks that the role exists and that its servers are
// configured: the parts of one deployment in separate processes share the
// event store and the read models.
func (r Role) Validate(esdbURL, mongoURI string) error {
	if _, ok := roleParts[r]; !ok {
		return fmt.Errorf("unknown role %q (serve, api, projector or worker)", r)
	}
	if r != RoleAll && (esdbURL == "" || mongoURI == "") {
		return fmt.Errorf("the %s role needs ESDB_URL and MONGODB_URI: separate processes share the event store and the read models (run `prescripto serve` for everything in one process)", r)
	}
	return nil
}

// Options configures an App.
type Options struct {
	// Role is what this process runs; default RoleAll.
	Role          Role
	DataDir       string
	JWTSecret     []byte
	TokenTTL      time.Duration // default 1 h
	AuthRateLimit int
	TrustProxy    bool
	BcryptCost    int
	Logger        zerolog.Logger
	Now           func() time.Time
	// Store, when set, is used instead of opening the embedded store.
	Store eventstore.Store
	// KeyStore, when set, keeps the personal-data keys instead of the
	// default (see shared.openKeys).
	KeyStore personal.KeyStore
	// Mailer delivers notifications and account mails (verification,
	// password reset); default: the mbox DataDir/mail/outbox.mbox (or
	// nothing when there is no DataDir).
	Mailer notify.Mailer
	// Mail configures SMTP, the sender, reminders and the daily cap.
	Mail MailOptions

	// ESDBURL (ESDB_URL), when set, is the EventStoreDB connection string
	// of the event store, used instead of the embedded SQLite store.
	ESDBURL string
	// MongoURI (MONGODB_URI), when set, keeps the read models in MongoDB,
	// in the database named by the URI's path (mongo.DefaultDatabase when
	// it has none), instead of in memory.
	MongoURI string
	// RedisURL (REDIS_URL), when set, makes Redis Streams the projections'
	// transport, puts the Redis cache in front of the doctors directory and
	// the free slots, and keeps the /auth rate-limit counters in Redis.
	RedisURL string
	// ConnectTimeout bounds the first answer of each configured server
	// (default 10 s).
	ConnectTimeout time.Duration
	// MaxWait bounds a read's X-Min-Position wait (default 2 s).
	MaxWait time.Duration
	// RequestTimeout bounds each API request (default
	// api.DefaultRequestTimeout, or MaxWait plus 5 s if longer).
	RequestTimeout time.Duration
	// Payments configures online payment (none by default).
	Payments PaymentOptions
	// MaxLiveBookings (MAX_LIVE_BOOKINGS) bounds a patient's held or
	// confirmed future appointments (default 5; negative: no bound).
	MaxLiveBookings int
	// BookingRateLimit (BOOKING_RATE_LIMIT) bounds a user's bookings,
	// cancellations and reschedules a minute (default 30).
	BookingRateLimit int
	// VerifyEmail (PRESCRIPTO_VERIFY_EMAIL) mails a verification token at
	// registration and keeps patients whose email is not verified from
	// booking.
	VerifyEmail bool
	// OpsListener (PRESCRIPTO_OPS_ADDR is set): the process serves
	// OpsHandler on a listener of its own, and Handler (the API port)
	// serves no /metrics (404). MetricsToken (METRICS_TOKEN), when set, is
	// the bearer token /metrics needs wherever it is served.
	OpsListener  bool
	MetricsToken string
	// ReadModelSaveEvery and ReadModelSaveEvents: the in-memory read
	// models (the embedded default) save their state in the data dir
	// (ReadModelsDir) after that many new events, or that long after the
	// last save when anything changed, and at the end of Run, so that a
	// restart replays only the log after it (defaults 1 minute, 50,000).
	ReadModelSaveEvery  time.Duration
	ReadModelSaveEvents uint64
	// SessionTTL bounds how long an api process trusts an account's
	// session state: another api process honours a logout, password change
	// or deactivation within it (default api.DefaultSessionTTL).
	SessionTTL time.Duration
	// RunnerMiddleware wraps the handlers of every projection and worker
	// (projections.RunnerConfig.Middleware): fault drills and tests only.
	RunnerMiddleware []message.HandlerMiddleware
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = commands.DefaultBcryptCost
	}
	if o.Role == "" {
		o.Role = RoleAll
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxLiveBookings == 0 {
		o.MaxLiveBookings = 5
	}
	if o.BookingRateLimit == 0 {
		o.BookingRateLimit = 30
	}
	return o
}

// App is a wired engine.
type App struct {
	Store    eventstore.Store
	Registry *domain.Registry
	// Commands is the write side (nil in a process without the API).
	Commands *commands.Handler
	// Runner runs the read-model projections; Workers runs the side-effect
	// workers (notifications) on their own forwarder, so a slow worker
	// never holds the read models back. Each is nil in a process without
	// that part.
	Runner  *projections.Runner
	Workers *projections.Runner
	// PaymentsRunner drives the payments worker (nil without payments).
	PaymentsRunner *projections.Runner
	payments       *projections.Live[*payments.Worker]
	notify         *notifications
	// Handler is the API, or in a process without it the operations
	// endpoints (/healthz, /readyz, /metrics).
	Handler http.Handler
	// OpsHandler serves /healthz, /readyz and /metrics for the ops
	// listener (PRESCRIPTO_OPS_ADDR), whatever the role.
	OpsHandler http.Handler
	Metrics    *api.Metrics

	*shared
	// local is what the runners of this process run; ops is what the API
	// waits on and reports: local, or in a process without runners what
	// the processes that run them report (remoteOps).
	local operations
	ops   projectionOps
}

// New builds an App. Call Run to start the projections and Close at the end.
func New(ctx context.Context, o Options) (*App, error) {
	o = o.withDefaults()
	if err := o.Role.Validate(o.ESDBURL, o.MongoURI); err != nil {
		return nil, err
	}
	if err := o.Mail.Validate(); err != nil {
		return nil, err
	}
	p := roleParts[o.Role]
	sh, err := openShared(ctx, o, p.api || p.projector)
	if err != nil {
		return nil, err
	}
	a := &App{Store: sh.store, Registry: sh.reg, Metrics: sh.metrics, shared: sh}
	if err := a.build(ctx, p); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// build builds the parts p on the shared ones.
func (a *App) build(ctx context.Context, p parts) error {
	// The worker is built while the read models load (its saved state's
	// decoding is a restart's last half second otherwise): it does not
	// read them.
	var workers []*projections.Runner
	if p.worker {
		var err error
		if workers, err = a.newWorker(a.shared); err != nil {
			return err
		}
	}
	if err := a.awaitModels(); err != nil {
		return err
	}
	if p.projector {
		runner, err := newProjector(a.shared)
		if err != nil {
			return err
		}
		a.Runner = runner
		a.local.add(runner)
	}
	for _, r := range workers {
		a.local.add(r)
	}
	a.local.also = a.models.waitAlso
	var ops projectionOps = a.local
	if len(a.local.runners) == 0 {
		// The projections run in other processes: wait on and report what
		// they stored.
		ops = newRemoteOps(a.shared)
	} else {
		a.checks = append(a.checks, api.Check{Name: "projections", Check: a.projectionsReady})
	}
	// Reads never see a read model that has not reached the log's head as
	// of this start (a partial picture right after a start or a restart):
	// every wait is for that position at least, and /readyz says so.
	start, err := a.Store.HeadPosition(ctx)
	if err != nil {
		return fmt.Errorf("event store head at start: %w", err)
	}
	gate := startGate{projectionOps: ops, floor: start}
	a.ops = gate
	a.checks = append(a.checks, api.Check{Name: "caught_up", Check: gate.ready})
	a.OpsHandler = api.NewOpsHandler(api.OpsConfig{Registry: a.prom, Logger: a.opts.Logger, Ready: a.checks,
		MetricsAccess: api.MetricsAccess{Token: a.opts.MetricsToken}})
	if !p.api {
		a.Handler = api.NewOpsHandler(api.OpsConfig{Registry: a.prom, Logger: a.opts.Logger, Ready: a.checks, MetricsAccess: a.opts.apiPortMetrics()})
		a.Commands = a.cmds
		return nil
	}
	cmds, handler, err := newAPI(a.shared, a.ops, a.headPosition)
	if err != nil {
		return err
	}
	a.Commands = cmds
	// The sandbox's own calls (its webhooks) go to the API, not through
	// the web client in front of it.
	served := a.withSandbox(handler)
	a.self.set(served)
	// The browser client in front of it all: it answers only GET and HEAD
	// of its files and client routes, never /api/, the ops endpoints or
	// the sandbox.
	site, err := web.New(served)
	if err != nil {
		return fmt.Errorf("web client: %w", err)
	}
	a.Handler = site
	return nil
}

// apiPortMetrics is who may read /metrics on the API port: nobody when
// the ops listener serves it, else the METRICS_TOKEN holder (or anyone
// without one).
func (o Options) apiPortMetrics() api.MetricsAccess {
	return api.MetricsAccess{Off: o.OpsListener, Token: o.MetricsToken}
}

// startGate makes every wait for a projection a wait for the log's head
// as of the process's start at least: the API's reads wait for it (bounded,
// then 503 not_caught_up) even without X-Min-Position.
type startGate struct {
	projectionOps
	floor uint64
}

func (g startGate) WaitFor(ctx context.Context, name string, pos uint64) error {
	return g.projectionOps.WaitFor(ctx, name, max(pos, g.floor))
}

// ready is /readyz's check: every projection has reached the head as of
// the start.
func (g startGate) ready(ctx context.Context) error {
	st, err := g.Statuses(ctx)
	if err != nil {
		return err
	}
	for _, s := range st {
		if s.Position < g.floor {
			return fmt.Errorf("projection %s at position %d has not reached the head at start (%d)", s.Name, s.Position, g.floor)
		}
	}
	return nil
}

// headPosition is the log's head for the API: a store that does not answer
// is a dependency down (503), never an internal error (500).
func (a *App) headPosition(ctx context.Context) (uint64, error) {
	p, err := a.Store.HeadPosition(ctx)
	if err != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("%w: event store: %w", domain.ErrUnavailable, err)
	}
	return p, err
}

// projectionsReady: the runners are up and no projection has failed.
func (a *App) projectionsReady(ctx context.Context) error {
	for _, r := range a.local.runners {
		select {
		case <-r.Ready():
		default:
			return errors.New("projections are starting")
		}
	}
	st, err := a.local.Statuses(ctx)
	if err != nil {
		return err
	}
	for _, s := range st {
		if s.Status == "failed" {
			return fmt.Errorf("projection %s failed: %s", s.Name, s.Error)
		}
	}
	return nil
}

// Run runs this process's projections and workers (with the control loop
// when they report to a shared database) and the metrics updater until ctx
// ends.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range a.local.runners {
		g.Go(func() error { return r.Run(ctx) })
	}
	if a.control != nil && len(a.local.runners) > 0 {
		g.Go(func() error { return a.controlLoop(ctx) })
	}
	if a.payments != nil {
		g.Go(func() error { return a.runPayments(ctx) })
	}
	if a.notify != nil {
		g.Go(func() error { return a.runNotifications(ctx) })
	}
	if k := a.models.keeper(a.opts); k != nil && len(a.local.runners) > 0 {
		g.Go(func() error { return k.Run(ctx) })
	}
	g.Go(func() error { return a.updateMetrics(ctx) })
	return g.Wait()
}

// runPayments ticks the payments worker (the current one: a rebuild
// replaces it) once it has caught up with the log's head as of the start,
// so that it acts on the whole picture, not on a half-folded one.
func (a *App) runPayments(ctx context.Context) error {
	head, err := a.Store.HeadPosition(ctx)
	if err != nil {
		return err
	}
	if err := a.payments.WaitFor(ctx, head); err != nil {
		return nil // ctx ended
	}
	tick := a.opts.Payments.Worker.Tick
	if tick <= 0 {
		tick = time.Second
	}
	every(ctx, tick, func() { a.payments.Current().Tick(ctx) })
	return nil
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// updateMetrics sets the projections' lag and position gauges every 2 s.
func (a *App) updateMetrics(ctx context.Context) error {
	every(ctx, 2*time.Second, func() {
		st, err := a.ops.Statuses(ctx)
		if err != nil {
			return
		}
		for _, s := range st {
			a.Metrics.SetProjectionLag(s.Name, int64(s.Lag))
			a.Metrics.SetProjectionPosition(s.Name, s.Position)
		}
	})
	return nil
}

// CaughtUp waits until every projection and worker has applied the log's
// head.
func (a *App) CaughtUp(ctx context.Context) error {
	head, err := a.Store.HeadPosition(ctx)
	if err != nil {
		return err
	}
	for _, n := range a.ops.names() {
		if err := a.ops.WaitFor(ctx, n, head); err != nil {
			return fmt.Errorf("projection %s: %w", n, err)
		}
	}
	return nil
}

// PendingRebuild reports whether a rebuild of projection name was asked
// for through an api process and not yet taken by the process running it
// (false where there is no shared database).
func (a *App) PendingRebuild(ctx context.Context, name string) (bool, error) {
	if a.control == nil {
		return false, nil
	}
	return a.control.PendingRebuild(ctx, name)
}

// ProjectionStatuses are the projections' statuses as the admin API
// reports them (`prescripto projections list`).
func (a *App) ProjectionStatuses(ctx context.Context) ([]projections.Status, error) {
	return a.ops.Statuses(ctx)
}

// RebuildProjection starts rebuilding projection name, as POST
// /admin/projections/{name}/rebuild does.
func (a *App) RebuildProjection(ctx context.Context, name string) error {
	return a.ops.StartRebuild(ctx, name)
}

type observer struct{ m *api.Metrics }

func (o observer) Conflict(cmd string) { o.m.CommandConflict(cmd) }
func (o observer) Retry(cmd string)    { o.m.CommandRetry(cmd) }
