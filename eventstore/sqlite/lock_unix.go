//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockWait bounds the wait for a lock another holder is letting go of.
const lockWait = time.Second

// ErrLocked: another process has the store open.
var ErrLocked = errors.New("sqlite: the event store is in use by another process")

// lockFile takes an exclusive advisory lock on path+".lock" for the life of
// the store: the writer keeps stream heads in memory, so a second process
// appending to the same file would decide on stale heads.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// A lock held for a moment is waited for, briefly: a process exiting
	// as this one starts, or a child this process is starting (between
	// fork and exec the child shares the lock's file description, even
	// close-on-exec).
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (%s.lock)", ErrLocked, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
