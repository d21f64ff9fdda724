//go:build !unix

package sqlite

import (
	"errors"
	"os"
)

// ErrLocked: another process has the store open.
var ErrLocked = errors.New("sqlite: the event store is in use by another process")

// lockFile is a no-op where flock is not available.
func lockFile(string) (*os.File, error) { return nil, nil }
