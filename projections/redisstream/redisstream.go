// Package redisstream is the Runner's cross-process transport: Redis
// Streams through watermill-redisstream (REDIS_URL). The in-process
// transport (projections.NewGoChannel) stays beside the Runner.
package redisstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	wredis "github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/projections"
)

// Option tunes New.
type Option func(*config)

type config struct {
	resume bool
	topic  string
	maxLen int64
}

// MaxLen trims the stream to about n entries at each publish (MAXLEN
// ~); default DefaultMaxLen, 0 for no trimming. Run the forwarder
// with projections.RunnerConfig.MaxAhead well below it.
func MaxLen(n int64) Option { return func(c *config) { c.maxLen = n } }

// DefaultMaxLen is the length a stream is trimmed to by default: ten times
// DefaultMaxAhead, so the projections that keep up never lose an entry
// they have not read; one further behind (or one whose entries a restart
// of Redis lost) sees the gap by the next entry's predecessor and reads
// the events it missed from the store.
const DefaultMaxLen = 100_000

// DefaultMaxAhead is the projections.RunnerConfig.MaxAhead for a Redis Streams
// transport.
const DefaultMaxAhead = 10_000

// Topic names the topic (stream) the subscribers read, the Runner's
// projections.RunnerConfig.Topic; default projections.EventsTopic.
func Topic(topic string) Option {
	return func(c *config) { c.topic = topic }
}

// ResumeGroups makes each consumer resume its group where it stopped, its
// own pending entries first, instead of starting at the stream's end. Use
// it when the forwarder runs in another process (projections.RunnerConfig.Forward
// false) and the read models keep their data across restarts (MongoDB):
// nobody republishes what was added while this process was down.
func ResumeGroups() Option { return func(c *config) { c.resume = true } }

// New returns the cross-process transport of the Runner: Redis
// Streams through watermill-redisstream. The forwarder XADDs every event of
// $all, in order, to the stream of its topic (projections.EventsTopic unless
// Topic says otherwise); each projection reads it in a
// consumer group named after the projection, so every projection receives
// every event once, whichever process consumes it.
//
// Ordering. A projection must apply events in log order (it ignores an
// event at or below its position, so an older event arriving after a newer
// one would be lost). Order holds because there is one consumer per group:
// the consumer name is the group name (run one projector per projection: a
// second process consuming the same group at the same time would split the
// stream between them), the subscriber reads one entry at a time and the
// next only after the handler acked the previous one, a failed handler is
// retried in place by the router before the poison queue acks it, and a
// nacked entry is resent in place.
//
// Start and redelivery. By default (the forwarder in the same Runner) a
// subscriber, when the Runner creates it, moves its group to the end of
// the stream and drops the entries pending under its name: the Runner's
// forwarder starts after its subscribers and republishes everything after
// the lowest checkpoint, in log order, so nothing is lost, and nothing
// older (left unread or unacked by an earlier run) can overtake it; this
// also holds for in-memory read models that restart from position 0. With
// ResumeGroups the group is resumed instead: entries left pending under
// this consumer name by an earlier run are claimed at once, oldest first,
// before new entries are read (another consumer name's once idle for a
// minute). Either way an event may arrive twice (a republished or redelivered
// one); projections are idempotent by position, so the duplicate is a no-op.
//
// The stream is trimmed to about MaxLen entries; the forwarder keeps at
// most projections.RunnerConfig.MaxAhead entries ahead of its furthest
// running projection, and one that falls further behind than the stream
// keeps reads the events it missed from the store, so a slow projection
// never holds back the others. Closing the publisher or a subscriber does
// not close client, which the caller owns.
func New(client redis.UniversalClient, logger zerolog.Logger, opts ...Option) (message.Publisher, func(consumerGroup string) (message.Subscriber, error), error) {
	if client == nil {
		return nil, nil, errors.New("redisstream: needs a client")
	}
	cfg := config{topic: projections.EventsTopic, maxLen: DefaultMaxLen}
	for _, o := range opts {
		o(&cfg)
	}
	shared := keepOpen{client} // watermill closes its client on Close
	wl := projections.WatermillLogger(logger)
	pub, err := wredis.NewPublisher(wredis.PublisherConfig{Client: shared, DefaultMaxlen: cfg.maxLen}, wl)
	if err != nil {
		return nil, nil, err
	}
	sub := func(group string) (message.Subscriber, error) {
		if group == "" {
			return nil, errors.New("redisstream: consumer group is empty")
		}
		start := time.Now()
		claim := func(p redis.XPendingExt) bool {
			if p.Consumer == group {
				return p.Idle >= time.Since(start) // left by an earlier run, not in flight here
			}
			return p.Idle >= redisDeadConsumerIdle
		}
		if !cfg.resume {
			if err := startAtEnd(client, cfg.topic, group); err != nil {
				return nil, err
			}
			claim = func(redis.XPendingExt) bool { return false }
		}
		rs, err := wredis.NewSubscriber(wredis.SubscriberConfig{
			Client:        shared,
			ConsumerGroup: group,
			Consumer:      group,
			OldestId:      "0", // a group created by the subscriber reads the stream from its start
			// Pending entries are filtered by claim, not by idle time.
			MaxIdleTime:               time.Millisecond,
			ShouldClaimPendingMessage: claim,
			// The first read blocks for BlockTime, not forever, so Close
			// never waits on a read that cannot be cancelled.
			DisableIndefiniteInitialBlock: true,
			NackResendSleep:               50 * time.Millisecond,
		}, wl)
		if err != nil {
			return nil, err
		}
		k := &groupKeeper{Subscriber: rs, stop: make(chan struct{})}
		go k.keep(client, cfg.topic, group)
		return k, nil
	}
	return pub, sub, nil
}

// groupKeeper recreates its consumer group when Redis lost it (a server
// restarted without its data): the subscriber creates its group only when
// it subscribes and would otherwise fail every read (NOGROUP) until the
// process restarts. The group is recreated at the start of the stream,
// which the forwarder refills (in order, from the lowest checkpoint) once
// a publish has failed or a consumer has seen, by the next event's
// predecessor position (MetaPrevPosition), that entries were lost; a group
// that exists is left alone. Entries lost with nothing published after
// them are noticed with the next event.
type groupKeeper struct {
	message.Subscriber
	stop chan struct{}
	once sync.Once
}

// redisGroupCheckEvery is how often a subscriber checks that its group exists.
const redisGroupCheckEvery = time.Second

func (k *groupKeeper) keep(client redis.UniversalClient, topic, group string) {
	t := time.NewTicker(redisGroupCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisGroupCheckEvery)
		_ = client.XGroupCreateMkStream(ctx, topic, group, "0").Err() // BUSYGROUP (exists) or Redis down: nothing to do
		cancel()
	}
}

// Close stops the keeper and closes the subscriber.
func (k *groupKeeper) Close() error {
	k.once.Do(func() { close(k.stop) })
	return k.Subscriber.Close()
}

// startAtEnd creates group at the end of the events stream, or moves it
// there, and drops the entries pending under the consumer of that name.
func startAtEnd(client redis.UniversalClient, topic, group string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := client.XGroupCreateMkStream(ctx, topic, group, "$").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("redisstream: group %s: %w", group, err)
	}
	if err := client.XGroupSetID(ctx, topic, group, "$").Err(); err != nil {
		return fmt.Errorf("redisstream: group %s: %w", group, err)
	}
	if err := client.XGroupDelConsumer(ctx, topic, group, group).Err(); err != nil {
		return fmt.Errorf("redisstream: group %s: %w", group, err)
	}
	return nil
}

// redisDeadConsumerIdle is how long an entry pending under another consumer
// name waits before this consumer takes it over (ResumeGroups).
const redisDeadConsumerIdle = time.Minute

// keepOpen is a client whose Close is a no-op.
type keepOpen struct{ redis.UniversalClient }

func (keepOpen) Close() error { return nil }
