package rediscache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Invalidation is the projection (named cache_invalidation) that keeps the
// cache honest: on every doctor-stream event it raises that doctor's
// "slots" generation to the event's position, and on the events that change
// the directory entry (DoctorRegistered, ProfileUpdated, ScheduleSet) the
// "profile" generation too, deleting the cached profile. Generations never
// go back, so applying an event twice (redelivery, replay, rebuild) changes
// nothing. Its checkpoint is kept in Redis beside the generations, so the
// runner need not replay the whole log for it on start.
//
// Run it in a projections.Live:
//
//	projections.NewLive(func() *rediscache.Invalidation { return rediscache.NewInvalidation(client, prefix) })
//
// A Redis error fails Apply (the runner retries, then sets the event aside
// in the poison queue); the TTLs bound how long a missed invalidation can
// show an old value.
type Invalidation struct {
	client redis.UniversalClient
	keys   keys

	mu     sync.Mutex
	loaded bool
	pos    uint64
}

var _ projections.Projection = (*Invalidation)(nil)

// NewInvalidation returns the invalidation projection for the cache keys
// under prefix (DefaultPrefix when empty): the same prefix as the Caches
// it invalidates.
func NewInvalidation(client redis.UniversalClient, prefix string) *Invalidation {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Invalidation{client: client, keys: keys{prefix}}
}

// Name implements projections.Projection.
func (*Invalidation) Name() string { return InvalidationName }

// Checkpoint implements projections.Projection: the position of the last
// event applied, as recorded in Redis.
func (v *Invalidation) Checkpoint(ctx context.Context) (uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.load(ctx)
}

func (v *Invalidation) load(ctx context.Context) (uint64, error) {
	if v.loaded {
		return v.pos, nil
	}
	s, err := v.client.Get(ctx, v.keys.checkpoint()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		v.pos = 0
	case err != nil:
		return 0, fmt.Errorf("rediscache: checkpoint: %w", err)
	default:
		if v.pos, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, fmt.Errorf("rediscache: checkpoint %q: %w", s, err)
		}
	}
	v.loaded = true
	return v.pos, nil
}

// StoredCheckpoint reads the invalidation's checkpoint for the cache keys
// under prefix as stored in Redis (0 when none): what a process that does
// not run the projection waits on.
func StoredCheckpoint(ctx context.Context, client redis.UniversalClient, prefix string) (uint64, error) {
	return NewInvalidation(client, prefix).Checkpoint(ctx)
}

// Apply implements projections.Projection.
func (v *Invalidation) Apply(ctx context.Context, e projections.Event) error {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	v.mu.Lock()
	defer v.mu.Unlock()
	if pos, err := v.load(ctx); err == nil && e.Position <= pos {
		return nil
	}
	de, ok := e.Data.(doctor.DoctorEvent)
	if !ok {
		// Nothing to invalidate; the stored checkpoint moves with the next
		// doctor event (replaying these is free).
		v.pos = max(v.pos, e.Position)
		return nil
	}
	fields := []any{strconv.FormatUint(e.Position, 10), fieldSlots}
	switch e.Data.(type) {
	case doctor.DoctorRegistered, doctor.ProfileUpdated, doctor.ScheduleSet:
		fields = append(fields, fieldProfile)
	}
	id := de.DoctorRef()
	err := bumpScript.Run(ctx, v.client, []string{v.keys.gen(id), v.keys.profile(id)}, append(fields, genTTL.Milliseconds())...).Err()
	if err == nil {
		err = checkpointScript.Run(ctx, v.client, []string{v.keys.checkpoint()}, e.Position).Err()
	}
	if err != nil {
		return fmt.Errorf("rediscache: invalidate doctor %s at %d: %w", id, e.Position, err)
	}
	v.pos = max(v.pos, e.Position)
	return nil
}

// applyTimeout bounds the Redis calls of one Apply (the runner retries).
const applyTimeout = 5 * time.Second

// bumpScript: KEYS gen, profile; ARGV position, fields..., gen ttl ms (last).
// Raises each field to position (never lowers it); deletes the cached
// profile when "profile" is raised.
var bumpScript = redis.NewScript(`
local pos = tonumber(ARGV[1])
for i = 2, #ARGV - 1 do
  local g = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if pos > g then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    if ARGV[i] == 'profile' then redis.call('DEL', KEYS[2]) end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV])
return 1
`)

// checkpointScript: KEYS checkpoint; ARGV position. Raises the checkpoint.
var checkpointScript = redis.NewScript(`
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`)
