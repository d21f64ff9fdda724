// Package filelock holds an exclusive advisory lock on a file for the life
// of a process's use of a directory: the embedded event store and the file
// outbox keep state in memory that a second process writing the same files
// would contradict.
package filelock

import (
	"errors"
	"os"
	"time"
)

// ErrHeld: another process holds the lock (and kept it for the whole wait).
var ErrHeld = errors.New("filelock: held by another process")

// Lock is a held lock. Release lets it go.
type Lock struct {
	f *os.File
}

// Acquire takes the lock on path (creating the file), waiting up to wait
// for a holder letting go: a process exiting as this one starts, or a
// child another goroutine of this process is starting (between fork and
// exec the child shares every open file description, close-on-exec or not,
// and with it the lock of a file this process has just released).
func Acquire(path string, wait time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := tryLock(f)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, errWouldBlock) {
			_ = f.Close()
			return nil, err
		}
		if !time.Now().Before(deadline) {
			_ = f.Close()
			return nil, ErrHeld
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Release lets the lock go and closes its file. It unlocks explicitly
// before closing: closing the descriptor alone keeps the lock while a
// forked child still shares the file description, until that child execs.
// Release on a nil Lock does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := errors.Join(unlock(l.f), l.f.Close())
	l.f = nil
	return err
}
