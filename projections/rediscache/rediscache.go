// Package rediscache is a cache-aside layer in Redis in front of the two
// hottest reads of the read side: a doctor's profile
// (projections.Directory.Doctor) and a doctor's free slots
// (projections.SlotsJSON.FreeSlotsJSON). It is a read-side convenience
// only: command handlers never read it, so it is never on the booking
// decision path (the doctor stream's expected revision is).
//
// # Keys
//
// Every key of a doctor shares the hash tag {doc:<id>}, so the Lua scripts
// that touch several of them work on Redis Cluster too:
//
//	<prefix>:{doc:<id>}:gen                        hash: profile, slots -> position of the last invalidating event
//	<prefix>:{doc:<id>}:profile                    hash: gen, pos, v (JSON of projections.Doctor)
//	<prefix>:{doc:<id>}:slots:<from>:<days>:<min>  hash: gen, pos, v (the FreeSlotsJSON bytes), from, until (holds)
//	<prefix>:checkpoint:cache_invalidation         the invalidation projection's checkpoint
//
// # Revision guard
//
// The invalidation projection (Invalidation, named cache_invalidation) bumps
// a doctor's generation to the position of every event that changes the
// doctor's profile ("profile": DoctorRegistered, ProfileUpdated,
// ScheduleSet) or free slots ("slots": every doctor-stream event), never
// backwards. A fill reads the generation g first, then the backing read
// model, and stores the value (with g and the read model's position p)
// through one script that refuses to write when
//
//   - the generation is no longer g: an invalidation arrived during the fill
//     (the late fill would overwrite a newer state with an older one);
//   - p < g: the backing read model has not yet applied the invalidating
//     event (the invalidation projection ran ahead of the read model's);
//   - the stored value has a position above p: never replace newer by older.
//
// A read is a hit only when the stored generation equals the current one,
// so an invalidation is one HSET and never a key scan. TTLs (jittered) are
// the safety net for invalidations that could not be written.
//
// # Free slots and time
//
// A free-slots answer depends on the instant asked about as well as on the
// events: a slot leaves the answer once it is within the doctor's minimum
// notice, and a new day enters the booking window at local midnight. Slot
// starts, notices and zone offsets are whole minutes, so these changes
// happen on minute boundaries and the answer is the same for every instant
// strictly inside one UTC minute. The key therefore carries the minute
// (rather than only capping a TTL at the next boundary: with a TTL alone, a
// value filled at 10:00:59.9 could still be served at 10:01:00.1 in another
// replica whose clock runs ahead). An instant exactly on a minute boundary
// is answered by the backing store without the cache. Each slots key lives
// until the end of its minute (plus a second): at most one fill per key,
// minute and process reaches the backing store, and every slots key of a
// doctor turns over at each minute (the price of exactness; the memory
// read model's own answer cache absorbs those fills). A zone whose offset
// is not a whole number of minutes (none in use today) would break the
// premise.
//
// # Free slots and holds
//
// One change of time is not on a minute boundary: a held slot is free from
// the instant its hold runs out, before any HoldExpired is recorded (and so
// before any invalidation). The backing model therefore answers with the
// span of instants around now over which the doctor's holds stand as they
// did at now (projections.SlotsAnswer: from the latest hold expiry at or
// before now to the earliest after it), and the cached value keeps that
// span beside the answer (fields from and until, Unix nanoseconds, "0" for
// an open end). A stored value is a hit only for an instant inside its
// span, checked in Go at every read, also for callers that shared one
// fill: an instant outside it (the hold ran out meanwhile, or a replica
// whose clock is behind asks before the expiry the value was filled after)
// reads the backing store, and its fill replaces the value. So the cache
// never serves an answer past the earliest hold expiry it counted, and the
// key's life stays bounded by its minute.
//
// # Failure
//
// Redis is optional for reads: any Redis error (or a call slower than
// Config.Timeout) answers from the backing store, logs once per burst of
// errors, and skips Redis for Config.Backoff before trying again. Concurrent
// misses of one key in one process share one fill (singleflight).
package rediscache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Defaults of Config.
const (
	DefaultPrefix     = "prescripto:cache"
	DefaultDoctorTTL  = 5 * time.Minute
	DefaultTimeout    = 100 * time.Millisecond
	DefaultBackoff    = time.Second
	DefaultJitter     = 0.1
	genTTL            = 7 * 24 * time.Hour
	fieldProfile      = "profile"
	fieldSlots        = "slots"
	InvalidationName  = "cache_invalidation" // the invalidation projection's name
	slotBucket        = time.Minute
	slotKeyExtraLife  = time.Second
	checkpointKeyPart = "checkpoint:" + InvalidationName
)

// Config configures a Cache.
type Config struct {
	Client redis.UniversalClient
	// Prefix starts every key (DefaultPrefix when empty).
	Prefix string
	// Directory is the backing doctors directory.
	Directory projections.Directory
	// Slots is the backing free-slots model, and SlotsPosition its
	// checkpoint (the position every answer reflects at least); both or
	// neither.
	Slots         projections.SlotsAnswers
	SlotsPosition func(context.Context) (uint64, error)
	// DoctorTTL is the life of a cached profile, jittered by ±Jitter
	// (DefaultDoctorTTL, DefaultJitter).
	DoctorTTL time.Duration
	Jitter    float64
	// Timeout bounds each Redis call of a read; Backoff is how long reads
	// skip Redis after an error.
	Timeout time.Duration
	Backoff time.Duration
	Logger  zerolog.Logger
	// Now is the wall clock for the Redis back-off (time.Now when nil).
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Client == nil:
		return errors.New("rediscache: Client is required")
	case c.Directory == nil:
		return errors.New("rediscache: Directory is required")
	case (c.Slots == nil) != (c.SlotsPosition == nil):
		return errors.New("rediscache: Slots and SlotsPosition go together")
	case c.DoctorTTL < 0 || c.Timeout < 0 || c.Backoff < 0:
		return errors.New("rediscache: negative duration")
	case c.Jitter < 0 || c.Jitter >= 1:
		return errors.New("rediscache: Jitter must be in [0, 1)")
	}
	return nil
}

// Cache implements projections.Directory (Doctor cached, the lists passed
// through), projections.SlotsJSON (cached) and projections.Slots (the
// cached JSON, decoded).
type Cache struct {
	cfg   Config
	keys  keys
	group singleflight.Group

	downUntil atomic.Int64 // unix nanos: skip Redis until then
	failing   atomic.Bool  // in an error burst (logged once)
}

var (
	_ projections.Directory = (*Cache)(nil)
	_ projections.SlotsJSON = (*Cache)(nil)
	_ projections.Slots     = (*Cache)(nil)
)

// New builds a Cache.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.DoctorTTL == 0 {
		cfg.DoctorTTL = DefaultDoctorTTL
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, keys: keys{cfg.Prefix}}, nil
}

// Doctors implements projections.Directory (not cached).
func (c *Cache) Doctors(ctx context.Context, f projections.DoctorFilter) ([]projections.Doctor, error) {
	return c.cfg.Directory.Doctors(ctx, f)
}

// Specialities implements projections.Directory (not cached).
func (c *Cache) Specialities(ctx context.Context) ([]projections.Speciality, error) {
	return c.cfg.Directory.Specialities(ctx)
}

// FreeSlots implements projections.Slots: FreeSlotsJSON decoded (instants
// come back in UTC).
func (c *Cache) FreeSlots(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, error) {
	b, err := c.FreeSlotsJSON(ctx, doctorID, from, days, now)
	if err != nil {
		return projections.FreeSlots{}, err
	}
	var fs projections.FreeSlots
	if err := json.Unmarshal(b, &fs); err != nil {
		return projections.FreeSlots{}, fmt.Errorf("rediscache: free slots of %s: %w", doctorID, err)
	}
	return fs, nil
}

// Doctor implements projections.Directory, cache-aside.
func (c *Cache) Doctor(ctx context.Context, id string) (projections.Doctor, error) {
	v, err := c.cached(ctx, c.keys.profile(id), c.keys.gen(id), fieldProfile, c.jittered(c.cfg.DoctorTTL), nil,
		func(ctx context.Context) (value, error) {
			d, err := c.cfg.Directory.Doctor(ctx, id)
			if err != nil {
				return value{}, err
			}
			b, err := json.Marshal(d)
			return value{data: b, pos: d.Position}, err
		})
	if err != nil {
		return projections.Doctor{}, err
	}
	var d projections.Doctor
	if err := json.Unmarshal(v.data, &d); err != nil {
		return projections.Doctor{}, fmt.Errorf("rediscache: doctor %s: %w", id, err)
	}
	d.Position = v.pos
	return d, nil
}

// FreeSlotsJSON implements projections.SlotsJSON, cache-aside per doctor,
// range and UTC minute of now, within the span of the doctor's holds (see
// the package comment). The bytes may be shared: do not modify them.
func (c *Cache) FreeSlotsJSON(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) ([]byte, error) {
	if c.cfg.Slots == nil {
		return nil, errors.New("rediscache: no backing slots model")
	}
	direct := func() ([]byte, error) {
		a, err := c.cfg.Slots.FreeSlotsAnswer(ctx, doctorID, from, days, now)
		return a.JSON, err
	}
	bucket := now.UTC().Truncate(slotBucket)
	if bucket.Equal(now) { // on a boundary: the answer may differ from the rest of the minute
		return direct()
	}
	ttl := bucket.Add(slotBucket).Sub(now) + slotKeyExtraLife
	covers := func(v value) bool { return v.covers(now) }
	v, err := c.cached(ctx, c.keys.slots(doctorID, from, days, bucket), c.keys.gen(doctorID), fieldSlots, ttl, covers,
		func(ctx context.Context) (value, error) {
			pos, err := c.cfg.SlotsPosition(ctx) // before the read: the answer reflects at least pos
			if err != nil {
				return value{}, err
			}
			a, err := c.cfg.Slots.FreeSlotsAnswer(ctx, doctorID, from, days, now)
			return value{data: a.JSON, pos: pos, from: unixNanos(a.HoldsFrom), until: unixNanos(a.HoldsUntil)}, err
		})
	if err != nil {
		return nil, err
	}
	if !v.covers(now) { // the flight was another caller's, on the other side of a hold's expiry
		return direct()
	}
	return v.data, nil
}

// value is a cached answer: its bytes, the backing position it reflects
// and the span of instants it holds for, [from, until) in Unix
// nanoseconds, 0 for an open end (projections.SlotsAnswer; open both ways
// for a profile).
type value struct {
	data        []byte
	pos         uint64
	from, until int64
}

func (v value) covers(t time.Time) bool {
	n := t.UnixNano()
	return (v.from == 0 || n >= v.from) && (v.until == 0 || n < v.until)
}

// unixNanos is t in Unix nanoseconds, 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// cached answers key from Redis or, on a miss, from load, storing what load
// returns under the revision guard. Concurrent callers in this process
// share one flight per key (Redis read, backing read and fill).
//
// A stored value is a hit only if usable says so (nil: always); the flight
// of a caller for whom it is not fills the key anew.
func (c *Cache) cached(ctx context.Context, key, genKey, field string, ttl time.Duration, usable func(value) bool, load func(context.Context) (value, error)) (value, error) {
	ch := c.group.DoChan(key, func() (any, error) {
		// The flight outlives a caller that gives up: others may wait on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return c.fill(fctx, key, genKey, field, ttl, usable, load)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return value{}, r.Err
		}
		return r.Val.(value), nil
	case <-ctx.Done():
		return value{}, ctx.Err()
	}
}

func (c *Cache) fill(ctx context.Context, key, genKey, field string, ttl time.Duration, usable func(value) bool, load func(context.Context) (value, error)) (value, error) {
	gen, hit, ok := c.lookup(ctx, key, genKey, field)
	if hit != nil && (usable == nil || usable(*hit)) {
		return *hit, nil
	}
	v, err := load(ctx)
	if err != nil {
		return value{}, err
	}
	if !ok { // Redis is down: answer from the backing store only
		return v, nil
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err = storeScript.Run(rctx, c.cfg.Client, []string{genKey, key}, field, gen, strconv.FormatUint(v.pos, 10), v.data,
		ttl.Milliseconds(), strconv.FormatInt(v.from, 10), strconv.FormatInt(v.until, 10)).Err()
	c.observe(err)
	return v, nil
}

// lookup reads the current generation and the stored value. ok is false
// when Redis could not be asked (the caller must not store).
func (c *Cache) lookup(ctx context.Context, key, genKey, field string) (gen string, hit *value, ok bool) {
	if c.cfg.Now().UnixNano() < c.downUntil.Load() {
		return "", nil, false
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := lookupScript.Run(rctx, c.cfg.Client, []string{genKey, key}, field).Slice()
	c.observe(err)
	if err != nil || len(res) == 0 {
		return "", nil, false
	}
	gen, _ = res[0].(string)
	if len(res) == 5 {
		str := func(i int) string { s, _ := res[i].(string); return s }
		pos, perr := strconv.ParseUint(str(2), 10, 64)
		from, ferr := strconv.ParseInt(str(3), 10, 64)
		until, uerr := strconv.ParseInt(str(4), 10, 64)
		if perr == nil && ferr == nil && uerr == nil {
			return gen, &value{data: []byte(str(1)), pos: pos, from: from, until: until}, true
		}
	}
	return gen, nil, true
}

// observe records the outcome of a Redis call: the first error of a burst
// is logged and opens the back-off; the first success after it is logged.
func (c *Cache) observe(err error) {
	if err == nil {
		if c.failing.CompareAndSwap(true, false) {
			c.cfg.Logger.Info().Msg("redis cache reachable again")
		}
		return
	}
	c.downUntil.Store(c.cfg.Now().Add(c.cfg.Backoff).UnixNano())
	if c.failing.CompareAndSwap(false, true) {
		c.cfg.Logger.Warn().Err(err).Dur("backoff", c.cfg.Backoff).Msg("redis cache unavailable; reading from the read models")
	}
}

func (c *Cache) jittered(d time.Duration) time.Duration {
	f := 1 + c.cfg.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

type keys struct{ prefix string }

func (k keys) tag(id string) string     { return k.prefix + ":{doc:" + id + "}" }
func (k keys) gen(id string) string     { return k.tag(id) + ":gen" }
func (k keys) profile(id string) string { return k.tag(id) + ":profile" }
func (k keys) slots(id string, from doctor.Date, days int, bucket time.Time) string {
	return k.tag(id) + ":slots:" + from.String() + ":" + strconv.Itoa(days) + ":" + strconv.FormatInt(bucket.Unix()/60, 10)
}
func (k keys) checkpoint() string { return k.prefix + ":" + checkpointKeyPart }

// lookupScript: KEYS gen, value; ARGV field. Returns {gen} on a miss and
// {gen, v, pos, from, until} on a hit (stored under the current
// generation; the caller checks the span).
var lookupScript = redis.NewScript(`
local g = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
local v = redis.call('HMGET', KEYS[2], 'gen', 'v', 'pos', 'from', 'until')
if v[1] == g and v[2] and v[3] then
  return {g, v[2], v[3], v[4] or '0', v[5] or '0'}
end
return {g}
`)

// storeScript: KEYS gen, value; ARGV field, gen seen before the backing
// read, position of the backing value, value, ttl ms, span from, span
// until (Unix nanoseconds as strings, "0" open). Returns 1 when
// stored, 0 when invalidated meanwhile, -1 when the backing model was
// behind the invalidation, -2 when a newer value is stored.
var storeScript = redis.NewScript(`
local g = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
if g ~= ARGV[2] then return 0 end
if tonumber(ARGV[3]) < tonumber(g) then return -1 end
local old = redis.call('HMGET', KEYS[2], 'gen', 'pos')
if old[1] == g and old[2] and tonumber(old[2]) > tonumber(ARGV[3]) then return -2 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'gen', ARGV[2], 'pos', ARGV[3], 'v', ARGV[4], 'from', ARGV[6], 'until', ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`)
