// Package faultproxy is a fault-injecting TCP proxy for tests: it listens on
// a loopback port, forwards every connection to one upstream, and can, while
// it runs, delay every chunk, reset every connection, black the network out
// and leave connections half open. The engine's fault tests put one in front
// of each server (the event store, MongoDB, Redis) and point the engine at
// it.
//
// Every toggle is safe to call from any goroutine at any time.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Direction names one half of a proxied connection.
type Direction uint8

const (
	// Upstream is client -> server: requests.
	Upstream Direction = 1 << iota
	// Downstream is server -> client: answers.
	Downstream
	// Both is Upstream|Downstream.
	Both = Upstream | Downstream
)

// chunkSize is the most one read takes from a socket; latency is applied
// per chunk.
const chunkSize = 32 << 10

// queued bounds the chunks a direction holds between its reader and its
// writer (read but not yet due): a stalled writer stops the reader after
// this many, so the sender's socket fills as on a real network.
const queued = 64

// Proxy forwards connections from its listener to Upstream.
type Proxy struct {
	upstream string
	l        net.Listener

	mu sync.Mutex
	// state: changed is closed (and replaced) on every change, so that
	// stalled pumps and held connections wake and look again.
	latency  time.Duration
	blackout bool
	stalled  Direction // half-open: the directions that forward nothing
	changed  chan struct{}
	links    map[*link]struct{}
	closed   bool

	wg sync.WaitGroup
}

// Start listens on a free 127.0.0.1 port and forwards to upstream
// (host:port).
func Start(upstream string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, l: l, changed: make(chan struct{}), links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port: give it to the client instead of the
// upstream's.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// SetLatency delays every chunk, in each direction, by d from when it was
// read (0: none). Chunks stay in order; throughput is not limited.
func (p *Proxy) SetLatency(d time.Duration) { p.update(func() { p.latency = d }) }

// SetBlackout turns the blackout on or off. While on, nothing is forwarded
// on open connections (both directions stall, sockets stay open), and new
// connections are accepted but held: they reach the upstream only once the
// blackout ends (if their client is still there). That is a network
// partition as a client sees it: no error, no answer.
func (p *Proxy) SetBlackout(on bool) { p.update(func() { p.blackout = on }) }

// SetHalfOpen stops forwarding in the directions of d (0: none) on every
// connection, open or new, while both sockets stay open: with Downstream,
// requests reach the server but no answer comes back.
func (p *Proxy) SetHalfOpen(d Direction) { p.update(func() { p.stalled = d }) }

// Heal turns every fault off (latency, blackout, half-open).
func (p *Proxy) Heal() {
	p.update(func() { p.latency, p.blackout, p.stalled = 0, false, 0 })
}

// ResetAll aborts every open connection with a TCP reset on both sides (no
// FIN: SO_LINGER 0) and returns how many it reset. New connections are
// served as usual.
func (p *Proxy) ResetAll() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.reset()
	}
	return len(links)
}

// Conns is the number of connections open through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops listening, resets every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	err := p.l.Close()
	p.ResetAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) update(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
}

// gate reports whether direction d may forward now, the latency to apply,
// and a channel closed at the next change of state.
func (p *Proxy) gate(d Direction) (open bool, latency time.Duration, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed || (!p.blackout && p.stalled&d == 0), p.latency, p.changed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l := &link{p: p, client: c.(*net.TCPConn), done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.reset()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

// link is one proxied connection.
type link struct {
	p        *Proxy
	client   *net.TCPConn
	mu       sync.Mutex
	server   *net.TCPConn // nil until dialled
	done     chan struct{}
	doneOnce sync.Once
}

func (l *link) run() {
	defer l.p.wg.Done()
	defer l.forget()
	// A connection made during a blackout is held until it ends.
	for {
		l.p.mu.Lock()
		black, changed, closed := l.p.blackout, l.p.changed, l.p.closed
		l.p.mu.Unlock()
		if closed {
			l.reset()
			return
		}
		if !black {
			break
		}
		select {
		case <-changed:
		case <-l.done:
			return
		}
	}
	c, err := net.DialTimeout("tcp", l.p.upstream, 5*time.Second)
	if err != nil {
		l.reset()
		return
	}
	l.mu.Lock()
	l.server = c.(*net.TCPConn)
	l.mu.Unlock()
	select {
	case <-l.done: // reset while dialling
		l.reset()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pump(Upstream, l.client, l.server) }()
	go func() { defer wg.Done(); l.pump(Downstream, l.server, l.client) }()
	wg.Wait()
	l.close()
}

func (l *link) forget() {
	l.p.mu.Lock()
	delete(l.p.links, l)
	l.p.mu.Unlock()
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst in direction d: a reader that stamps each chunk
// with its arrival, and a writer that forwards it when it is due and the
// direction is open. EOF is passed on as a half close (CloseWrite), so a
// client that shuts its side down is seen as such by the server.
func (l *link) pump(d Direction, src, dst *net.TCPConn) {
	ch := make(chan chunk, queued)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, chunkSize)
			n, err := src.Read(b)
			if n > 0 {
				select {
				case ch <- chunk{b[:n], time.Now()}:
				case <-l.done:
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					l.reset() // a reset (or any error) on one side resets the other
				}
				return
			}
		}
	}()
	for c := range ch {
		for {
			open, latency, changed := l.p.gate(d)
			wait := time.Until(c.at.Add(latency))
			if open && wait <= 0 {
				break
			}
			var (
				timer *time.Timer
				due   <-chan time.Time
			)
			if open {
				timer = time.NewTimer(wait)
				due = timer.C
			}
			select {
			case <-due:
			case <-changed:
			case <-l.done:
			}
			if timer != nil {
				timer.Stop()
			}
			select {
			case <-l.done:
				return
			default:
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			l.reset()
			return
		}
	}
	_ = dst.CloseWrite()
}

// reset aborts both sockets with RST.
func (l *link) reset() {
	l.doneOnce.Do(func() { close(l.done) })
	_ = l.client.SetLinger(0)
	_ = l.client.Close()
	l.mu.Lock()
	s := l.server
	l.mu.Unlock()
	if s != nil {
		_ = s.SetLinger(0)
		_ = s.Close()
	}
}

// close closes both sockets normally once both directions ended.
func (l *link) close() {
	l.doneOnce.Do(func() { close(l.done) })
	_ = l.client.Close()
	l.mu.Lock()
	s := l.server
	l.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}
