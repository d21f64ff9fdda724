// Package chain makes the event log tamper-evident: every event's metadata
// carries prevHash and hash, so each stream is a hash chain, and Verify
// checks every chain and digests all the stream heads into one root that an
// auditor can keep as an anchor.
//
// # The hash of an event (version 1)
//
// The hash of the event at revision r of stream s is
//
//	SHA-256( "prescripto.chain.v1\n"
//	         || prev                      32 bytes: the hash of revision r-1, or 32 zero bytes at revision 0
//	         || u64(len(s)) || s
//	         || u64(r)
//	         || u64(len(type)) || type
//	         || u64(len(data)) || data     the data as stored (personal fields are sealed ciphertext)
//	         || u64(len(m)) || m )         the audited metadata, below
//
// where u64 is 8 bytes big-endian. The chain fields are written at the head
// of the stored metadata, in this exact form (152 bytes, lower-case hex):
//
//	{"prevHash":"<64 hex>","hash":"<64 hex>"
//
// followed by "}" when the caller's metadata was empty, or by "," and the
// rest of the caller's JSON object otherwise. The audited metadata m is the
// stored metadata with those chain fields (and the comma after them) cut
// out: "{" followed by what comes after them. It is thus the caller's
// object byte for byte (or "{}"), and Verify recomputes it from what is
// stored with no JSON re-encoding.
//
// # Events written before the chain
//
// An event whose metadata does not begin with the chain fields is
// unhashed. Its chain value is still defined, with the same formula over
// its metadata as stored (m = the whole stored metadata), so the chain
// covers every event of a stream from revision 0: the first hashed event
// of a stream whose older events were written before this release has as
// prevHash the value computed over those older events. Verify counts them
// as unhashed (not broken) while they come before the stream's first hashed
// event; an unhashed event after it is a broken link. Once a stream has a
// hashed event, the root of the log covers its unhashed prefix too.
package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/prescripto/prescripto/eventstore"
)

// Hash is a link of a chain: a SHA-256 digest.
type Hash [sha256.Size]byte

// Zero is the prevHash of a stream's first event.
var Zero Hash

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("chain: a hash is %d hex digits, got %d", 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("chain: bad hash: %w", err)
	}
	return h, nil
}

// The stored form of the chain fields, at the head of the metadata.
const (
	fieldPrev  = `{"prevHash":"`
	fieldHash  = `","hash":"`
	hexLen     = 2 * sha256.Size
	offPrev    = len(fieldPrev)
	offHash    = offPrev + hexLen + len(fieldHash)
	headerLen  = offHash + hexLen + 1 // the closing quote
	hashTag    = "prescripto.chain.v1\n"
	rootTag    = "prescripto.root.v1\n"
	maxMetaLen = 1 << 30
)

// Link is the chain fields of a stored event.
type Link struct {
	Prev, Hash Hash
}

// ParseLink reads the chain fields at the head of stored metadata; ok is
// false when the metadata does not begin with them (an event written
// without the chain, or whose fields were moved or mangled).
func ParseLink(meta []byte) (l Link, ok bool) {
	if len(meta) < headerLen+1 || string(meta[:offPrev]) != fieldPrev ||
		string(meta[offPrev+hexLen:offHash]) != fieldHash || meta[headerLen-1] != '"' {
		return l, false
	}
	if c := meta[headerLen]; c != ',' && c != '}' {
		return l, false
	}
	if !decodeHex(l.Prev[:], meta[offPrev:offPrev+hexLen]) || !decodeHex(l.Hash[:], meta[offHash:offHash+hexLen]) {
		return l, false
	}
	return l, true
}

// decodeHex decodes lower-case hex only: the stored form is canonical, so
// an upper-case digit is a change.
func decodeHex(dst, src []byte) bool {
	for _, c := range src {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, src)
	return err == nil
}

// auditedRest is what follows "{" in the audited metadata of a hashed
// event's stored metadata (see the package doc).
func auditedRest(stored []byte) []byte {
	if stored[headerLen] == ',' {
		return stored[headerLen+1:]
	}
	return stored[headerLen:]
}

// hasher computes event hashes, reusing its SHA-256 state.
type hasher struct {
	h   hash.Hash
	buf [8]byte
	sum Hash
}

func newHasher() *hasher { return &hasher{h: sha256.New()} }

func (x *hasher) u64(v uint64) {
	binary.BigEndian.PutUint64(x.buf[:], v)
	x.h.Write(x.buf[:])
}

func (x *hasher) field(b []byte) {
	x.u64(uint64(len(b)))
	x.h.Write(b)
}

// compute is the hash of an event whose audited metadata is metaHead
// followed by metaRest.
func (x *hasher) compute(prev Hash, stream string, rev uint64, typ string, data, metaHead, metaRest []byte) Hash {
	x.h.Reset()
	_, _ = io.WriteString(x.h, hashTag)
	x.h.Write(prev[:])
	x.u64(uint64(len(stream)))
	_, _ = io.WriteString(x.h, stream)
	x.u64(rev)
	x.u64(uint64(len(typ)))
	_, _ = io.WriteString(x.h, typ)
	x.field(data)
	x.u64(uint64(len(metaHead) + len(metaRest)))
	x.h.Write(metaHead)
	x.h.Write(metaRest)
	return Hash(x.h.Sum(x.sum[:0]))
}

var openBrace = []byte("{")

// value is e's chain value given the previous one: its recomputed hash,
// and its stored link when it has one.
func (x *hasher) value(prev Hash, e *eventstore.RecordedEvent) (computed Hash, l Link, hashed bool) {
	if l, hashed = ParseLink(e.Metadata); hashed {
		return x.compute(prev, e.StreamID, e.Revision, e.Type, e.Data, openBrace, auditedRest(e.Metadata)), l, true
	}
	return x.compute(prev, e.StreamID, e.Revision, e.Type, e.Data, e.Metadata, nil), l, false
}

// Compute returns the chain value of a stored event given the previous
// event's (Zero at revision 0): the hash it must carry when it is hashed,
// or the value the chain goes on from when it is not.
func Compute(prev Hash, e eventstore.RecordedEvent) Hash {
	h, _, _ := newHasher().value(prev, &e)
	return h
}

// errMetadata: the caller's metadata cannot carry the chain fields.
var errMetadata = errors.New("metadata must be a JSON object without prevHash or hash keys")

// seal returns e with the chain fields at the head of its metadata, and
// its hash. The caller's metadata must be empty, null or a JSON object
// without top-level prevHash or hash keys.
func (x *hasher) seal(prev Hash, stream string, rev uint64, e eventstore.EventData) (eventstore.EventData, Hash, error) {
	m := bytes.TrimSpace(e.Metadata)
	empty := len(m) == 0 || string(m) == "null"
	if !empty {
		if len(m) > maxMetaLen || m[0] != '{' || m[len(m)-1] != '}' || !json.Valid(m) {
			return e, Hash{}, fmt.Errorf("chain: append to %q: %w: %w", stream, eventstore.ErrInvalidAppend, errMetadata)
		}
		if hasChainKey(m) {
			return e, Hash{}, fmt.Errorf("chain: append to %q: %w: %w", stream, eventstore.ErrInvalidAppend, errMetadata)
		}
		empty = len(bytes.TrimSpace(m[1:len(m)-1])) == 0
	}
	out := make([]byte, headerLen, headerLen+len(m)+1)
	copy(out, fieldPrev)
	hex.Encode(out[offPrev:], prev[:])
	copy(out[offPrev+hexLen:], fieldHash)
	out[headerLen-1] = '"'
	if empty {
		out = append(out, '}')
	} else {
		out = append(out, ',')
		out = append(out, m[1:]...)
	}
	h := x.compute(prev, stream, rev, e.Type, e.Data, openBrace, auditedRest(out))
	hex.Encode(out[offHash:], h[:])
	e.Metadata = out
	return e, h, nil
}

// hasChainKey reports whether the JSON object m has a top-level prevHash
// or hash key (m is valid JSON).
func hasChainKey(m []byte) bool {
	// A key may be written with escapes (\u0068ash): then look closer too.
	if !bytes.Contains(m, []byte(`"prevHash"`)) && !bytes.Contains(m, []byte(`"hash"`)) && !bytes.Contains(m, []byte(`\u`)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(m))
	if _, err := dec.Token(); err != nil { // {
		return true
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return true
		}
		if k == "prevHash" || k == "hash" {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return true
		}
	}
	return false
}

// Audited returns the audited metadata of stored metadata (the caller's
// object, without the chain fields) and whether it carries the chain
// fields; unhashed, it is the stored metadata itself.
func Audited(stored []byte) (meta []byte, hashed bool) {
	if _, ok := ParseLink(stored); !ok {
		return stored, false
	}
	return append([]byte("{"), auditedRest(stored)...), true
}
