package obs_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/internal/obs"
)

// syncBuffer is a bytes.Buffer safe for the flusher and the test.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func TestBufferedWriter(t *testing.T) {
	t.Parallel()
	t.Run("info waits, warn flushes everything before it in order", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		w := obs.NewBufferedWriter(&out, time.Hour, 0)
		defer w.Close()
		log := zerolog.New(w)
		log.Info().Msg("one")
		log.Info().Msg("two")
		if out.String() != "" {
			t.Fatalf("info written before the interval: %q", out.String())
		}
		log.Warn().Msg("three")
		got := out.String()
		if !strings.Contains(got, `"one"`) || strings.Index(got, `"one"`) > strings.Index(got, `"two"`) || strings.Index(got, `"two"`) > strings.Index(got, `"three"`) {
			t.Fatalf("after a warn: %q", got)
		}
		if out.Writes() != 1 {
			t.Errorf("%d writes for three lines, want 1", out.Writes())
		}
	})
	t.Run("the interval flushes", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		w := obs.NewBufferedWriter(&out, 10*time.Millisecond, 0)
		defer w.Close()
		log := zerolog.New(w)
		log.Info().Msg("later")
		deadline := time.Now().Add(5 * time.Second)
		for out.String() == "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !strings.Contains(out.String(), "later") {
			t.Fatalf("not flushed by the interval: %q", out.String())
		}
	})
	t.Run("a full buffer flushes", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		w := obs.NewBufferedWriter(&out, time.Hour, 100)
		defer w.Close()
		log := zerolog.New(w)
		for range 10 {
			log.Info().Str("pad", strings.Repeat("x", 20)).Msg("line")
		}
		if out.Writes() == 0 || out.Writes() > 5 {
			t.Errorf("%d writes for 10 lines of ~45 bytes in a 100-byte buffer", out.Writes())
		}
	})
	t.Run("close flushes; later lines go straight through", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		w := obs.NewBufferedWriter(&out, time.Hour, 0)
		log := zerolog.New(w)
		log.Info().Msg("before")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "before") {
			t.Fatalf("Close did not flush: %q", out.String())
		}
		log.Info().Msg("after")
		if !strings.Contains(out.String(), "after") {
			t.Fatalf("a line after Close was held: %q", out.String())
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
	t.Run("concurrent writers lose no line", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		w := obs.NewBufferedWriter(&out, time.Millisecond, 256)
		log := zerolog.New(w)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 200 {
					log.Info().Msg("x")
				}
			})
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.String(), "\n"); n != 1600 {
			t.Errorf("%d lines, want 1600", n)
		}
	})
}
