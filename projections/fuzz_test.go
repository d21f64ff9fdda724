package projections_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/projections"
)

// FuzzCursor: DecodeCursor and DecodePaymentCursor take any string a
// client puts in ?cursor= without panicking, answer ErrInvalidCursor for
// anything they did not make (an appointments cursor is no payments cursor
// and the reverse), and what they accept re-encodes to a cursor that
// decodes to the same position.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{projections.EncodeCursor(0), projections.EncodeCursor(42), projections.EncodePaymentCursor(7),
		projections.EncodeCursor(^uint64(0)), "", "YjEw", "cDE", "b42", "YjAwMDc", "YjE4NDQ2NzQ0MDczNzA5NTUxNjE2", "Yi0x", "=="} {
		f.Add(s, uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, s string, n uint64) {
		for _, c := range []struct {
			name   string
			encode func(uint64) string
			decode func(string) (uint64, error)
			other  func(string) (uint64, error)
		}{
			{"appointments", projections.EncodeCursor, projections.DecodeCursor, projections.DecodePaymentCursor},
			{"payments", projections.EncodePaymentCursor, projections.DecodePaymentCursor, projections.DecodeCursor},
		} {
			if got, err := c.decode(c.encode(n)); err != nil || got != n {
				t.Fatalf("%s: %d encodes to %q, decodes to %d, %v", c.name, n, c.encode(n), got, err)
			}
			if _, err := c.other(c.encode(n)); !errors.Is(err, projections.ErrInvalidCursor) {
				t.Fatalf("%s cursor %q accepted by the other kind: %v", c.name, c.encode(n), err)
			}
			got, err := c.decode(s)
			if err != nil {
				if !errors.Is(err, projections.ErrInvalidCursor) {
					t.Fatalf("%s: %q: %v, want ErrInvalidCursor", c.name, s, err)
				}
				continue
			}
			if again, err := c.decode(c.encode(got)); err != nil || again != got {
				t.Fatalf("%s: %q decodes to %d, which re-encodes to %q -> %d, %v", c.name, s, got, c.encode(got), again, err)
			}
		}
	})
}

// FuzzDecode feeds projections.Decode (the registry of every stored event
// type behind it) arbitrary types, data and metadata, with the golden data
// of every type as seeds. It never panics; unknown types are
// ErrUnknownEventType; and an event that decodes re-encodes to data that
// decodes to the same event (what a projection reads does not depend on
// how the JSON was spelled).
func FuzzDecode(f *testing.F) {
	reg, err := catalog.NewRegistry()
	if err != nil {
		f.Fatal(err)
	}
	golden, _ := filepath.Glob("../domain/*/testdata/golden/*.json")
	if len(golden) == 0 {
		f.Fatal("no golden event files under ../domain/*/testdata/golden")
	}
	for _, path := range golden {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimSuffix(filepath.Base(path), ".json"), data, []byte(`{"correlationId":"c","causationId":"d","actor":{"userId":"u","role":"patient"}}`))
	}
	f.Add("doctor.SlotReserved.v9", []byte(`{}`), []byte(nil))
	f.Add("doctor.SlotReserved.v1", []byte(`null`), []byte(`null`))
	f.Add("doctor.SlotReserved.v1", []byte(`{}`), []byte(`[1]`))
	f.Fuzz(func(t *testing.T, typ string, data, metadata []byte) {
		rec := eventstore.RecordedEvent{ID: uuid.New(), StreamID: "s-1", Type: typ, Revision: 3, Position: 9, Data: data, Metadata: metadata}
		ev, err := projections.Decode(reg, rec)
		if err != nil {
			if !reg.Known(typ) && !errors.Is(err, domain.ErrUnknownEventType) {
				t.Fatalf("unknown type %q: %v, want ErrUnknownEventType", typ, err)
			}
			return
		}
		if !reg.Known(typ) {
			t.Fatalf("unknown type %q decoded", typ)
		}
		if ev.Position != rec.Position || ev.StreamID != rec.StreamID || ev.Type != typ {
			t.Fatalf("decoded %+v from %+v", ev, rec)
		}
		again, err := json.Marshal(ev.Data)
		if err != nil {
			t.Fatalf("%s decoded from %q does not encode: %v", typ, data, err)
		}
		rec.Data = again
		ev2, err := projections.Decode(reg, rec)
		if err != nil {
			t.Fatalf("%s re-encoded as %s does not decode: %v", typ, again, err)
		}
		if !reflect.DeepEqual(ev.Data, ev2.Data) {
			t.Fatalf("%s: %#v re-decodes as %#v", typ, ev.Data, ev2.Data)
		}
	})
}
