package sqlite

import (
	"errors"
	"time"
)

// lockWait bounds the wait for a lock another holder is letting go of.
const lockWait = time.Second

// ErrLocked: another process has the store open. The writer keeps stream
// heads in memory, so a second process appending to the same file would
// decide on stale heads: the store holds an exclusive lock on path+".lock"
// while open.
var ErrLocked = errors.New("sqlite: the event store is in use by another process")
