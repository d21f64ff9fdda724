//go:build unix

package filelock_test

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/filelock"
)

func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := filelock.Acquire(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := filelock.Acquire(path, 100*time.Millisecond); !errors.Is(err, filelock.ErrHeld) {
		t.Fatalf("second acquire: %v; want ErrHeld", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("gave up after %v; want the whole wait", waited)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = filelock.Acquire(path, 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

// A child forked by another goroutine shares the lock's file description
// until it execs: a duplicated descriptor stands for it here. Release must
// let the lock go all the same.
func TestReleaseWhileDescriptionShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := filelock.Acquire(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(filelock.File(l).Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = filelock.Acquire(path, 0)
	if err != nil {
		t.Fatalf("after release with the description shared: %v", err)
	}
	l.Release()
}

// A holder letting go during the wait is waited for.
func TestWaitsForHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := filelock.Acquire(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.Release()
	}()
	l2, err := filelock.Acquire(path, 5*time.Second)
	if err != nil {
		t.Fatalf("waiting for the holder: %v", err)
	}
	l2.Release()
}
