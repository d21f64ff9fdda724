package mongo

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/prescripto/prescripto/projections/analytics"
)

// Lists that a batch rewrites whole are stored packed: one BSON binary
// value (a version byte, then each element's fields as length-prefixed
// strings and varints) rather than an array of subdocuments. FerretDB
// decodes a document's JSON, with a type schema for every element, in Go
// on each read and each update; for a busy day's few hundred elements that
// was most of its work in every batch that touched the day (the load
// generator's 160 bookings a doctor's day: free slots applied 748 events/s
// on FerretDB with arrays, 2,222 packed). Nothing queries inside these
// lists; an array written by the layout before is still read, and written
// packed by the next batch that touches its document.

// packed is b as a BSON binary value.
func packed(b []byte) (byte, []byte, error) {
	typ, data, err := bson.MarshalValue(bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: b})
	return byte(typ), data, err
}

// unpacked is the packed bytes (after the version byte) of a stored value
// of BSON type typ; for an array (the layout before) it decodes it into
// dst with array and returns nil bytes, as for null.
func unpacked[T any](typ byte, data []byte, version byte, array func(*[]T) error, dst *[]T) ([]byte, error) {
	switch bson.Type(typ) {
	case bson.TypeNull, bson.TypeUndefined:
		*dst = nil
		return nil, nil
	case bson.TypeArray:
		var docs []T
		if err := array(&docs); err != nil {
			return nil, err
		}
		*dst = docs
		return nil, nil
	case bson.TypeBinary:
	default:
		return nil, fmt.Errorf("mongo: a packed list stored as BSON type %v", bson.Type(typ))
	}
	var bin bson.Binary
	if err := bson.UnmarshalValue(bson.TypeBinary, data, &bin); err != nil {
		return nil, err
	}
	if len(bin.Data) == 0 || bin.Data[0] != version {
		return nil, errors.New("mongo: a packed list of an unknown layout")
	}
	return bin.Data[1:], nil
}

// appendString appends s, length first.
func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errTruncated: a packed list ends inside an element.
var errTruncated = errors.New("mongo: a packed list is truncated")

// reader reads a packed list's fields; the first failure sticks in err
// (and every later read returns zero).
type reader struct {
	b   []byte
	err error
}

func (r *reader) more() bool { return r.err == nil && len(r.b) > 0 }

func (r *reader) fail() { r.err, r.b = errTruncated, nil }

func (r *reader) string() string {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || uint64(len(r.b)-k) < n {
		r.fail()
		return ""
	}
	s := string(r.b[k : k+int(n)])
	r.b = r.b[k+int(n):]
	return s
}

func (r *reader) varint() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// liveList is a free-slots day's live appointments as stored: per
// appointment its id, start, length and hold expiry (a flag byte, then
// the expiry when held).
type liveList []liveDoc

// liveListV1 is the packed layout's version byte.
const liveListV1 = 1

// MarshalBSONValue implements bson.ValueMarshaler.
func (l liveList) MarshalBSONValue() (byte, []byte, error) {
	b := make([]byte, 0, 1+len(l)*56)
	b = append(b, liveListV1)
	for _, d := range l {
		b = appendString(b, d.ID)
		b = binary.AppendVarint(b, d.Start)
		b = binary.AppendVarint(b, d.End-d.Start)
		if d.HoldUntil == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendVarint(append(b, 1), *d.HoldUntil)
		}
	}
	return packed(b)
}

// UnmarshalBSONValue implements bson.ValueUnmarshaler: the packed layout,
// or the array of the layout before.
func (l *liveList) UnmarshalBSONValue(typ byte, data []byte) error {
	b, err := unpacked(typ, data, liveListV1, func(docs *[]liveDoc) error {
		return bson.UnmarshalValue(bson.TypeArray, data, docs)
	}, (*[]liveDoc)(l))
	if err != nil || b == nil {
		return err
	}
	out := liveList{}
	r := reader{b: b}
	for r.more() {
		d := liveDoc{ID: r.string(), Start: r.varint()}
		d.End = d.Start + r.varint()
		switch r.byte() {
		case 0:
		case 1:
			h := r.varint()
			d.HoldUntil = &h
		default:
			r.fail()
		}
		out = append(out, d)
	}
	if r.err != nil {
		return r.err
	}
	*l = out
	return nil
}

// countsList is an analytics day's per-appointment counts as stored: one
// BSON binary value (a version byte, then per appointment its id, currency
// and eight counts as varints), for the reason liveList is packed: a busy
// day's few hundred subdocuments were most of FerretDB's work for each
// batch that touched the day. The array the layout before wrote is still
// read. Questions read only the day's totals, which stay a plain array.
type countsList []countsDoc

// countsListV1 is the packed layout's version byte.
const countsListV1 = 1

// MarshalBSONValue implements bson.ValueMarshaler.
func (l countsList) MarshalBSONValue() (byte, []byte, error) {
	b := make([]byte, 0, 1+len(l)*64)
	b = append(b, countsListV1)
	for _, d := range l {
		b = appendString(b, d.ID)
		b = appendString(b, d.Currency)
		for _, v := range countsFields(&d.Counts) {
			b = binary.AppendVarint(b, *v)
		}
	}
	return packed(b)
}

// UnmarshalBSONValue implements bson.ValueUnmarshaler: the packed layout,
// or the array of the layout before.
func (l *countsList) UnmarshalBSONValue(typ byte, data []byte) error {
	b, err := unpacked(typ, data, countsListV1, func(docs *[]countsDoc) error {
		return bson.UnmarshalValue(bson.TypeArray, data, docs)
	}, (*[]countsDoc)(l))
	if err != nil || b == nil {
		return err
	}
	out := countsList{}
	r := reader{b: b}
	for r.more() {
		d := countsDoc{ID: r.string(), Currency: r.string()}
		for _, v := range countsFields(&d.Counts) {
			*v = r.varint()
		}
		out = append(out, d)
	}
	if r.err != nil {
		return r.err
	}
	*l = out
	return nil
}

// countsFields are c's counts, in the packed layout's order.
func countsFields(c *analytics.Counts) [8]*int64 {
	return [8]*int64{&c.Booked, &c.Cancelled, &c.Completed, &c.NoShow, &c.Expired, &c.BookedSlots, &c.Revenue, &c.Refunded}
}
