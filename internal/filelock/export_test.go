package filelock

import "os"

// File is the lock's open file, for tests.
func File(l *Lock) *os.File { return l.f }
