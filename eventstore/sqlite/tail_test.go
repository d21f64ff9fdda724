package sqlite

import (
	"testing"

	"github.com/prescripto/prescripto/eventstore"
)

func TestTailKeepsTheNewestContiguousEvents(t *testing.T) {
	t.Parallel()
	var tl tail
	if _, ok := tl.after(0, 10); ok {
		t.Fatal("an empty tail answered")
	}
	pos := uint64(0)
	var held [][]eventstore.RecordedEvent // slices handed out earlier must not change
	for round := range 400 {
		batch := make([]eventstore.RecordedEvent, 1+round%97)
		for i := range batch {
			pos++
			batch[i] = eventstore.RecordedEvent{Position: pos, Revision: pos}
		}
		tl.add(batch)
		if got, ok := tl.after(pos-uint64(len(batch)), 1000); !ok || len(got) != len(batch) || got[0].Position != batch[0].Position {
			t.Fatalf("round %d: the newest batch is not served: ok=%v len=%d", round, ok, len(got))
		}
		if got, ok := tl.after(pos, 10); !ok || len(got) != 0 {
			t.Fatalf("round %d: caught up gave %d events, ok=%v", round, len(got), ok)
		}
		if s, ok := tl.after(pos-uint64(len(batch))-1, 3); ok {
			held = append(held, s)
		}
	}
	n := len(tl.events)
	if n < tailSize || n > 2*tailSize {
		t.Fatalf("tail holds %d events; want between %d and %d", n, tailSize, 2*tailSize)
	}
	first := tl.events[0].Position
	if _, ok := tl.after(first-2, 10); ok {
		t.Fatal("a position older than the tail was answered from it")
	}
	got, ok := tl.after(first-1, 5000)
	if !ok || len(got) != min(5000, n) {
		t.Fatalf("after(first-1): ok=%v len=%d", ok, len(got))
	}
	for i := range got {
		if got[i].Position != first+uint64(i) {
			t.Fatalf("not contiguous at %d: %d", i, got[i].Position)
		}
	}
	for _, s := range held {
		for i := 1; i < len(s); i++ {
			if s[i].Position != s[i-1].Position+1 {
				t.Fatal("a slice handed out earlier changed")
			}
		}
	}
}
