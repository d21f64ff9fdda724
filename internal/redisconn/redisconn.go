// Package redisconn opens the one Redis client a process shares between
// its Redis adapters (the projections' stream transport, the read-model
// cache, the rate-limit counters), so that the wiring never touches the
// driver.
package redisconn

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Conn is an open Redis client.
type Conn struct {
	client *redis.Client
	addr   string
}

// Open parses url (redis:// or rediss://) and checks that the server
// answers within ctx: a server that does not is an error, never a client
// that fails later.
//
// Every call is bounded by its context's deadline as well as by the
// client's read and write timeouts: go-redis sets a socket's deadline
// from the context only with ContextTimeoutEnabled, and without it a call
// on a connection that stopped answering (a partition, a half-open
// connection) waited its full 3 s read timeout, per command, whatever the
// request's deadline (the rate limit's two calls then outlived a booking's
// 5 s deadline: internal/app's network-fault test).
func Open(ctx context.Context, url string) (*Conn, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	c := &Conn{client: redis.NewClient(opts), addr: opts.Addr}
	if err := c.client.Ping(ctx).Err(); err != nil {
		_ = c.client.Close()
		return nil, fmt.Errorf("Redis at %s does not answer: %w", opts.Addr, err)
	}
	return c, nil
}

// Client is the shared client; its owner is the Conn (do not close it).
func (c *Conn) Client() redis.UniversalClient { return c.client }

// Addr is the server's address.
func (c *Conn) Addr() string { return c.addr }

// Ping checks that the server answers (a readiness check).
func (c *Conn) Ping(ctx context.Context) error { return c.client.Ping(ctx).Err() }

// Close closes the client.
func (c *Conn) Close() error { return c.client.Close() }
