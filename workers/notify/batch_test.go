package notify_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// outboxOf is every mail in r's outbox, by id, as JSON.
func outboxOf(t *testing.T, r *rig) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, st := range []notify.Status{notify.StatusPending, notify.StatusSent, notify.StatusFailed, notify.StatusDropped} {
		ms, err := r.box.List(context.Background(), st, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out[m.ID] = string(b)
		}
	}
	return out
}

// Batches put into the outbox exactly the mails that the events applied
// one at a time do, at every batch size and with a batch applied twice;
// an erasure inside a batch scrubs the mails gathered before it in that
// batch as well.
func TestBatchesMailAsOneByOne(t *testing.T) {
	t.Parallel()
	l := &log{at: func() time.Time { return now }}
	fullSet(l)
	l.add(account.PersonalDataErased{AccountID: "p1", ErasedAt: now})
	start := time.Date(2026, 12, 4, 4, 30, 0, 0, time.UTC)
	l.add(reserve("a9", start, doctor.StatusConfirmed)) // after the erasure: no address, no mail to the patient

	one := newRig(t, notify.DeliveryConfig{})
	one.apply(l.events)
	want := outboxOf(t, one)
	if len(want) == 0 {
		t.Fatal("no mails one by one")
	}
	for id, m := range want {
		if strings.Contains(m, patientEmail) || strings.Contains(m, "Asha") {
			t.Fatalf("%s still names the erased patient one by one: %s", id, m)
		}
	}
	for _, size := range []int{2, 3, 5, 8, len(l.events)} {
		r := newRig(t, notify.DeliveryConfig{})
		for chunk := range slices.Chunk(l.events, size) {
			batch := slices.Clone(chunk)
			if err := r.w.ApplyBatch(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			if err := r.w.ApplyBatch(context.Background(), slices.Clone(chunk)); err != nil { // again: a no-op
				t.Fatal(err)
			}
		}
		if got := r.w.Position(); got != l.events[len(l.events)-1].Position {
			t.Fatalf("batches of %d: position %d", size, got)
		}
		got := outboxOf(t, r)
		if len(got) != len(want) {
			t.Fatalf("batches of %d: %d mails, one by one %d", size, len(got), len(want))
		}
		for id, m := range want {
			if got[id] != m {
				t.Fatalf("batches of %d: mail %s\n got %s\nwant %s", size, id, got[id], m)
			}
		}
	}
}

// Once the worker's position passes an erasure, the stored checkpoint no
// longer knows the contact, without waiting for the next paced Save: a
// checkpoint saved just before (the contact in it, and a pace that would
// keep the next Save away) is replaced by the batch itself. One by one and
// in a batch.
func TestErasureReplacesTheCheckpoint(t *testing.T) {
	t.Parallel()
	l := &log{at: func() time.Time { return now }}
	fullSet(l)
	before := len(l.events)
	l.add(account.PersonalDataErased{AccountID: "p1", ErasedAt: now})
	l.add(reserve("a9", time.Date(2026, 12, 4, 4, 30, 0, 0, time.UTC), doctor.StatusConfirmed))
	for _, batch := range []bool{false, true} {
		r := newRig(t, notify.DeliveryConfig{})
		r.apply(l.events[:before])
		if err := r.w.Save(context.Background()); err != nil {
			t.Fatal(err)
		}
		checkpoint := func() (uint64, string) {
			pos, raw, err := r.box.Checkpoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return pos, string(raw)
		}
		if _, raw := checkpoint(); !strings.Contains(raw, patientEmail) {
			t.Fatal("the checkpoint before the erasure does not hold the contact: the test proves nothing")
		}
		if batch {
			if err := r.w.ApplyBatch(context.Background(), slices.Clone(l.events[before:])); err != nil {
				t.Fatal(err)
			}
		} else {
			r.apply(l.events[before:])
		}
		pos, raw := checkpoint()
		if pos < l.events[before].Position {
			t.Errorf("batch %v: the checkpoint is at %d, before the erasure at %d", batch, pos, l.events[before].Position)
		}
		if strings.Contains(raw, patientEmail) || strings.Contains(raw, "Asha") {
			t.Errorf("batch %v: the checkpoint still knows the erased patient", batch)
		}
	}
}

var _ projections.BatchProjection = (*notify.Worker)(nil)
