//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

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
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s.lock)", ErrLocked, path)
		}
		return nil, err
	}
	return f, nil
}
