package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
)

// docHash computes an event's hash from the package doc's definition,
// independently of hasher.
func docHash(prev Hash, stream string, rev uint64, typ string, data, meta []byte) Hash {
	var b bytes.Buffer
	u64 := func(v uint64) { _ = binary.Write(&b, binary.BigEndian, v) }
	b.WriteString("prescripto.chain.v1\n")
	b.Write(prev[:])
	u64(uint64(len(stream)))
	b.WriteString(stream)
	u64(rev)
	u64(uint64(len(typ)))
	b.WriteString(typ)
	u64(uint64(len(data)))
	b.Write(data)
	u64(uint64(len(meta)))
	b.Write(meta)
	return sha256.Sum256(b.Bytes())
}

func TestSealMatchesTheDefinition(t *testing.T) {
	t.Parallel()
	prev := Hash(sha256.Sum256([]byte("previous")))
	for _, tc := range []struct {
		name, meta, audited string
	}{
		{"object", `{"actor":{"userId":"u1"},"n":1.50}`, `{"actor":{"userId":"u1"},"n":1.50}`},
		{"spaced object", "  { \"a\" : [1, 2] }\n", "{ \"a\" : [1, 2] }"},
		{"empty object", `{}`, `{}`},
		{"empty object with spaces", `{  }`, `{}`},
		{"nothing", ``, `{}`},
		{"null", `null`, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := eventstore.EventData{ID: uuid.New(), Type: "doctor.SlotReserved.v1", Data: []byte(`{"x":"sealed"}`), Metadata: []byte(tc.meta)}
			sealed, h, err := newHasher().seal(prev, "doctor-1", 7, e)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(sealed.Metadata) {
				t.Fatalf("stored metadata is not JSON: %s", sealed.Metadata)
			}
			var fields struct{ PrevHash, Hash string }
			if err := json.Unmarshal(sealed.Metadata, &fields); err != nil || fields.PrevHash != prev.String() || fields.Hash != h.String() {
				t.Fatalf("fields %+v (%v), want prevHash %s hash %s", fields, err, prev, h)
			}
			l, ok := ParseLink(sealed.Metadata)
			if !ok || l.Prev != prev || l.Hash != h {
				t.Fatalf("ParseLink = %+v, %v", l, ok)
			}
			audited, hashed := Audited(sealed.Metadata)
			if !hashed || string(audited) != tc.audited {
				t.Fatalf("audited metadata %q, want %q", audited, tc.audited)
			}
			if want := docHash(prev, "doctor-1", 7, e.Type, e.Data, []byte(tc.audited)); h != want {
				t.Fatalf("hash %s, the definition gives %s", h, want)
			}
			rec := eventstore.RecordedEvent{StreamID: "doctor-1", Revision: 7, Type: e.Type, Data: e.Data, Metadata: sealed.Metadata}
			if got := Compute(prev, rec); got != h {
				t.Fatalf("Compute = %s, want %s", got, h)
			}
		})
	}
}

func TestSealRefusesMetadataItCannotChain(t *testing.T) {
	t.Parallel()
	for _, m := range []string{`[1]`, `"s"`, `{"a":`, `{"hash":"x"}`, `{"a":1,"prevHash":"x"}`, `{"h\u0061sh":1}`} {
		_, _, err := newHasher().seal(Zero, "s", 0, eventstore.EventData{ID: uuid.New(), Type: "T", Metadata: []byte(m)})
		if !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("metadata %s: err = %v, want ErrInvalidAppend", m, err)
		}
	}
	// The keys nested deeper, or in values, are the caller's business.
	for _, m := range []string{`{"a":{"hash":"x"}}`, `{"note":"hash"}`} {
		if _, _, err := newHasher().seal(Zero, "s", 0, eventstore.EventData{ID: uuid.New(), Type: "T", Metadata: []byte(m)}); err != nil {
			t.Errorf("metadata %s: %v", m, err)
		}
	}
}

func TestUnhashedValueCoversStoredMetadata(t *testing.T) {
	t.Parallel()
	e := eventstore.RecordedEvent{StreamID: "s", Revision: 0, Type: "T", Data: []byte(`{}`), Metadata: []byte(`{"actor":"old"}`)}
	if _, ok := ParseLink(e.Metadata); ok {
		t.Fatal("an unhashed event parses as hashed")
	}
	if got, want := Compute(Zero, e), docHash(Zero, "s", 0, "T", e.Data, e.Metadata); got != want {
		t.Fatalf("Compute = %s, want %s", got, want)
	}
}

func TestParseLinkRefusesMangledFields(t *testing.T) {
	t.Parallel()
	sealed, _, err := newHasher().seal(Zero, "s", 0, eventstore.EventData{ID: uuid.New(), Type: "T", Metadata: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	m := sealed.Metadata
	for name, mut := range map[string]func([]byte) []byte{
		"upper-case hex":   func(b []byte) []byte { b[offHash] = 'A'; return b },
		"not hex":          func(b []byte) []byte { b[offPrev+3] = 'g'; return b },
		"fields reordered": func(b []byte) []byte { return bytes.Replace(b, []byte(`{"prevHash"`), []byte(`{"prevHasj"`), 1) },
		"truncated":        func(b []byte) []byte { return b[:headerLen] },
		"no separator":     func(b []byte) []byte { b[headerLen] = ' '; return b },
	} {
		if _, ok := ParseLink(mut(bytes.Clone(m))); ok {
			t.Errorf("%s: parsed as a link", name)
		}
	}
}

func TestRootDefinition(t *testing.T) {
	t.Parallel()
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	heads := []StreamHead{{"doctor-2", 5, b}, {"account-1", 0, a}}
	var buf bytes.Buffer
	buf.WriteString("prescripto.root.v1\n")
	for _, h := range []StreamHead{{"account-1", 0, a}, {"doctor-2", 5, b}} {
		_ = binary.Write(&buf, binary.BigEndian, uint64(len(h.Stream)))
		buf.WriteString(h.Stream)
		_ = binary.Write(&buf, binary.BigEndian, h.Revision)
		buf.Write(h.Hash[:])
	}
	if got, want := Root(heads), Hash(sha256.Sum256(buf.Bytes())); got != want {
		t.Fatalf("Root = %s, want %s", got, want)
	}
	if got, want := Root(nil), Hash(sha256.Sum256([]byte("prescripto.root.v1\n"))); got != want {
		t.Fatalf("empty root = %s, want %s", got, want)
	}
	other := []StreamHead{{"doctor-2", 6, b}, {"account-1", 0, a}}
	if Root(other) == Root(heads) {
		t.Fatal("another head revision gives the same root")
	}
}

func TestParseAnchor(t *testing.T) {
	t.Parallel()
	h := sha256.Sum256([]byte("r"))
	a, err := ParseAnchor(Hash(h).String() + "@42")
	if err != nil || a.Root != h || a.Position != 42 || a.String() != Hash(h).String()+"@42" {
		t.Fatalf("ParseAnchor = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "@1", Hash(h).String(), Hash(h).String() + "@0", Hash(h).String() + "@x", "zz@1", Hash(h).String()[:10] + "@1"} {
		if _, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) accepted", bad)
		}
	}
}

// BenchmarkSeal: the decorator's work on one append of one event the size
// of a SlotReserved (no store).
func BenchmarkSeal(b *testing.B) {
	x := newHasher()
	e := eventstore.EventData{ID: uuid.New(), Type: "doctor.SlotReserved.v1",
		Data:     bytes.Repeat([]byte("x"), 370),
		Metadata: []byte(`{"eventId":"0190f3c4-0000-7000-8000-000000000002","actor":{"userId":"0190f3c4-0000-7000-8000-000000000009","role":"patient"},"correlationId":"c-1","requestId":"r-1","occurredAt":"2026-12-01T03:00:00Z"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := x.seal(Zero, "doctor-0190f3c4-0000-7000-8000-000000000000", 7, e); err != nil {
			b.Fatal(err)
		}
	}
}
