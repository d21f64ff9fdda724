package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/chain"
)

// TestChainedEventsCarryTheirHash: events appended through the chain show
// their hash and still their actor and ids; the log verifies, and the
// events written before the chain count as unhashed.
func TestChainedEventsCarryTheirHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.history() // written before the chain: 5 events of doctor-d1
	f.store = chain.Wrap(f.store)
	f.append(t0.Add(4*time.Hour), doctor.StreamID(doc), reserve("a3", slot9.Add(2*time.Hour), t0.Add(4*time.Hour)))
	ctx := context.Background()
	evs, err := f.log.StreamEvents(ctx, doctor.StreamID(doc), 0, 10)
	if err != nil || len(evs) != 6 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	if evs[4].Hash != nil {
		t.Fatalf("an event written before the chain has hash %s", *evs[4].Hash)
	}
	recs, err := f.store.ReadStream(ctx, doctor.StreamID(doc), 5, eventstore.Forward, 1)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := chain.ParseLink(recs[0].Metadata)
	if e := evs[5]; !ok || e.Hash == nil || *e.Hash != l.Hash.String() || e.Actor.UserID != "u1" || e.CorrelationID != "corr-"+doctor.TypeSlotReserved {
		t.Fatalf("chained event: %+v", e)
	}
	rep, err := f.log.Verify(ctx, chain.Options{})
	if err != nil || !rep.OK || rep.Unhashed != 5 || rep.Events != 6 || len(rep.Legacy) != 1 || *rep.Legacy[0].ChainFrom != 5 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
