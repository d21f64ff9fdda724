package projections

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
)

// Live holds the current instance of a projection and can replace it with
// a copy rebuilt from the log, without readers ever seeing a gap: the copy
// is built beside the current one and swapped in once it has caught up.
type Live[T Projection] struct {
	name     string
	factory  func() T
	mu       sync.Mutex // serialises Apply and the swap
	cur      atomic.Pointer[T]
	progress Progress
	state    atomic.Value // string: running, rebuilding, failed
	lastErr  atomic.Value // string
	// The running rebuild's progress (rebuilt: the shadow's position, 0
	// when none runs; events it applied since started, Unix ns), and the
	// rate of the last rebuild finished (math.Float64bits).
	rebuilt, rebuiltEvents atomic.Uint64
	rebuildStarted         atomic.Int64
	lastRate               atomic.Uint64
}

// RebuildProgress implements RebuildReporter: the running rebuild's
// position and events per second, or 0 and the last finished rebuild's
// rate.
func (l *Live[T]) RebuildProgress() (uint64, float64) {
	pos := l.rebuilt.Load()
	if pos == 0 {
		return 0, math.Float64frombits(l.lastRate.Load())
	}
	return pos, rate(l.rebuiltEvents.Load(), l.rebuildStarted.Load())
}

// rate is events per second since the Unix ns start.
func rate(events uint64, start int64) float64 {
	d := time.Since(time.Unix(0, start)).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(events) / d
}

// NewLive wraps the projection that factory makes.
func NewLive[T Projection](factory func() T) *Live[T] { return NewLiveFrom(factory(), factory) }

// NewLiveFrom wraps p (an instance loaded from its saved state, say);
// factory makes the empty copies a rebuild fills.
func NewLiveFrom[T Projection](p T, factory func() T) *Live[T] {
	l := &Live[T]{name: p.Name(), factory: factory}
	l.cur.Store(&p)
	l.state.Store("running")
	l.lastErr.Store("")
	// A read model that keeps its data (MongoDB, or a saved state) starts
	// at its stored checkpoint; the forwarder sends nothing older, so waiters must not
	// wait for those positions to be applied again.
	if c, err := p.Checkpoint(context.Background()); err == nil {
		l.progress.Advance(c)
	}
	return l
}

// Current is the instance readers should ask.
func (l *Live[T]) Current() T { return *l.cur.Load() }

// Instance implements Instance: Current, as a Projection.
func (l *Live[T]) Instance() Projection { return l.Current() }

// Name implements Projection.
func (l *Live[T]) Name() string { return l.name }

// Checkpoint implements Projection.
func (l *Live[T]) Checkpoint(ctx context.Context) (uint64, error) { return l.Current().Checkpoint(ctx) }

// Apply implements Projection.
func (l *Live[T]) Apply(ctx context.Context, e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.Current().Apply(ctx, e); err != nil {
		l.lastErr.Store(err.Error())
		return err
	}
	l.progress.Advance(e.Position)
	return nil
}

// ApplyBatch applies events, in order, as Apply would one by one: at once
// when the current instance is a BatchProjection. On an error the position
// stays where it was (what was applied is applied again, a no-op).
func (l *Live[T]) ApplyBatch(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := applyAll(ctx, l.Current(), events); err != nil {
		l.lastErr.Store(err.Error())
		return err
	}
	l.progress.Advance(events[len(events)-1].Position)
	return nil
}

// Batched reports whether the current instance applies batches at once
// (the Runner reads ahead only for those).
func (l *Live[T]) Batched() bool {
	_, ok := any(l.Current()).(BatchProjection)
	return ok
}

// applyAll applies events to p: as one batch if p takes batches, one by
// one otherwise.
func applyAll(ctx context.Context, p Projection, events []Event) error {
	if b, ok := p.(BatchProjection); ok {
		return b.ApplyBatch(ctx, events)
	}
	for _, e := range events {
		if err := p.Apply(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// Skip records that the event at pos was seen but has nothing for this
// projection (an event type this version does not know).
func (l *Live[T]) Skip(pos uint64) { l.progress.Advance(pos) }

// WaitFor blocks until the projection has applied pos, or ctx ends.
func (l *Live[T]) WaitFor(ctx context.Context, pos uint64) error { return l.progress.WaitFor(ctx, pos) }

// Position is the last position seen by the projection.
func (l *Live[T]) Position() uint64 { return l.progress.Position() }

// State is running, rebuilding or failed; LastError the last apply error.
func (l *Live[T]) State() (state, lastErr string) {
	return l.state.Load().(string), l.lastErr.Load().(string)
}

// Shadower is implemented by a projection whose data outlives the process
// (MongoDB): a fresh instance from the factory would share the current
// one's storage, so a rebuild asks the current instance for an empty copy
// beside it instead, which nobody reads until it is promoted.
type Shadower[T any] interface {
	NewShadow(ctx context.Context) (T, error)
}

// Promoter is implemented by a shadow copy that must be made the one
// readers see (in every process) before it replaces the current instance.
// Live calls Promote under the apply lock, once the shadow has caught up,
// and swaps in the instance it returns; an error leaves the current
// instance in place.
type Promoter[T any] interface {
	Promote(ctx context.Context) (T, error)
}

// ErrRebuilding: a rebuild of the projection is already running.
var ErrRebuilding = domain.NewError(domain.ErrConflict, "rebuild_in_progress", "a rebuild of this projection is already running")

// Rebuild builds a fresh copy from the start of the log, then swaps it in
// under the apply lock once it has caught up with the current copy. The
// copy comes from the factory, or from the current instance's NewShadow
// when it is a Shadower; a copy that is a Promoter is promoted before the
// swap.
func (l *Live[T]) Rebuild(ctx context.Context, store eventstore.Store, reg *domain.Registry) error {
	if !l.state.CompareAndSwap("running", "rebuilding") && !l.state.CompareAndSwap("failed", "rebuilding") {
		return ErrRebuilding
	}
	l.rebuiltEvents.Store(0)
	l.rebuildStarted.Store(time.Now().UnixNano())
	err := l.rebuild(ctx, store, reg)
	if err == nil {
		l.lastRate.Store(math.Float64bits(rate(l.rebuiltEvents.Load(), l.rebuildStarted.Load())))
	}
	l.rebuilt.Store(0)
	if err != nil {
		l.state.Store("failed")
		l.lastErr.Store("rebuild: " + err.Error())
		return err
	}
	l.state.Store("running")
	return nil
}

func (l *Live[T]) rebuild(ctx context.Context, store eventstore.Store, reg *domain.Registry) error {
	var shadow T
	if s, ok := any(l.Current()).(Shadower[T]); ok {
		var err error
		if shadow, err = s.NewShadow(ctx); err != nil {
			return fmt.Errorf("projections: rebuild %s: %w", l.name, err)
		}
	} else {
		shadow = l.factory()
	}
	var after uint64
	catchUp := func(until uint64) error {
		for until == 0 || after < until {
			recs, err := store.ReadAll(ctx, after, 1000)
			if err != nil {
				return err
			}
			// A page is applied as one batch (a BatchProjection writes it
			// at once); events of unknown types are skipped, as the live
			// projector does.
			batch := make([]Event, 0, len(recs))
			for _, r := range recs {
				e, err := Decode(reg, r)
				if errors.Is(err, domain.ErrUnknownEventType) {
					continue
				}
				if err != nil {
					return fmt.Errorf("projections: rebuild %s at %d: %w", l.name, r.Position, err)
				}
				batch = append(batch, e)
			}
			if len(batch) > 0 {
				if err := applyAll(ctx, shadow, batch); err != nil {
					return fmt.Errorf("projections: rebuild %s at %d..%d: %w", l.name, batch[0].Position, batch[len(batch)-1].Position, err)
				}
			}
			if len(recs) > 0 {
				after = recs[len(recs)-1].Position
				l.rebuilt.Store(after)
				l.rebuiltEvents.Add(uint64(len(recs)))
			}
			if len(recs) < 1000 {
				return nil
			}
		}
		return nil
	}
	if err := catchUp(0); err != nil { // the bulk, while the current copy serves
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := l.Current().Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := catchUp(cur); err != nil { // the last few, with applies paused
		return err
	}
	if p, ok := any(shadow).(Promoter[T]); ok {
		if shadow, err = p.Promote(ctx); err != nil {
			return fmt.Errorf("projections: rebuild %s: promote: %w", l.name, err)
		}
	}
	l.cur.Store(&shadow)
	l.progress.Advance(after)
	return nil
}
