package doctor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// SnapshotVersion is the shape MarshalSnapshot writes. Change it whenever
// the encoding or what apply derives from events changes: a snapshot of
// another version is refused (ErrSnapshotShape), and its reader folds the
// stream instead (snapshots are disposable).
const SnapshotVersion = 1

// ErrSnapshotShape: the bytes are not a snapshot of this shape (another
// version, truncated or damaged).
var ErrSnapshotShape = errors.New("doctor: not a snapshot of this shape")

// snapshotMagic starts every snapshot.
const snapshotMagic = "PDS"

// MarshalSnapshot encodes the aggregate's state (not its pending changes)
// compactly, so that RestoreSnapshot returns an aggregate that decides and
// answers exactly as this one. Appointments are written in id order, so
// equal states give equal bytes.
func (d *Doctor) MarshalSnapshot() ([]byte, error) {
	head, err := json.Marshal(snapshotHead{
		Registered: d.registered, Profile: d.profile, AvailabilityLocked: d.availabilityLocked,
		Schedule: d.scheduleOrNil(), TimeOff: d.timeOff,
	})
	if err != nil {
		return nil, fmt.Errorf("doctor: snapshot: %w", err)
	}
	ids := make([]string, 0, len(d.appointments))
	for id := range d.appointments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	w := snapWriter{b: make([]byte, 0, 64+len(head)+len(ids)*160)}
	w.b = append(w.b, snapshotMagic...)
	w.uvarint(SnapshotVersion)
	w.str(d.id)
	w.bytes(head)
	w.uvarint(uint64(len(ids)))
	for _, id := range ids {
		a := d.appointments[id]
		w.str(a.ID)
		w.bool(a.DoctorID == d.id)
		if a.DoctorID != d.id {
			w.str(a.DoctorID)
		}
		w.str(a.PatientID)
		w.str(a.PatientName)
		w.time(a.Start)
		w.time(a.End)
		w.str(string(a.Status))
		w.varint(a.Fees)
		w.str(a.Currency)
		w.str(string(a.Payment.Status))
		w.str(a.Payment.OrderID)
		w.str(a.Payment.PaymentID)
		w.varint(a.Payment.Amount)
		w.varint(a.Payment.RefundedAmount)
		w.time(a.HoldExpiresAt)
		w.time(a.CreatedAt)
		w.str(a.CancelReason)
		w.time(a.OrderRequestedAt)
		w.uvarint(uint64(len(a.captured)))
		for _, k := range sortedKeys(a.captured) {
			w.str(k)
			w.varint(a.captured[k])
		}
		w.uvarint(uint64(len(a.refunds)))
		for _, k := range sortedKeys(a.refunds) {
			r := a.refunds[k]
			w.str(k)
			w.str(r.paymentID)
			w.varint(r.amount)
			w.uvarint(uint64(r.state))
		}
		w.uvarint(uint64(len(a.orders)))
		for _, o := range a.orders {
			w.str(o.ID)
			w.varint(o.Amount)
			w.str(o.Currency)
		}
	}
	return w.b, nil
}

// snapshotHead is the small part of the state, as JSON.
type snapshotHead struct {
	Registered         bool      `json:"registered"`
	Profile            Profile   `json:"profile"`
	AvailabilityLocked bool      `json:"availabilityLocked"`
	Schedule           *Schedule `json:"schedule"`
	TimeOff            []TimeOff `json:"timeOff"`
}

func (d *Doctor) scheduleOrNil() *Schedule {
	if d.grid == nil {
		return nil
	}
	s := d.grid.Schedule()
	return &s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// RestoreSnapshot rebuilds doctor id's aggregate from MarshalSnapshot's
// bytes: ErrSnapshotShape for bytes of another shape or another doctor.
func RestoreSnapshot(id string, b []byte) (*Doctor, error) {
	// Every string of the state is a piece of one copy of b: one
	// allocation instead of one a string.
	r := snapReader{b: b, all: string(b), n: len(b)}
	if !strings.HasPrefix(string(b[:min(len(b), len(snapshotMagic))]), snapshotMagic) {
		return nil, ErrSnapshotShape
	}
	r.b = r.b[len(snapshotMagic):]
	if v := r.uvarint(); v != SnapshotVersion || r.err != nil {
		return nil, ErrSnapshotShape
	}
	if got := r.str(); got != id || r.err != nil {
		return nil, ErrSnapshotShape
	}
	var head snapshotHead
	if err := json.Unmarshal(r.bytes(), &head); err != nil || r.err != nil {
		return nil, ErrSnapshotShape
	}
	d := New(id)
	d.registered, d.profile, d.availabilityLocked, d.timeOff = head.Registered, head.Profile, head.AvailabilityLocked, head.TimeOff
	if head.Schedule != nil {
		g, err := head.Schedule.Compile()
		if err != nil {
			return nil, ErrSnapshotShape
		}
		d.grid = g
	}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return nil, ErrSnapshotShape
	}
	appts := make([]Appointment, n) // one allocation for all of them
	d.appointments = make(map[string]*Appointment, n)
	for i := range appts {
		a := &appts[i]
		a.ID = r.str()
		if r.bool() {
			a.DoctorID = d.id
		} else {
			a.DoctorID = r.str()
		}
		a.PatientID = r.str()
		a.PatientName = r.str()
		a.Start, a.End = r.time(), r.time()
		a.Status = Status(r.str()).canonical()
		a.Fees = r.varint()
		a.Currency = r.str()
		a.Payment.Status = PaymentStatus(r.str()).canonical()
		a.Payment.OrderID, a.Payment.PaymentID = r.str(), r.str()
		a.Payment.Amount, a.Payment.RefundedAmount = r.varint(), r.varint()
		a.HoldExpiresAt, a.CreatedAt = r.time(), r.time()
		a.CancelReason = r.str()
		a.OrderRequestedAt = r.time()
		if k := r.count(); k > 0 {
			a.captured = make(map[string]int64, k)
			for range k {
				p := r.str()
				a.captured[p] = r.varint()
			}
		}
		if k := r.count(); k > 0 {
			a.refunds, a.refunded = make(map[string]*refund, k), map[string]int64{}
			for range k {
				rid := r.str()
				rf := &refund{paymentID: r.str(), amount: r.varint(), state: refundState(r.uvarint())}
				a.refunds[rid] = rf
				if rf.state != refundFailed {
					a.refunded[rf.paymentID] += rf.amount
				}
			}
		}
		if k := r.count(); k > 0 {
			a.orders = make([]Order, k)
			for j := range a.orders {
				a.orders[j] = Order{ID: r.str(), Amount: r.varint(), Currency: d.share(r.str())}
				d.orders[a.orders[j].ID] = a.ID
			}
		}
		if r.err != nil {
			return nil, ErrSnapshotShape
		}
		d.appointments[a.ID] = a
		d.occupy(a)
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, ErrSnapshotShape
	}
	return d, nil
}

type snapWriter struct{ b []byte }

func (w *snapWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *snapWriter) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *snapWriter) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *snapWriter) bytes(p []byte)   { w.uvarint(uint64(len(p))); w.b = append(w.b, p...) }
func (w *snapWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// time writes 0 for the zero time, else 1 + nanoseconds since 1970
// (zig-zag): instants of the aggregate are UTC.
func (w *snapWriter) time(t time.Time) {
	if t.IsZero() {
		w.uvarint(0)
		return
	}
	w.uvarint(1)
	w.varint(t.UnixNano())
}

type snapReader struct {
	b   []byte // what is left to read
	all string // all of it, as a string
	n   int    // len(all)
	err error
}

var errShort = errors.New("short")

func (r *snapReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errShort, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errShort, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must fit in what is left.
func (r *snapReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) || n > math.MaxInt32 {
		r.err, r.b = errShort, nil
		return 0
	}
	return int(n)
}

func (r *snapReader) bytes() []byte {
	n := r.count()
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *snapReader) str() string {
	k := r.count()
	off := r.n - len(r.b)
	r.b = r.b[k:]
	return r.all[off : off+k]
}

func (r *snapReader) bool() bool {
	if len(r.b) == 0 {
		r.err = errShort
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

func (r *snapReader) time() time.Time {
	if r.uvarint() == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.varint()).UTC()
}
