//go:build !unix

package filelock

import (
	"errors"
	"os"
)

// Where flock is not available the lock is the file alone: it excludes
// nothing.
var errWouldBlock = errors.New("filelock: would block")

func tryLock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
