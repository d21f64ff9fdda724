package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
)

// Fuzz is the adapters' shared fuzz target of what turns stored bytes back
// into a RecordedEvent: it appends one event of arbitrary stream suffix,
// type, data and metadata to s (one store for the whole run, so streams
// accumulate as in production), then reads it back from its stream and
// from the global log. Either the append fails and the log did not move,
// or both reads return exactly the bytes appended, at the promised
// revision and position. Call it from a FuzzXxx with the adapter's store.
func Fuzz(f *testing.F, s eventstore.Store) {
	f.Add("doctor-1", "doctor.SlotReserved.v1", []byte(`{"appointmentId":"a","start":"2026-11-27T04:30:00Z"}`), []byte(`{"correlationId":"c"}`))
	f.Add("account-x", "account.Registered.v1", []byte(`{}`), []byte(nil))
	f.Add("", "t", []byte(nil), []byte(nil))
	f.Add("s", "", []byte(`{}`), []byte(`{}`))
	f.Add("s", "t", []byte{0, 0xff, 0xfe, '\n'}, []byte("not json"))
	f.Add("ünï-çødé", "type with spaces", []byte(`"\u0000"`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, stream, typ string, data, metadata []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		// The engine's streams are "<category>-<id>": a fixed category
		// keeps the name non-empty and clear of ESDB's system streams
		// ($...), which the conformance suite covers.
		stream = "fuzz" + stream
		head, err := s.HeadPosition(ctx)
		if err != nil {
			t.Fatalf("HeadPosition: %v", err)
		}
		ev := eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: metadata}
		res, err := s.Append(ctx, stream, eventstore.Any, []eventstore.EventData{ev})
		if err != nil {
			if typ == "" && !errors.Is(err, eventstore.ErrInvalidAppend) {
				t.Fatalf("append of an empty type: %v, want ErrInvalidAppend", err)
			}
			after, herr := s.HeadPosition(ctx)
			if herr != nil {
				t.Fatalf("HeadPosition: %v", herr)
			}
			if after != head {
				t.Fatalf("failed append (%v) moved the log from %d to %d", err, head, after)
			}
			return
		}
		if typ == "" {
			t.Fatalf("append of an empty type succeeded at %d", res.Position)
		}
		if res.Position <= head {
			t.Fatalf("appended at position %d, head was %d", res.Position, head)
		}
		got, err := s.ReadStream(ctx, stream, res.NextExpectedRevision, eventstore.Forward, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("ReadStream(%q, %d): %d events, %v", stream, res.NextExpectedRevision, len(got), err)
		}
		same(t, "ReadStream", stream, res, ev, got[0])
		all, err := s.ReadAll(ctx, res.Position-1, 1)
		if err != nil || len(all) != 1 {
			t.Fatalf("ReadAll(after %d): %d events, %v", res.Position-1, len(all), err)
		}
		same(t, "ReadAll", stream, res, ev, all[0])
	})
}

func same(t *testing.T, how, stream string, res eventstore.AppendResult, want eventstore.EventData, got eventstore.RecordedEvent) {
	t.Helper()
	switch {
	case got.ID != want.ID || got.StreamID != stream || got.Type != want.Type:
		t.Fatalf("%s: got %s %q %q, appended %s %q %q", how, got.ID, got.StreamID, got.Type, want.ID, stream, want.Type)
	case got.Revision != res.NextExpectedRevision || got.Position != res.Position:
		t.Fatalf("%s: at revision %d position %d, appended at %d, %d", how, got.Revision, got.Position, res.NextExpectedRevision, res.Position)
	case !bytes.Equal(got.Data, want.Data):
		t.Fatalf("%s: data %q, appended %q", how, got.Data, want.Data)
	case !bytes.Equal(got.Metadata, want.Metadata):
		t.Fatalf("%s: metadata %q, appended %q", how, got.Metadata, want.Metadata)
	case got.RecordedAt.IsZero() || got.RecordedAt.Location() != time.UTC:
		t.Fatalf("%s: recorded at %v", how, got.RecordedAt)
	}
}
