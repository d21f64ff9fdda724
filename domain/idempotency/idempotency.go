// Package idempotency holds the claim of an Idempotency-Key: the one event
// of the key's own stream, appended with expected revision "no stream" by
// the first request that used the key. It binds the key to that request,
// whichever stream the request acts on, so a key can never be used for two
// different requests, on any event store (it does not rely on the store
// refusing an event id used elsewhere, which EventStoreDB does not do).
//
// The claim is a command-layer record, not a fact of an aggregate: read
// models have nothing to learn from it, so the catalog does not register
// it and readers of $all skip it as an unknown type.
package idempotency

import (
	"maps"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// TypeKeyClaimed is the stored name of KeyClaimed.
const TypeKeyClaimed = "idempotency.KeyClaimed.v1"

// Category is the stream category of key claims.
const Category = "idempotency"

// StreamID is the stream of the key whose id (a UUIDv5 of the caller and
// the key) is keyID.
func StreamID(keyID string) string { return Category + "-" + keyID }

// KeyClaimed records the first request made with an Idempotency-Key, by its
// fingerprint: the command, the stream and the entity it acts on, a hash of
// its canonical body and the ids it produces. A later request with the key
// is a retry only if its fingerprint is the same.
type KeyClaimed struct {
	// KeyID is the key's id, derived from the caller and the key.
	KeyID string `json:"keyId"`
	// Command is the command's name, such as "ReserveSlot".
	Command string `json:"command"`
	// Stream is the stream the request acts on, such as "doctor-{id}".
	Stream string `json:"stream"`
	// Target is the entity of Stream the request acts on (an appointment),
	// if any.
	Target string `json:"target,omitempty"`
	// RequestHash is the hex SHA-256 of the request's canonical body.
	RequestHash string `json:"requestHash"`
	// IDs are the ids the request produces, by purpose ("appointment").
	IDs       map[string]string `json:"ids,omitempty"`
	ClaimedAt time.Time         `json:"claimedAt"`
}

func (KeyClaimed) EventType() string { return TypeKeyClaimed }

// Events lists the registrations of the idempotency event types, for the
// command layer's own registry (see the package comment).
func Events() []domain.Registration {
	return []domain.Registration{domain.Type[KeyClaimed]()}
}

// SameRequest reports whether o is the same request as c (a retry): the
// same key, command, stream, target, body and produced ids. ClaimedAt is
// when, not what, and does not count.
func (c KeyClaimed) SameRequest(o KeyClaimed) bool {
	return c.KeyID == o.KeyID && c.Command == o.Command && c.Stream == o.Stream && c.Target == o.Target &&
		c.RequestHash == o.RequestHash && maps.Equal(c.IDs, o.IDs)
}
