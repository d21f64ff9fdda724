package commands

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
)

// aggregate is what the command loop needs of a domain aggregate: it folds
// stored events and records the events its behaviour methods decide.
type aggregate interface {
	Load(events ...domain.Event)
	Changes() []domain.Event
	ClearChanges()
	Registered() bool
}

// entry is the cached, decided state of one stream and its queue of
// commands: commands for one stream are decided one batch at a time in
// this process, so they queue instead of conflicting.
type entry[A aggregate] struct {
	// qmu guards queue and serving: the commands waiting for the stream,
	// and whether one of them serves the queue.
	qmu     sync.Mutex
	queue   []*pending[A]
	serving bool

	mu    stateLock // the decided state below
	refs  int       // guarded by streams.mu
	valid bool
	agg   A
	// contended: until then, batches catch up with the stream before
	// deciding (another process wrote it lately: see decideBatch).
	contended time.Time
	rev       int64  // revision of the last event, -1 for no stream
	pos       uint64 // position of the last event
	// snapRev is the revision of the newest snapshot this entry saved or
	// started from (-1: none).
	snapRev int64
	// keyed remembers every event appended under an Idempotency-Key, so a
	// retried request is recognised and answered like the first however
	// old it is. It holds no pointers (the collector does not scan it):
	// about 40 bytes an event.
	keyed keyedEvents
}

// keyedEvents maps the ids of events appended under an Idempotency-Key to
// their positions and the appointment they touched.
type keyedEvents struct {
	m map[uuid.UUID]keyedEvent
	// odd holds the appointment refs that are not UUIDs (none that this
	// engine makes).
	odd map[uuid.UUID]string
}

type keyedEvent struct {
	pos  uint64
	appt uuid.UUID // the appointment the event is about (uuid.Nil: none, or in odd)
}

func newKeyedEvents() keyedEvents { return keyedEvents{m: map[uuid.UUID]keyedEvent{}} }

func (k *keyedEvents) put(id uuid.UUID, pos uint64, e domain.Event) {
	ke := keyedEvent{pos: pos}
	if ae, ok := e.(doctor.AppointmentEvent); ok {
		ref := ae.AppointmentRef()
		if u, err := uuid.Parse(ref); err == nil && u.String() == ref {
			ke.appt = u
		} else if ref != "" {
			if k.odd == nil {
				k.odd = map[uuid.UUID]string{}
			}
			k.odd[id] = ref
		}
	}
	k.m[id] = ke
}

// get returns the position of event id and the appointment it touched.
func (k *keyedEvents) get(id uuid.UUID) (pos uint64, appt string, ok bool) {
	ke, ok := k.m[id]
	if !ok {
		return 0, "", false
	}
	if ke.appt != uuid.Nil {
		return ke.pos, ke.appt.String(), true
	}
	return ke.pos, k.odd[id], true
}

// streams is one kind of stream (doctors, accounts) as the handler knows
// it: the cached state of each, bounded: entries nobody uses are evicted at
// random once there are more than max.
type streams[A aggregate] struct {
	// fresh returns the empty aggregate a stream is folded into.
	fresh func(stream string) A
	// codec snapshots the kind's streams (nil: never; see snapshot.go).
	codec *snapCodec[A]

	mu  sync.Mutex
	m   map[string]*entry[A]
	max int
}

const defaultCacheSize = 50_000

func newStreams[A aggregate](fresh func(stream string) A) *streams[A] {
	return &streams[A]{fresh: fresh, m: map[string]*entry[A]{}, max: defaultCacheSize}
}

func (s *streams[A]) acquire(stream string) *entry[A] {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[stream]
	if e == nil {
		if len(s.m) >= s.max {
			s.evictLocked()
		}
		e = &entry[A]{mu: newStateLock()}
		s.m[stream] = e
	}
	e.refs++
	return e
}

// release drops a reference; forget also removes the entry when nobody else
// holds it (used for streams that turned out not to exist).
func (s *streams[A]) release(stream string, e *entry[A], forget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.refs--
	if forget && e.refs == 0 && s.m[stream] == e {
		delete(s.m, stream)
	}
}

func (s *streams[A]) evictLocked() {
	n := len(s.m) / 10
	for id, e := range s.m {
		if n <= 0 {
			return
		}
		if e.refs == 0 {
			delete(s.m, id)
			n--
		}
	}
}

// load folds the stream afresh: from its newest snapshot when there is
// one, else from its first event. A load that folded SnapshotEvery events
// or more saves a snapshot of what it reached.
func (s *streams[A]) load(ctx context.Context, h *Handler, stream string, e *entry[A]) error {
	if s.restoreSnapshot(ctx, h, stream, e) {
		from := e.rev
		if err := s.catchUp(ctx, h, stream, e); err != nil {
			return err
		}
		e.valid = true
		if e.rev-from >= SnapshotEvery {
			s.saveSnapshot(ctx, h, stream, e)
		}
		return nil
	}
	recs, evs, err := h.readStream(ctx, stream, 0)
	if err != nil {
		return err
	}
	e.agg = s.fresh(stream)
	e.agg.Load(evs...)
	e.rev, e.pos, e.snapRev = -1, 0, -1
	e.keyed = newKeyedEvents()
	e.absorb(recs, evs)
	e.valid = true
	if len(recs) >= SnapshotEvery {
		s.saveSnapshot(ctx, h, stream, e)
	}
	return nil
}

// catchUp folds only the events newer than the cached revision.
func (s *streams[A]) catchUp(ctx context.Context, h *Handler, stream string, e *entry[A]) error {
	recs, evs, err := h.readStream(ctx, stream, uint64(e.rev+1))
	if err != nil {
		return err
	}
	e.agg.Load(evs...)
	e.absorb(recs, evs)
	return nil
}

// current brings e up to the stream's head: a fold when it holds nothing
// valid, otherwise only the newer events.
func (s *streams[A]) current(ctx context.Context, h *Handler, stream string, e *entry[A]) error {
	var err error
	if e.valid {
		err = s.catchUp(ctx, h, stream, e)
	} else {
		err = s.load(ctx, h, stream, e)
	}
	if err != nil {
		e.valid = false
	}
	return err
}

func (e *entry[A]) absorb(recs []eventstore.RecordedEvent, evs []domain.Event) {
	for i, r := range recs {
		if idempotencyKeyOf(r.Metadata) != "" {
			e.keyed.put(r.ID, r.Position, evs[i])
		}
	}
	if n := len(recs); n > 0 {
		e.rev, e.pos = int64(recs[n-1].Revision), recs[n-1].Position
	}
}

// replayed reports whether the keyed command already ran, the position of
// the last event it appended, and whether those events are about the
// appointment m.target (when set): a key used before on another
// appointment is not a retry.
func (e *entry[A]) replayed(m Meta, command, stream string) (pos uint64, sameTarget, ok bool) {
	if m.IdempotencyKey == "" {
		return 0, false, false
	}
	sameTarget = m.target == ""
	for i := 1; ; i++ {
		ids := eventIDs(m, command, stream, i)
		p, appt, ok := e.keyed.get(ids[i-1])
		if !ok {
			return pos, sameTarget, i > 1
		}
		pos = p
		sameTarget = sameTarget || appt == m.target
	}
}

// step is one command on one stream, as the loop runs it.
type step[A aggregate] struct {
	command string
	stream  string
	meta    Meta
	// req is what a keyed command claims its Idempotency-Key for (see
	// claimKey); a nil body claims nothing.
	req request
	// decideReplays makes a keyed retry decide again instead of being
	// answered from the events its first request stored (account openings
	// compare the request with the account that way).
	decideReplays bool
	// decide decides the command on the aggregate at now, recording events
	// (or none) or returning a domain error.
	decide func(agg A, now time.Time) error
	// view reads the result off the aggregate, under the stream's lock.
	view func(agg A)
}

// run is the write side's one loop: load (the cached state; the whole
// stream when nothing valid is cached) -> decide -> append with the loaded
// revision -> map errors. It returns the position of the command's last
// event (or of the stream's last event when the command changed nothing).
//
// Commands for one stream queue in this process. Whoever finds nobody
// serving the queue serves it: it takes every command waiting (up to
// maxBatch), decides each on the state the previous one left, appends all
// their events in one append with the loaded revision and answers each
// (with the position of the append's last event, which is at or after its
// own). A busy doctor thus pays one commit for many bookings instead of
// one each; alone, a command is a batch of one.
//
// A refusal decided on cached state stands only once the stored state is
// known to be the cached one: when the batch's append succeeds (the
// expected revision proves it), or after catching up with the stream's
// tail and deciding again: another process (an api replica) may have
// changed the stream. A version conflict folds the stream again (the
// aggregate holds the refused changes) and decides the batch again, after
// a short jittered back-off, a bounded number of times; then
// ErrConcurrency.
//
// A keyed command that decided to record events claims its key for s.req
// before they are appended (the claims of a batch in parallel): a command
// refused, by its input or by the state, claims nothing and appends
// nothing; a key bound to another request refuses the command and the
// batch is decided again without it.
//
// The caller waits at most until ctx ends (the API's request deadline):
// then it gets ctx's error while its command may still be decided and
// appended by the batch it is in (an unknown outcome; a retry with the
// same Idempotency-Key learns it). Its view is not called after that.
func run[A aggregate](ctx context.Context, h *Handler, kind *streams[A], s step[A]) (uint64, error) {
	var (
		viewMu    sync.Mutex
		abandoned bool
	)
	if view := s.view; view != nil {
		s.view = func(agg A) {
			viewMu.Lock()
			defer viewMu.Unlock()
			if !abandoned {
				view(agg)
			}
		}
	}
	p := &pending[A]{ctx: ctx, s: s, done: make(chan struct{})}
	e := kind.acquire(s.stream)
	e.qmu.Lock()
	e.queue = append(e.queue, p)
	lead := !e.serving
	e.serving = true
	e.qmu.Unlock()
	if lead {
		// Served on a goroutine of its own, so that the leader too can
		// give up when its request's deadline passes while the store does
		// not answer (a network partition): the batch goes on, bounded by
		// batchTimeout.
		go kind.serve(h, e, s.stream)
	}
	select {
	case <-p.done:
		kind.release(s.stream, e, p.forget)
		return p.pos, p.err
	case <-ctx.Done():
		viewMu.Lock()
		select {
		case <-p.done:
			// Decided as the deadline passed, its view run (done closes
			// after the view, which holds viewMu): give the known answer.
			viewMu.Unlock()
			kind.release(s.stream, e, p.forget)
			return p.pos, p.err
		default:
		}
		abandoned = true
		viewMu.Unlock()
		go func() {
			<-p.done
			kind.release(s.stream, e, p.forget)
		}()
		return 0, ctx.Err()
	}
}

// maxBatch bounds the commands decided and appended together.
const maxBatch = 128

// pending is a command waiting in its stream's queue, and its answer.
type pending[A aggregate] struct {
	ctx  context.Context
	s    step[A]
	done chan struct{}

	// The answer, set before done is closed.
	answered bool
	pos      uint64
	err      error
	forget   bool // the stream's aggregate does not exist

	// This round's decision.
	n       int         // events it recorded
	refusal error       // refused on state not yet known to be stored
	dupOf   *pending[A] // an earlier command of the batch with the same key
}

func (p *pending[A]) answer(pos uint64, err error) {
	p.answered, p.pos, p.err = true, pos, err
}

// serve serves e's queue one batch, then hands the queue on (to a new
// goroutine) if more commands wait, so that no caller waits for others'
// batches after its own.
func (kind *streams[A]) serve(h *Handler, e *entry[A], stream string) {
	e.qmu.Lock()
	batch := e.queue
	if len(batch) > maxBatch {
		batch = batch[:maxBatch:maxBatch]
	}
	e.queue = e.queue[len(batch):]
	e.qmu.Unlock()

	e.mu.Lock()
	kind.decideBatch(h, e, stream, batch)
	e.mu.Unlock()
	for _, p := range batch {
		close(p.done)
	}

	e.qmu.Lock()
	if len(e.queue) == 0 {
		e.serving = false
		e.qmu.Unlock()
		return
	}
	e.qmu.Unlock()
	go kind.serve(h, e, stream)
}

// contendedFor is how long after a version conflict a stream's batches
// catch up before deciding.
const contendedFor = 10 * time.Second

// batchTimeout bounds the store operations of one batch. They run on a
// context of their own: one caller going away must not fail the others.
const batchTimeout = 30 * time.Second

// decideBatch decides and appends a batch, under e.mu, and answers every
// command of it.
func (kind *streams[A]) decideBatch(h *Handler, e *entry[A], stream string, batch []*pending[A]) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), batchTimeout)
	defer cancel()
	failAll := func(err error) {
		for _, p := range batch {
			if !p.answered {
				p.answer(0, err)
			}
		}
	}
	read := false // whether e was read from the store for this batch
	if e.valid && time.Now().Before(e.contended) {
		// Another process wrote this stream lately: catch up before
		// deciding, so that the append rarely conflicts (a conflict folds
		// the whole stream again).
		if err := kind.current(ctx, h, stream, e); err != nil {
			failAll(err)
			return
		}
		read = true
	}
	for attempt := 0; ; {
		if !e.valid {
			if err := kind.current(ctx, h, stream, e); err != nil {
				failAll(err)
				return
			}
			read = true
		}
		data, corrupt, err := kind.decideRound(h, e, stream, batch)
		if err != nil {
			e.valid = false
			failAll(err)
			return
		}
		if corrupt != nil {
			// It recorded events and then refused: the cached state is
			// not the stored one. Fold again and decide the batch again;
			// refused on stored state, it stands.
			e.valid = false
			if read {
				corrupt.answer(0, corrupt.refusal)
			}
			continue
		}
		if len(data) == 0 {
			// Nothing to append: every answer left (a refusal, or a
			// command that changes nothing, "already there") rests on the
			// cached state, which another process may have moved on. Look
			// at the stream's tail before giving them.
			if !read && unanswered(batch) {
				if err := kind.current(ctx, h, stream, e); err != nil {
					failAll(err)
					return
				}
				read = true
				continue
			}
			kind.answerRound(e, batch, e.pos)
			return
		}
		if !claimKeys(ctx, h, batch) {
			// A key was bound to another request: decide the batch again
			// without that command.
			e.valid = false
			continue
		}
		expected := eventstore.NoStream
		if e.rev >= 0 {
			expected = eventstore.Exact(uint64(e.rev))
		}
		res, err := h.store.Append(ctx, stream, expected, data)
		if err == nil {
			changes := e.agg.Changes()
			e.agg.ClearChanges()
			e.rev, e.pos = int64(res.NextExpectedRevision), res.Position
			for i, d := range data {
				if idempotencyKeyOf(d.Metadata) != "" {
					e.keyed.put(d.ID, res.Position, changes[i])
				}
			}
			kind.answerRound(e, batch, res.Position)
			if e.rev-e.snapRev >= SnapshotEveryAppended {
				kind.saveSnapshot(ctx, h, stream, e)
			}
			return
		}
		// The aggregate applied changes the store did not take: drop it.
		e.valid = false
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			failAll(storeErr(err))
			return
		}
		e.contended = time.Now().Add(contendedFor)
		for _, p := range batch {
			if p.answered {
				continue
			}
			if attempt >= h.maxRetries {
				h.obs.Conflict(p.s.command)
				p.answer(0, domain.Detail(ErrConcurrency, "%s changed concurrently %d times; retry", stream, attempt+1))
			} else {
				h.obs.Retry(p.s.command)
			}
		}
		if attempt >= h.maxRetries {
			return
		}
		attempt++
		if err := backoff(ctx, attempt); err != nil {
			failAll(err)
			return
		}
	}
}

// unanswered reports whether a command of the batch still waits for its
// answer.
func unanswered[A aggregate](batch []*pending[A]) bool {
	for _, p := range batch {
		if !p.answered {
			return true
		}
	}
	return false
}

// claimKeys claims, in parallel, the Idempotency-Keys of the batch's keyed
// commands that decided to record events (see claimKey). It reports false
// when a claim failed: that command is answered with the error.
func claimKeys[A aggregate](ctx context.Context, h *Handler, batch []*pending[A]) bool {
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, p := range batch {
		s := p.s
		if p.answered || (p.n == 0 && p.dupOf == nil) || s.meta.IdempotencyKey == "" || s.req.body == nil {
			continue
		}
		wg.Go(func() {
			if err := h.claimKey(ctx, s.meta, s.command, s.stream, s.meta.target, s.req); err != nil {
				p.answer(0, err)
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	return !failed.Load()
}

// decideRound decides every unanswered command of the batch on e, in
// order, and returns the events to append. A command that recorded events
// and then refused is returned as corrupt (the round stops there).
func (kind *streams[A]) decideRound(h *Handler, e *entry[A], stream string, batch []*pending[A]) (data []eventstore.EventData, corrupt *pending[A], err error) {
	now := h.clock()
	byFirst := map[uuid.UUID]*pending[A]{}
	for _, p := range batch {
		if p.answered {
			continue
		}
		p.n, p.refusal, p.dupOf = 0, nil, nil
		if err := p.ctx.Err(); err != nil {
			p.answer(0, err)
			continue
		}
		s, m := p.s, p.s.meta
		if pos, sameTarget, ok := e.replayed(m, s.command, s.stream); ok && !s.decideReplays {
			if !sameTarget {
				p.answer(0, ErrIdempotencyKeyReused)
				continue
			}
			// The key's events are stored: a retry only if the key was
			// claimed for this very request (its claim is stored too).
			if err := h.claimKey(p.ctx, m, s.command, s.stream, m.target, s.req); err != nil {
				p.answer(0, err)
				continue
			}
			if s.view != nil {
				s.view(e.agg)
			}
			p.answer(pos, nil)
			continue
		}
		if m.IdempotencyKey != "" {
			if q := byFirst[eventIDs(m, s.command, stream, 1)[0]]; q != nil && !s.decideReplays {
				p.dupOf = q // a retry queued with its first request: the same answer
				continue
			}
		}
		before := len(e.agg.Changes())
		if err := s.decide(e.agg, now); err != nil {
			p.refusal = err
			if len(e.agg.Changes()) > before {
				return nil, p, nil
			}
			continue
		}
		changes := e.agg.Changes()[before:]
		p.n = len(changes)
		if s.view != nil {
			s.view(e.agg)
		}
		if p.n == 0 {
			continue
		}
		d, err := h.encode(changes, eventIDs(m, s.command, stream, p.n), m, now)
		if err != nil {
			return nil, nil, err
		}
		if m.IdempotencyKey != "" {
			byFirst[d[0].ID] = p
		}
		data = append(data, d...)
	}
	return data, nil, nil
}

// answerRound answers the unanswered commands of a batch whose round
// stands (appended at pos, or with nothing to append).
func (kind *streams[A]) answerRound(e *entry[A], batch []*pending[A], pos uint64) {
	for _, p := range batch {
		switch {
		case p.answered:
		case p.refusal != nil:
			p.forget = !e.agg.Registered()
			p.answer(0, p.refusal)
		case p.dupOf != nil:
			if p.s.view != nil {
				p.s.view(e.agg)
			}
			p.answer(pos, p.dupOf.err)
		default:
			p.answer(pos, nil)
		}
	}
}

// backoff waits a random time of up to 2^attempt ms (at most 64 ms) before
// the attempt-th retry after a version conflict, so that processes racing
// for one stream spread out instead of colliding again in step. Inside one
// process commands for one stream queue and never conflict.
func backoff(ctx context.Context, attempt int) error {
	limit := time.Millisecond << min(attempt, 6)
	t := time.NewTimer(rand.N(limit))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// view calls see with the stream's current state (the cached state caught
// up with the stream's tail) and the position of its last event, under the
// stream's lock. It reports false for a stream whose aggregate is not
// registered.
func view[A aggregate](ctx context.Context, h *Handler, kind *streams[A], stream string, see func(agg A, pos uint64)) (bool, error) {
	e := kind.acquire(stream)
	forget := false
	defer func() { kind.release(stream, e, forget) }()
	if err := e.mu.LockContext(ctx); err != nil {
		return false, err
	}
	defer e.mu.Unlock()
	if err := kind.current(ctx, h, stream, e); err != nil {
		return false, err
	}
	if !e.agg.Registered() {
		forget = true
		return false, nil
	}
	see(e.agg, e.pos)
	return true, nil
}

// peek is view without the catch-up when the stream's state is cached: for
// reads that may be a little behind the stream (a doctor's grid), or that
// follow a decision that caught the cache up.
func peek[A aggregate](ctx context.Context, h *Handler, kind *streams[A], stream string, see func(agg A)) (bool, error) {
	e := kind.acquire(stream)
	forget := false
	defer func() { kind.release(stream, e, forget) }()
	if err := e.mu.LockContext(ctx); err != nil {
		return false, err
	}
	defer e.mu.Unlock()
	if !e.valid {
		if err := kind.current(ctx, h, stream, e); err != nil {
			return false, err
		}
	}
	if !e.agg.Registered() {
		forget = true
		return false, nil
	}
	see(e.agg)
	return true, nil
}

// stateLock guards an entry's decided state: a mutex whose waiters can
// give up when their context ends. A batch holds it across its append, and
// an append the store does not answer (a network partition) must not keep
// the reads of that stream (a booking's check of the doctor's grid, a
// view) waiting past their request's deadline, as a sync.Mutex would.
type stateLock chan struct{}

func newStateLock() stateLock { return make(stateLock, 1) }

// Lock waits for the lock as long as it takes (the batches: bounded by
// their own timeout).
func (l stateLock) Lock() { l <- struct{}{} }

// LockContext waits for the lock until ctx ends, then returns its error.
func (l stateLock) LockContext(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l stateLock) Unlock() { <-l }
