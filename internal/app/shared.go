package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/ledger"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/chain"
	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/snapshot"
	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/internal/personal"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
	"github.com/prescripto/prescripto/internal/redisconn"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/workers/notify"
)

// shared is what every part of a process uses, opened once: the event
// store, the event registry, the metrics, the MongoDB and Redis
// connections when configured, the read models when a part projects or
// reads them, and the readiness checks of all of it.
type shared struct {
	opts    Options
	store   eventstore.Store
	reg     *domain.Registry
	prom    *prometheus.Registry
	metrics *api.Metrics
	// applies records what every runner's projections apply.
	applies *projections.ApplyMetrics
	// mongo and redis are nil when not configured; control, the channel
	// through which separate processes report and request projection
	// operations, exists with MongoDB.
	mongo   *mongo.Conn
	redis   *redisconn.Conn
	control *mongo.Control
	// models are the read models (zero in a process that neither projects
	// nor reads them).
	models readModelSet
	checks []api.Check
	// gateway is the payment provider (nil without payments); sandbox the
	// in-process Razorpay emulator when it is the provider; self reaches
	// this process's own HTTP handler (the sandbox's webhooks).
	gateway commands.Gateway
	sandbox *sandbox.Emulator
	self    selfTransport
	// cmds is the command handler, made once for the parts that run
	// commands (the API, the payments worker).
	cmds *commands.Handler
	// vault seals and opens personal fields (the registry's cipher);
	// emailKey names the email-uniqueness streams.
	vault    *personal.Vault
	emailKey []byte
	// mail is the process's mailer, made once (see mailer).
	mail notify.Mailer
	// snaps keeps snapshots of doctor streams in DataDir/snapshots (nil
	// without a data dir): disposable, so each process may keep its own.
	snaps snapshot.Store
	// box is the notifications' outbox (see outbox); notifyAdmin answers
	// the admin notification routes from it (nil in a process without the
	// worker).
	box         notify.Outbox
	notifyAdmin api.NotificationAdmin
	// closers release what was opened, in reverse order.
	closers []func() error
	// modelsLoaded is closed when the read models have opened (see
	// loadModels), with modelsErr if they could not.
	modelsLoaded chan struct{}
	modelsErr    error
}

// openShared opens the shared parts; withModels opens the read models too.
// A configured server that does not answer is an error naming its
// variable.
func openShared(ctx context.Context, o Options, withModels bool) (_ *shared, err error) {
	sh := &shared{opts: o}
	defer func() {
		if err != nil {
			_ = sh.Close()
		}
	}()
	if sh.reg, err = catalog.NewRegistry(); err != nil {
		return nil, err
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	if err := sh.openStore(ctx); err != nil {
		return nil, err
	}
	if sh.snaps, err = openSnapshots(o.DataDir); err != nil {
		return nil, err
	}
	sh.prom = prometheus.NewRegistry()
	if err := api.RegisterRuntimeCollectors(sh.prom); err != nil {
		return nil, err
	}
	if sh.metrics, err = api.NewMetrics(sh.prom); err != nil {
		return nil, err
	}
	if sh.applies, err = projections.NewApplyMetrics(sh.prom); err != nil {
		return nil, err
	}
	sh.checks = []api.Check{{Name: "eventstore", Check: sh.store.Ping}}
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if o.MongoURI != "" {
		if sh.mongo, err = mongo.Connect(cctx, o.MongoURI, o.Logger); err != nil {
			return nil, fmt.Errorf("MONGODB_URI: %w", err)
		}
		sh.closers = append(sh.closers, sh.mongo.Close)
		sh.control = sh.mongo.Control()
		sh.checks = append(sh.checks, api.Check{Name: "mongodb", Check: sh.mongo.Ping})
	}
	if o.RedisURL != "" {
		if sh.redis, err = redisconn.Open(cctx, o.RedisURL); err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		sh.closers = append(sh.closers, sh.redis.Close)
		sh.checks = append(sh.checks, api.Check{Name: "redis", Check: sh.redis.Ping})
	}
	if err := sh.openKeys(cctx); err != nil {
		return nil, fmt.Errorf("personal-data keys: %w", err)
	}
	if err := sh.openPayments(); err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	if withModels {
		sh.loadModels(ctx)
	}
	return sh, nil
}

// loadModels opens the read models in the background (loading the saved
// states of the in-memory ones is most of a restart's work), so that the
// parts that do not read them (the workers) are built meanwhile;
// awaitModels waits for them.
func (sh *shared) loadModels(ctx context.Context) {
	done := make(chan struct{})
	sh.modelsLoaded = done
	ctx, cancel := context.WithTimeout(ctx, sh.opts.ConnectTimeout)
	go func() {
		defer close(done)
		defer cancel()
		m, err := sh.openModels(ctx)
		if err != nil {
			sh.modelsErr = fmt.Errorf("MONGODB_URI: %w", err)
			return
		}
		sh.models = m
	}()
}

// awaitModels waits until the read models are open (see loadModels) and
// says whether they opened; sh.models is not to be read before.
func (sh *shared) awaitModels() error {
	if sh.modelsLoaded == nil {
		return nil
	}
	<-sh.modelsLoaded
	return sh.modelsErr
}

// commands is the process's command handler, made on first use.
func (sh *shared) commands() (*commands.Handler, error) {
	if sh.cmds != nil {
		return sh.cmds, nil
	}
	o := sh.opts
	cmds, err := commands.New(commands.Config{
		Store: sh.store, Registry: sh.reg, Now: o.Now, Hasher: commands.BcryptHasher{Cost: o.BcryptCost},
		Gateway: sh.gateway, OrderWait: o.Payments.OrderWait, Observer: observer{sh.metrics},
		BookingRules:  ledger.Rules{MaxLive: max(o.MaxLiveBookings, 0)},
		EmailIndexKey: sh.emailKey, Shredder: sh.vault, Snapshots: sh.snaps,
	})
	if err != nil {
		return nil, err
	}
	sh.cmds = cmds
	return cmds, nil
}

// openKeys opens the key store of the personal-data keys and makes its
// vault the registry's cipher. Keys live with the log: beside the embedded
// store in the data dir (DataDir/keys); with EventStoreDB, in MongoDB
// (MONGODB_URI), else in the data dir; with an injected store and neither,
// in memory, shared by every App on that store (tests).
func (sh *shared) openKeys(ctx context.Context) error {
	o := sh.opts
	embedded := o.Store == nil && o.ESDBURL == "" // the log is the SQLite file in the data dir
	var ks personal.KeyStore
	switch {
	case o.KeyStore != nil:
		ks = o.KeyStore
	case !embedded && sh.mongo != nil:
		mks := personal.NewMongoKeyStore(sh.mongo.DB())
		if err := mks.Init(ctx); err != nil {
			return fmt.Errorf("MONGODB_URI: %w", err)
		}
		ks = mks
	case embedded || o.DataDir != "":
		fs, err := personal.OpenFileKeyStore(filepath.Join(o.DataDir, "keys"))
		if err != nil {
			return err
		}
		ks = fs
	case o.Store != nil:
		v, _ := memoryKeys.LoadOrStore(o.Store, personal.NewMemoryKeyStore())
		ks = v.(*personal.MemoryKeyStore)
	default:
		return errors.New("EventStoreDB (ESDB_URL) needs MONGODB_URI or a data dir to keep the personal-data keys in")
	}
	sh.vault = personal.NewVault(ks)
	for _, c := range sh.vault.Collectors() {
		if err := sh.prom.Register(c); err != nil {
			return err
		}
	}
	sh.reg.SetCipher(sh.vault)
	key, err := personal.IndexKey(ctx, ks)
	if err != nil {
		return err
	}
	sh.emailKey = key
	return nil
}

// memoryKeys are the in-memory key stores of injected event stores, one
// per store, so that Apps sharing a store read each other's events.
var memoryKeys sync.Map

// openStore opens the event store: the one given, EventStoreDB with
// ESDB_URL, the embedded SQLite store in the data dir otherwise; whichever
// it is, every append goes through the hash chain (eventstore/chain).
func (sh *shared) openStore(ctx context.Context) error {
	o := sh.opts
	switch {
	case o.Store != nil:
		// Chained by this App (another App on the same store chains with
		// its own cache, as another process would); not closed here.
		sh.store = chain.Wrap(o.Store)
		return nil
	case o.ESDBURL != "":
		cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
		st, err := esdb.Open(cctx, o.ESDBURL)
		if err != nil {
			return fmt.Errorf("ESDB_URL: %w", err)
		}
		sh.store = st
	default:
		if o.DataDir == "" {
			return errors.New("data dir: empty")
		}
		st, err := sqlite.Open(ctx, filepath.Join(o.DataDir, "events.db"), sqlite.WithClock(o.Now))
		if err != nil {
			return fmt.Errorf("open event store: %w", err)
		}
		sh.store = st
	}
	sh.store = chain.Wrap(sh.store)
	sh.closers = append(sh.closers, sh.store.Close)
	return nil
}

// openSnapshots opens the snapshot directory of dataDir (nil without one).
func openSnapshots(dataDir string) (snapshot.Store, error) {
	if dataDir == "" {
		return nil, nil
	}
	st, err := snapshot.OpenDir(filepath.Join(dataDir, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	return st, nil
}

// Close releases what openShared opened. It may be called more than once.
func (sh *shared) Close() error {
	_ = sh.awaitModels() // nothing closed under a load still running
	var errs []error
	for i := len(sh.closers) - 1; i >= 0; i-- {
		errs = append(errs, sh.closers[i]())
	}
	sh.closers = nil
	return errors.Join(errs...)
}
