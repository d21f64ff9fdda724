// Package app wires Prescripto's parts into one running engine: the event
// store, the command handlers, the projections and their runner, and the
// HTTP API. The binary and the end-to-end tests build the same App.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/workers/notify"
)

// Options configures an App.
type Options struct {
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
	// Mailer delivers notifications; default: the mbox DataDir/mail/outbox.mbox
	// (or nothing when there is no DataDir).
	Mailer notify.Mailer
}

// App is a wired engine.
type App struct {
	Store    eventstore.Store
	Registry *domain.Registry
	Commands *commands.Handler
	// Runner runs the read-model projections; Workers runs the side-effect
	// workers (notifications) on their own forwarder, so a slow worker
	// (a mail fsynced per event) never holds the read models back.
	Runner  *projections.Runner
	Workers *projections.Runner
	Handler http.Handler
	Metrics *api.Metrics

	directory    *projections.Live[*memory.Directory]
	slots        *projections.Live[*memory.Slots]
	appointments *projections.Live[*memory.Appointments]
	ops          operations
	log          zerolog.Logger
	ownStore     bool
	outbox       *notify.Mbox // closed with the App, if it opened one
}

// New builds an App. Call Run to start the projections and Close at the end.
func New(ctx context.Context, o Options) (*App, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = commands.DefaultBcryptCost
	}
	a := &App{log: o.Logger}
	reg, err := catalog.NewRegistry()
	if err != nil {
		return nil, err
	}
	a.Registry = reg
	if o.Store != nil {
		a.Store = o.Store
	} else {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		st, err := sqlite.Open(ctx, filepath.Join(o.DataDir, "events.db"), sqlite.WithClock(o.Now))
		if err != nil {
			return nil, fmt.Errorf("open event store: %w", err)
		}
		a.Store, a.ownStore = st, true
	}
	promReg := prometheus.NewRegistry()
	if err := api.RegisterRuntimeCollectors(promReg); err != nil {
		return nil, a.fail(err)
	}
	if a.Metrics, err = api.NewMetrics(promReg); err != nil {
		return nil, a.fail(err)
	}
	a.Commands, err = commands.New(commands.Config{
		Store: a.Store, Registry: reg, Now: o.Now, Hasher: commands.BcryptHasher{Cost: o.BcryptCost},
		Observer: observer{a.Metrics},
	})
	if err != nil {
		return nil, a.fail(err)
	}
	a.directory = projections.NewLive(memory.NewDirectory)
	a.slots = projections.NewLive(memory.NewSlots)
	a.appointments = projections.NewLive(memory.NewAppointments)
	mailer := o.Mailer
	if mailer == nil {
		mailer = notify.Discard{}
		if o.DataDir != "" {
			box, err := notify.OpenMbox(filepath.Join(o.DataDir, "mail", "outbox.mbox"), "")
			if err != nil {
				return nil, a.fail(err)
			}
			a.outbox, mailer = box, box
		}
	}
	notifications := projections.NewLive(func() *notify.Worker { return notify.New(mailer, o.Now) })
	// The in-process transport blocks the forwarder until every consumer
	// has acknowledged an event; consumers on one runner therefore advance
	// at the pace of the slowest. Read models and workers get one each.
	pub, sub := projections.NewGoChannel(o.Logger)
	a.Runner, err = projections.NewRunner(projections.RunnerConfig{
		Store: a.Store, Registry: reg, Publisher: pub, Subscriber: sub, Logger: o.Logger, Forward: true,
		Projections: []projections.Runnable{a.directory, a.slots, a.appointments},
	})
	if err != nil {
		return nil, a.fail(err)
	}
	wpub, wsub := projections.NewGoChannel(o.Logger)
	a.Workers, err = projections.NewRunner(projections.RunnerConfig{
		Store: a.Store, Registry: reg, Publisher: wpub, Subscriber: wsub, Logger: o.Logger, Forward: true,
		Projections: []projections.Runnable{notifications},
	})
	if err != nil {
		return nil, a.fail(err)
	}
	ops := operations{runners: []*projections.Runner{a.Runner, a.Workers}, byName: map[string]*projections.Runner{
		a.directory.Name(): a.Runner, a.slots.Name(): a.Runner, a.appointments.Name(): a.Runner, notifications.Name(): a.Workers,
	}}
	a.ops = ops
	tokens, err := api.NewTokens(o.JWTSecret, "prescripto", "prescripto-api", o.TokenTTL, o.Now)
	if err != nil {
		return nil, a.fail(err)
	}
	srv, err := api.NewServer(api.Config{
		Commands: a.Commands, Directory: memory.LiveDirectory{L: a.directory}, Slots: memory.LiveSlots{L: a.slots},
		Appointments: memory.LiveAppointments{L: a.appointments}, Dashboards: memory.LiveAppointments{L: a.appointments},
		Operations: ops, HeadPosition: a.headPosition, Tokens: tokens, Metrics: a.Metrics, Registry: promReg,
		Logger: o.Logger, Now: o.Now, AuthRateLimit: o.AuthRateLimit, TrustProxy: o.TrustProxy,
		Ready: []api.Check{
			{Name: "eventstore", Check: a.Store.Ping},
			{Name: "projections", Check: a.projectionsReady},
		},
	})
	if err != nil {
		return nil, a.fail(err)
	}
	a.Handler = srv
	return a, nil
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

func (a *App) fail(err error) error {
	if a.outbox != nil {
		_ = a.outbox.Close()
	}
	if a.ownStore {
		_ = a.Store.Close()
	}
	return err
}

// projectionsReady: the runner is up and no projection has failed.
func (a *App) projectionsReady(ctx context.Context) error {
	for _, r := range a.ops.runners {
		select {
		case <-r.Ready():
		default:
			return errors.New("projections are starting")
		}
	}
	st, err := a.ops.Statuses(ctx)
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

// Run runs the projections (and the metrics updater) until ctx ends.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Runner.Run(ctx) })
	g.Go(func() error { return a.Workers.Run(ctx) })
	g.Go(func() error {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				st, err := a.ops.Statuses(ctx)
				if err != nil {
					continue
				}
				for _, s := range st {
					a.Metrics.SetProjectionLag(s.Name, int64(s.Lag))
					a.Metrics.SetProjectionPosition(s.Name, s.Position)
				}
			}
		}
	})
	return g.Wait()
}

// CaughtUp waits until every projection and worker has applied the log's
// head.
func (a *App) CaughtUp(ctx context.Context) error {
	head, err := a.Store.HeadPosition(ctx)
	if err != nil {
		return err
	}
	for n := range a.ops.byName {
		if err := a.ops.WaitFor(ctx, n, head); err != nil {
			return fmt.Errorf("projection %s: %w", n, err)
		}
	}
	return nil
}

// Close releases the store.
func (a *App) Close() error {
	var errs []error
	if a.outbox != nil {
		errs = append(errs, a.outbox.Close())
	}
	if a.ownStore {
		errs = append(errs, a.Store.Close())
	}
	return errors.Join(errs...)
}

// operations routes the API's projection operations to the runner that
// runs each projection.
type operations struct {
	runners []*projections.Runner
	byName  map[string]*projections.Runner
}

func (o operations) WaitFor(ctx context.Context, name string, pos uint64) error {
	if r, ok := o.byName[name]; ok {
		return r.WaitFor(ctx, name, pos)
	}
	return o.runners[0].WaitFor(ctx, name, pos) // its unknown-projection error
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

type observer struct{ m *api.Metrics }

func (o observer) Conflict(cmd string) { o.m.CommandConflict(cmd) }
func (o observer) Retry(cmd string)    { o.m.CommandRetry(cmd) }
