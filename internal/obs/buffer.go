package obs

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// BufferedWriter batches log lines into fewer writes: a line at warn level
// or above is written at once (with every line before it, in order); lines
// below wait at most the flush interval, or until the buffer holds size
// bytes. A busy API logs a line per request: written one by one, each costs
// a write(2) of its own, about a tenth of the server's CPU for a trivial
// request (docs/performance.md, "Free-slot read path").
//
// What a crash loses is at most one interval of info and debug lines;
// Close writes what is buffered and stops the flusher: call it before the
// process exits.
type BufferedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	size int
	err  error // the last failed write, reported by the next Write

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ zerolog.LevelWriter = (*BufferedWriter)(nil)

// NewBufferedWriter buffers lines for w, flushed every interval (at least
// a millisecond) and whenever size bytes are buffered (64 KiB if size <= 0).
func NewBufferedWriter(w io.Writer, interval time.Duration, size int) *BufferedWriter {
	if size <= 0 {
		size = 64 << 10
	}
	interval = max(interval, time.Millisecond)
	b := &BufferedWriter{w: w, buf: make([]byte, 0, size), size: size, stop: make(chan struct{}), done: make(chan struct{})}
	go b.flusher(interval)
	return b
}

func (b *BufferedWriter) flusher(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			b.flushLocked()
			b.mu.Unlock()
		}
	}
}

// Write buffers p as a line without a level.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	return b.WriteLevel(zerolog.NoLevel, p)
}

// WriteLevel implements zerolog.LevelWriter.
func (b *BufferedWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.err
	b.err = nil
	b.buf = append(b.buf, p...)
	if (level >= zerolog.WarnLevel && level <= zerolog.PanicLevel) || len(b.buf) >= b.size {
		if ferr := b.flushLocked(); ferr != nil {
			err = ferr
			b.err = nil
		}
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushLocked writes the buffer out; a failure is kept for the next Write.
func (b *BufferedWriter) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 4*b.size {
		b.buf = make([]byte, 0, b.size) // one huge line must not pin its buffer
	} else {
		b.buf = b.buf[:0]
	}
	if err != nil {
		b.err = err
	}
	return err
}

// Flush writes what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.err = nil
	return err
}

// Close stops the flusher and writes what is buffered; later lines are
// written at once, unbuffered.
func (b *BufferedWriter) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.err = nil
	b.size = 0 // every later line flushes at once (len(buf) >= 0)
	return err
}
