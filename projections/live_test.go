package projections_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// shadowed is a projection that keeps its data "outside" (in a shared
// store keyed by generation), as the MongoDB models do: it implements the
// Shadower and Promoter hooks of projections.Live.
type shadowed struct {
	st         *shadowStore
	gen        int
	promoted   bool
	promoteErr error
}

type shadowStore struct {
	mu      sync.Mutex
	applied map[int][]uint64 // generation -> positions applied
	live    int              // the generation readers see
	next    int
}

func (s *shadowed) Name() string { return "shadowed" }

func (s *shadowed) Apply(_ context.Context, e projections.Event) error {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if ps := s.st.applied[s.gen]; len(ps) > 0 && ps[len(ps)-1] >= e.Position {
		return nil
	}
	s.st.applied[s.gen] = append(s.st.applied[s.gen], e.Position)
	return nil
}

func (s *shadowed) Checkpoint(context.Context) (uint64, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if ps := s.st.applied[s.gen]; len(ps) > 0 {
		return ps[len(ps)-1], nil
	}
	return 0, nil
}

func (s *shadowed) NewShadow(context.Context) (*shadowed, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.next++
	return &shadowed{st: s.st, gen: s.st.next, promoteErr: s.promoteErr}, nil
}

func (s *shadowed) Promote(context.Context) (*shadowed, error) {
	if s.promoteErr != nil {
		return nil, s.promoteErr
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.st.live = s.gen
	return &shadowed{st: s.st, gen: s.gen, promoted: true}, nil
}

// A projection with the Shadower and Promoter hooks is rebuilt into the
// copy NewShadow makes (never the factory's), promoted under the apply
// lock and swapped in; a failed promotion leaves the current copy serving.
func TestLiveRebuildShadowerPromoter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.registerDoctor(t, "Dr. Shadow", "ENT", "INR", everyDay("Asia/Kolkata", doctor.PaymentOptional))
	w.registerPatient(t, "Patient One")
	ctx := context.Background()
	st := &shadowStore{applied: map[int][]uint64{}}
	factoryCalls := 0
	l := projections.NewLive(func() *shadowed { factoryCalls++; return &shadowed{st: st} })
	recs, err := w.store.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		e, err := projections.Decode(w.reg, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Apply(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Current()
	if err := l.Rebuild(ctx, w.store, w.reg); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	cur := l.Current()
	switch {
	case factoryCalls != 1:
		t.Errorf("the factory was called %d times, want once (NewLive)", factoryCalls)
	case cur == before || !cur.promoted || cur.gen != 1 || st.live != 1:
		t.Errorf("after the rebuild: current %+v, live generation %d; want the promoted generation 1", cur, st.live)
	case !slices.Equal(st.applied[1], st.applied[0]):
		t.Errorf("the shadow applied %v, the original %v", st.applied[1], st.applied[0])
	}
	if state, _ := l.State(); state != "running" {
		t.Errorf("state %s", state)
	}

	// A promotion that fails: the current copy stays, the state says so.
	cur.promoteErr = errors.New("switch refused")
	if err := l.Rebuild(ctx, w.store, w.reg); err == nil {
		t.Fatal("Rebuild with a failing Promote: no error")
	}
	if l.Current() != cur || st.live != 1 {
		t.Errorf("after a failed promotion the current copy changed")
	}
	if state, lastErr := l.State(); state != "failed" || lastErr == "" {
		t.Errorf("state %s, %q after a failed promotion", state, lastErr)
	}
}
