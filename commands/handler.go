// Package commands is the write side: each command loads its stream (cached
// state plus only newer events), decides in the domain, and appends the
// decided events with the revision it loaded. Version conflicts retry the
// whole load-decide-append a bounded number of times, then fail with
// ErrConcurrency. Inside one process, commands for one stream are
// serialized, so contention on a popular doctor queues instead of retrying.
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/idempotency"
	"github.com/prescripto/prescripto/domain/ledger"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/snapshot"
)

// ErrConcurrency: the stream kept changing under the command.
var ErrConcurrency = domain.NewError(domain.ErrConflict, "concurrency_conflict", "the resource changed concurrently; retry")

// ErrIdempotencyKeyReused: the key was used before for a different request.
var ErrIdempotencyKeyReused = domain.NewError(domain.ErrUnprocessable, "idempotency_key_reused", "this Idempotency-Key was used for a different request")

// ErrPaymentsDisabled: online payment needs a payment provider (Razorpay
// keys or the sandbox): the payment policies "required" and "optional"
// and the payment routes are refused without one.
var ErrPaymentsDisabled = domain.NewError(domain.ErrUnprocessable, "payments_disabled", "online payment is not configured on this server: payment policies \"required\" and \"optional\" need Razorpay keys (or the sandbox)")

// Meta is who asks and why; it becomes every appended event's metadata.
type Meta struct {
	Actor         domain.Actor
	CorrelationID string
	CausationID   string
	RequestID     string
	// ClientRequestID is the client's own X-Request-ID, never RequestID.
	ClientRequestID string
	IdempotencyKey  string

	// target is the appointment a keyed appointment command acts on: a
	// replay of the key is only a retry if it is about the same one.
	target string
}

// Observer counts what commands do (conflicts and retries), e.g. as metrics.
type Observer interface {
	Conflict(command string)
	Retry(command string)
}

type nopObserver struct{}

func (nopObserver) Conflict(string) {}
func (nopObserver) Retry(string)    {}

// Config of a Handler.
type Config struct {
	Store    eventstore.Store
	Registry *domain.Registry
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Hasher hashes passwords; defaults to bcrypt at DefaultBcryptCost.
	Hasher PasswordHasher
	// MaxRetries bounds the retries after a version conflict (default 8).
	MaxRetries int
	// Gateway is the payment provider (nil: none). It enables the payment
	// policies "required" and "optional" and the payment commands.
	Gateway Gateway
	// PaymentsEnabled allows those policies without a Gateway (tests that
	// record payment facts themselves).
	PaymentsEnabled bool
	// OrderLease is how long a claim on creating a payment order stands
	// before another request may take it over (default 30 s). It must be
	// well above the Gateway's own timeout.
	OrderLease time.Duration
	// OrderWait bounds how long a request waits for the order another
	// request is creating before it answers ErrOrderInFlight (default
	// 10 s).
	OrderWait time.Duration
	// BookingRules are the patient's rules across doctors (at most MaxLive
	// live future appointments, none overlapping; Grace defaults to
	// DefaultLedgerGrace). MaxLive 0 sets no bound; overlaps are always
	// refused.
	BookingRules ledger.Rules
	Observer     Observer
	// EmailIndexKey names the email-uniqueness streams by a keyed hash
	// (see account.EmailStreamID); nil keeps the legacy bare hash. Streams
	// of the legacy name are read, and their addresses stay claimed, either
	// way.
	EmailIndexKey []byte
	// Shredder erases personal-data keys (nil: ErasePatient is refused).
	Shredder Shredder
	// Snapshots keeps snapshots of doctor streams (nil: none), so that a
	// cold load reads only the events after the newest (see snapshot.go).
	Snapshots snapshot.Store
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("commands: Store is required")
	}
	if c.Registry == nil {
		return errors.New("commands: Registry is required")
	}
	if c.MaxRetries < 0 {
		return errors.New("commands: MaxRetries must not be negative")
	}
	return nil
}

// Handler runs commands.
type Handler struct {
	store      eventstore.Store
	reg        *domain.Registry
	now        func() time.Time
	hasher     PasswordHasher
	maxRetries int
	payments   bool
	gateway    Gateway
	orderLease time.Duration
	orderWait  time.Duration
	obs        Observer
	snapshots  snapshot.Store
	doctors    *streams[*doctor.Doctor]
	accounts   *streams[*account.Account]
	ledgers    *streams[*ledger.Ledger]
	rules      ledger.Rules
	emailKey   []byte
	shredder   Shredder

	dummyOnce sync.Once
	dummyHash string
	names     names

	// claims decodes key claims (a command-layer record the catalog does
	// not register).
	claims *domain.Registry
}

// New builds a Handler.
func New(c Config) (*Handler, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{store: c.Store, reg: c.Registry, now: c.Now, hasher: c.Hasher, maxRetries: c.MaxRetries, payments: c.PaymentsEnabled || c.Gateway != nil, gateway: c.Gateway, orderLease: c.OrderLease, obs: c.Observer, snapshots: c.Snapshots}
	if h.orderLease <= 0 {
		h.orderLease = 30 * time.Second
	}
	h.orderWait = c.OrderWait
	if h.orderWait <= 0 {
		h.orderWait = 10 * time.Second
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.hasher == nil {
		h.hasher = BcryptHasher{Cost: DefaultBcryptCost}
	}
	if h.maxRetries == 0 {
		h.maxRetries = 8
	}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	h.doctors, h.accounts, h.ledgers = newDoctorStreams(h.reg), newAccountStreams(), newLedgerStreams()
	h.rules = c.BookingRules
	h.emailKey, h.shredder = c.EmailIndexKey, c.Shredder
	if h.rules.Grace <= 0 {
		h.rules.Grace = DefaultLedgerGrace
	}
	h.claims = domain.NewEmptyRegistry()
	if err := h.claims.Register(idempotency.Events()...); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Handler) clock() time.Time { return h.now().UTC() }

// idNamespace roots the deterministic ids derived from Idempotency-Keys.
var idNamespace = uuid.MustParse("0b5c3f1e-7a43-4c55-9d43-5f0b6f6b2a11")

// deterministicID derives a stable id from an idempotency key, the actor,
// the command and a purpose, so a retried request reproduces its ids.
func deterministicID(m Meta, command, purpose string) uuid.UUID {
	return uuid.NewSHA1(idNamespace, []byte(m.Actor.UserID+"\x00"+string(m.Actor.Role)+"\x00"+m.IdempotencyKey+"\x00"+command+"\x00"+purpose))
}

// newID returns a fresh UUIDv7, or the deterministic id for purpose when
// the request carries an Idempotency-Key.
func newID(m Meta, command, purpose string) string {
	if m.IdempotencyKey != "" {
		return deterministicID(m, command, purpose).String()
	}
	return uuid.Must(uuid.NewV7()).String()
}

// eventIDs returns the ids of the n events a command appends to stream.
func eventIDs(m Meta, command, stream string, n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		if m.IdempotencyKey != "" {
			ids[i] = deterministicID(m, command, fmt.Sprintf("%s#%d", stream, i))
		} else {
			ids[i] = uuid.Must(uuid.NewV7())
		}
	}
	return ids
}

// encode turns domain events into event data with metadata.
// Personal fields are sealed by the registry's cipher.
func (h *Handler) encode(events []domain.Event, ids []uuid.UUID, m Meta, now time.Time) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data, err := h.reg.Encode(e)
		if err != nil {
			return nil, err
		}
		md, err := json.Marshal(domain.Metadata{
			EventID: ids[i], Actor: m.Actor, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
			RequestID: m.RequestID, ClientRequestID: m.ClientRequestID, IdempotencyKey: m.IdempotencyKey, OccurredAt: now,
		})
		if err != nil {
			return nil, fmt.Errorf("commands: encode metadata: %w", err)
		}
		out[i] = eventstore.EventData{ID: ids[i], Type: e.EventType(), Data: data, Metadata: md}
	}
	return out, nil
}

// readStream reads every event of stream from revision from on, decoded.
// A missing stream reads as no events. Personal fields are opened, except
// in doctor streams: the patients' names there decide nothing, so loading
// a doctor needs no key (results open the one name they show).
func (h *Handler) readStream(ctx context.Context, stream string, from uint64) ([]eventstore.RecordedEvent, []domain.Event, error) {
	opens := !strings.HasPrefix(stream, doctor.Category+"-")
	var recs []eventstore.RecordedEvent
	const page = 1024
	for {
		batch, err := h.store.ReadStream(ctx, stream, from, eventstore.Forward, page)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, nil, storeErr(err)
		}
		recs = append(recs, batch...)
		if len(batch) < page {
			break
		}
		from = batch[len(batch)-1].Revision + 1
	}
	evs := make([]domain.Event, len(recs))
	for i, r := range recs {
		e, err := h.reg.Decode(r.Type, r.Data)
		if err == nil && opens {
			e, err = h.reg.Open(e)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("commands: stream %s revision %d: %w", stream, r.Revision, err)
		}
		evs[i] = e
	}
	return recs, evs, nil
}

// Errors of the event store that reach a caller as such.
var (
	// ErrStreamDeleted: an operator deleted (tombstoned) the stream.
	ErrStreamDeleted = domain.NewError(domain.ErrNotFound, "stream_deleted", "this record was deleted")
	// ErrTooLarge: the store refuses the change for its size.
	ErrTooLarge = domain.NewError(domain.ErrUnprocessable, "too_large", "the change is too large to record")
)

// storeErr classifies an event-store failure for callers. None of these is
// retried by the command loop: only a version conflict is.
func storeErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrClosed),
		errors.Is(err, eventstore.ErrAccessDenied): // the server's credentials or ACLs, not the caller's doing
		return fmt.Errorf("%w: event store: %w", domain.ErrUnavailable, err)
	case errors.Is(err, eventstore.ErrStreamDeleted):
		return fmt.Errorf("%w: %w", ErrStreamDeleted, err)
	case errors.Is(err, eventstore.ErrAppendTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return err
}

// idempotencyKeyOf extracts the idempotency key from stored metadata.
func idempotencyKeyOf(md []byte) string {
	if len(md) == 0 {
		return ""
	}
	var m struct {
		IdempotencyKey string `json:"idempotencyKey"`
	}
	if json.Unmarshal(md, &m) != nil {
		return ""
	}
	return m.IdempotencyKey
}
