package api

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
)

// stalledSessions answers no read until released, as a store behind a
// network partition; it counts the reads.
type stalledSessions struct {
	release chan struct{}
	reads   atomic.Int64
}

func (s *stalledSessions) Session(ctx context.Context, _ domain.Role, _ string) (commands.Session, bool, error) {
	s.reads.Add(1)
	select {
	case <-s.release:
		return commands.Session{Active: true, TokenVersion: 1}, true, nil
	case <-ctx.Done():
		return commands.Session{}, false, ctx.Err()
	}
}

// TestSessionReadLeavesAtDeadline: requests waiting for an account's
// session read that does not come back leave at their own deadline (the
// API answers 503 timeout) instead of queueing behind the read; the read
// is shared (one read for all of them) and, once it answers, serves and
// caches the state.
func TestSessionReadLeavesAtDeadline(t *testing.T) {
	t.Parallel()
	src := &stalledSessions{release: make(chan struct{})}
	c := newSessionCache(src, time.Minute)
	const waiters = 50
	var wg sync.WaitGroup
	errs := make([]error, waiters)
	took := make([]time.Duration, waiters)
	for i := range waiters {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, _, errs[i] = c.get(ctx, domain.RolePatient, "p-1")
			took[i] = time.Since(start)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(src.release)
		t.Fatal("waiters still blocked 10 s after their 100 ms deadline: they queue behind the stalled read")
	}
	for i := range waiters {
		if !errors.Is(errs[i], context.DeadlineExceeded) {
			t.Errorf("waiter %d: %v, want the deadline's error", i, errs[i])
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d reads of one account's session, want 1 shared read", n)
	}
	close(src.release)
	// The shared read outlived its waiters: it completes and is cached.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, found, err := c.get(ctx, domain.RolePatient, "p-1")
		cancel()
		if err == nil {
			if !found || !s.Active || s.TokenVersion != 1 {
				t.Fatalf("session %+v found %v after the read answered", s, found)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session 5 s after the read was released: %v", err)
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d reads, want the one shared read (its answer cached)", n)
	}
}
