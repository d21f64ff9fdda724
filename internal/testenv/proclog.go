package testenv

import (
	"bytes"
	"sync"
)

// ProcessLog collects a child process's output (stdout and stderr may
// share one) for error messages; it keeps the first MiB.
type ProcessLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *ProcessLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

// String is what was written.
func (b *ProcessLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
