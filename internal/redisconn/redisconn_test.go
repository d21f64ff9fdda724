package redisconn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/redisconn"
	"github.com/prescripto/prescripto/internal/testenv"
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
