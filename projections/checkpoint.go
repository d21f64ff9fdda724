package projections

import (
	"context"
	"sync"
)

// Progress is a checkpoint that readers can wait on: read-your-writes for
// clients that send X-Min-Position. The zero value is ready to use.
type Progress struct {
	mu  sync.Mutex
	pos uint64
	sig chan struct{} // closed and replaced whenever pos advances
}

// Position is the last applied position.
func (p *Progress) Position() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pos
}

// Advance moves the checkpoint forward (never back) and wakes waiters.
func (p *Progress) Advance(pos uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pos <= p.pos {
		return
	}
	p.pos = pos
	if p.sig != nil {
		close(p.sig)
		p.sig = nil
	}
}

// WaitFor blocks until the checkpoint reaches pos or ctx ends (then
// ErrNotCaughtUp).
func (p *Progress) WaitFor(ctx context.Context, pos uint64) error {
	for {
		p.mu.Lock()
		if p.pos >= pos {
			p.mu.Unlock()
			return nil
		}
		if p.sig == nil {
			p.sig = make(chan struct{})
		}
		sig := p.sig
		p.mu.Unlock()
		select {
		case <-sig:
		case <-ctx.Done():
			return ErrNotCaughtUp
		}
	}
}
