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
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/rediscache"
	"github.com/prescripto/prescripto/workers/notify"
)

// Role is what a process runs.
type Role string

// Roles: serve runs everything in one process; api, projector and worker
// run one part each and share the servers (ESDB_URL, MONGODB_URI, REDIS_URL).
const (
	RoleAll       Role = "serve"
	RoleAPI       Role = "api"
	RoleProjector Role = "projector"
	RoleWorker    Role = "worker"
)

func (r Role) api() bool       { return r == RoleAll || r == RoleAPI }
func (r Role) projector() bool { return r == RoleAll || r == RoleProjector }
func (r Role) worker() bool    { return r == RoleAll || r == RoleWorker }

// Validate checks that the role exists and that its servers are configured.
func (o Options) validateRole() error {
	switch o.Role {
	case RoleAll:
		return nil
	case RoleAPI, RoleProjector, RoleWorker:
		if o.ESDBURL == "" || o.MongoURI == "" {
			return fmt.Errorf("the %s role needs ESDB_URL and MONGODB_URI: separate processes share the event store and the read models (run `prescripto serve` for everything in one process)", o.Role)
		}
		return nil
	}
	return fmt.Errorf("unknown role %q (serve, api, projector or worker)", o.Role)
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
	// Mailer delivers notifications; default: the mbox DataDir/mail/outbox.mbox
	// (or nothing when there is no DataDir).
	Mailer notify.Mailer

	// ESDBURL (ESDB_URL), when set, is the EventStoreDB connection string
	// of the event store, used instead of the embedded SQLite store.
	ESDBURL string
	// MongoURI (MONGODB_URI), when set, keeps the read models in MongoDB,
	// in the database named by the URI's path (DefaultMongoDatabase when it
	// has none), instead of in memory.
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
}

// DefaultMongoDatabase is the read models' database when MONGODB_URI names
// none.
const DefaultMongoDatabase = "prescripto"

// Redis key prefixes.
const (
	redisCachePrefix     = rediscache.DefaultPrefix
	redisRateLimitPrefix = "prescripto:ratelimit"
)

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

	// ops serves the API's projection operations: local, what the runners
	// of this process run, or in an api process what the projector and
	// worker processes report (remoteOps).
	ops      projectionOps
	local    operations
	control  *mongo.Control
	role     Role
	now      func() time.Time
	log      zerolog.Logger
	ownStore bool
	outbox   *notify.Mbox // closed with the App, if it opened one
	mongo    *mongodriver.Client
	redis    *redis.Client
	// models is the MongoDB read models as opened (nil with the in-memory
	// ones); after a rebuild only the Lives know the current copies.
	models *mongo.Models
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
	if o.Role == "" {
		o.Role = RoleAll
	}
	if err := o.validateRole(); err != nil {
		return nil, err
	}
	a := &App{log: o.Logger, role: o.Role, now: o.Now}
	reg, err := catalog.NewRegistry()
	if err != nil {
		return nil, err
	}
	a.Registry = reg
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	switch {
	case o.Store != nil:
		a.Store = o.Store
	case o.ESDBURL != "":
		cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
		st, err := esdb.Open(cctx, o.ESDBURL)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ESDB_URL: %w", err)
		}
		a.Store, a.ownStore = st, true
	default:
		if o.DataDir == "" {
			return nil, errors.New("data dir: empty")
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
	if o.Role.api() {
		a.Commands, err = commands.New(commands.Config{
			Store: a.Store, Registry: reg, Now: o.Now, Hasher: commands.BcryptHasher{Cost: o.BcryptCost},
			Observer: observer{a.Metrics},
		})
		if err != nil {
			return nil, a.fail(err)
		}
	}
	if o.MongoURI != "" {
		if err := a.openMongo(ctx, o); err != nil {
			return nil, a.fail(err)
		}
	}
	if o.RedisURL != "" {
		if err := a.openRedis(ctx, o); err != nil {
			return nil, a.fail(err)
		}
	}
	var (
		ops      operations
		waitAlso = map[string][]string{}
		checks   = []api.Check{{Name: "eventstore", Check: a.Store.Ping}}
	)
	if mc := a.mongo; mc != nil {
		checks = append(checks, api.Check{Name: "mongodb", Check: func(ctx context.Context) error { return mc.Ping(ctx, nil) }})
	}
	if rc := a.redis; rc != nil {
		checks = append(checks, api.Check{Name: "redis", Check: func(ctx context.Context) error { return rc.Ping(ctx).Err() }})
	}
	// The read models: projected by the projector, read by the api (the
	// worker has none).
	var (
		models     readModelSet
		readModels []projections.Runnable
	)
	if o.Role != RoleWorker {
		models = a.readModels()
		readModels = []projections.Runnable{models.directory, models.slots, models.appointments}
	}
	if a.redis != nil && o.Role != RoleWorker {
		rc := a.redis
		inv := projections.NewLive(func() *rediscache.Invalidation { return rediscache.NewInvalidation(rc, redisCachePrefix) })
		readModels = append(readModels, inv)
		// A read that waits for the directory or the slots (X-Min-Position)
		// is answered through the cache: it waits for the invalidations too.
		for _, p := range readModels[:2] {
			waitAlso[p.Name()] = []string{inv.Name()}
		}
	}
	if o.Role.projector() {
		pub, sub, err := a.transport(o.Logger, projections.EventsTopic)
		if err != nil {
			return nil, a.fail(err)
		}
		a.Runner, err = projections.NewRunner(projections.RunnerConfig{
			Store: a.Store, Registry: reg, Publisher: pub, Subscriber: sub, Logger: o.Logger, Forward: true,
			Projections: readModels, MaxAhead: a.maxAhead(),
		})
		if err != nil {
			return nil, a.fail(err)
		}
		ops.add(a.Runner, readModels...)
	}
	if o.Role.worker() {
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
		// has acknowledged an event; consumers on one runner therefore
		// advance at the pace of the slowest. Read models and workers get one
		// each (and, on Redis, a stream each: each runner forwards the log
		// itself, so the worker never waits for the projector).
		pub, sub, err := a.transport(o.Logger, projections.WorkersTopic)
		if err != nil {
			return nil, a.fail(err)
		}
		a.Workers, err = projections.NewRunner(projections.RunnerConfig{
			Store: a.Store, Registry: reg, Publisher: pub, Subscriber: sub, Logger: o.Logger, Forward: true,
			Projections: []projections.Runnable{notifications}, Topic: projections.WorkersTopic, MaxAhead: a.maxAhead(),
		})
		if err != nil {
			return nil, a.fail(err)
		}
		ops.add(a.Workers, notifications)
	}
	ops.also = waitAlso
	if o.Role == RoleAPI {
		// The projections run in other processes: wait on and report what
		// they stored.
		a.ops = newRemoteOps(a.control, a.Store, a.redisCheckpoint(), readModels, waitAlso, o.Now)
	} else {
		a.ops = ops
		checks = append(checks, api.Check{Name: "projections", Check: a.projectionsReady})
	}
	a.local = ops
	if !o.Role.api() {
		a.Handler = api.NewOpsHandler(api.OpsConfig{Registry: promReg, Logger: o.Logger, Ready: checks})
		return a, nil
	}
	var (
		directory projections.Directory = models.directoryView
		apiSlots  projections.Slots     = models.slotsView
		rateLimit []api.RateLimitOption
	)
	appointments := models.appointmentsView
	if a.redis != nil {
		cache, err := rediscache.New(rediscache.Config{
			Client: a.redis, Prefix: redisCachePrefix, Directory: directory,
			Slots: models.slotsView, SlotsPosition: models.slots.Checkpoint, Logger: o.Logger,
		})
		if err != nil {
			return nil, a.fail(err)
		}
		directory, apiSlots = cache, cache
		counter, err := api.NewRedisLimitCounter(a.redis, redisRateLimitPrefix, 0)
		if err != nil {
			return nil, a.fail(err)
		}
		rateLimit = append(rateLimit, api.WithLimitCounter(counter))
	}
	tokens, err := api.NewTokens(o.JWTSecret, "prescripto", "prescripto-api", o.TokenTTL, o.Now)
	if err != nil {
		return nil, a.fail(err)
	}
	srv, err := api.NewServer(api.Config{
		Commands: a.Commands, Directory: directory, Slots: apiSlots,
		Appointments: appointments, Dashboards: appointments,
		Operations: a.ops, HeadPosition: a.headPosition, Tokens: tokens, Metrics: a.Metrics, Registry: promReg,
		Logger: o.Logger, Now: o.Now, AuthRateLimit: o.AuthRateLimit, TrustProxy: o.TrustProxy,
		RateLimitOptions: rateLimit, Ready: checks, MaxWait: o.MaxWait,
	})
	if err != nil {
		return nil, a.fail(err)
	}
	a.Handler = srv
	return a, nil
}

// readModelSet is the read models, live (rebuildable) and as the API's
// views of them.
type readModelSet struct {
	directory, slots, appointments projections.Runnable
	directoryView                  projections.Directory
	slotsView                      interface {
		projections.Slots
		projections.SlotsJSON
	}
	appointmentsView interface {
		projections.Appointments
		projections.Dashboards
	}
}

// readModels opens the read models: in MongoDB with MONGODB_URI, in memory
// otherwise.
func (a *App) readModels() readModelSet {
	if m := a.models; m != nil {
		return liveModels(
			func() *mongo.Directory { return m.Directory },
			func() *mongo.Slots { return m.Slots },
			func() *mongo.Appointments { return m.Appointments })
	}
	return liveModels(memory.NewDirectory, memory.NewSlots, memory.NewAppointments)
}

func liveModels[
	D interface {
		projections.Projection
		projections.Directory
	},
	S interface {
		projections.Projection
		projections.Slots
		projections.SlotsJSON
	},
	A interface {
		projections.Projection
		projections.Appointments
		projections.Dashboards
	},
](d func() D, s func() S, ap func() A) readModelSet {
	dl, sl, al := projections.NewLive(d), projections.NewLive(s), projections.NewLive(ap)
	return readModelSet{
		directory: dl, slots: sl, appointments: al,
		directoryView: projections.LiveDirectory[D]{L: dl}, slotsView: projections.LiveSlots[S]{L: sl},
		appointmentsView: projections.LiveAppointments[A]{L: al},
	}
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
	_ = a.Close()
	return err
}

// openMongo connects to MONGODB_URI and opens the read models of its
// database; a server that does not answer is an error naming the variable.
func (a *App) openMongo(ctx context.Context, o Options) error {
	cs, err := connstring.ParseAndValidate(o.MongoURI)
	if err != nil {
		return fmt.Errorf("MONGODB_URI: %w", err)
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = DefaultMongoDatabase
	}
	// A request must not hang on a server that is gone: after 2 s without
	// a server to talk to the operation fails as unavailable (503 for a
	// read; the projector retries the event in place). A URI that sets
	// serverSelectionTimeoutMS keeps its own.
	copts := options.Client().SetTimeout(30 * time.Second).SetServerSelectionTimeout(2 * time.Second).ApplyURI(o.MongoURI)
	client, err := mongodriver.Connect(copts)
	if err != nil {
		return fmt.Errorf("MONGODB_URI: %w", err)
	}
	a.mongo = client
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := client.Ping(cctx, nil); err != nil {
		return fmt.Errorf("MONGODB_URI: MongoDB at %s does not answer: %w", strings.Join(cs.Hosts, ","), err)
	}
	db := client.Database(dbName)
	if o.Role != RoleAll {
		// Separate processes talk about their projections through it.
		a.control = mongo.NewControl(db)
	}
	if o.Role == RoleWorker {
		return nil // the worker keeps no read models
	}
	// Opening creates the indexes. Processes starting together (api
	// replicas, the projector) do it at once, and a server may drop a
	// connection meanwhile (FerretDB v1 does on concurrent index
	// creation): a dependency that is unavailable is retried until the
	// connect timeout, anything else is an error at once.
	backoff := 50 * time.Millisecond
	for {
		m, err := mongo.New(cctx, db)
		if err == nil {
			a.models = m
			return nil
		}
		if !errors.Is(err, domain.ErrUnavailable) || cctx.Err() != nil {
			return fmt.Errorf("MONGODB_URI: open read models in database %s: %w", dbName, err)
		}
		a.log.Warn().Err(err).Dur("backoff", backoff).Msg("opening the MongoDB read models failed; retrying")
		select {
		case <-time.After(backoff):
		case <-cctx.Done():
			return fmt.Errorf("MONGODB_URI: open read models in database %s: %w", dbName, err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// openRedis connects to REDIS_URL; a server that does not answer is an
// error naming the variable.
func (a *App) openRedis(ctx context.Context, o Options) error {
	opts, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	a.redis = redis.NewClient(opts)
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := a.redis.Ping(cctx).Err(); err != nil {
		return fmt.Errorf("REDIS_URL: Redis at %s does not answer: %w", opts.Addr, err)
	}
	return nil
}

// transport is a runner's Watermill transport: Redis Streams with
// REDIS_URL, the in-process GoChannel otherwise.
func (a *App) transport(l zerolog.Logger, topic string) (message.Publisher, func(string) (message.Subscriber, error), error) {
	if a.redis == nil {
		pub, sub := projections.NewGoChannel(l)
		return pub, sub, nil
	}
	return projections.NewRedisStream(a.redis, l, projections.StreamTopic(topic))
}

// maxAhead bounds the events a forwarder runs ahead of its projections on
// Redis Streams, which trims its streams to a length; the in-process
// transport blocks by itself.
func (a *App) maxAhead() int {
	if a.redis == nil {
		return 0
	}
	return projections.DefaultMaxAhead
}

// projectionsReady: the runner is up and no projection has failed.
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
// of a projector or worker process) and the metrics updater until ctx
// ends; an api process only updates its metrics.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range a.local.runners {
		g.Go(func() error { return r.Run(ctx) })
	}
	if a.control != nil && len(a.local.runners) > 0 {
		g.Go(func() error { return a.controlLoop(ctx) })
	}
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
	for _, n := range a.ops.names() {
		if err := a.ops.WaitFor(ctx, n, head); err != nil {
			return fmt.Errorf("projection %s: %w", n, err)
		}
	}
	return nil
}

// Close releases the store and every client the App opened. It may be
// called more than once.
func (a *App) Close() error {
	var errs []error
	if a.outbox != nil {
		errs = append(errs, a.outbox.Close())
		a.outbox = nil
	}
	if a.redis != nil {
		errs = append(errs, a.redis.Close())
		a.redis = nil
	}
	if a.mongo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, a.mongo.Disconnect(ctx))
		cancel()
		a.mongo = nil
	}
	if a.ownStore {
		errs = append(errs, a.Store.Close())
		a.ownStore = false
	}
	return errors.Join(errs...)
}

// operations routes the API's projection operations to the runner that
// runs each projection.
type operations struct {
	runners []*projections.Runner
	byName  map[string]*projections.Runner
	// also names the projections a wait for a projection waits for too
	// (the cache invalidation in front of a cached read model).
	also map[string][]string
}

func (o operations) WaitFor(ctx context.Context, name string, pos uint64) error {
	if r, ok := o.byName[name]; ok {
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
