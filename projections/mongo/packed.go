package mongo

import (
	"bytes"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// Lists that a batch rewrites whole are stored packed: one BSON binary
// value (a version byte, then the number of elements and each element's
// fields, in projections.StateWriter's encoding: varints and
// length-prefixed strings) rather than an array of subdocuments. FerretDB
// decodes a document's JSON, with a type schema for every element, in Go
// on each read and each update; for a busy day's few hundred elements that
// was most of its work in every batch that touched the day (the load
// generator's 160 bookings a doctor's day: free slots applied 540 events/s
// on FerretDB with arrays, 2,014 packed; BenchmarkBusyDayFerretDB).
// Nothing queries inside these lists; an array written by the layout
// before is still read, and written packed by the next batch that touches
// its document.

// pack writes a packed list: its version byte, its length, then each
// element with write.
func pack[T any](version byte, l []T, write func(*projections.StateWriter, *T)) (byte, []byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(version)
	w := projections.NewStateWriterSize(&buf, 16+len(l)*64)
	w.Uvarint(uint64(len(l)))
	for i := range l {
		write(w, &l[i])
	}
	if err := w.Flush(); err != nil {
		return 0, nil, err
	}
	typ, data, err := bson.MarshalValue(bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: buf.Bytes()})
	return byte(typ), data, err
}

// unpack reads into dst a stored list of BSON type typ: packed (version,
// read for each element), an array of the layout before, or null.
func unpack[T any](typ byte, data []byte, version byte, dst *[]T, read func(*projections.StateReader) T) error {
	switch bson.Type(typ) {
	case bson.TypeNull, bson.TypeUndefined:
		*dst = nil
		return nil
	case bson.TypeArray:
		var docs []T
		if err := bson.UnmarshalValue(bson.TypeArray, data, &docs); err != nil {
			return err
		}
		*dst = docs
		return nil
	case bson.TypeBinary:
	default:
		return fmt.Errorf("mongo: a packed list stored as BSON type %v", bson.Type(typ))
	}
	var bin bson.Binary
	if err := bson.UnmarshalValue(bson.TypeBinary, data, &bin); err != nil {
		return err
	}
	if len(bin.Data) == 0 || bin.Data[0] != version {
		return errors.New("mongo: a packed list of an unknown layout")
	}
	// The reader's strings share its bytes: a copy of its own, which
	// nothing writes again.
	r := projections.NewStateReader(bytes.Clone(bin.Data[1:]))
	n := r.Count()
	out := make([]T, 0, n)
	for range n {
		out = append(out, read(r))
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("mongo: a packed list: %w", err)
	}
	*dst = out
	return nil
}

// liveList is a free-slots day's live appointments as stored: per
// appointment its id, start, length and hold expiry (a flag byte, then
// the expiry when held).
type liveList []liveDoc

// liveListV1 is the packed layout's version byte.
const liveListV1 = 1

// MarshalBSONValue implements bson.ValueMarshaler.
func (l liveList) MarshalBSONValue() (byte, []byte, error) {
	return pack(liveListV1, l, func(w *projections.StateWriter, d *liveDoc) {
		w.String(d.ID)
		w.Varint(d.Start)
		w.Varint(d.End - d.Start)
		if d.HoldUntil == nil {
			w.Uvarint(0)
		} else {
			w.Uvarint(1)
			w.Varint(*d.HoldUntil)
		}
	})
}

// UnmarshalBSONValue implements bson.ValueUnmarshaler: the packed layout,
// or the array of the layout before.
func (l *liveList) UnmarshalBSONValue(typ byte, data []byte) error {
	return unpack(typ, data, liveListV1, (*[]liveDoc)(l), func(r *projections.StateReader) liveDoc {
		d := liveDoc{ID: r.String(), Start: r.Varint()}
		d.End = d.Start + r.Varint()
		if r.Uvarint() != 0 {
			h := r.Varint()
			d.HoldUntil = &h
		}
		return d
	})
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
	return pack(countsListV1, l, func(w *projections.StateWriter, d *countsDoc) {
		w.String(d.ID)
		w.String(d.Currency)
		for _, v := range countsFields(&d.Counts) {
			w.Varint(*v)
		}
	})
}

// UnmarshalBSONValue implements bson.ValueUnmarshaler: the packed layout,
// or the array of the layout before.
func (l *countsList) UnmarshalBSONValue(typ byte, data []byte) error {
	return unpack(typ, data, countsListV1, (*[]countsDoc)(l), func(r *projections.StateReader) countsDoc {
		d := countsDoc{ID: r.String(), Currency: r.String()}
		for _, v := range countsFields(&d.Counts) {
			*v = r.Varint()
		}
		return d
	})
}

// countsFields are c's counts, in the packed layout's order.
func countsFields(c *analytics.Counts) [8]*int64 {
	return [8]*int64{&c.Booked, &c.Cancelled, &c.Completed, &c.NoShow, &c.Expired, &c.BookedSlots, &c.Revenue, &c.Refunded}
}
