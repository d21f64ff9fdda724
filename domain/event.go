package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Role of an actor.
type Role string

const (
	RolePatient Role = "patient"
	RoleDoctor  Role = "doctor"
	RoleAdmin   Role = "admin"
	RoleAuditor Role = "auditor"
	RoleAnalyst Role = "analyst"
	// RoleSystem is the engine itself (workers, the hold reaper, seeding).
	RoleSystem Role = "system"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RolePatient, RoleDoctor, RoleAdmin, RoleAuditor, RoleAnalyst, RoleSystem:
		return true
	}
	return false
}

// Actor is who caused an event.
type Actor struct {
	UserID string `json:"userId"`
	Role   Role   `json:"role"`
}

// System is the actor of the engine's own decisions.
var System = Actor{UserID: "system", Role: RoleSystem}

// Metadata travels with every stored event.
type Metadata struct {
	EventID       uuid.UUID `json:"eventId"`
	Actor         Actor     `json:"actor"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
	RequestID     string    `json:"requestId,omitempty"`
	// ClientRequestID is the X-Request-ID the client sent, kept apart
	// from the server-made RequestID (a client never chooses our ids).
	ClientRequestID string    `json:"clientRequestId,omitempty"`
	IdempotencyKey  string    `json:"idempotencyKey,omitempty"`
	OccurredAt      time.Time `json:"occurredAt"`
}

// Event is a past-tense fact. EventType is its stored, versioned name, such
// as "doctor.SlotReserved.v1"; it never changes once events of it are stored.
type Event interface {
	EventType() string
}

// ErrUnknownEventType: the registry does not know a stored event type (an
// event written by a newer version). Readers skip such events.
var ErrUnknownEventType = errors.New("unknown event type")

// Registry maps stored event type names to Go types, and upcasts old shapes.
// It is built explicitly (no init): see NewRegistry.
type Registry struct {
	decoders  map[string]func([]byte) (Event, error)
	upcasters map[string]Upcaster
	// sealers and openers exist for the types with personal data (see
	// Personal); cipher, when set, applies them.
	sealers map[string]func(Event, Cipher) (Event, error)
	openers map[string]func(Event, Cipher) (Event, error)
	cipher  Cipher
}

// Upcaster turns the stored data of an old event type into the data of a
// newer type.
type Upcaster func(data []byte) (newType string, newData []byte, err error)

// Registration is one event type for a Registry; make it with Type.
type Registration struct {
	name   string
	decode func([]byte) (Event, error)
	// seal and open are set when *T carries personal data: they return a
	// copy of the event with its personal fields sealed or opened.
	seal, open func(Event, Cipher) (Event, error)
}

// Type registers the value type T, decoded from JSON.
func Type[T Event]() Registration {
	var zero T
	reg := Registration{
		name: zero.EventType(),
		decode: func(b []byte) (Event, error) {
			var v T
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, err
			}
			return v, nil
		},
	}
	if _, ok := any(&zero).(Personal); ok {
		apply := func(open bool) func(Event, Cipher) (Event, error) {
			return func(e Event, c Cipher) (Event, error) {
				v, ok := e.(T)
				if !ok {
					return nil, fmt.Errorf("%T is not %T", e, zero)
				}
				if err := sealFields(any(&v).(Personal), c, open); err != nil {
					return nil, err
				}
				return v, nil
			}
		}
		reg.seal, reg.open = apply(false), apply(true)
	}
	return reg
}

// NewEmptyRegistry returns a registry that knows no types.
func NewEmptyRegistry() *Registry {
	return &Registry{
		decoders: map[string]func([]byte) (Event, error){}, upcasters: map[string]Upcaster{},
		sealers: map[string]func(Event, Cipher) (Event, error){}, openers: map[string]func(Event, Cipher) (Event, error){},
	}
}

// Register adds event types. Registering a name twice is a programming error.
func (r *Registry) Register(types ...Registration) error {
	for _, t := range types {
		if _, dup := r.decoders[t.name]; dup {
			return fmt.Errorf("domain: event type %q registered twice", t.name)
		}
		r.decoders[t.name] = t.decode
		if t.seal != nil {
			r.sealers[t.name], r.openers[t.name] = t.seal, t.open
		}
	}
	return nil
}

// RegisterUpcaster makes events stored as oldType decode through up.
func (r *Registry) RegisterUpcaster(oldType string, up Upcaster) {
	r.upcasters[oldType] = up
}

// Known reports whether typ decodes (directly or through an upcaster).
func (r *Registry) Known(typ string) bool {
	if _, ok := r.decoders[typ]; ok {
		return true
	}
	_, ok := r.upcasters[typ]
	return ok
}

// Types lists the registered type names.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.decoders))
	for k := range r.decoders {
		out = append(out, k)
	}
	return out
}

// Decode turns stored data of type typ into an Event (a value, not a pointer).
func (r *Registry) Decode(typ string, data []byte) (Event, error) {
	for range 8 { // bounded upcast chain
		up, ok := r.upcasters[typ]
		if !ok {
			break
		}
		old := typ
		var err error
		if typ, data, err = up(data); err != nil {
			return nil, fmt.Errorf("domain: upcast %s: %w", old, err)
		}
	}
	dec, ok := r.decoders[typ]
	if !ok {
		return nil, fmt.Errorf("domain: %w %q", ErrUnknownEventType, typ)
	}
	e, err := dec(data)
	if err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", typ, err)
	}
	if er, ok := e.(Erasure); ok {
		if f, ok := r.cipher.(Forgetter); ok {
			f.Forget(er.ErasedSubject())
		}
	}
	return e, nil
}

// Encode marshals an event's data.
func Encode(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("domain: encode %s: %w", e.EventType(), err)
	}
	return b, nil
}
