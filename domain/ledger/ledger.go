// Package ledger is the patient's booking ledger (stream "ledger-{patientId}"):
// the rules of one patient that span doctors (at most a number of live
// future appointments, never two at overlapping times) cannot be kept by
// any one doctor's stream, so a booking first reserves its place in the
// patient's ledger, appended with the ledger's expected revision, and only
// then takes the slot in the doctor's stream. Two bookings of one patient
// thus contend for the ledger's revision, in one process or across
// several, and the rules hold under any concurrency.
//
// The ledger does not follow cancellations, expiries or completions: an
// entry stands for an appointment that may have ended since. Whether it
// still counts is asked of the doctors' streams only when the ledger alone
// would refuse a booking (Observation); entries found ended are released
// in the same append. A reservation whose doctor append never happened (a
// crash between the two appends, or a refused booking whose release was
// lost) counts until it is older than the grace period, then is released
// once its appointment is found not to exist: that is the bounded repair.
package ledger

import (
	"slices"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Category is the stream category of ledgers.
const Category = "ledger"

// StreamID is the ledger of patient id.
func StreamID(patientID string) string { return Category + "-" + patientID }

// Stored event type names.
const (
	TypeBookingReserved = "ledger.BookingReserved.v1"
	TypeBookingMoved    = "ledger.BookingMoved.v1"
	TypeBookingReleased = "ledger.BookingReleased.v1"
	TypeMoveSettled     = "ledger.MoveSettled.v1"
)

// BookingReserved: the patient's place for an appointment, before the
// doctor's stream has it.
type BookingReserved struct {
	PatientID     string    `json:"patientId"`
	AppointmentID string    `json:"appointmentId"`
	DoctorID      string    `json:"doctorId"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	ReservedAt    time.Time `json:"reservedAt"`
	// KeyID names the Idempotency-Key of the request that made the
	// reservation ("" for none): the key cannot reserve another booking.
	KeyID string `json:"keyId,omitempty"`
}

// BookingMoved: a reschedule's new time, before the doctor's stream has it.
// Until MoveSettled the entry holds both its times: the move may still be
// refused.
type BookingMoved struct {
	PatientID     string    `json:"patientId"`
	AppointmentID string    `json:"appointmentId"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	MovedAt       time.Time `json:"movedAt"`
}

// MoveSettled: the doctor's stream decided a move: the entry keeps Start
// and End (the new time, or the old one moved back) and lets go of the other.
type MoveSettled struct {
	PatientID     string    `json:"patientId"`
	AppointmentID string    `json:"appointmentId"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	SettledAt     time.Time `json:"settledAt"`
}

// BookingReleased: the entry no longer counts (refused by the doctor's
// stream, ended, or never booked).
type BookingReleased struct {
	PatientID     string    `json:"patientId"`
	AppointmentID string    `json:"appointmentId"`
	Reason        string    `json:"reason"`
	ReleasedAt    time.Time `json:"releasedAt"`
}

func (BookingReserved) EventType() string { return TypeBookingReserved }
func (BookingMoved) EventType() string    { return TypeBookingMoved }
func (BookingReleased) EventType() string { return TypeBookingReleased }
func (MoveSettled) EventType() string     { return TypeMoveSettled }

// Events lists the registrations of the ledger's event types.
func Events() []domain.Registration {
	return []domain.Registration{domain.Type[BookingReserved](), domain.Type[BookingMoved](), domain.Type[BookingReleased](), domain.Type[MoveSettled]()}
}

// Errors of the ledger.
var (
	ErrBookingLimit = domain.NewError(domain.ErrConflict, "booking_limit_reached", "you have reached the number of upcoming appointments you may hold")
	ErrOverlapping  = domain.NewError(domain.ErrConflict, "overlapping_appointment", "you already have an appointment at that time")
	// ErrKeyReused has the code of the commands' idempotency_key_reused, so
	// that the two are one error to errors.Is.
	ErrKeyReused = domain.NewError(domain.ErrUnprocessable, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
)

// Entry is one appointment the ledger counts.
type Entry struct {
	AppointmentID string
	DoctorID      string
	Start, End    time.Time
	ReservedAt    time.Time
	KeyID         string
	// Prev is the time a move not settled yet leaves (zero otherwise): the
	// entry holds both until the doctor's stream decides.
	PrevStart, PrevEnd time.Time
}

// Observation is what a doctor's stream says of an entry's appointment.
type Observation struct {
	Exists     bool // the doctor's stream has the appointment
	Live       bool // held or confirmed
	Start, End time.Time
}

// Rules are a patient's booking rules.
type Rules struct {
	// MaxLive bounds the live future appointments (0: no bound).
	MaxLive int
	// Grace is how long a reservation counts before its appointment must
	// exist in the doctor's stream.
	Grace time.Duration
}

// Ledger is the aggregate.
type Ledger struct {
	patientID string
	seen      bool
	entries   map[string]*Entry
	changes   []domain.Event
}

// New returns the empty ledger of a patient.
func New(patientID string) *Ledger {
	return &Ledger{patientID: patientID, entries: map[string]*Entry{}}
}

// Registered reports whether the ledger has any event.
func (l *Ledger) Registered() bool { return l.seen }

// Changes are the events recorded since the last ClearChanges.
func (l *Ledger) Changes() []domain.Event { return l.changes }

// ClearChanges forgets the recorded events.
func (l *Ledger) ClearChanges() { l.changes = nil }

// Load folds stored events.
func (l *Ledger) Load(events ...domain.Event) {
	for _, e := range events {
		l.apply(e)
	}
}

// Entries lists the entries by start.
func (l *Ledger) Entries() []Entry {
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Start.Compare(b.Start) })
	return out
}

// Has reports whether the ledger holds an entry for the appointment.
func (l *Ledger) Has(appointmentID string) bool { _, ok := l.entries[appointmentID]; return ok }

func (l *Ledger) record(e domain.Event) {
	l.apply(e)
	l.changes = append(l.changes, e)
}

// prune bounds the state: entries that ended a day before the latest
// event's time can never count again (the rules look at the future).
const prune = 24 * time.Hour

func (l *Ledger) apply(ev domain.Event) {
	l.seen = true
	switch e := ev.(type) {
	case BookingReserved:
		l.entries[e.AppointmentID] = &Entry{AppointmentID: e.AppointmentID, DoctorID: e.DoctorID, Start: e.Start, End: e.End, ReservedAt: e.ReservedAt, KeyID: e.KeyID}
		for id, x := range l.entries {
			if x.End.Before(e.ReservedAt.Add(-prune)) {
				delete(l.entries, id)
			}
		}
	case BookingMoved:
		if x := l.entries[e.AppointmentID]; x != nil {
			if x.PrevStart.IsZero() {
				x.PrevStart, x.PrevEnd = x.Start, x.End
			}
			x.Start, x.End = e.Start, e.End
		}
	case MoveSettled:
		if x := l.entries[e.AppointmentID]; x != nil {
			x.Start, x.End, x.PrevStart, x.PrevEnd = e.Start, e.End, time.Time{}, time.Time{}
		}
	case BookingReleased:
		delete(l.entries, e.AppointmentID)
	}
}

// Reserve places a booking of [want.Start, want.End) under the rules at
// now. Entries are taken as the ledger has them unless observed holds what
// the doctors' streams say of them (see the package comment): an entry
// observed ended, or not existing past the grace period, is released in
// the same decision. A reservation of an appointment already in the
// ledger records nothing (a retry).
func (l *Ledger) Reserve(want Entry, r Rules, now time.Time, observed map[string]Observation) error {
	if want.AppointmentID == "" || !want.End.After(want.Start) {
		return domain.Invalid("a reservation needs an appointment and an interval")
	}
	if l.Has(want.AppointmentID) {
		return nil
	}
	if want.KeyID != "" {
		for _, x := range l.entries {
			if x.KeyID == want.KeyID {
				return ErrKeyReused
			}
		}
	}
	live, gone := l.counting(want.AppointmentID, r, now, observed)
	if r.MaxLive > 0 && len(live) >= r.MaxLive {
		return domain.Detail(ErrBookingLimit, "you already hold %d upcoming appointments, the most one patient may", len(live))
	}
	if err := overlapping(live, want.Start, want.End); err != nil {
		return err
	}
	l.releaseAll(gone, now)
	l.record(BookingReserved{
		PatientID: l.patientID, AppointmentID: want.AppointmentID, DoctorID: want.DoctorID,
		Start: want.Start.UTC(), End: want.End.UTC(), ReservedAt: now.UTC(), KeyID: want.KeyID,
	})
	return nil
}

// Move places a reschedule of the appointment to [start, end): it must
// not overlap the patient's other live appointments. An appointment the
// ledger does not hold (booked before the ledger kept it) is reserved.
func (l *Ledger) Move(appointmentID, doctorID string, start, end time.Time, r Rules, now time.Time, observed map[string]Observation) error {
	live, gone := l.counting(appointmentID, r, now, observed)
	if err := overlapping(live, start, end); err != nil {
		return err
	}
	l.releaseAll(gone, now)
	if x := l.entries[appointmentID]; x == nil {
		l.record(BookingReserved{PatientID: l.patientID, AppointmentID: appointmentID, DoctorID: doctorID, Start: start.UTC(), End: end.UTC(), ReservedAt: now.UTC()})
	} else if !x.Start.Equal(start) || !x.End.Equal(end) {
		l.record(BookingMoved{PatientID: l.patientID, AppointmentID: appointmentID, Start: start.UTC(), End: end.UTC(), MovedAt: now.UTC()})
	}
	return nil
}

// Settle records where a move ended: at [start, end), the doctor's
// stream's time of the appointment.
func (l *Ledger) Settle(appointmentID string, start, end time.Time, now time.Time) {
	if x := l.entries[appointmentID]; x != nil && (!x.PrevStart.IsZero() || !x.Start.Equal(start) || !x.End.Equal(end)) {
		l.record(MoveSettled{PatientID: l.patientID, AppointmentID: appointmentID, Start: start.UTC(), End: end.UTC(), SettledAt: now.UTC()})
	}
}

// Release records that an entry no longer counts (a refused booking).
func (l *Ledger) Release(appointmentID, reason string, now time.Time) {
	if l.Has(appointmentID) {
		l.record(BookingReleased{PatientID: l.patientID, AppointmentID: appointmentID, Reason: reason, ReleasedAt: now.UTC()})
	}
}

// counting lists the entries that count at now (but except's), with the
// intervals observed, and the entries observed to count no more (with why).
// It records nothing: a refused decision must leave the ledger as it was.
func (l *Ledger) counting(except string, r Rules, now time.Time, observed map[string]Observation) (live []Entry, gone map[string]string) {
	for id, e := range l.entries {
		if id == except {
			continue
		}
		start, end, prevStart, prevEnd := e.Start, e.End, e.PrevStart, e.PrevEnd
		if o, seen := observed[id]; seen {
			switch {
			case o.Exists && !o.Live:
				gone = addGone(gone, id, "ended")
				continue
			case !o.Exists && !now.Before(e.ReservedAt.Add(r.Grace)):
				gone = addGone(gone, id, "never booked")
				continue
			case o.Exists:
				start, end, prevStart, prevEnd = o.Start, o.End, time.Time{}, time.Time{}
			}
		}
		if end.After(now) {
			live = append(live, Entry{AppointmentID: id, DoctorID: e.DoctorID, Start: start, End: end})
		}
		if !prevStart.IsZero() && prevEnd.After(now) { // an unsettled move holds its old time too
			live = append(live, Entry{AppointmentID: id, DoctorID: e.DoctorID, Start: prevStart, End: prevEnd})
		}
	}
	return live, gone
}

func addGone(m map[string]string, id, why string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[id] = why
	return m
}

// releaseAll releases the entries gone, in a stable order.
func (l *Ledger) releaseAll(gone map[string]string, now time.Time) {
	ids := make([]string, 0, len(gone))
	for id := range gone {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		l.Release(id, gone[id], now)
	}
}

func overlapping(live []Entry, start, end time.Time) error {
	for _, x := range live {
		if start.Before(x.End) && end.After(x.Start) {
			return domain.Detail(ErrOverlapping, "you already have an appointment from %s to %s", x.Start.Format(time.RFC3339), x.End.Format(time.RFC3339))
		}
	}
	return nil
}
