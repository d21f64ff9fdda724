package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/idempotency"
	"github.com/prescripto/prescripto/eventstore"
)

// A keyed command binds its Idempotency-Key to its request before it
// appends anything: it claims the key in the key's own stream,
// idempotency-{UUIDv5(caller, key)}, with expected revision "no stream",
// recording the request's fingerprint (command, target stream and entity,
// hash of the canonical body, ids it produces). The claim's event id is
// derived from the key and the fingerprint, so:
//   - the first request writes the claim and proceeds;
//   - a retry (same fingerprint) re-appends the very same event, which the
//     store answers as an idempotent append, and proceeds: the command's
//     own append is idempotent too (deterministic event ids, exact
//     revision; the command recognises its events in the stream), so a
//     retry after a crash between the claim and the command's append
//     completes the command, and a retry after it answers like the first;
//   - another request with the key (another doctor, appointment, body)
//     appends another event id at "no stream", gets a version conflict,
//     reads the claim and is refused with ErrIdempotencyKeyReused.
// Concurrent requests with one key race on "no stream": exactly one
// fingerprint wins. None of this relies on the store refusing an event id
// used in another stream, which EventStoreDB does not do.
//
// A command claims only once it has decided to record events, just before
// they are appended (the claims of one batch in parallel: see run), so a
// request refused for its input or by the state stores nothing, not even
// its claim; a retry that finds its events stored claims again, to prove it
// is the same request. The claim costs a keyed command one more append
// (and a read when it is refused); an unkeyed command claims nothing (see
// the keyed benchmarks in bench_test.go and docs/performance.md).
//
// Every keyed command claims, on every store, except the account openings
// (RegisterPatient, CreateStaff, RegisterDoctor): their streams are derived
// from the key itself (the account and doctor ids), and checkKeyedOpen
// compares the request with what the key stored. Commands never ask which
// store they were given.

// request is the part of a keyed command's fingerprint that the command
// gives: its canonical body (marshalled to JSON and hashed; times in UTC)
// and the ids it produces. A nil body claims nothing: the command's streams
// are derived from the key.
type request struct {
	body any
	ids  map[string]string
}

// keyID is the id of m's Idempotency-Key: a UUIDv5 of the caller and the
// key (keys are scoped to the caller).
func keyID(m Meta) uuid.UUID {
	return uuid.NewSHA1(idNamespace, []byte("idempotency-key\x00"+m.Actor.UserID+"\x00"+string(m.Actor.Role)+"\x00"+m.IdempotencyKey))
}

// claimKey binds m's Idempotency-Key to the request of command on stream
// (and on the entity target of it): nil for the first request with the key
// and for its retries, ErrIdempotencyKeyReused for any other request. An
// unkeyed request claims nothing.
func (h *Handler) claimKey(ctx context.Context, m Meta, command, stream, target string, r request) error {
	if m.IdempotencyKey == "" || r.body == nil {
		return nil
	}
	body, err := json.Marshal(r.body)
	if err != nil {
		return fmt.Errorf("commands: fingerprint %s: %w", command, err)
	}
	sum := sha256.Sum256(body)
	kid := keyID(m)
	claim := idempotency.KeyClaimed{KeyID: kid.String(), Command: command, Stream: stream, Target: target, RequestHash: hex.EncodeToString(sum[:]), IDs: r.ids}
	fp, err := json.Marshal(claim) // without ClaimedAt: what, not when
	if err != nil {
		return fmt.Errorf("commands: fingerprint %s: %w", command, err)
	}
	claim.ClaimedAt = h.clock()
	data, err := h.encode([]domain.Event{claim}, []uuid.UUID{uuid.NewSHA1(kid, fp)}, m, claim.ClaimedAt)
	if err != nil {
		return err
	}
	keyStream := idempotency.StreamID(claim.KeyID)
	_, err = h.store.Append(ctx, keyStream, eventstore.NoStream, data)
	switch {
	case err == nil:
		return nil // the first request, or a retry (an idempotent append)
	case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return storeErr(err)
	}
	stored, err := h.readClaim(ctx, keyStream)
	if err != nil {
		return err
	}
	if !stored.SameRequest(claim) {
		return ErrIdempotencyKeyReused
	}
	return nil // a retry whose claim was stored under another id: same request
}

// readClaim reads the claim of a key's stream.
func (h *Handler) readClaim(ctx context.Context, stream string) (idempotency.KeyClaimed, error) {
	recs, err := h.store.ReadStream(ctx, stream, 0, eventstore.Forward, 1)
	if err != nil {
		return idempotency.KeyClaimed{}, fmt.Errorf("commands: read key claim %s: %w", stream, storeErr(err))
	}
	if len(recs) == 0 {
		return idempotency.KeyClaimed{}, fmt.Errorf("commands: key claim %s: %w", stream, eventstore.ErrStreamNotFound)
	}
	e, err := h.claims.Decode(recs[0].Type, recs[0].Data)
	if err != nil {
		return idempotency.KeyClaimed{}, fmt.Errorf("commands: key claim %s: %w", stream, err)
	}
	c, ok := e.(idempotency.KeyClaimed)
	if !ok {
		return idempotency.KeyClaimed{}, fmt.Errorf("commands: key stream %s holds a %s", stream, recs[0].Type)
	}
	return c, nil
}
