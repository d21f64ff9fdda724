// Package audit is the read side of the auditors' questions, answered from
// the event log itself rather than from a read model: a stream's events as
// stored (paged by revision), every event that touched one appointment, the
// whole log as JSON lines in constant memory, and a doctor's schedule as it
// stood at an instant, replayed from the doctor's events (schedule.go).
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/snapshot"
)

// Log answers audit questions from an event store.
type Log struct {
	store eventstore.Store
	reg   *domain.Registry
	snaps snapshot.Store // nil: none
}

// Option configures a Log.
type Option func(*Log)

// WithSnapshots keeps snapshots of the replays of ScheduleAsOf in st, and
// starts replays from them (see AsOfSnapshotEvery).
func WithSnapshots(st snapshot.Store) Option { return func(l *Log) { l.snaps = st } }

// New returns the audit reader of store, decoding with reg.
func New(store eventstore.Store, reg *domain.Registry, opts ...Option) (*Log, error) {
	if store == nil || reg == nil {
		return nil, errors.New("audit: a store and a registry are required")
	}
	l := &Log{store: store, reg: reg}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Event is one stored event as an auditor reads it: where it is in its
// stream and in the log, when the store recorded it, who caused it (the
// actor and the correlation, causation and request ids of its metadata),
// its data and metadata as stored (the values of secret fields, password
// and token hashes, redacted), and its hash when the event carries one
// (see Hash).
type Event struct {
	ID            string          `json:"id"`
	Stream        string          `json:"stream"`
	Type          string          `json:"type"`
	Revision      uint64          `json:"revision"`
	Position      uint64          `json:"position"`
	RecordedAt    time.Time       `json:"recordedAt"`
	Actor         domain.Actor    `json:"actor"`
	CorrelationID string          `json:"correlationId"`
	CausationID   string          `json:"causationId"`
	RequestID     string          `json:"requestId"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
	// Hash is the event's link in its stream's hash chain, from its
	// metadata (see eventstore/chain); nil for an event stored before the
	// chain was.
	Hash *string `json:"hash"`
}

// auditedMetadata is what an Event lifts out of stored metadata.
type auditedMetadata struct {
	Actor         domain.Actor `json:"actor"`
	CorrelationID string       `json:"correlationId"`
	CausationID   string       `json:"causationId"`
	RequestID     string       `json:"requestId"`
	Hash          *string      `json:"hash"`
}

// FromRecorded turns a stored event into an Event. Data or metadata that
// is not JSON (nothing this engine writes) is kept, as a JSON string.
func FromRecorded(r eventstore.RecordedEvent) Event {
	e := Event{
		ID: r.ID.String(), Stream: r.StreamID, Type: r.Type, Revision: r.Revision, Position: r.Position,
		RecordedAt: r.RecordedAt.UTC(), Data: RedactSecrets(rawJSON(r.Data), Redacted), Metadata: rawJSON(r.Metadata),
	}
	var m auditedMetadata
	if json.Unmarshal(r.Metadata, &m) == nil {
		e.Actor, e.CorrelationID, e.CausationID, e.RequestID, e.Hash = m.Actor, m.CorrelationID, m.CausationID, m.RequestID, m.Hash
	}
	return e
}

// secretFields are the fields of stored events whose values are secrets
// (password hashes, the hashes of reset and verification tokens): an
// auditor sees that they were set, never their values.
var secretFields = []string{"passwordHash", "tokenHash"}

// Redacted replaces a secret field's value.
const Redacted = "[redacted]"

// RedactSecrets replaces the values of the top-level secret fields of an
// event's data with marker (data that is not a JSON object is returned as
// it is).
func RedactSecrets(data json.RawMessage, marker string) json.RawMessage {
	found := false
	for _, f := range secretFields {
		if bytes.Contains(data, []byte(`"`+f+`"`)) {
			found = true
		}
	}
	if !found {
		return data
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return data
	}
	for _, f := range secretFields {
		if _, ok := m[f]; ok {
			m[f], _ = json.Marshal(marker)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

func rawJSON(b []byte) json.RawMessage {
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return json.RawMessage("{}")
	case json.Valid(b):
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b)) // invalid UTF-8 becomes U+FFFD
	return s
}

// Errors of the audit reads.
var (
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = domain.NewError(domain.ErrNotFound, "stream_not_found", "stream not found")
	// ErrInvalidStream: the stream name cannot name a stream.
	ErrInvalidStream = domain.NewError(domain.ErrInvalid, "invalid_stream", "a stream name is 1 to 200 printable characters")
)

// MaxPage bounds the events of one StreamEvents page.
const MaxPage = 1000

// page is how many events the log's walks read at a time.
const page = 500

// ValidStream reports whether s can name a stream.
func ValidStream(s string) bool {
	if s == "" || len(s) > 200 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// StreamEvents reads up to limit (1..MaxPage) events of stream from
// revision from on, in order. A stream without events is ErrStreamNotFound;
// a from past the stream's end is an empty page.
func (l *Log) StreamEvents(ctx context.Context, stream string, from uint64, limit int) ([]Event, error) {
	if !ValidStream(stream) {
		return nil, ErrInvalidStream
	}
	if limit <= 0 || limit > MaxPage {
		return nil, domain.Invalid("limit must be between 1 and %d", MaxPage)
	}
	recs, err := l.store.ReadStream(ctx, stream, from, eventstore.Forward, limit)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, ErrStreamNotFound
	}
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]Event, len(recs))
	for i, r := range recs {
		out[i] = FromRecorded(r)
	}
	return out, nil
}

// walkStream calls fn with every event of stream from revision from on,
// a page at a time. A stream without events calls fn never.
func (l *Log) walkStream(ctx context.Context, stream string, from uint64, fn func(eventstore.RecordedEvent) (bool, error)) error {
	for {
		recs, err := l.store.ReadStream(ctx, stream, from, eventstore.Forward, page)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return storeErr(err)
		}
		for _, r := range recs {
			more, err := fn(r)
			if err != nil || !more {
				return err
			}
		}
		if len(recs) < page {
			return nil
		}
		from = recs[len(recs)-1].Revision + 1
	}
}

// AppointmentHistory lists, in order, every event of doctorID's stream that
// touched appointment id (its reservation, confirmation, reschedules,
// cancellation, completion or no-show, and its payment facts).
// ErrAppointmentNotFound when there is none.
func (l *Log) AppointmentHistory(ctx context.Context, doctorID, id string) ([]Event, error) {
	if doctorID == "" || id == "" {
		return nil, doctor.ErrAppointmentNotFound
	}
	var out []Event
	needle := []byte(id)
	err := l.walkStream(ctx, doctor.StreamID(doctorID), 0, func(r eventstore.RecordedEvent) (bool, error) {
		if !bytes.Contains(r.Data, needle) {
			return true, nil
		}
		ok, err := l.touches(r, id)
		if ok {
			out = append(out, FromRecorded(r))
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, doctor.ErrAppointmentNotFound
	}
	return out, nil
}

// touches reports whether r is an event about appointment id. Events of
// types this release does not know are skipped.
func (l *Log) touches(r eventstore.RecordedEvent, id string) (bool, error) {
	ev, err := l.reg.Decode(r.Type, r.Data)
	if errors.Is(err, domain.ErrUnknownEventType) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: %s revision %d: %w", r.StreamID, r.Revision, err)
	}
	ae, ok := ev.(doctor.AppointmentEvent)
	return ok && ae.AppointmentRef() == id, nil
}

// FindAppointment finds the doctor of appointment id by walking the whole
// log for its reservation: the command line's way, which has no read model
// to ask (the API asks its appointments read model instead).
func (l *Log) FindAppointment(ctx context.Context, id string) (doctorID string, err error) {
	if id == "" {
		return "", doctor.ErrAppointmentNotFound
	}
	needle := []byte(id)
	err = l.walkAll(ctx, 0, func(r eventstore.RecordedEvent) (bool, error) {
		if r.Type != doctor.TypeSlotReserved || !bytes.Contains(r.Data, needle) {
			return true, nil
		}
		ev, err := l.reg.Decode(r.Type, r.Data)
		if err != nil {
			return false, fmt.Errorf("audit: %s revision %d: %w", r.StreamID, r.Revision, err)
		}
		if sr, ok := ev.(doctor.SlotReserved); ok && sr.AppointmentID == id {
			doctorID = sr.DoctorID
			return false, nil
		}
		return true, nil
	})
	if err == nil && doctorID == "" {
		err = doctor.ErrAppointmentNotFound
	}
	return doctorID, err
}

// walkAll calls fn with every event of the log after position after, a
// page at a time, until fn says stop.
func (l *Log) walkAll(ctx context.Context, after uint64, fn func(eventstore.RecordedEvent) (bool, error)) error {
	for {
		recs, err := l.store.ReadAll(ctx, after, page)
		if err != nil {
			return storeErr(err)
		}
		for _, r := range recs {
			more, err := fn(r)
			if err != nil || !more {
				return err
			}
		}
		if len(recs) == 0 {
			return nil
		}
		after = recs[len(recs)-1].Position
	}
}

// Export calls emit with every event at or after position from (0 and 1
// both mean the first), of stream only when stream is set, in log order.
// It holds one page of events at a time, however long the log.
func (l *Log) Export(ctx context.Context, stream string, from uint64, emit func(Event) error) error {
	if stream != "" && !ValidStream(stream) {
		return ErrInvalidStream
	}
	visit := func(r eventstore.RecordedEvent) (bool, error) {
		if r.Position < from {
			return true, nil
		}
		return true, emit(FromRecorded(r))
	}
	if stream == "" {
		return l.walkAll(ctx, max(from, 1)-1, visit)
	}
	return l.walkStream(ctx, stream, 0, visit)
}

// storeErr classifies an event-store failure: a store that does not
// answer is unavailable (503); the rest passes on as it is.
func storeErr(err error) error {
	if errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrClosed) {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}
