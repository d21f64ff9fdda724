package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
)

// Topics of the event bus: each runner forwards the log to its own topic
// (the read models' and the workers'), and events its handlers could not
// apply go to the topic's poison topic.
const (
	EventsTopic  = "prescripto.events"
	WorkersTopic = "prescripto.events.workers"
	PoisonSuffix = ".poison"
)

// Message metadata keys set by the forwarder.
const (
	MetaPosition   = "position"
	MetaStream     = "stream"
	MetaRevision   = "revision"
	MetaType       = "type"
	MetaRecordedAt = "recorded_at"
	MetaEventMeta  = "event_metadata"
	// MetaPrevPosition is the position of the event the forwarder published
	// before this one (or the position it started after), and MetaEpoch
	// names the forwarder's subscription run: together they let a consumer
	// see that an event between two it received never reached it (a Redis
	// that lost its data) and have the forwarder republish from the
	// checkpoint, instead of applying the next event over the gap.
	MetaPrevPosition = "prev_position"
	MetaEpoch        = "forwarder_epoch"
)

// Runnable is a projection the Runner drives: a Live projection.
type Runnable interface {
	Projection
	Skip(pos uint64)
	WaitFor(ctx context.Context, pos uint64) error
	Position() uint64
	State() (state, lastErr string)
	Rebuild(ctx context.Context, store eventstore.Store, reg *domain.Registry) error
}

// Status of one projection, for operators.
type Status struct {
	Name     string `json:"name"`
	Position uint64 `json:"position"`
	Lag      uint64 `json:"lag"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	// Rebuilt is how far the running rebuild's shadow copy has got (a log
	// position; 0 when no rebuild runs).
	Rebuilt uint64 `json:"rebuilt,omitempty"`
	// RebuildRate is the events per second of the running rebuild, or of
	// the last one this process finished (0: none yet).
	RebuildRate float64 `json:"rebuildRate,omitempty"`
}

// RebuildReporter is implemented by a projection that reports its
// rebuilds' progress (a Live projection).
type RebuildReporter interface {
	RebuildProgress() (pos uint64, eventsPerSecond float64)
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Store       eventstore.Store
	Registry    *domain.Registry
	Projections []Runnable
	// Publisher and Subscriber carry events from the forwarder to the
	// projectors (a Watermill GoChannel in one process, Redis Streams
	// across processes). Each projection subscribes under its own name.
	Publisher  message.Publisher
	Subscriber func(consumerGroup string) (message.Subscriber, error)
	Logger     zerolog.Logger
	// Forward runs the forwarder from the event store to the publisher in
	// this process (false when another process forwards).
	Forward bool
	// Topic is the topic events are forwarded to and consumed from
	// (default EventsTopic).
	Topic string
	// MaxAhead bounds how many forwarded events may wait unapplied by the
	// furthest running projection of this runner: the forwarder waits
	// beyond it (0: no bound; the in-process transport blocks anyway).
	// A transport that trims its stream to a length (Redis Streams)
	// should keep that length well above MaxAhead; a projection further
	// behind than the stream keeps reads what it missed from the store
	// (see Runner.gap), so a slow one never holds back the others.
	MaxAhead int
	// MaxBatch bounds the events a BatchProjection is given at once
	// (default DefaultMaxBatch; 1 turns batching off).
	MaxBatch int
	// Middleware wraps every projection's handler inside the runner's own
	// (correlation id, poison queue, retry, recoverer), innermost last.
	// Fault drills use it: Watermill's Duplicator and RandomFail prove that
	// a projection or worker given an event twice, or failing and given it
	// again, ends as after one clean delivery.
	Middleware []message.HandlerMiddleware
	// Metrics, when set, records each projection's applies (batch sizes
	// and times).
	Metrics *ApplyMetrics
}

// DefaultMaxBatch is RunnerConfig.MaxBatch when unset.
const DefaultMaxBatch = 256

// Validate checks the configuration.
func (c RunnerConfig) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("projections: Store is required")
	case c.Registry == nil:
		return errors.New("projections: Registry is required")
	case c.Publisher == nil || c.Subscriber == nil:
		return errors.New("projections: Publisher and Subscriber are required")
	case len(c.Projections) == 0:
		return errors.New("projections: no projections")
	case c.MaxBatch < 0:
		return errors.New("projections: MaxBatch must not be negative")
	}
	return nil
}

// Runner forwards the event store's $all to the bus and runs one Watermill
// handler per projection.
//
// # Batches
//
// Both transports hand a consumer one message at a time and the next only
// once it is acknowledged (the GoChannel even blocks the forwarder until
// every consumer has), so a handler never has several messages to batch
// without acknowledging events it has not applied, which would lose them
// on a crash when nobody republishes. The batch comes from the log
// instead: a projection that takes batches (Live over a BatchProjection),
// given the message of position p while the forwarder has already
// received later events from the store, reads up to MaxBatch-1 events
// after p from the store and applies them with p's as one batch; the
// message is acknowledged after that, and the messages of the events
// applied ahead are acknowledged as no-ops when they arrive. Nothing waits
// to fill a batch: a projection that keeps up gets its events one at a
// time, exactly as before, and one that falls behind gets whatever the log
// holds, so batches grow with the lag. Order holds (a batch is a slice of
// the log, applied in order), at-least-once holds (a message is acked
// after its event is applied; a crash replays from the checkpoint, and
// batches are idempotent), and gap detection sees the projection's
// position, which batches only move further. The forwarder reads the
// store ahead of the transport into a small buffer so that it knows how
// far the log goes (seen) even while a blocking transport holds it; a
// runner that does not forward never reads ahead.
//
// A batch that fails with anything but ErrUnavailable is not retried as a
// batch: its first event is applied alone through the usual path (retry,
// then poison queue), and the following events up to the batch's end come
// one at a time, so a poison event is set aside as it was without
// batching.
type Runner struct {
	cfg     RunnerConfig
	byName  map[string]Runnable
	ready   chan struct{}
	rebuild sync.WaitGroup
	// starting names the projections whose rebuild was accepted (202) and
	// has not finished: a status read right after the answer already says
	// "rebuilding", and a second request is refused while one runs.
	mu       sync.Mutex
	starting map[string]bool
	// stop is closed when Run's context ends (a message's own context may
	// outlive it).
	stop chan struct{}
	// epoch is the forwarder's current subscription run (a string), resync
	// asks it to start a new one from the lowest checkpoint.
	epoch  atomic.Value
	runID  string
	resync chan struct{}
	// seen is the highest position the forwarder has received from the
	// store: the log goes at least that far.
	seen atomic.Uint64
}

// forwardBuffer is how many events the forwarder reads from the store
// ahead of what the transport has taken.
const forwardBuffer = 1024

// batcher is a Runnable that may take batches (projections.Live).
type batcher interface {
	Runnable
	Batched() bool
	ApplyBatch(ctx context.Context, events []Event) error
}

func (r *Runner) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// NewRunner builds a Runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Topic == "" {
		cfg.Topic = EventsTopic
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	r := &Runner{cfg: cfg, byName: map[string]Runnable{}, ready: make(chan struct{}), starting: map[string]bool{}, stop: make(chan struct{}),
		runID: watermill.NewShortUUID(), resync: make(chan struct{}, 1)}
	r.epoch.Store("")
	for _, p := range cfg.Projections {
		if _, dup := r.byName[p.Name()]; dup {
			return nil, fmt.Errorf("projections: duplicate projection %q", p.Name())
		}
		r.byName[p.Name()] = p
	}
	return r, nil
}

// Run runs the router (and the forwarder) until ctx ends or one fails.
func (r *Runner) Run(ctx context.Context) error {
	logger := WatermillLogger(r.cfg.Logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return err
	}
	poison, err := middleware.PoisonQueue(r.cfg.Publisher, r.cfg.Topic+PoisonSuffix)
	if err != nil {
		return err
	}
	retry := middleware.Retry{MaxRetries: 5, InitialInterval: 50 * time.Millisecond, MaxInterval: 2 * time.Second, Multiplier: 2, Logger: logger}.Middleware
	for _, p := range r.cfg.Projections {
		sub, err := r.cfg.Subscriber(p.Name())
		if err != nil {
			return fmt.Errorf("projections: subscriber for %s: %w", p.Name(), err)
		}
		// Each projection's handler in its own chain, the outermost first,
		// so that setAside knows whose event the poison queue took.
		chain := append([]message.HandlerMiddleware{middleware.CorrelationID, r.setAside(p), poison, retry, middleware.Recoverer}, r.cfg.Middleware...)
		apply := r.handler(p)
		h := message.HandlerFunc(func(msg *message.Message) ([]*message.Message, error) { return nil, apply(msg) })
		for i := len(chain) - 1; i >= 0; i-- {
			h = chain[i](h)
		}
		router.AddConsumerHandler(p.Name(), r.cfg.Topic, sub, func(msg *message.Message) error {
			_, err := h(msg)
			return err
		})
	}
	g, gctx := errgroup.WithContext(ctx)
	stopWatch := context.AfterFunc(gctx, func() { close(r.stop) })
	defer stopWatch()
	g.Go(func() error { return router.Run(gctx) })
	g.Go(func() error {
		select {
		case <-router.Running():
		case <-gctx.Done():
			return nil
		}
		close(r.ready)
		if !r.cfg.Forward {
			return nil
		}
		return r.forward(gctx)
	})
	err = g.Wait()
	r.rebuild.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// setAside moves p past an event the poison queue (inside it) took: the
// retries gave up on it and it was published to the poison topic, so the
// projection goes on without it (unless the message's run ended first),
// and the next event's message does not take it for a gap (which would
// have the forwarder republish it, and it fail again, for ever). The operator finds it in the poison topic and the
// log, and a rebuild once the cause is fixed applies it.
func (r *Runner) setAside(p Runnable) message.HandlerMiddleware {
	log := r.cfg.Logger.With().Str("projection", p.Name()).Logger()
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil || msg.Metadata.Get(middleware.ReasonForPoisonedKey) == "" {
				return out, err
			}
			if msg.Context().Err() != nil || r.stopping() {
				// Given up because its forwarder's run ended (a resync: the
				// event is published again) or the runner stops: not poison.
				return out, err
			}
			rec, perr := FromMessage(msg)
			if perr != nil {
				return out, err
			}
			if rec.Position > p.Position() {
				p.Skip(rec.Position)
			}
			log.Error().Uint64("position", rec.Position).Str("stream", rec.StreamID).Str("type", rec.Type).
				Str("reason", msg.Metadata.Get(middleware.ReasonForPoisonedKey)).
				Msg("event set aside in the poison queue; the projection goes on without it")
			return out, err
		}
	}
}

// Ready is closed once the handlers run.
func (r *Runner) Ready() <-chan struct{} { return r.ready }

// forward publishes every event after the lowest checkpoint, in order,
// resubscribing with backoff if the subscription drops, and at once when a
// consumer saw a gap.
func (r *Runner) forward(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for n := 1; ; n++ {
		from := r.lowestCheckpoint(ctx)
		epoch := r.runID + "." + strconv.Itoa(n)
		r.epoch.Store(epoch)
		select { // a request older than this run is answered by it
		case <-r.resync:
		default:
		}
		sctx, cancel := context.WithCancel(ctx)
		resynced := make(chan struct{})
		go func() {
			select {
			case <-r.resync:
				close(resynced)
				cancel()
			case <-sctx.Done():
			}
		}()
		// The subscription fills buf (and seen) while publish empties it,
		// so that seen runs ahead of a transport that blocks.
		buf := make(chan eventstore.RecordedEvent, forwardBuffer)
		prev := from
		var pubErr error
		published := make(chan struct{})
		go func() {
			defer close(published)
			var ahead []uint64 // positions forwarded and not yet applied by every running projection
			for {
				var e eventstore.RecordedEvent
				select {
				case e = <-buf:
				case <-sctx.Done():
					return
				}
				if r.cfg.MaxAhead > 0 {
					var err error
					if ahead, err = r.holdBack(sctx, ahead, e.Position); err != nil {
						return
					}
				}
				msg := ToMessage(e)
				msg.Metadata.Set(MetaPrevPosition, strconv.FormatUint(prev, 10))
				msg.Metadata.Set(MetaEpoch, epoch)
				// In one process (GoChannel with PreserveContext) the consumers
				// share this decoding instead of each decoding the payload;
				// across processes they decode it themselves.
				ev, derr := Decode(r.cfg.Registry, e)
				msg.SetContext(context.WithValue(sctx, decodedKey{}, decoded{ev, derr}))
				if err := r.cfg.Publisher.Publish(r.cfg.Topic, msg); err != nil {
					pubErr = err
					cancel()
					return
				}
				prev = e.Position
			}
		}()
		err := r.cfg.Store.SubscribeAll(sctx, from, func(ctx context.Context, e eventstore.RecordedEvent) error {
			backoff = 100 * time.Millisecond
			for s := r.seen.Load(); e.Position > s && !r.seen.CompareAndSwap(s, e.Position); s = r.seen.Load() {
			}
			select {
			case buf <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		cancel()
		<-published
		if pubErr != nil {
			err = pubErr
		}
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-resynced:
			r.cfg.Logger.Warn().Uint64("position", from).Uint64("published_up_to", prev).Msg("a consumer missed events; republishing from the lowest checkpoint")
			continue
		default:
		}
		r.cfg.Logger.Error().Err(err).Uint64("position", from).Dur("backoff", backoff).Msg("event forwarder stopped; resubscribing")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// holdBack records pos as forwarded and, once more than MaxAhead
// forwarded positions may be unapplied, drops those the furthest running
// projection has applied, waiting while more than MaxAhead remain (a
// failed projection is not waited for: it no longer advances). The
// forwarder keeps pace with the fastest projection, not the slowest: one
// that falls further behind than the transport keeps (a stream trimmed to
// a length) finds the events it missed gone, and reads them from the
// store (see gap), so a slow projection never holds back the others.
func (r *Runner) holdBack(ctx context.Context, ahead []uint64, pos uint64) ([]uint64, error) {
	ahead = append(ahead, pos)
	for len(ahead) > r.cfg.MaxAhead {
		high, ok := r.furthestRunning()
		i := 0
		for i < len(ahead) && (!ok || ahead[i] <= high) {
			i++
		}
		if ahead = ahead[i:]; len(ahead) <= r.cfg.MaxAhead {
			break
		}
		select {
		case <-ctx.Done():
			return ahead, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return ahead, nil
}

// furthestRunning is the highest position seen by a projection that has
// not failed (ok false when every projection has failed).
func (r *Runner) furthestRunning() (high uint64, ok bool) {
	for _, p := range r.cfg.Projections {
		if state, _ := p.State(); state == "failed" {
			continue
		}
		if pos := p.Position(); !ok || pos > high {
			high, ok = pos, true
		}
	}
	return high, ok
}

// gap reports whether msg is to be dropped because it follows an event
// that p never received: its predecessor lies beyond what p has seen (the
// transport lost or trimmed the messages between, or p fell further
// behind than the stream keeps). p first reads the events it missed from
// the store and applies them (catchUp); then msg is applied as usual. Only
// when that fails (a store that does not answer, an event p cannot apply)
// is the message dropped and, in the forwarder's current run, the
// forwarder asked to republish from the lowest checkpoint (the missing
// events then come through the usual path: retry, poison queue). A runner
// that does not forward cannot ask: it applies the message as it comes.
func (r *Runner) gap(p Runnable, msg *message.Message, log zerolog.Logger) bool {
	ps := msg.Metadata.Get(MetaPrevPosition)
	if ps == "" {
		return false
	}
	prev, err := strconv.ParseUint(ps, 10, 64)
	if err != nil {
		return false
	}
	have := p.Position()
	if prev <= have {
		return false
	}
	err = r.catchUp(msg.Context(), log, p, prev)
	if err == nil {
		log.Debug().Uint64("from", have).Uint64("to", prev).Str("position", msg.Metadata.Get(MetaPosition)).Msg("events missing before this one were read from the store")
		return false
	}
	if !r.cfg.Forward {
		return false
	}
	if msg.Metadata.Get(MetaEpoch) == r.epoch.Load().(string) {
		log.Warn().Err(err).Uint64("seen", p.Position()).Uint64("prev", prev).Str("position", msg.Metadata.Get(MetaPosition)).Msg("events missing before this one; asking the forwarder to republish")
		select {
		case r.resync <- struct{}{}:
		default:
		}
	}
	return true
}

// catchUp applies to p the events of the log after its position up to and
// including position to, read from the store a page (MaxBatch) at a time:
// as batches when p takes them, one by one otherwise. Unknown event types
// are skipped, as the handler skips them; an event that cannot be decoded
// or applied ends it with an error, the events before it applied.
func (r *Runner) catchUp(ctx context.Context, log zerolog.Logger, p Runnable, to uint64) error {
	for {
		have := p.Position()
		if have >= to {
			return nil
		}
		recs, err := r.cfg.Store.ReadAll(ctx, have, max(r.cfg.MaxBatch, 1))
		if err != nil {
			return fmt.Errorf("projections: read the log after %d: %w", have, err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("projections: the log ends at %d, before %d", have, to)
		}
		events, through, derr := r.decodeThrough(make([]Event, 0, len(recs)), have, recs, to)
		if err := r.applyEvents(ctx, log, p, events); err != nil {
			return err
		}
		p.Skip(through)
		if derr != nil {
			return derr
		}
	}
}

func (r *Runner) lowestCheckpoint(ctx context.Context) uint64 {
	var low uint64
	for i, p := range r.cfg.Projections {
		c, err := p.Checkpoint(ctx)
		if err != nil {
			return 0
		}
		if i == 0 || c < low {
			low = c
		}
	}
	return low
}

// decodedKey carries an event decoded once by the forwarder to the
// in-process consumers.
type decodedKey struct{}

type decoded struct {
	ev  Event
	err error
}

// ToMessage wraps a stored event as a Watermill message (id = event id).
func ToMessage(e eventstore.RecordedEvent) *message.Message {
	msg := message.NewMessage(e.ID.String(), e.Data)
	msg.Metadata.Set(MetaPosition, strconv.FormatUint(e.Position, 10))
	msg.Metadata.Set(MetaStream, e.StreamID)
	msg.Metadata.Set(MetaRevision, strconv.FormatUint(e.Revision, 10))
	msg.Metadata.Set(MetaType, e.Type)
	msg.Metadata.Set(MetaRecordedAt, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(MetaEventMeta, string(e.Metadata))
	if cid := correlationOf(e.Metadata); cid != "" {
		middleware.SetCorrelationID(cid, msg)
	}
	return msg
}

// FromMessage restores the stored event from a message.
func FromMessage(msg *message.Message) (eventstore.RecordedEvent, error) {
	pos, err1 := strconv.ParseUint(msg.Metadata.Get(MetaPosition), 10, 64)
	rev, err2 := strconv.ParseUint(msg.Metadata.Get(MetaRevision), 10, 64)
	at, err3 := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaRecordedAt))
	if err := errors.Join(err1, err2, err3); err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("projections: malformed message %s: %w", msg.UUID, err)
	}
	e := eventstore.RecordedEvent{
		StreamID: msg.Metadata.Get(MetaStream), Type: msg.Metadata.Get(MetaType), Revision: rev, Position: pos,
		Data: msg.Payload, Metadata: []byte(msg.Metadata.Get(MetaEventMeta)), RecordedAt: at,
	}
	if err := e.ID.UnmarshalText([]byte(msg.UUID)); err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("projections: message id %q: %w", msg.UUID, err)
	}
	return e, nil
}

func (r *Runner) handler(p Runnable) message.NoPublishHandlerFunc {
	log := r.cfg.Logger.With().Str("projection", p.Name()).Logger()
	b, _ := p.(batcher)
	var single atomic.Uint64 // after a failed batch: events up to here come one at a time
	return func(msg *message.Message) error {
		rec, err := FromMessage(msg)
		if err != nil {
			return err
		}
		if r.gap(p, msg, log) {
			return nil
		}
		if b != nil && rec.Position <= p.Position() {
			return nil // applied already, with a batch read ahead
		}
		var e Event
		if d, ok := msg.Context().Value(decodedKey{}).(decoded); ok && d.ev.Position == rec.Position {
			e, err = d.ev, d.err
		} else {
			e, err = Decode(r.cfg.Registry, rec)
		}
		if errors.Is(err, domain.ErrUnknownEventType) {
			log.Warn().Str("type", rec.Type).Uint64("position", rec.Position).Msg("skipping unknown event type")
			p.Skip(rec.Position)
			return nil
		}
		if err != nil {
			return err
		}
		if b != nil && r.cfg.MaxBatch > 1 && r.seen.Load() > e.Position && e.Position > single.Load() && b.Batched() {
			return r.applyAhead(msg.Context(), log, b, e, &single)
		}
		return r.apply(msg.Context(), log, p, e)
	}
}

// applyAhead applies e together with the events the log holds after it
// (up to MaxBatch in all; see Runner). Events that cannot be decoded end
// the batch (their messages get the usual treatment); events of unknown
// types are skipped, as the handler skips them.
func (r *Runner) applyAhead(ctx context.Context, log zerolog.Logger, p batcher, e Event, single *atomic.Uint64) error {
	recs, err := r.cfg.Store.ReadAll(ctx, e.Position, r.cfg.MaxBatch-1)
	if err != nil {
		log.Debug().Err(err).Uint64("position", e.Position).Msg("reading ahead failed; applying the event alone")
		recs = nil
	}
	// through: the last position the batch accounts for. An event that
	// cannot be decoded ends it (its message gets the usual treatment).
	batch, through, _ := r.decodeThrough(append(make([]Event, 0, len(recs)+1), e), e.Position, recs, math.MaxUint64)
	if err = r.applyBatch(ctx, log, p, batch); err == nil {
		p.Skip(through)
		return nil
	}
	if ctx.Err() != nil || r.stopping() || len(batch) == 1 {
		return err
	}
	log.Warn().Err(err).Uint64("from", e.Position).Uint64("to", through).Int("events", len(batch)).Msg("batch failed; applying its events one at a time")
	single.Store(through)
	return r.apply(ctx, log, p, e)
}

// decodeThrough appends to events the events of recs up to position to,
// in order, leaving out those of unknown types (as the handler skips
// them); through, starting at from, is the last position they account
// for. An event that cannot be decoded ends them, its error returned.
func (r *Runner) decodeThrough(events []Event, from uint64, recs []eventstore.RecordedEvent, to uint64) (_ []Event, through uint64, err error) {
	through = from
	for _, rec := range recs {
		if rec.Position > to {
			break
		}
		ev, err := Decode(r.cfg.Registry, rec)
		if errors.Is(err, domain.ErrUnknownEventType) {
			through = rec.Position
			continue
		}
		if err != nil {
			return events, through, err
		}
		events = append(events, ev)
		through = rec.Position
	}
	return events, through, nil
}

// applyEvents applies events to p: as one batch when p takes batches, one by
// one otherwise.
func (r *Runner) applyEvents(ctx context.Context, log zerolog.Logger, p Runnable, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	if b, ok := p.(batcher); ok && r.cfg.MaxBatch > 1 && b.Batched() {
		return r.applyBatch(ctx, log, b, events)
	}
	for _, e := range events {
		if err := r.apply(ctx, log, p, e); err != nil {
			return err
		}
	}
	return nil
}

// applyBatch applies events to p at once, retried in place while the read
// model is unavailable (see apply), and records the batch's size and time.
func (r *Runner) applyBatch(ctx context.Context, log zerolog.Logger, p batcher, events []Event) error {
	start := time.Now()
	err := r.retryUnavailable(ctx, log, events[0], func() error { return p.ApplyBatch(ctx, events) })
	if err == nil {
		r.cfg.Metrics.observe(p.Name(), len(events), time.Since(start))
	}
	return err
}

// apply applies e. While the read model's server is unavailable the event
// is retried here, in place, with backoff, for as long as it takes: handing
// it to the retry middleware and then the poison queue would skip it and
// the events after it would be applied over the gap. Any other error goes
// to the router (retry, then poison queue).
func (r *Runner) apply(ctx context.Context, log zerolog.Logger, p Runnable, e Event) error {
	start := time.Now()
	err := r.retryUnavailable(ctx, log, e, func() error { return p.Apply(ctx, e) })
	if err == nil {
		r.cfg.Metrics.observe(p.Name(), 1, time.Since(start))
	}
	return err
}

// retryUnavailable runs apply (of e, or of a batch that starts with e),
// retrying it in place while the read model is unavailable (see apply).
func (r *Runner) retryUnavailable(ctx context.Context, log zerolog.Logger, e Event, apply func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := apply()
		if err == nil {
			if attempt > 1 {
				log.Info().Uint64("position", e.Position).Int("attempts", attempt).Msg("projection apply succeeded after the read model came back")
			}
			return nil
		}
		if !errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil || r.stopping() {
			log.Error().Err(err).Uint64("position", e.Position).Str("stream", e.StreamID).Msg("projection apply failed")
			return err
		}
		if attempt == 1 || attempt%20 == 0 {
			log.Warn().Err(err).Uint64("position", e.Position).Int("attempt", attempt).Msg("read model unavailable; retrying the event in place")
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		case <-r.stop:
			return err // shutting down: the event stays unacknowledged
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Names lists the runner's projections, in the order of its configuration.
func (r *Runner) Names() []string {
	out := make([]string, len(r.cfg.Projections))
	for i, p := range r.cfg.Projections {
		out[i] = p.Name()
	}
	return out
}

// WaitFor blocks until projection name has applied pos (bounded by ctx).
func (r *Runner) WaitFor(ctx context.Context, name string, pos uint64) error {
	p, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("projections: unknown projection %q", name)
	}
	return p.WaitFor(ctx, pos)
}

// Statuses reports every projection's position and lag behind the log.
func (r *Runner) Statuses(ctx context.Context) ([]Status, error) {
	head, err := r.cfg.Store.HeadPosition(ctx)
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: event store: %w", domain.ErrUnavailable, err) // a dependency down, not a bug
		}
		return nil, err
	}
	out := make([]Status, 0, len(r.cfg.Projections))
	for _, p := range r.cfg.Projections {
		pos := p.Position()
		state, lastErr := p.State()
		r.mu.Lock()
		if r.starting[p.Name()] {
			state = "rebuilding" // accepted, its goroutine may not have begun
		}
		r.mu.Unlock()
		lag := uint64(0)
		if head > pos {
			lag = head - pos
		}
		st := Status{Name: p.Name(), Position: pos, Lag: lag, Status: state, Error: lastErr}
		if rr, ok := p.(RebuildReporter); ok {
			st.Rebuilt, st.RebuildRate = rr.RebuildProgress()
		}
		out = append(out, st)
	}
	return out, nil
}

// ErrUnknownProjection: no projection of that name.
var ErrUnknownProjection = domain.NewError(domain.ErrNotFound, "unknown_projection", "no projection of that name")

// StartRebuild starts rebuilding projection name in the background into a
// shadow copy; reads keep being served by the current copy until the swap.
func (r *Runner) StartRebuild(ctx context.Context, name string) error {
	p, ok := r.byName[name]
	if !ok {
		return ErrUnknownProjection
	}
	r.mu.Lock()
	if state, _ := p.State(); state == "rebuilding" || r.starting[name] {
		r.mu.Unlock()
		return ErrRebuilding
	}
	r.starting[name] = true
	r.mu.Unlock()
	r.rebuild.Add(1)
	go func() {
		defer r.rebuild.Done()
		defer func() {
			r.mu.Lock()
			delete(r.starting, name)
			r.mu.Unlock()
		}()
		start := time.Now()
		if err := p.Rebuild(context.WithoutCancel(ctx), r.cfg.Store, r.cfg.Registry); err != nil {
			if !errors.Is(err, ErrRebuilding) {
				r.cfg.Logger.Error().Err(err).Str("projection", name).Msg("rebuild failed")
			}
			return
		}
		r.cfg.Logger.Info().Str("projection", name).Dur("took", time.Since(start)).Msg("projection rebuilt and swapped in")
	}()
	return nil
}

func correlationOf(md []byte) string {
	var m struct {
		CorrelationID string `json:"correlationId"`
	}
	if len(md) == 0 || json.Unmarshal(md, &m) != nil {
		return ""
	}
	return m.CorrelationID
}

// NewGoChannel returns the in-process transport: a Watermill GoChannel that
// blocks the forwarder until every projection has acknowledged a message, so
// order is kept and nothing piles up in memory.
func NewGoChannel(l zerolog.Logger) (message.Publisher, func(string) (message.Subscriber, error)) {
	ch := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true, PreserveContext: true}, WatermillLogger(l))
	return ch, func(string) (message.Subscriber, error) { return ch, nil }
}

// WatermillLogger adapts zerolog to Watermill's logger.
func WatermillLogger(l zerolog.Logger) watermill.LoggerAdapter { return wmLogger{l} }

type wmLogger struct{ l zerolog.Logger }

func (w wmLogger) fields(e *zerolog.Event, f watermill.LogFields) *zerolog.Event {
	for k, v := range f {
		e = e.Interface(k, v)
	}
	return e
}
func (w wmLogger) Error(msg string, err error, f watermill.LogFields) {
	w.fields(w.l.Error().Err(err), f).Msg(msg)
}
func (w wmLogger) Info(msg string, f watermill.LogFields)  { w.fields(w.l.Debug(), f).Msg(msg) }
func (w wmLogger) Debug(msg string, f watermill.LogFields) { w.fields(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) Trace(msg string, f watermill.LogFields) { w.fields(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	c := w.l.With()
	for k, v := range f {
		c = c.Interface(k, v)
	}
	return wmLogger{c.Logger()}
}
