package faultproxy_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/faultproxy"
)

// echo is an upstream that answers each line with the same line, and
// counts the lines it received (so a test can see a request arrive while
// its answer is withheld).
type echo struct {
	l     net.Listener
	mu    sync.Mutex
	lines int
}

func startEcho(t *testing.T) *echo {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					e.mu.Lock()
					e.lines++
					e.mu.Unlock()
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return e
}

func (e *echo) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lines
}

func start(t *testing.T) (*echo, *faultproxy.Proxy) {
	t.Helper()
	e := startEcho(t)
	p, err := faultproxy.Start(e.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return e, p
}

func dial(t *testing.T, p *faultproxy.Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reads the echo within limit.
func roundTrip(c net.Conn, r *bufio.Reader, msg string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(limit))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return 0, err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return time.Since(start), err
	}
	if got != msg+"\n" {
		return 0, errors.New("echo mismatch: " + got)
	}
	return time.Since(start), nil
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func TestForwards(t *testing.T) {
	t.Parallel()
	_, p := start(t)
	c, r := dial(t, p)
	for i := range 10 {
		if _, err := roundTrip(c, r, "hello", 2*time.Second); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
	}
	// Large payloads cross intact in both directions.
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Write(append(big, '\n')); done <- err }()
	got, err := r.ReadString('\n')
	if err != nil || len(got) != len(big)+1 || got[:len(big)] != string(big) {
		t.Fatalf("1 MiB echo: %d bytes, %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	_, p := start(t)
	c, r := dial(t, p)
	const d = 150 * time.Millisecond
	p.SetLatency(d)
	took, err := roundTrip(c, r, "slow", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Each direction is delayed: a round trip takes at least twice d.
	if took < 2*d {
		t.Fatalf("round trip with %v latency each way took %v", d, took)
	}
	// Latency is per chunk, not per connection: chunks sent together
	// arrive together, so ten pipelined lines take about one round trip.
	start := time.Now()
	for range 10 {
		if _, err := c.Write([]byte("x\n")); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 8*d {
		t.Errorf("ten pipelined lines took %v: latency serialises chunks", took)
	}
	p.SetLatency(0)
	// The fastest of a few round trips: one may be slow on a loaded
	// machine, all of them at 2d each only with the latency still on.
	fastest := time.Hour
	for range 5 {
		took, err := roundTrip(c, r, "fast", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fastest = min(fastest, took)
	}
	if fastest >= 2*d {
		t.Fatalf("round trips after latency off take at least %v", fastest)
	}
}

func TestResetAll(t *testing.T) {
	t.Parallel()
	_, p := start(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.ResetAll(); n != 1 {
		t.Fatalf("ResetAll reset %d connections, want 1", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := r.ReadString('\n')
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
	// New connections work at once.
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "after", 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestBlackout(t *testing.T) {
	t.Parallel()
	e, p := start(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetBlackout(true)
	// An open connection stalls: no error, no answer, nothing arrives.
	if _, err := roundTrip(c, r, "during", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip during blackout: %v, want a timeout", err)
	}
	if n := e.received(); n != 1 {
		t.Fatalf("upstream received %d lines, want 1: the blackout let a request through", n)
	}
	// A new connection is accepted and held.
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "new", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection during blackout: %v, want a timeout", err)
	}
	p.SetBlackout(false)
	// After it, what was sent is delivered, in order, on both.
	for _, x := range []struct {
		c   net.Conn
		r   *bufio.Reader
		msg string
	}{{c, r, "during"}, {c2, r2, "new"}} {
		_ = x.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, err := x.r.ReadString('\n')
		if err != nil || got != x.msg+"\n" {
			t.Fatalf("after the blackout: %q, %v, want %q", got, err, x.msg)
		}
		if _, err := roundTrip(x.c, x.r, "after", 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHalfOpen(t *testing.T) {
	t.Parallel()
	e, p := start(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetHalfOpen(faultproxy.Downstream)
	if _, err := roundTrip(c, r, "lost", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip half open: %v, want a timeout", err)
	}
	// The request went through; only the answer is withheld.
	deadline := time.Now().Add(2 * time.Second)
	for e.received() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("upstream received %d lines, want 2", e.received())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The other way round: the withheld answer comes through, a new
	// request is held.
	p.SetHalfOpen(faultproxy.Upstream)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "lost\n" {
		t.Fatalf("withheld answer: %q, %v", got, err)
	}
	if _, err := roundTrip(c, r, "held", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip with requests held: %v, want a timeout", err)
	}
	if e.received() != 2 {
		t.Fatalf("upstream received %d lines with requests held, want 2", e.received())
	}
	p.Heal()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after healing: %q, %v", got, err)
	}
}

// TestTogglesUnderLoad: toggling every fault while connections carry
// traffic (run under -race) neither corrupts nor reorders a byte.
func TestTogglesUnderLoad(t *testing.T) {
	t.Parallel()
	_, p := start(t)
	stop := make(chan struct{})
	var toggles sync.WaitGroup
	toggles.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				p.Heal()
				return
			case <-time.After(5 * time.Millisecond):
			}
			switch i % 4 {
			case 0:
				p.SetLatency(time.Duration(i%7) * time.Millisecond)
			case 1:
				p.SetBlackout(i%8 == 1)
			case 2:
				p.SetHalfOpen(faultproxy.Direction(i % 3))
			case 3:
				p.Heal()
			}
		}
	})
	var clients sync.WaitGroup
	for k := range 8 {
		clients.Go(func() {
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for i := range 50 {
				msg := string(rune('a'+k)) + string(rune('a'+i%26))
				if _, err := roundTrip(c, r, msg, 10*time.Second); err != nil {
					t.Errorf("client %d line %d: %v", k, i, err)
					return
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	toggles.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}
