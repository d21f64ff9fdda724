package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/personal"
)

// stallingStore holds every append to a doctor stream while it is stalled,
// as a store behind a network partition does: the append neither succeeds
// nor fails until the partition heals.
type stallingStore struct {
	eventstore.Store
	mu      sync.Mutex
	stalled chan struct{} // non-nil while stalled; closed to heal
	entered chan struct{} // an append reached the stall
}

func (s *stallingStore) stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled = make(chan struct{})
	s.entered = make(chan struct{}, 64)
}

func (s *stallingStore) heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.stalled)
	s.stalled = nil
}

func (s *stallingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	s.mu.Lock()
	stalled, entered := s.stalled, s.entered
	s.mu.Unlock()
	if stalled != nil && strings.HasPrefix(stream, doctor.StreamID("")) {
		entered <- struct{}{}
		<-stalled // deliberately deaf to ctx: the partition does not end with the caller
	}
	return s.Store.Append(ctx, stream, expected, events)
}

// TestCallerLeavesAtItsDeadline: a command whose append does not come back
// answers its caller when the caller's deadline passes (the API's request
// timeout turns that into a 503) instead of hanging with the store, the
// leader of the batch as well as the commands queued behind it; the batch
// goes on, and once the store answers again the outcome is what a retry
// with the same Idempotency-Key learns: the booking, exactly once.
func TestCallerLeavesAtItsDeadline(t *testing.T) {
	t.Parallel()
	ss := &stallingStore{Store: newStore(t)}
	e := newEnvOn(t, ss)
	d := e.doctor(t, "stall")
	free := slots(t, d, 4)

	ss.stall()
	const callers = 4
	type answer struct {
		res  commands.AppointmentResult
		err  error
		took time.Duration
	}
	answers := make([]answer, callers)
	metas := make([]commands.Meta, callers)
	reqs := make([]commands.ReserveSlot, callers)
	var wg sync.WaitGroup
	for i := range callers {
		metas[i] = patient(10 + i)
		metas[i].IdempotencyKey = "stall-key-" + string(rune('a'+i))
		reqs[i] = commands.ReserveSlot{PatientName: "Test Patient", DoctorID: d.ID, Start: free[i]}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			res, err := e.h.ReserveSlot(ctx, metas[i], reqs[i])
			answers[i] = answer{res, err, time.Since(start)}
		})
		if i == 0 {
			<-ss.entered // the first is the leader, its append stalled; the others queue behind it
		}
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		ss.heal()
		t.Fatal("callers still waiting 10 s after their 300 ms deadline: they wait for the stalled store")
	}
	for i, a := range answers {
		if !errors.Is(a.err, context.DeadlineExceeded) {
			t.Errorf("caller %d: %v (appointment %q), want the deadline's error", i, a.err, a.res.Appointment.ID)
		}
		if a.took > 5*time.Second {
			t.Errorf("caller %d answered after %v: it waited for the store, not its deadline", i, a.took)
		}
	}
	if n := e.eventsOfType(t, doctor.TypeSlotReserved); n != 0 {
		t.Fatalf("%d bookings appended while the store stalled", n)
	}

	ss.heal()
	// The retries learn the outcome: each booking exactly once, whether the
	// batch behind the stall appended it or the retry does.
	seen := map[string]bool{}
	for i := range callers {
		var res commands.AppointmentResult
		var err error
		for try := 0; try < 100; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err = e.h.ReserveSlot(ctx, metas[i], reqs[i])
			cancel()
			if !errors.Is(err, commands.ErrConcurrency) {
				break
			}
		}
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if !res.Appointment.Start.Equal(free[i]) || seen[res.Appointment.ID] {
			t.Fatalf("retry %d: appointment %s at %v, want a new one at %v", i, res.Appointment.ID, res.Appointment.Start, free[i])
		}
		seen[res.Appointment.ID] = true
	}
	if n := e.eventsOfType(t, doctor.TypeSlotReserved); n != callers {
		t.Fatalf("%d SlotReserved events after the retries, want %d", n, callers)
	}
}

// stallingKeys is a personal-data key store that answers nothing about one
// subject (a key store behind a partition, as far as that key goes) until
// its caller's context ends.
type stallingKeys struct {
	personal.KeyStore
	subject string
	entered chan struct{}
}

func (s *stallingKeys) wait(ctx context.Context, subject string) error {
	if subject != s.subject {
		return nil
	}
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *stallingKeys) Get(ctx context.Context, subject string) ([]byte, error) {
	if err := s.wait(ctx, subject); err != nil {
		return nil, err
	}
	return s.KeyStore.Get(ctx, subject)
}

func (s *stallingKeys) Create(ctx context.Context, subject string, key []byte) ([]byte, error) {
	if err := s.wait(ctx, subject); err != nil {
		return nil, err
	}
	return s.KeyStore.Create(ctx, subject, key)
}

// TestStalledKeyReadHoldsOnlyItsCommand: a booking whose patient's key the
// key store does not give answers at its own deadline, and holds nobody
// else: another patient's booking of the same doctor goes through
// meanwhile. The key used to be read inside the doctor's batch (the
// aggregate seals the patient's name), with the vault's own 5 s timeout,
// so one stalled key read held every booking of that doctor.
func TestStalledKeyReadHoldsOnlyItsCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stalled, other := patient(1), patient(2)
	ks := &stallingKeys{KeyStore: personal.NewMemoryKeyStore(), subject: stalled.Actor.UserID, entered: make(chan struct{}, 1)}
	e.reg.SetCipher(personal.NewVault(ks))
	d := e.doctor(t, "keys")
	free := slots(t, d, 3)
	if _, err := e.h.ReserveSlot(context.Background(), other, commands.ReserveSlot{PatientName: "Other Patient", DoctorID: d.ID, Start: free[2]}); err != nil {
		t.Fatal(err) // the other patient's key is now in memory
	}

	type answer struct {
		err  error
		took time.Duration
	}
	book := func(m commands.Meta, start time.Time, limit time.Duration, out chan<- answer) {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		t0 := time.Now()
		_, err := e.h.ReserveSlot(ctx, m, commands.ReserveSlot{PatientName: "Some Patient", DoctorID: d.ID, Start: start})
		out <- answer{err, time.Since(t0)}
	}
	first, second := make(chan answer, 1), make(chan answer, 1)
	go book(stalled, free[0], 300*time.Millisecond, first)
	select {
	case <-ks.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first booking never asked for its key")
	}
	// 2 s: ample for a booking on a loaded machine, and shorter than the
	// vault's own 5 s that a key read inside the batch waited.
	go book(other, free[1], 2*time.Second, second)
	if a := <-second; a.err != nil {
		t.Fatalf("a booking of the same doctor, its key in memory, while another's key read stalls: %v after %v", a.err, a.took.Round(time.Millisecond))
	}
	a := <-first
	if a.err == nil {
		t.Fatal("the booking whose key never came answered 201")
	}
	if a.took > 2*time.Second {
		t.Fatalf("the booking whose key never came answered after %v (deadline 300ms): %v", a.took.Round(time.Millisecond), a.err)
	}
}
