package commands

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
)

// entry is the cached, decided state of one doctor stream. Its mutex is the
// per-stream queue: commands for one doctor run one at a time in this
// process, so they queue instead of conflicting.
type entry struct {
	mu    sync.Mutex
	refs  int // guarded by cache.mu
	valid bool
	agg   *doctor.Doctor
	rev   int64  // revision of the last event, -1 for no stream
	pos   uint64 // position of the last event
	// keyed maps the ids of events appended under an Idempotency-Key to
	// their positions (and the appointment they touched), so a retried
	// request is recognised.
	keyed map[uuid.UUID]keyedEvent
}

type keyedEvent struct {
	pos  uint64
	appt string // the appointment the event is about, if any
}

func apptOf(e any) string {
	if ae, ok := e.(doctor.AppointmentEvent); ok {
		return ae.AppointmentRef()
	}
	return ""
}

// cache holds entries, bounded: entries nobody uses are evicted at random
// once there are more than max.
type cache struct {
	mu  sync.Mutex
	m   map[string]*entry
	max int
}

const defaultCacheSize = 50_000

func newCache() *cache { return &cache{m: map[string]*entry{}, max: defaultCacheSize} }

func (c *cache) acquire(id string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil {
		if len(c.m) >= c.max {
			c.evictLocked()
		}
		e = &entry{}
		c.m[id] = e
	}
	e.refs++
	return e
}

// release drops a reference; forget also removes the entry when nobody else
// holds it (used for streams that turned out not to exist).
func (c *cache) release(id string, e *entry, forget bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if forget && e.refs == 0 && c.m[id] == e {
		delete(c.m, id)
	}
}

func (c *cache) evictLocked() {
	n := len(c.m) / 10
	for id, e := range c.m {
		if n <= 0 {
			return
		}
		if e.refs == 0 {
			delete(c.m, id)
			n--
		}
	}
}

// load folds the whole stream afresh.
func (h *Handler) load(ctx context.Context, id string, e *entry) error {
	recs, evs, err := h.readStream(ctx, doctor.StreamID(id), 0)
	if err != nil {
		return err
	}
	e.agg = doctor.New(id)
	e.agg.Load(evs...)
	e.rev, e.pos = -1, 0
	e.keyed = map[uuid.UUID]keyedEvent{}
	e.absorb(recs, evs)
	e.valid = true
	return nil
}

// catchUp folds only the events newer than the cached revision.
func (h *Handler) catchUp(ctx context.Context, id string, e *entry) error {
	recs, evs, err := h.readStream(ctx, doctor.StreamID(id), uint64(e.rev+1))
	if err != nil {
		return err
	}
	e.agg.Load(evs...)
	e.absorb(recs, evs)
	return nil
}

func (e *entry) absorb(recs []eventstore.RecordedEvent, evs []domain.Event) {
	for i, r := range recs {
		if idempotencyKeyOf(r.Metadata) != "" {
			e.keyed[r.ID] = keyedEvent{pos: r.Position, appt: apptOf(evs[i])}
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
func (e *entry) replayed(m Meta, command, stream string) (pos uint64, sameTarget, ok bool) {
	if m.IdempotencyKey == "" {
		return 0, false, false
	}
	sameTarget = m.target == ""
	for i := 1; ; i++ {
		ids := eventIDs(m, command, stream, i)
		k, ok := e.keyed[ids[i-1]]
		if !ok {
			return pos, sameTarget, i > 1
		}
		pos = k.pos
		sameTarget = sameTarget || k.appt == m.target
	}
}

// keyScope is what the event ids of a keyed command are derived from
// besides the key, the actor and the command: the stream, except for a
// booking. A booking's ids do not depend on the doctor, so on a store that
// refuses an event id stored elsewhere the same key reused to book another
// doctor collides in the store and is refused (idempotency_key_reused)
// instead of booking a second appointment. On any other store the key's
// claim refuses it first (see idempotency.go).
func keyScope(command, stream string) string {
	if command == reserveSlotCommand {
		return "booking"
	}
	return stream
}

// decideFunc decides a command on the doctor aggregate at now, recording
// events (or none) or returning a domain error.
type decideFunc func(d *doctor.Doctor, now time.Time) error

// viewFunc reads the result off the aggregate, under the stream's lock.
type viewFunc func(d *doctor.Doctor)

// execDoctor runs one command on a doctor stream: load (cached state, and
// only newer events after a conflict) -> decide -> append with the loaded
// revision -> map errors. It returns the position of the command's last
// event (or of the stream's last event when the command changed nothing).
// A keyed command claims its key for req (see claimKey) while it queues
// for the stream, and goes on only once the claim is stored: it answers
// nothing and appends nothing before.
func (h *Handler) execDoctor(ctx context.Context, command, doctorID string, m Meta, req request, decide decideFunc, view viewFunc) (uint64, error) {
	if doctorID == "" {
		return 0, doctor.ErrDoctorNotFound
	}
	stream := doctor.StreamID(doctorID)
	var claimed chan error
	if m.IdempotencyKey != "" && req.body != nil && h.claimsKey(command) {
		// The claim's append overlaps the wait in the stream's queue, so
		// on a busy doctor it costs no time in the queue.
		claimed = make(chan error, 1)
		go func() { claimed <- h.claimKey(ctx, m, command, stream, m.target, req) }()
	}
	e := h.doctors.acquire(doctorID)
	forget := false
	defer func() { h.doctors.release(doctorID, e, forget) }()
	e.mu.Lock()
	defer e.mu.Unlock()
	if claimed != nil {
		if err := <-claimed; err != nil {
			return 0, err
		}
	}

	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var err error
		switch {
		case !e.valid:
			err = h.load(ctx, doctorID, e)
		case attempt > 0:
			err = h.catchUp(ctx, doctorID, e)
		}
		if err != nil {
			e.valid = false
			return 0, err
		}
		if pos, sameTarget, ok := e.replayed(m, command, keyScope(command, stream)); ok {
			if !sameTarget {
				return 0, ErrIdempotencyKeyReused
			}
			if view != nil {
				view(e.agg)
			}
			return pos, nil
		}
		now := h.clock()
		if err := decide(e.agg, now); err != nil {
			if len(e.agg.Changes()) > 0 {
				e.valid = false // decided half-way: the cached state is not the stored one
			}
			forget = !e.agg.Registered()
			return 0, err
		}
		changes := e.agg.Changes()
		if len(changes) == 0 {
			if view != nil {
				view(e.agg)
			}
			return e.pos, nil
		}
		ids := eventIDs(m, command, keyScope(command, stream), len(changes))
		data, err := encode(changes, ids, m, now)
		if err != nil {
			e.valid = false
			return 0, err
		}
		expected := eventstore.NoStream
		if e.rev >= 0 {
			expected = eventstore.Exact(uint64(e.rev))
		}
		res, err := h.store.Append(ctx, stream, expected, data)
		if err == nil {
			e.agg.ClearChanges()
			e.rev, e.pos = int64(res.NextExpectedRevision), res.Position
			if m.IdempotencyKey != "" {
				for i, id := range ids {
					e.keyed[id] = keyedEvent{pos: res.Position, appt: apptOf(changes[i])}
				}
			}
			if view != nil {
				view(e.agg)
			}
			return res.Position, nil
		}
		// The aggregate applied changes the store did not take: drop it.
		e.valid = false
		if m.IdempotencyKey != "" && errors.Is(err, eventstore.ErrInvalidAppend) {
			// The key's event ids are stored elsewhere: the key was used
			// for another request (a booking of another doctor, on a store
			// that refuses the ids; see keyScope).
			return 0, ErrIdempotencyKeyReused
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return 0, storeErr(err)
		}
		if attempt >= h.maxRetries {
			h.obs.Conflict(command)
			return 0, domain.Detail(ErrConcurrency, "doctor %s changed concurrently %d times; retry", doctorID, attempt+1)
		}
		h.obs.Retry(command)
	}
}

// Doctor returns a snapshot view of a doctor's decided state by calling
// view under the stream's lock (for callers that must read the write model,
// such as the hold reaper).
func (h *Handler) Doctor(ctx context.Context, doctorID string, view viewFunc) error {
	e := h.doctors.acquire(doctorID)
	forget := false
	defer func() { h.doctors.release(doctorID, e, forget) }()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.valid {
		if err := h.load(ctx, doctorID, e); err != nil {
			e.valid = false
			return err
		}
	} else if err := h.catchUp(ctx, doctorID, e); err != nil {
		e.valid = false
		return err
	}
	if !e.agg.Registered() {
		forget = true
		return doctor.ErrDoctorNotFound
	}
	view(e.agg)
	return nil
}
