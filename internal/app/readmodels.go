package app

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/rediscache"
	"github.com/prescripto/prescripto/projections/redisstream"
)

// Redis key prefixes.
const (
	redisCachePrefix        = rediscache.DefaultPrefix
	redisRateLimitPrefix    = "prescripto:ratelimit"
	redisLoginFailurePrefix = "prescripto:loginfail"
	redisBookingLimitPrefix = "prescripto:bookinglimit"
)

// readModelSet is the read models, live (rebuildable) and as the API's
// views of them.
type readModelSet struct {
	directory, slots, appointments projections.Runnable
	analytics                      projections.Runnable
	// invalidation keeps the Redis cache in front of the directory and the
	// slots in step with them (nil without Redis).
	invalidation projections.Runnable
	// waitAlso names, per read model, what a wait for it waits for too: a
	// read of the directory or the slots that waits for a position
	// (X-Min-Position) is answered through the cache, so it waits for the
	// invalidations too.
	waitAlso map[string][]string

	// states keeps the in-memory read models' saved states in the data
	// dir (nil for MongoDB's or without a data dir).
	states *projections.StateDir

	directoryView projections.Directory
	slotsView     interface {
		projections.Slots
		projections.SlotsJSON
		projections.SlotsAnswers
	}
	appointmentsView interface {
		projections.Appointments
		projections.Dashboards
		projections.Payments
	}
	analyticsView analytics.View
}

// all lists the projections of the set.
func (s readModelSet) all() []projections.Runnable {
	out := []projections.Runnable{s.directory, s.slots, s.appointments, s.analytics}
	if s.invalidation != nil {
		out = append(out, s.invalidation)
	}
	return out
}

// openModels opens the read models: in MongoDB with MONGODB_URI, in memory
// otherwise; with the Redis cache's invalidation beside them with
// REDIS_URL.
func (sh *shared) openModels(ctx context.Context) (readModelSet, error) {
	var s readModelSet
	if sh.mongo != nil {
		m, err := sh.mongo.Models(ctx)
		if err != nil {
			return s, err
		}
		s = liveModels(nil,
			func() *mongo.Directory { return m.Directory },
			func() *mongo.Slots { return m.Slots },
			func() *mongo.Appointments { return m.Appointments }, nil)
		s.analytics, s.analyticsView = liveAnalytics(func() *mongo.Analytics { return m.Analytics })
	} else {
		// In memory, each model starts from its saved state when there is a
		// usable one and replays only the log after it.
		var states *projections.StateDir
		if sh.opts.DataDir != "" {
			var err error
			if states, err = projections.OpenStateDir(filepath.Join(sh.opts.DataDir, ReadModelsDir), sh.opts.Logger); err != nil {
				return s, fmt.Errorf("data dir: %w", err)
			}
		}
		var an *memory.Analytics
		s = liveModels(states, memory.NewDirectory, memory.NewSlots,
			func() *memory.Appointments { return memory.NewAppointmentsOpening(sh.reg.OpenValue) },
			func() { an = projections.Load(states, memory.NewAnalytics) })
		s.states = states
		s.analytics, s.analyticsView = liveAnalyticsFrom(an, memory.NewAnalytics)
	}
	s.waitAlso = map[string][]string{}
	if sh.redis != nil {
		rc := sh.redis.Client()
		inv := projections.NewLive(func() *rediscache.Invalidation { return rediscache.NewInvalidation(rc, redisCachePrefix) })
		s.invalidation = inv
		for _, p := range []projections.Runnable{s.directory, s.slots} {
			s.waitAlso[p.Name()] = []string{inv.Name()}
		}
	}
	return s, nil
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
		projections.SlotsAnswers
	},
	A interface {
		projections.Projection
		projections.Appointments
		projections.Dashboards
		projections.Payments
	},
](states *projections.StateDir, d func() D, s func() S, ap func() A, also func()) readModelSet {
	// The saved states load at once (a model's load is one core's work);
	// also loads another model meanwhile (the analytics).
	var (
		d0 D
		s0 S
		a0 A
		wg sync.WaitGroup
	)
	wg.Go(func() { d0 = projections.Load(states, d) })
	wg.Go(func() { s0 = projections.Load(states, s) })
	wg.Go(func() { a0 = projections.Load(states, ap) })
	if also != nil {
		wg.Go(also)
	}
	wg.Wait()
	dl, sl, al := projections.NewLiveFrom(d0, d), projections.NewLiveFrom(s0, s), projections.NewLiveFrom(a0, ap)
	return readModelSet{
		directory: dl, slots: sl, appointments: al,
		directoryView: projections.LiveDirectory[D]{L: dl}, slotsView: projections.LiveSlots[S]{L: sl},
		appointmentsView: projections.LiveAppointments[A]{L: al},
	}
}

// liveAnalytics makes the analytics model rebuildable, and its view.
func liveAnalytics[T interface {
	projections.Projection
	analytics.View
}](f func() T) (projections.Runnable, analytics.View) {
	return liveAnalyticsFrom(f(), f)
}

// liveAnalyticsFrom is liveAnalytics starting from m (loaded from its
// saved state, say).
func liveAnalyticsFrom[T interface {
	projections.Projection
	analytics.View
}](m T, f func() T) (projections.Runnable, analytics.View) {
	l := projections.NewLiveFrom(m, f)
	return l, analytics.LiveView[T]{L: l}
}

// ReadModelsDir is the folder of the data dir that keeps the in-memory
// read models' saved states (disposable: deleting it costs a full replay
// at the next start).
const ReadModelsDir = "readmodels"

// keeper saves the in-memory read models' states on its schedule (nil
// when they are not kept).
func (s readModelSet) keeper(o Options) *projections.StateKeeper {
	if s.states == nil {
		return nil
	}
	k := &projections.StateKeeper{Dir: s.states, Every: o.ReadModelSaveEvery, Events: o.ReadModelSaveEvents, Log: o.Logger}
	for _, p := range []projections.Runnable{s.directory, s.slots, s.appointments, s.analytics} {
		if in, ok := p.(projections.Instance); ok {
			k.Lives = append(k.Lives, in)
		}
	}
	return k
}

// runner builds a runner that forwards the log to its own topic and runs ps
// on it. The in-process transport blocks the forwarder until every consumer
// has acknowledged an event, so consumers on one runner advance at the pace
// of the slowest: read models and workers get a runner each (and, on Redis,
// a stream each, so the worker never waits for the projector).
func (sh *shared) runner(topic string, ps ...projections.Runnable) (*projections.Runner, error) {
	pub, sub, maxAhead, err := sh.transport(topic)
	if err != nil {
		return nil, err
	}
	return projections.NewRunner(projections.RunnerConfig{
		Store: sh.store, Registry: sh.reg, Publisher: pub, Subscriber: sub, Logger: sh.opts.Logger, Forward: true,
		Projections: ps, Topic: topic, MaxAhead: maxAhead, Middleware: sh.opts.RunnerMiddleware, Metrics: sh.applies,
	})
}

// transport is a runner's Watermill transport: Redis Streams with
// REDIS_URL, the in-process GoChannel otherwise; and the bound of the
// events its forwarder may run ahead of its projections (Redis Streams are
// trimmed to a length; the in-process transport blocks by itself).
func (sh *shared) transport(topic string) (message.Publisher, func(string) (message.Subscriber, error), int, error) {
	if sh.redis == nil {
		pub, sub := projections.NewGoChannel(sh.opts.Logger)
		return pub, sub, 0, nil
	}
	pub, sub, err := redisstream.New(sh.redis.Client(), sh.opts.Logger, redisstream.Topic(topic))
	return pub, sub, redisstream.DefaultMaxAhead, err
}

// SaveReadModels saves the in-memory read models' states now, as Run does
// on its schedule (nothing when they are not kept).
func (a *App) SaveReadModels(ctx context.Context) {
	if k := a.models.keeper(a.opts); k != nil {
		k.SaveAll(ctx, 1)
	}
}
