package commands

import (
	"fmt"
	"testing"
)

// TestStreamCacheEvictionBound: the cache of stream states never holds
// more than its bound, however many streams pass through it, and an entry
// a command holds (refs > 0) is never evicted from under it.
func TestStreamCacheEvictionBound(t *testing.T) {
	t.Parallel()
	s := newStreams(func(string) *tally { return &tally{} })
	s.max = 100
	held := s.acquire("held-1")
	for i := range 2_000 {
		id := fmt.Sprintf("s-%d", i)
		e := s.acquire(id)
		s.release(id, e, false)
		s.mu.Lock()
		n, still := len(s.m), s.m["held-1"]
		s.mu.Unlock()
		if n > s.max {
			t.Fatalf("after %d streams the cache holds %d entries, bound %d", i+1, n, s.max)
		}
		if still != held {
			t.Fatalf("after %d streams the held entry was evicted", i+1)
		}
	}
	s.release("held-1", held, false)
	// Eviction frees a tenth at a time: the cache stays near its bound,
	// not near empty.
	s.mu.Lock()
	n := len(s.m)
	s.mu.Unlock()
	if n < s.max*8/10 {
		t.Errorf("the cache holds %d entries after 2,000 streams, bound %d: eviction took too much", n, s.max)
	}
}
