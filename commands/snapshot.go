package commands

import (
	"context"
	"encoding/binary"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/snapshot"
)

// Snapshots of doctor streams make a cold load (the first command on a
// doctor after a start, or after the cache evicted it) read only the events
// after the newest snapshot instead of folding the whole stream. A
// snapshot here is the aggregate's (doctor.MarshalSnapshot) plus the
// command layer's own state of the stream (the events appended under an
// Idempotency-Key, so a retry is still recognised after a restart).
//
// When: a load that folded at least SnapshotEvery events saves one at the
// revision it reached, and so does a batch that takes the stream
// SnapshotEveryAppended events past the last snapshot (marshalled and
// written under the stream's lock: tens of milliseconds for 100,000
// events, once per that many events). A snapshot whose revision does not
// hold the event it names (a log replaced under the data dir) or of another
// shape is ignored: the stream is folded.

// SnapshotEvery is how many events a load must fold before it saves a
// snapshot of the state it reached.
const SnapshotEvery = 1000

// SnapshotEveryAppended is how many events appended through this handler
// since the last snapshot make it save another.
const SnapshotEveryAppended = 10_000

// commandShape is the shape of the command layer's snapshots: the
// aggregate's version and this envelope's.
const commandShape = 1_000_000 + doctor.SnapshotVersion*100 + 1

// snapCodec is how one kind of stream is snapshotted (nil: not at all).
type snapCodec[A aggregate] struct {
	marshal func(A) ([]byte, error)
	restore func(stream string, b []byte) (A, error)
}

func doctorCodec(reg *domain.Registry) *snapCodec[*doctor.Doctor] {
	return &snapCodec[*doctor.Doctor]{
		marshal: func(d *doctor.Doctor) ([]byte, error) { return d.MarshalSnapshot() },
		restore: func(stream string, b []byte) (*doctor.Doctor, error) {
			_, id, _ := strings.Cut(stream, "-")
			d, err := doctor.RestoreSnapshot(id, b)
			if err == nil && reg.Cipher() != nil {
				d.SealWith(reg.Cipher().Seal) // as newDoctorStreams' doctors
			}
			return d, err
		},
	}
}

// restoreSnapshot sets e from the newest usable snapshot of stream and
// reports whether there was one.
func (s *streams[A]) restoreSnapshot(ctx context.Context, h *Handler, stream string, e *entry[A]) bool {
	if s.codec == nil || h.snapshots == nil {
		return false
	}
	snap, ok, err := h.snapshots.Latest(ctx, stream, commandShape, ^uint64(0), time.Time{})
	if err != nil || !ok {
		return false
	}
	// The snapshot must name an event of this log: the one at its revision.
	recs, err := h.store.ReadStream(ctx, stream, snap.Revision, eventstore.Forward, 1)
	if err != nil || len(recs) != 1 || recs[0].Revision != snap.Revision || recs[0].Position != snap.Position {
		return false
	}
	aggBytes, keyed, ok := splitEnvelope(snap.Data)
	if !ok {
		return false
	}
	agg, err := s.codec.restore(stream, aggBytes)
	if err != nil {
		return false
	}
	e.agg, e.keyed = agg, keyed
	e.rev, e.pos, e.snapRev = int64(snap.Revision), snap.Position, int64(snap.Revision)
	return true
}

// saveSnapshot saves e's state (under e.mu, with no pending changes).
// Failures are dropped: a snapshot is an optimisation.
func (s *streams[A]) saveSnapshot(ctx context.Context, h *Handler, stream string, e *entry[A]) {
	if s.codec == nil || h.snapshots == nil || e.rev < 0 || len(e.agg.Changes()) > 0 {
		return
	}
	b, err := s.codec.marshal(e.agg)
	if err != nil {
		return
	}
	data := appendEnvelope(b, &e.keyed)
	if err := h.snapshots.Save(ctx, snapshot.Snapshot{Stream: stream, Revision: uint64(e.rev), Position: e.pos, Shape: commandShape, Data: data}); err == nil {
		e.snapRev = e.rev
	}
}

// appendEnvelope is the aggregate's snapshot followed by the keyed events
// and the length of the aggregate's part.
func appendEnvelope(agg []byte, k *keyedEvents) []byte {
	b := make([]byte, 0, len(agg)+len(k.m)*40+16)
	b = append(b, agg...)
	b = binary.AppendUvarint(b, uint64(len(k.m)))
	for id, ke := range k.m {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, ke.pos)
		b = append(b, ke.appt[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(k.odd)))
	for id, ref := range k.odd {
		b = append(b, id[:]...)
		b = binary.AppendUvarint(b, uint64(len(ref)))
		b = append(b, ref...)
	}
	return binary.BigEndian.AppendUint64(b, uint64(len(agg)))
}

func splitEnvelope(b []byte) (agg []byte, k keyedEvents, ok bool) {
	if len(b) < 8 {
		return nil, k, false
	}
	n := binary.BigEndian.Uint64(b[len(b)-8:])
	if n > uint64(len(b)-8) {
		return nil, k, false
	}
	agg, p := b[:n], b[n:len(b)-8]
	k = newKeyedEvents()
	cnt, w := binary.Uvarint(p)
	if w <= 0 || cnt > uint64(len(p)) {
		return nil, k, false
	}
	p = p[w:]
	for range cnt {
		if len(p) < 16 {
			return nil, k, false
		}
		id := uuid.UUID(p[:16])
		pos, w := binary.Uvarint(p[16:])
		if w <= 0 || len(p) < 16+w+16 {
			return nil, k, false
		}
		k.m[id] = keyedEvent{pos: pos, appt: uuid.UUID(p[16+w : 16+w+16])}
		p = p[16+w+16:]
	}
	cnt, w = binary.Uvarint(p)
	if w <= 0 || cnt > uint64(len(p)) {
		return nil, k, false
	}
	p = p[w:]
	for range cnt {
		if len(p) < 16 {
			return nil, k, false
		}
		id := uuid.UUID(p[:16])
		l, w := binary.Uvarint(p[16:])
		if w <= 0 || uint64(len(p)-16-w) < l {
			return nil, k, false
		}
		if k.odd == nil {
			k.odd = map[uuid.UUID]string{}
		}
		k.odd[id] = string(p[16+w : 16+w+int(l)])
		p = p[16+w+int(l):]
	}
	return agg, k, len(p) == 0
}
