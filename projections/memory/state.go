package memory

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// The models' saved states (projections.Persistent). Each is written
// while the projector keeps applying: the model's lock is taken for a
// chunk of documents at a time, and every document carries the position
// it last applied, so the events after the checkpoint that a document
// already holds are no-ops when the next start applies them again.

// chunk is how many documents a save encodes under one hold of a model's
// lock.
const chunk = 2048

// Directory ------------------------------------------------------------

// StateShape implements projections.Persistent.
func (*Directory) StateShape() uint32 { return 1 }

// SaveState implements projections.Persistent (a few hundred doctors: one
// hold of the lock).
func (d *Directory) SaveState(w io.Writer) error {
	sw := projections.NewStateWriter(w)
	d.mu.RLock()
	sw.Uvarint(uint64(len(d.doctors)))
	for _, doc := range d.doctors {
		sw.String(doc.ID)
		sw.String(doc.Name)
		sw.String(doc.Speciality)
		sw.String(doc.Degree)
		sw.Varint(int64(doc.ExperienceYears))
		sw.String(doc.About)
		sw.Varint(doc.Fees)
		sw.String(doc.Currency)
		sw.String(doc.Address)
		sw.Uvarint(boolBit(doc.Available))
		sw.String(doc.ImageURL)
		sw.String(doc.Timezone)
		sw.Uvarint(doc.Position)
	}
	d.mu.RUnlock()
	return sw.Flush()
}

// LoadState implements projections.Persistent.
func (d *Directory) LoadState(state []byte, pos uint64) error {
	r := projections.NewStateReader(state)
	n := r.Count()
	for range n {
		doc := &projections.Doctor{
			ID: r.String(), Name: r.String(), Speciality: r.String(), Degree: r.String(), ExperienceYears: int(r.Varint()),
			About: r.String(), Fees: r.Varint(), Currency: r.String(), Address: r.String(), Available: r.Uvarint() == 1,
			ImageURL: r.String(), Timezone: r.String(), Position: r.Uvarint(),
		}
		d.doctors[doc.ID] = doc
	}
	if err := r.Done(); err != nil {
		return err
	}
	d.Advance(pos)
	return nil
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Slots ----------------------------------------------------------------

// StateShape implements projections.Persistent: it follows the doctor
// aggregate's snapshot version. Shape 2: the aggregates forget what ended
// (see Slots), and the horizon comes first.
func (*Slots) StateShape() uint32 { return 2<<16 | doctor.SnapshotVersion }

// SaveState implements projections.Persistent: the horizon, then each
// doctor's aggregate as its snapshot (doctor.MarshalSnapshot: personal
// fields stay sealed, as the events carry them), one doctor per hold of
// the lock, rid of what ended first.
func (s *Slots) SaveState(w io.Writer) error {
	s.mu.RLock()
	ids := make([]string, 0, len(s.doctors))
	for id := range s.doctors {
		ids = append(ids, id)
	}
	horizon := s.horizon
	s.mu.RUnlock()
	sw := projections.NewStateWriter(w)
	sw.Time(horizon)
	sw.Uvarint(uint64(len(ids)))
	for _, id := range ids {
		s.mu.Lock()
		d := s.doctors[id]
		if s.forget(d, nil) > 0 {
			d.version++
		}
		b, err := d.agg.MarshalSnapshot()
		pos := d.pos
		s.mu.Unlock()
		if err != nil {
			return err
		}
		sw.String(id)
		sw.Uvarint(pos)
		sw.Bytes(b)
	}
	return sw.Flush()
}

// LoadState implements projections.Persistent.
func (s *Slots) LoadState(state []byte, pos uint64) error {
	r := projections.NewStateReader(state)
	s.horizon = r.Time()
	n := r.Count()
	for range n {
		// RestoreSnapshot copies b; the id is cloned so that nothing
		// keeps the whole state's bytes alive.
		id, dpos, b := strings.Clone(r.String()), r.Uvarint(), r.Bytes()
		if r.Err() != nil {
			break
		}
		agg, err := doctor.RestoreSnapshot(id, b)
		if err != nil {
			return err
		}
		d := &slotDoctor{agg: agg, pos: dpos}
		s.forget(d, nil)
		s.doctors[id] = d
	}
	if err := r.Done(); err != nil {
		return err
	}
	s.Advance(pos)
	return nil
}

// Appointments ---------------------------------------------------------

// StateShape implements projections.Persistent.
func (*Appointments) StateShape() uint32 { return 1 }

// SaveState implements projections.Persistent: the doctors and patients,
// then the appointments in booking order, chunk by chunk. Strings that
// repeat (ids, statuses, currencies) and the name cells are written once
// and referred to by number afterwards. Personal fields are written
// sealed.
func (m *Appointments) SaveState(w io.Writer) error {
	sw := projections.NewStateWriter(w)
	tab := stringTable{seen: map[string]uint64{}}
	cells := map[*personal]uint64{}
	cell := func(p *personal) {
		if p == nil {
			sw.Uvarint(0)
			return
		}
		if i, ok := cells[p]; ok {
			sw.Uvarint(i)
			return
		}
		cells[p] = uint64(len(cells) + 2)
		sw.Uvarint(1)
		sw.String(p.sealed)
	}
	m.mu.RLock()
	n := len(m.all)
	sw.Uvarint(uint64(len(m.doctors)))
	for id, info := range m.doctors {
		sw.String(id)
		sw.String(info.name)
		sw.String(info.currency)
		sw.String(info.timezone)
	}
	sw.Uvarint(uint64(len(m.patients)))
	for id := range m.patients {
		tab.put(sw, id)
	}
	m.mu.RUnlock()
	sw.Uvarint(uint64(n))
	for i := 0; i < n; i += chunk {
		m.mu.RLock()
		for _, en := range m.all[i:min(i+chunk, n)] {
			sw.Uvarint(en.booked)
			sw.String(en.id)
			tab.put(sw, en.doctorID)
			tab.put(sw, en.patientID)
			cell(en.name)
			sw.Time(instant(en.start))
			sw.Time(instant(en.end))
			tab.put(sw, en.status)
			sw.Varint(en.fees)
			tab.put(sw, en.currency)
			tab.put(sw, en.payStatus)
			sw.String(en.orderID)
			sw.String(en.paymentID)
			sw.Varint(en.amount)
			sw.Varint(en.refunded)
			sw.Time(instant(en.holdUntil))
			sw.Time(instant(en.created))
			cell(en.reason)
			sw.Uvarint(en.position)
			sw.Time(instant(en.paymentAt))
			sw.Uvarint(en.paymentPos)
			sw.Uvarint(uint64(len(en.refunds)))
			for _, f := range en.refunds {
				sw.String(f.ID)
				sw.Varint(f.Amount)
				tab.put(sw, string(f.State))
			}
		}
		m.mu.RUnlock()
		if err := sw.Flush(); err != nil {
			return err
		}
	}
	return sw.Flush()
}

// stringTable writes a string the first time as 0 and the string, and
// afterwards as its number.
type stringTable struct{ seen map[string]uint64 }

func (t stringTable) put(w *projections.StateWriter, s string) {
	if i, ok := t.seen[s]; ok {
		w.Uvarint(i)
		return
	}
	t.seen[s] = uint64(len(t.seen) + 1)
	w.Uvarint(0)
	w.String(s)
}

type stringTableReader struct{ strs []string }

func (t *stringTableReader) get(r *projections.StateReader) string {
	s, _ := t.index(r)
	return s
}

// index is get with the string's number in the table (from 0).
func (t *stringTableReader) index(r *projections.StateReader) (string, int) {
	i := r.Uvarint()
	if i == 0 {
		s := strings.Clone(r.String()) // few: keeps nothing of the state alive
		t.strs = append(t.strs, s)
		return s, len(t.strs) - 1
	}
	if i > uint64(len(t.strs)) {
		_ = r.Count() // fails: nothing of the kind
		return "", 0
	}
	return t.strs[i-1], int(i - 1)
}

var errBadCell = errors.New("memory: a personal field refers to no cell")

// LoadState implements projections.Persistent.
func (m *Appointments) LoadState(state []byte, pos uint64) error {
	r := projections.NewStateReader(state)
	// The strings kept are copied out of the state: slices of it would
	// keep the whole file alive (its 140 bytes an appointment against the
	// 40-60 of an id and a payment's ids).
	str := func() string { return strings.Clone(r.String()) }
	var tab stringTableReader
	var cells []*personal
	cell := func() (*personal, error) {
		switch i := r.Uvarint(); {
		case i == 0:
			return nil, nil
		case i == 1:
			p := &personal{sealed: str()}
			if p.sealed == erasedField.sealed {
				p = erasedField
			}
			cells = append(cells, p)
			return p, nil
		case i-2 < uint64(len(cells)):
			return cells[i-2], nil
		default:
			return nil, errBadCell
		}
	}
	for range r.Count() {
		id := str()
		m.doctors[id] = doctorInfo{name: str(), currency: str(), timezone: str()}
	}
	for range r.Count() {
		m.patients[tab.get(r)] = true
	}
	n := r.Count()
	ents := make([]entry, n) // one allocation for all of them
	m.all = make([]*entry, 0, n)
	m.byID = make(map[string]*entry, n)
	// The lists by doctor and by patient, by the id's number in the
	// string table: two slice appends an entry instead of four map
	// operations.
	var byDoc, byPat [][]*entry
	list := func(lists *[][]*entry, i int) *[]*entry {
		if i >= len(*lists) {
			*lists = append(*lists, make([][]*entry, i+1-len(*lists))...)
		}
		return &(*lists)[i]
	}
	var err error
	for i := range ents {
		en := &ents[i]
		en.booked = r.Uvarint()
		var doc, pat int
		en.id = str()
		en.doctorID, doc = tab.index(r)
		en.patientID, pat = tab.index(r)
		if en.name, err = cell(); err != nil {
			return err
		}
		en.start, en.end = nanos(r.Time()), nanos(r.Time())
		en.status, en.fees, en.currency = tab.get(r), r.Varint(), tab.get(r)
		en.payStatus, en.orderID, en.paymentID, en.amount, en.refunded = tab.get(r), str(), str(), r.Varint(), r.Varint()
		en.holdUntil, en.created = nanos(r.Time()), nanos(r.Time())
		if en.reason, err = cell(); err != nil {
			return err
		}
		en.position, en.paymentAt, en.paymentPos = r.Uvarint(), nanos(r.Time()), r.Uvarint()
		if k := r.Count(); k > 0 {
			en.refunds = make([]projections.Refund, k)
			for j := range en.refunds {
				en.refunds[j] = projections.Refund{ID: str(), Amount: r.Varint(), State: projections.RefundState(tab.get(r))}
			}
		}
		if r.Err() != nil {
			return r.Err()
		}
		m.byID[en.id] = en
		m.all = append(m.all, en)
		l := list(&byDoc, doc)
		*l = append(*l, en)
		l = list(&byPat, pat)
		*l = append(*l, en)
	}
	if err := r.Done(); err != nil {
		return err
	}
	for i, l := range byDoc {
		if len(l) > 0 {
			m.byDoc[tab.strs[i]] = l
		}
	}
	for i, l := range byPat {
		if len(l) > 0 {
			id := tab.strs[i]
			m.byPat[id] = l
			// The patient's last name cell (see nameCell).
			for j := len(l) - 1; j >= 0; j-- {
				if c := l[j].name; c != nil && c != erasedField {
					m.names[id] = c
					break
				}
			}
		}
	}
	// The payments list: one mark per appointment, in the order of its
	// last payment change (older marks are skipped by the query anyway).
	m.paid = make([]payMark, len(m.all))
	for i, en := range m.all {
		m.paid[i] = payMark{pos: en.paymentPos, en: en}
	}
	slices.SortFunc(m.paid, func(a, b payMark) int { return cmp.Compare(a.pos, b.pos) })
	m.Advance(pos)
	return nil
}

// Analytics ------------------------------------------------------------

// StateShape implements projections.Persistent.
func (*Analytics) StateShape() uint32 { return 1 }

// SaveState implements projections.Persistent: the doctors (a few
// hundred, with their schedule and time-off history: JSON, in one hold of
// the lock), then the appointments in booking order, chunk by chunk. The
// day counters are not saved: LoadState adds them up from the
// appointments, which keeps them in step with appointments that a save
// running beside the projector caught at different positions.
func (m *Analytics) SaveState(w io.Writer) error {
	sw := projections.NewStateWriter(w)
	m.mu.RLock()
	docs, err := json.Marshal(m.state.Doctors)
	n := len(m.all)
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	sw.Bytes(docs)
	tab := stringTable{seen: map[string]uint64{}}
	amounts := func(list []analytics.Amount) {
		sw.Uvarint(uint64(len(list)))
		for _, a := range list {
			sw.String(a.ID)
			sw.Varint(a.Amount)
		}
	}
	sw.Uvarint(uint64(n))
	for i := 0; i < n; i += chunk {
		m.mu.RLock()
		for _, a := range m.all[i:min(i+chunk, n)] {
			sw.String(a.ID)
			tab.put(sw, a.DoctorID)
			sw.Time(a.Start)
			tab.put(sw, a.Zone)
			tab.put(sw, a.Currency)
			tab.put(sw, string(a.Status))
			amounts(a.Captured)
			amounts(a.Refunds)
			sw.Uvarint(a.Position)
		}
		m.mu.RUnlock()
		if err := sw.Flush(); err != nil {
			return err
		}
	}
	return sw.Flush()
}

// LoadState implements projections.Persistent.
func (m *Analytics) LoadState(state []byte, pos uint64) error {
	r := projections.NewStateReader(state)
	docs := r.Bytes()
	if err := r.Err(); err != nil {
		return err
	}
	if err := json.Unmarshal(docs, &m.state.Doctors); err != nil {
		return err
	}
	for id, d := range m.state.Doctors {
		if d == nil || d.ID != id {
			return errBadDoctor
		}
	}
	var tab stringTableReader
	amounts := func() []analytics.Amount {
		k := r.Count()
		if k == 0 {
			return nil
		}
		out := make([]analytics.Amount, k)
		for i := range out {
			out[i] = analytics.Amount{ID: r.String(), Amount: r.Varint()}
		}
		return out
	}
	n := r.Count()
	apps := make([]analytics.Appointment, n) // one allocation for all of them
	m.all = make([]*analytics.Appointment, 0, n)
	m.state.Appointments = make(map[string]*analytics.Appointment, n)
	for i := range apps {
		a := &apps[i]
		a.ID, a.DoctorID, a.Start, a.Zone, a.Currency = r.String(), tab.get(r), r.Time(), tab.get(r), tab.get(r)
		a.Status = doctor.Status(tab.get(r))
		a.Captured, a.Refunds, a.Position = amounts(), amounts(), r.Uvarint()
		if r.Err() != nil {
			return r.Err()
		}
		m.state.Appointments[a.ID] = a
		m.all = append(m.all, a)
		m.add(a.Day(), a.Currency, a.Counts(), 1)
	}
	if err := r.Done(); err != nil {
		return err
	}
	m.Advance(pos)
	return nil
}

var errBadDoctor = errors.New("memory: a saved doctor is not under its own id")
