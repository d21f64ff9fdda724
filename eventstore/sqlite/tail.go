package sqlite

import (
	"slices"
	"sync"

	"github.com/prescripto/prescripto/eventstore"
)

// tailSize is how many recent events are kept in memory for live
// subscribers (between tailSize and twice as many).
const tailSize = 8192

// tail holds the most recently committed events, contiguous by position, so
// that caught-up subscribers get new events from memory instead of reading
// back what the writer has just written. Only the writer appends to it,
// after a commit and before waking subscribers; this process is the only
// writer of the file (see lockFile), so the tail's last event is the log's
// head whenever the tail is not empty.
type tail struct {
	mu     sync.Mutex
	events []eventstore.RecordedEvent // never modified in place, only replaced or appended to
}

// add appends committed events (in position order).
func (t *tail) add(evs []eventstore.RecordedEvent) {
	if len(evs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.events); n > 0 && t.events[n-1].Position+1 != evs[0].Position {
		t.events = nil // not contiguous (cannot happen with one writer): start afresh
	}
	t.events = append(t.events, evs...)
	if len(t.events) > 2*tailSize {
		// Keep the newest tailSize in a new array (readers keep the old
		// one); trimming only at twice the size makes the copy O(1) per
		// event amortised.
		t.events = slices.Clone(t.events[len(t.events)-tailSize:])
	}
}

// after returns up to limit events with Position > pos, and whether the tail
// could answer (false: pos is older than the tail, or the tail is empty).
func (t *tail) after(pos uint64, limit int) ([]eventstore.RecordedEvent, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.events)
	if n == 0 || pos+1 < t.events[0].Position {
		return nil, false
	}
	i := int(pos + 1 - t.events[0].Position)
	if i >= n {
		return nil, true // caught up
	}
	return t.events[i:min(n, i+limit):min(n, i+limit)], true
}
