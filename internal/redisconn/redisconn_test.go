package redisconn_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/faultproxy"
	"github.com/prescripto/prescripto/internal/redisconn"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/redis/go-redis/v9"
)

func TestOpenPingsTheServer(t *testing.T) {
	t.Parallel()
	url := testenv.StartRedis(t).URL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redisconn.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenNamesAServerThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := redisconn.Open(ctx, "redis://127.0.0.1:1/0")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1 does not answer") {
		t.Fatalf("got %v", err)
	}
	if _, err := redisconn.Open(ctx, "http://nope"); err == nil {
		t.Fatal("a URL that is not redis:// was accepted")
	}
}

// A server that stops answering with the connection open (a partition)
// must not hold a call past its context's deadline: the rate limit and
// the cache give each call a short one. go-redis ignores the context's
// deadline on the socket unless ContextTimeoutEnabled, and waited out its
// 3 s read timeout instead.
func TestCallLeavesAtItsDeadlineOnAStalledServer(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.StartRedis(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u.Host = p.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redisconn.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := c.Client()
	if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p.SetBlackout(true)
	calls := map[string]func(context.Context) error{
		"GET": func(ctx context.Context) error { return rc.Get(ctx, "k").Err() },
		"MULTI INCR EXPIRE": func(ctx context.Context) error {
			_, err := rc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Incr(ctx, "n")
				pipe.Expire(ctx, "n", time.Minute)
				return nil
			})
			return err
		},
	}
	for name, call := range calls {
		for range 3 { // on the stalled connection, then on new ones (held by the blackout)
			cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
			t0 := time.Now()
			err := call(cctx)
			took := time.Since(t0)
			ccancel()
			if err == nil {
				t.Fatalf("%s answered through a blackout", name)
			}
			if took > time.Second {
				t.Fatalf("%s on a stalled server took %v with a 200ms deadline (err %v)", name, took.Round(time.Millisecond), err)
			}
		}
	}
	p.SetBlackout(false)
	if err := rc.Get(ctx, "k").Err(); err != nil {
		t.Fatalf("after the blackout: %v", err)
	}
}
