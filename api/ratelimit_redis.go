package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLimitCounter is an httprate.LimitCounter kept in Redis, so that every
// API replica counts against one limit. httprate's sliding window needs the
// count of the current and of the previous fixed window per key; each is a
// Redis integer under <prefix>:<window length>:<key>:<window start>, expiring
// two windows after it was last written (long enough to serve as "previous",
// short enough not to pile up).
//
// httprate reads then increments under a lock of its own process; across
// replicas two requests arriving together may both pass at the boundary (at
// most one extra per replica per instant), which a limit against password
// guessing tolerates. Any Redis error is returned to httprate, whose error
// handler answers 503 (the limiter fails closed).
type RedisLimitCounter struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	window  atomic.Int64 // nanoseconds, set by Config
}

var _ ContextLimitCounter = (*RedisLimitCounter)(nil)

// DefaultRedisLimitTimeout bounds each Redis round trip of the counter,
// waiting for a pooled connection included, when the caller gives no
// deadline (httprate's calls). The limiter's own calls take the request's
// context instead (GetContext, IncrementByContext): requests reach the
// counter concurrently (no process-wide lock: see sharedLimit), so a burst
// of hundreds queues on the client's pool, and any fixed bound short of
// the request's own failed such a burst on a loaded machine (500 ms, then
// 2 s: 503 "rate limiter unavailable" for 200 registrations at once). A
// Redis that stops answering is still noticed within the client's read
// timeout (3 s by default) and pool timeout, whatever the request's
// deadline.
const DefaultRedisLimitTimeout = 2 * time.Second

// NewRedisLimitCounter counts in client under keys starting with prefix
// (for example "prescripto:ratelimit"); timeout bounds each call (0 means
// DefaultRedisLimitTimeout).
func NewRedisLimitCounter(client redis.UniversalClient, prefix string, timeout time.Duration) (*RedisLimitCounter, error) {
	if client == nil {
		return nil, errors.New("api: redis limit counter needs a client")
	}
	if prefix == "" {
		return nil, errors.New("api: redis limit counter needs a key prefix")
	}
	if timeout <= 0 {
		timeout = DefaultRedisLimitTimeout
	}
	c := &RedisLimitCounter{client: client, prefix: prefix, timeout: timeout}
	c.window.Store(int64(time.Minute))
	return c, nil
}

// Config implements httprate.LimitCounter.
func (c *RedisLimitCounter) Config(_ int, windowLength time.Duration) {
	if windowLength > 0 {
		c.window.Store(int64(windowLength))
	}
}

// Increment implements httprate.LimitCounter.
func (c *RedisLimitCounter) Increment(key string, currentWindow time.Time) error {
	return c.IncrementBy(key, currentWindow, 1)
}

// IncrementBy implements httprate.LimitCounter.
func (c *RedisLimitCounter) IncrementBy(key string, currentWindow time.Time, amount int) error {
	return c.IncrementByContext(context.Background(), key, currentWindow, amount)
}

// bounded is ctx if it has a deadline, else ctx bounded by the counter's
// timeout.
func (c *RedisLimitCounter) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// IncrementByContext implements ContextLimitCounter.
func (c *RedisLimitCounter) IncrementByContext(ctx context.Context, key string, currentWindow time.Time, amount int) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	k := c.key(key, currentWindow)
	_, err := c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.IncrBy(ctx, k, int64(amount))
		p.PExpire(ctx, k, 2*c.windowLength()+time.Second)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis rate-limit counter increment: %w", err)
	}
	return nil
}

// Get implements httprate.LimitCounter: the counts of the current and of the
// previous window.
func (c *RedisLimitCounter) Get(key string, currentWindow, previousWindow time.Time) (int, int, error) {
	return c.GetContext(context.Background(), key, currentWindow, previousWindow)
}

// GetContext implements ContextLimitCounter.
func (c *RedisLimitCounter) GetContext(ctx context.Context, key string, currentWindow, previousWindow time.Time) (int, int, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	vals, err := c.client.MGet(ctx, c.key(key, currentWindow), c.key(key, previousWindow)).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("redis rate-limit counter get: %w", err)
	}
	var counts [2]int
	for i, v := range vals {
		if v == nil {
			continue
		}
		s, _ := v.(string)
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, 0, fmt.Errorf("redis rate-limit counter get: value %q: %w", s, err)
		}
		counts[i] = n
	}
	return counts[0], counts[1], nil
}

func (c *RedisLimitCounter) windowLength() time.Duration { return time.Duration(c.window.Load()) }

// key names one window of one client. The client key (prefix:ip from
// NewRateLimit) is kept readable; the window is its start in Unix
// milliseconds, with the window length in the name so that two limiters of
// different windows never share a count.
func (c *RedisLimitCounter) key(key string, window time.Time) string {
	return c.prefix + ":" + c.windowLength().String() + ":" + key + ":" + strconv.FormatInt(window.UnixMilli(), 10)
}
