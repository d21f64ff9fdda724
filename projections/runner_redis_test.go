package projections_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/readmodeltest"
	"github.com/prescripto/prescripto/projections/rediscache"
	"github.com/prescripto/prescripto/projections/redisstream"
)

// redisRunner is a runner whose events travel through Redis Streams, with
// the cache invalidation projection beside the read models.
type redisRunner struct {
	*runner
	inv    *projections.Live[*rediscache.Invalidation]
	client redis.UniversalClient
}

func startRedisRunner(t *testing.T, w *world, client redis.UniversalClient, prefix string) *redisRunner {
	t.Helper()
	rn := &redisRunner{
		runner: &runner{dir: projections.NewLive(memory.NewDirectory), slots: projections.NewLive(memory.NewSlots), apps: projections.NewLive(memory.NewAppointments)},
		inv:    projections.NewLive(func() *rediscache.Invalidation { return rediscache.NewInvalidation(client, prefix) }),
		client: client,
	}
	pub, sub, err := redisstream.New(client, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r, err := projections.NewRunner(projections.RunnerConfig{
		Store: w.store, Registry: w.reg, Projections: []projections.Runnable{rn.dir, rn.slots, rn.apps, rn.inv},
		Publisher: pub, Subscriber: sub, Logger: zerolog.Nop(), Forward: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rn.Runner = r
	rn.stop = runInBackground(t, r, func() { _ = pub.Close() })
	return rn
}

// caughtUp waits until every projection, the invalidation included, has
// seen the head of the log, and checks their statuses.
func (rn *redisRunner) caughtUp(t *testing.T, w *world) uint64 {
	t.Helper()
	head := rn.catchUp(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rn.WaitFor(ctx, "cache_invalidation", head); err != nil {
		t.Fatalf("cache_invalidation did not reach %d: %v", head, err)
	}
	st, err := rn.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Lag != 0 || s.Position != head || s.Status != "running" || s.Error != "" {
			t.Errorf("status %+v; want position %d, lag 0, running", s, head)
		}
	}
	return head
}

// TestRunnerOverRedisStreams runs the projections over Redis Streams
// consumer groups: the read models agree with the log, a restarted runner
// with fresh in-memory models rebuilds them in order through the same
// groups, and the Redis cache stays in step with the read models through
// the invalidation projection.
func TestRunnerOverRedisStreams(t *testing.T) {
	t.Parallel()
	client := testenv.RedisClient(t, testenv.RedisURL(t))
	w := newWorld(t)
	scenario(t, w) // before the runner starts: forwarded from the log
	rn := startRedisRunner(t, w, client, "test:cache")
	traffic(t, w, 20, 15) // while it runs: followed live
	head := rn.caughtUp(t, w)
	agreeWithWriteSide(t, w, rn.models())
	ctx := context.Background()
	readmodeltest.SameSnapshot(t, "over redis streams vs replay", readmodeltest.Snapshot(ctx, t, rn.models(), w.probe()),
		readmodeltest.Snapshot(ctx, t, replay(t, w), w.probe()))

	// One consumer group per projection, named after it.
	groups, err := client.XInfoGroups(ctx, projections.EventsTopic).Result()
	if err != nil {
		t.Fatal(err)
	}
	var groupNames []string
	for _, g := range groups {
		groupNames = append(groupNames, g.Name)
		if g.Consumers != 1 || g.Pending > 1 {
			t.Errorf("group %+v: want one consumer, nothing left pending", g)
		}
	}
	slices.Sort(groupNames)
	if want := []string{"appointments", "cache_invalidation", "doctors", "free_slots"}; !slices.Equal(groupNames, want) {
		t.Errorf("consumer groups %v, want %v", groupNames, want)
	}

	cacheFollowsReadModels(t, w, rn)

	// A restart with empty in-memory models: the same groups carry a
	// complete, ordered replay (nothing older overtakes it).
	rn.stop()
	traffic(t, w, 60, 6) // while no runner runs
	// Entries an earlier forwarder published that no group has read yet
	// (here: the newest events): they must not overtake the replay.
	recs, err := w.store.ReadAll(ctx, w.head(t)-3, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("read the last events: %d, %v", len(recs), err)
	}
	pub, _, err := redisstream.New(client, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := pub.Publish(projections.EventsTopic, projections.ToMessage(r)); err != nil {
			t.Fatal(err)
		}
	}
	rn2 := startRedisRunner(t, w, client, "test:cache")
	head2 := rn2.caughtUp(t, w)
	if head2 <= head {
		t.Fatalf("head %d after more traffic, was %d", head2, head)
	}
	agreeWithWriteSide(t, w, rn2.models())
	readmodeltest.SameSnapshot(t, "restarted over redis streams vs replay", readmodeltest.Snapshot(ctx, t, rn2.models(), w.probe()),
		readmodeltest.Snapshot(ctx, t, replay(t, w), w.probe()))
}

// cacheFollowsReadModels reads doctors and free slots through the Redis
// cache while commands change them.
func cacheFollowsReadModels(t *testing.T, w *world, rn *redisRunner) {
	t.Helper()
	ctx := context.Background()
	dir, slots := projections.LiveDirectory[*memory.Directory]{L: rn.dir}, projections.LiveSlots[*memory.Slots]{L: rn.slots}
	cache, err := rediscache.New(rediscache.Config{
		Client: rn.client, Prefix: "test:cache", Directory: dir, Slots: slots, SlotsPosition: rn.slots.Checkpoint,
		Timeout: 5 * time.Second, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := w.clock.Now().Truncate(time.Minute).Add(17 * time.Second) // inside a minute
	check := func(what string) {
		t.Helper()
		for _, id := range w.probe().DoctorIDs {
			for range 2 { // a miss, then a hit
				got, err := cache.Doctor(ctx, id)
				want, _ := dir.Doctor(ctx, id)
				if err != nil || got != want {
					t.Errorf("%s: cached doctor %+v (%v), read model %+v", what, got, err, want)
				}
				from := w.fold(t, id).Grid().DateIn(now)
				gotS, err := cache.FreeSlotsJSON(ctx, id, from, 7, now)
				wantS, _ := slots.FreeSlotsJSON(ctx, id, from, 7, now)
				if err != nil || !bytes.Equal(gotS, wantS) {
					t.Errorf("%s: cached slots of %s differ from the read model (%v)", what, id, err)
				}
			}
		}
	}
	check("before changes")
	doc := w.probe().DoctorIDs[0]
	name := "Dr. Renamed"
	res := must[commands.DoctorResult](t, "rename")(w.h.UpdateDoctorProfile(ctx, admin, commands.UpdateDoctorProfile{DoctorID: doc, Patch: commands.ProfilePatch{Name: &name}}))
	pat := w.probe().PatientIDs[0]
	w.mustBook(t, doc, pat, w.slots(t, doc, 3)[2])
	rn.caughtUp(t, w)
	if d, err := cache.Doctor(ctx, doc); err != nil || d.Name != name || d.Position != res.Position {
		t.Fatalf("after the rename the cache answers %+v, %v", d, err)
	}
	check("after a rename and a booking")
}

// TestRedisStreamRecreatesLostGroup: Redis restarts empty, losing the
// consumer group; the subscriber recreates it and receives what is
// published afterwards instead of failing every read with NOGROUP.
func TestRedisStreamRecreatesLostGroup(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	client := testenv.RedisClient(t, rs.URL())
	pub, subFor, err := redisstream.New(client, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subFor("keeper")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, projections.EventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		groups, _ := client.XInfoGroups(ctx, projections.EventsTopic).Result()
		if slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == "keeper" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("consumer group not recreated within 10 s of the Redis restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := pub.Publish(projections.EventsTopic, message.NewMessage("after-restart", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.UUID != "after-restart" {
			t.Fatalf("received %s", m.UUID)
		}
		m.Ack()
	case <-ctx.Done():
		t.Fatal("nothing received after the Redis restart")
	}
}

// trimmed is a world with a backlog in its log and a runner over a Redis
// stream trimmed to about trimmedLen entries, whose forwarder runs at most
// trimmedAhead events ahead, with a directory of type D beside the
// in-memory slots and appointments.
type trimmed[D interface {
	projections.Projection
	projections.Directory
}] struct {
	w      *world
	client redis.UniversalClient
	r      *projections.Runner
	dir    *projections.Live[D]
	slots  *projections.Live[*memory.Slots]
	apps   *projections.Live[*memory.Appointments]
	logs   testenv.ProcessLog
}

const trimmedLen, trimmedAhead = 40, 4

func startTrimmed[D interface {
	projections.Projection
	projections.Directory
}](t *testing.T, level zerolog.Level, dir func() D) *trimmed[D] {
	t.Helper()
	ts := &trimmed[D]{w: newWorld(t), dir: projections.NewLive(dir), slots: projections.NewLive(memory.NewSlots), apps: projections.NewLive(memory.NewAppointments)}
	scenario(t, ts.w)
	traffic(t, ts.w, 20, 60) // all in the log before the runner starts: the forwarder could race ahead
	ts.client = testenv.RedisClient(t, testenv.RedisURL(t))
	// Small stream nodes, so that approximate trimming (whole nodes) bites
	// at these lengths.
	if err := ts.client.ConfigSet(context.Background(), "stream-node-max-entries", "8").Err(); err != nil {
		t.Fatal(err)
	}
	logger := zerolog.New(&ts.logs).Level(level)
	pub, sub, err := redisstream.New(ts.client, logger, redisstream.MaxLen(trimmedLen))
	if err != nil {
		t.Fatal(err)
	}
	ts.r, err = projections.NewRunner(projections.RunnerConfig{
		Store: ts.w.store, Registry: ts.w.reg, Projections: []projections.Runnable{ts.dir, ts.slots, ts.apps},
		Publisher: pub, Subscriber: sub, Logger: logger, Forward: true, MaxAhead: trimmedAhead,
	})
	if err != nil {
		t.Fatal(err)
	}
	runInBackground(t, ts.r, func() { _ = pub.Close() })
	return ts
}

// sameAsReplay checks that the models equal a fresh replay of the log.
func (ts *trimmed[D]) sameAsReplay(t *testing.T, what string) {
	t.Helper()
	ctx := context.Background()
	got := readmodeltest.Models{
		Directory: projections.LiveDirectory[D]{L: ts.dir}, Slots: projections.LiveSlots[*memory.Slots]{L: ts.slots},
		Appointments: projections.LiveAppointments[*memory.Appointments]{L: ts.apps}, Dashboards: projections.LiveAppointments[*memory.Appointments]{L: ts.apps}, Payments: projections.LiveAppointments[*memory.Appointments]{L: ts.apps},
	}
	readmodeltest.SameSnapshot(t, what, readmodeltest.Snapshot(ctx, t, got, ts.w.probe()), readmodeltest.Snapshot(ctx, t, replay(t, ts.w), ts.w.probe()))
}

// slowDirectory is a directory that takes a while to apply each event.
type slowDirectory struct{ *memory.Directory }

func (d slowDirectory) Apply(ctx context.Context, e projections.Event) error {
	time.Sleep(time.Millisecond)
	return d.Directory.Apply(ctx, e)
}

// TestRedisStreamTrimmedBehindTheProjections: the stream is trimmed to a
// length, and the forwarder keeps at most MaxAhead events ahead of its
// fastest projection; a slower one that finds the entries it had yet to
// read trimmed away reads those events from the store, so none asks for a
// republish, the stream stays short, and the read models equal a fresh
// replay.
func TestRedisStreamTrimmedBehindTheProjections(t *testing.T) {
	t.Parallel()
	ts := startTrimmed(t, zerolog.WarnLevel, func() slowDirectory { return slowDirectory{memory.NewDirectory()} })
	w, client, r, logs := ts.w, ts.client, ts.r, &ts.logs
	ctx := context.Background()

	var longest atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if n, err := client.XLen(ctx, projections.EventsTopic).Result(); err == nil && n > longest.Load() {
				longest.Store(n)
			}
			select {
			case <-quit:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	head := w.head(t)
	wctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	for _, n := range names {
		if err := r.WaitFor(wctx, n, head); err != nil {
			t.Fatalf("%s did not reach %d: %v\n%s", n, head, err, logs.String())
		}
	}
	close(quit)
	<-done
	total := 0
	for after := uint64(0); ; {
		recs, err := w.store.ReadAll(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		total += len(recs)
		if len(recs) < 1000 {
			break
		}
		after = recs[len(recs)-1].Position
	}
	ts.sameAsReplay(t, "read models over a trimmed stream")
	if n := longest.Load(); n > trimmedLen+2*8 || int(n) >= total {
		t.Errorf("the stream held up to %d entries for %d events, want about %d (trimmed)", n, total, trimmedLen)
	}
	if strings.Contains(logs.String(), "republish") {
		t.Errorf("a projection could not fill a gap from the store:\n%s", logs.String())
	}
	t.Logf("%d events forwarded, longest stream seen %d entries", total, longest.Load())
}

// gatedDirectory is a directory whose applies wait until open is closed.
type gatedDirectory struct {
	*memory.Directory
	open <-chan struct{}
}

func (d gatedDirectory) Apply(ctx context.Context, e projections.Event) error {
	select {
	case <-d.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return d.Directory.Apply(ctx, e)
}

// TestRedisStreamSlowProjectionHoldsNoneBack: a projection stuck on its
// first event does not hold back the others of its runner (the forwarder
// keeps pace with the fastest; before, with the slowest, the others
// stopped MaxAhead events past it). The stream is trimmed meanwhile, so
// once it moves again it finds the entries it had yet to read gone and
// reads those events from the store: it reaches the head, and every model
// equals a fresh replay.
func TestRedisStreamSlowProjectionHoldsNoneBack(t *testing.T) {
	t.Parallel()
	open := make(chan struct{})
	ts := startTrimmed(t, zerolog.DebugLevel, func() gatedDirectory { return gatedDirectory{memory.NewDirectory(), open} })
	w, client, r, dir, logs := ts.w, ts.client, ts.r, ts.dir, &ts.logs
	ctx := context.Background()

	head := w.head(t)
	wctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	for _, n := range []string{"free_slots", "appointments"} {
		if err := r.WaitFor(wctx, n, head); err != nil {
			t.Fatalf("%s did not reach %d while the directory was stuck: %v", n, head, err)
		}
	}
	if pos := dir.Position(); pos != 0 {
		t.Fatalf("the stuck directory is at %d, want 0", pos)
	}
	if n, err := client.XLen(ctx, projections.EventsTopic).Result(); err != nil || n > trimmedLen+2*8 {
		t.Fatalf("the stream holds %d entries (%v), want it trimmed to about %d", n, err, trimmedLen)
	}
	close(open)
	if err := r.WaitFor(wctx, "doctors", head); err != nil {
		t.Fatalf("the directory did not reach %d once it moved again: %v\n%s", head, err, logs.String())
	}
	if !strings.Contains(logs.String(), "read from the store") {
		t.Errorf("the directory did not read what it missed from the store:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "republish") {
		t.Errorf("a projection asked for a republish:\n%s", logs.String())
	}
	ts.sameAsReplay(t, "read models after a stuck projection caught up")
}
