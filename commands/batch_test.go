package commands

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/sqlite"
)

// tally is a minimal aggregate for the command loop's own tests: a
// counter that refuses to pass a limit, and a behaviour that records an
// event and then refuses (what the loop must never store).
type tally struct {
	n       int
	changes []domain.Event
}

type added struct{ By int }

func (added) EventType() string { return "test.Added.v1" }

func (t *tally) Load(evs ...domain.Event) {
	for _, e := range evs {
		t.n += e.(added).By
	}
}
func (t *tally) Changes() []domain.Event { return t.changes }
func (t *tally) ClearChanges()           { t.changes = nil }
func (t *tally) Registered() bool        { return true }

func (t *tally) add(by, limit int) error {
	if t.n+by > limit {
		return errLimit
	}
	t.n += by
	t.changes = append(t.changes, added{by})
	return nil
}

var errLimit = domain.NewError(domain.ErrConflict, "limit", "over the limit")

func newTallyHandler(t *testing.T) (*Handler, *streams[*tally]) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := domain.NewEmptyRegistry()
	if err := reg.Register(domain.Type[added]()); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: st, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return h, newStreams(func(string) *tally { return &tally{} })
}

// Commands queued together are decided in order, each on the state the
// previous left, and refused ones append nothing; a command that records
// an event and then refuses stores nothing of it, and the others of its
// batch still go through.
func TestBatchesDecideInOrderAndStoreNothingRefused(t *testing.T) {
	t.Parallel()
	h, kind := newTallyHandler(t)
	const limit, n = 50, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused, corrupt := 0, 0, 0
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			decide := func(a *tally, _ time.Time) error { return a.add(1, limit) }
			if i%10 == 0 {
				// Records, then refuses.
				decide = func(a *tally, _ time.Time) error {
					_ = a.add(1, 1<<30)
					return errors.New("changed its mind")
				}
			}
			_, err := run(context.Background(), h, kind, step[*tally]{command: "Add", stream: "tally-1", decide: decide})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, errLimit):
				refused++
			default:
				corrupt++
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != limit || refused != n-n/10-limit || corrupt != n/10 {
		t.Fatalf("%d added, %d over the limit, %d changed their mind; want %d, %d, %d", ok, refused, corrupt, limit, n-n/10-limit, n/10)
	}
	recs, err := h.store.ReadStream(context.Background(), "tally-1", 0, eventstore.Forward, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != limit {
		t.Fatalf("%d events stored, want %d", len(recs), limit)
	}
}
