// Package analytics is the analysts' read model ("analytics"): bookings,
// payments and utilisation counted per doctor and local date, and the
// questions asked of them (GET /analytics/bookings, /analytics/utilisation).
//
// This package holds what every implementation shares: the fold of the
// log into per-appointment state and per-day counters, the counting of
// offered slots from a doctor's schedule history, and the rows answered
// from the counters. projections/memory and projections/mongo keep the
// state; analyticstest is the suite both pass.
//
// What is counted (the contract of the numbers, also in docs/api.md):
//
//   - An appointment counts on its day: the calendar date of its current
//     start (after any reschedule) in the doctor's time zone as it stood
//     when the slot was reserved or last rescheduled (the zone of the
//     calendar the patient booked from).
//   - booked counts every appointment reserved (held or confirmed at
//     first), whatever became of it; cancelled, completed, noShow and
//     expired count those that stand in that status now, so booked minus
//     the four is what is still held or confirmed.
//   - revenue sums the payments captured for the appointments (each
//     payment once, also one that arrived too late and is owed back);
//     refunded sums the refunds the provider has processed (each refund
//     once). Both in the currency's minor units; revenue − refunded is
//     what was kept.
//   - A booked slot (utilisation) is an appointment that is confirmed,
//     completed or a no-show: a slot the doctor kept for a patient. A held
//     appointment is not yet one (its hold may run out without an event
//     to say so); cancelled and expired ones gave their slot back.
//   - An offered slot is a slot of the doctor's weekly grid as it stood
//     when the slot began (the last schedule recorded at or before the
//     slot's start instant; a schedule recorded later does not rewrite
//     the past), in that schedule's zone, that overlaps no time off
//     (whenever the time off was recorded).
//
// Nothing here keeps or shows personal data: appointment ids, doctor ids,
// statuses, instants and amounts only.
package analytics

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// Name is the projection's permanent name.
const Name = "analytics"

// MaxDays bounds the dates of one query (from and to inclusive).
const MaxDays = 366

// GroupBy is how bookings rows are keyed.
type GroupBy string

// The groupings of GET /analytics/bookings.
const (
	ByDay        GroupBy = "day"
	ByDoctor     GroupBy = "doctor"
	BySpeciality GroupBy = "speciality"
)

// Query selects the dates [From, To] (both inclusive, each doctor's local
// dates) and, for bookings, the grouping.
type Query struct {
	From, To doctor.Date
	GroupBy  GroupBy
}

// Validate checks a query; an empty GroupBy is ByDay.
func (q *Query) Validate() error {
	if q.From == (doctor.Date{}) || q.To == (doctor.Date{}) {
		return domain.Invalid("from and to are required (YYYY-MM-DD, both inclusive)")
	}
	if q.To.Before(q.From) {
		return domain.Invalid("to must not be before from")
	}
	if days := dayNumber(q.To) - dayNumber(q.From) + 1; days > MaxDays {
		return domain.Invalid("the range must be at most %d days, it is %d", MaxDays, days)
	}
	switch q.GroupBy {
	case "":
		q.GroupBy = ByDay
	case ByDay, ByDoctor, BySpeciality:
	default:
		return domain.Invalid("groupBy must be day, doctor or speciality")
	}
	return nil
}

// dayNumber numbers dates consecutively (days since 1970-01-01).
func dayNumber(d doctor.Date) int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// BookingRow is one row of GET /analytics/bookings: the counts of a key
// (a date, a doctor id or a speciality) in one currency.
type BookingRow struct {
	Key       string `json:"key"`
	Label     string `json:"label"`
	Booked    int64  `json:"booked"`
	Cancelled int64  `json:"cancelled"`
	Completed int64  `json:"completed"`
	NoShow    int64  `json:"noShow"`
	Expired   int64  `json:"expired"`
	Revenue   int64  `json:"revenue"`
	Refunded  int64  `json:"refunded"`
	Currency  string `json:"currency"`
}

// UtilisationRow is one doctor's row of GET /analytics/utilisation.
type UtilisationRow struct {
	DoctorID     string  `json:"doctorId"`
	DoctorName   string  `json:"doctorName"`
	OfferedSlots int64   `json:"offeredSlots"`
	BookedSlots  int64   `json:"bookedSlots"`
	Ratio        float64 `json:"ratio"`
}

// View answers the analysts' questions.
type View interface {
	Bookings(ctx context.Context, q Query) ([]BookingRow, error)
	Utilisation(ctx context.Context, q Query) ([]UtilisationRow, error)
}

// Counts are what one appointment adds to its day, or the sums of a day.
type Counts struct {
	Booked      int64 `json:"booked" bson:"booked"`
	Cancelled   int64 `json:"cancelled" bson:"cancelled"`
	Completed   int64 `json:"completed" bson:"completed"`
	NoShow      int64 `json:"noShow" bson:"noShow"`
	Expired     int64 `json:"expired" bson:"expired"`
	BookedSlots int64 `json:"bookedSlots" bson:"bookedSlots"`
	Revenue     int64 `json:"revenue" bson:"revenue"`
	Refunded    int64 `json:"refunded" bson:"refunded"`
}

// Add adds o to c (or takes it away, sign -1).
func (c *Counts) Add(o Counts, sign int64) {
	c.Booked += sign * o.Booked
	c.Cancelled += sign * o.Cancelled
	c.Completed += sign * o.Completed
	c.NoShow += sign * o.NoShow
	c.Expired += sign * o.Expired
	c.BookedSlots += sign * o.BookedSlots
	c.Revenue += sign * o.Revenue
	c.Refunded += sign * o.Refunded
}

// IsZero reports whether every count is 0.
func (c Counts) IsZero() bool { return c == Counts{} }

// DayKey names the counters of one doctor on one local date.
type DayKey struct {
	DoctorID string
	Date     doctor.Date
}

// ID is the key as one string (a document id): doctor id, '/', date.
func (k DayKey) ID() string { return k.DoctorID + "/" + k.Date.String() }

// Appointment is what the model keeps of one appointment: enough to move
// its counts when it changes, nothing about its patient.
type Appointment struct {
	ID       string        `bson:"_id"`
	DoctorID string        `bson:"doctorId"`
	Start    time.Time     `bson:"start"`
	Zone     string        `bson:"zone"`
	Currency string        `bson:"currency"`
	Status   doctor.Status `bson:"status"`
	Captured []Amount      `bson:"captured,omitempty"` // each payment once
	Refunds  []Amount      `bson:"refunds,omitempty"`  // each processed refund once
	Position uint64        `bson:"position"`
}

// NewAppointment is the appointment ev reserves, in zone.
func NewAppointment(ev doctor.SlotReserved, zone string, pos uint64) *Appointment {
	return &Appointment{
		ID: ev.AppointmentID, DoctorID: ev.DoctorID, Start: ev.Start.UTC(), Zone: zone,
		Currency: ev.Currency, Status: ev.Status, Position: pos,
	}
}

// Day is the appointment's day key.
func (a *Appointment) Day() DayKey {
	return DayKey{DoctorID: a.DoctorID, Date: LocalDate(a.Start, a.Zone)}
}

// LocalDate is the date of t in zone (UTC for a zone that does not load).
func LocalDate(t time.Time, zone string) doctor.Date {
	loc, err := doctor.LoadZone(zone)
	if err != nil {
		loc = time.UTC
	}
	return doctor.DateOf(t.In(loc))
}

// Counts is what the appointment adds to its day.
func (a *Appointment) Counts() Counts {
	c := Counts{Booked: 1}
	switch a.Status {
	case doctor.StatusCancelled:
		c.Cancelled = 1
	case doctor.StatusCompleted:
		c.Completed, c.BookedSlots = 1, 1
	case doctor.StatusNoShow:
		c.NoShow, c.BookedSlots = 1, 1
	case doctor.StatusExpired:
		c.Expired = 1
	case doctor.StatusConfirmed:
		c.BookedSlots = 1
	}
	for _, v := range a.Captured {
		c.Revenue += v.Amount
	}
	for _, v := range a.Refunds {
		c.Refunded += v.Amount
	}
	return c
}

// Fold applies an event about the appointment after its reservation;
// zone is the doctor's zone at the event (a reschedule books the new slot
// from the calendar of that moment). The caller has checked that the event
// is newer than the appointment.
func (a *Appointment) Fold(ev doctor.AppointmentEvent, zone string, pos uint64) {
	a.Position = pos
	switch ev := ev.(type) {
	case doctor.AppointmentConfirmed:
		a.Status = doctor.StatusConfirmed
	case doctor.HoldExpired:
		a.Status = doctor.StatusExpired
	case doctor.AppointmentCancelled:
		a.Status = doctor.StatusCancelled
	case doctor.AppointmentCompleted:
		a.Status = doctor.StatusCompleted
	case doctor.AppointmentMarkedNoShow:
		a.Status = doctor.StatusNoShow
	case doctor.AppointmentRescheduled:
		a.Start, a.Zone = ev.Start.UTC(), zone
	case doctor.PaymentCaptured:
		a.Captured = once(a.Captured, ev.PaymentID, ev.Amount)
	case doctor.RefundProcessed:
		a.Refunds = once(a.Refunds, ev.RefundID, ev.Amount)
	}
}

// Amount is a payment or refund of an appointment, by the provider's id.
// (A list, not a map by id: ids are not safe document keys.)
type Amount struct {
	ID     string `bson:"id"`
	Amount int64  `bson:"amount"`
}

// once adds id's amount to list unless id is in it.
func once(list []Amount, id string, amount int64) []Amount {
	for _, a := range list {
		if a.ID == id {
			return list
		}
	}
	return append(list, Amount{ID: id, Amount: amount})
}

// Doctor is what the model keeps of a doctor: the profile fields rows are
// labelled with, and the schedule and time-off history offered slots are
// counted from. It grows with each schedule change and time off (admin
// actions, a few a month), not with bookings.
type Doctor struct {
	ID         string            `bson:"_id"`
	Name       string            `bson:"name"`
	Speciality string            `bson:"speciality"`
	Registered bool              `bson:"registered"`
	Schedules  []ScheduleVersion `bson:"schedules,omitempty"`
	TimeOff    []Interval        `bson:"timeOff,omitempty"`
	Position   uint64            `bson:"position"`
}

// ScheduleVersion is a schedule as recorded: in effect from From (when it
// was recorded) until the next one; Position is the event's.
type ScheduleVersion struct {
	From     time.Time       `bson:"from"`
	Position uint64          `bson:"position"`
	Schedule doctor.Schedule `bson:"schedule"`
}

// Interval is a time off [From, To).
type Interval struct {
	From time.Time `bson:"from"`
	To   time.Time `bson:"to"`
}

// ZoneAt is the doctor's zone just before the log position pos: the zone
// of the last schedule recorded before it ("" without one). Kept per
// version, it gives the same answer when an event is applied again after
// later ones were.
func (d *Doctor) ZoneAt(pos uint64) string {
	zone := ""
	for _, v := range d.Schedules {
		if v.Position >= pos {
			break
		}
		zone = v.Schedule.Timezone
	}
	return zone
}

// FoldDoctor applies a doctor event about the profile, schedule or time
// off to d and reports whether it was one. The caller has checked that the
// event is newer than d.
func FoldDoctor(d *Doctor, ev any, pos uint64, recordedAt time.Time) bool {
	switch ev := ev.(type) {
	case doctor.DoctorRegistered:
		d.Registered, d.Name, d.Speciality = true, ev.Profile.Name, ev.Profile.Speciality
	case doctor.ProfileUpdated:
		d.Name, d.Speciality = ev.Profile.Name, ev.Profile.Speciality
	case doctor.ScheduleSet:
		// Milliseconds: what every store keeps of an instant.
		d.Schedules = append(d.Schedules, ScheduleVersion{From: recordedAt.UTC().Truncate(time.Millisecond), Position: pos, Schedule: ev.Schedule})
	case doctor.TimeOffAdded:
		d.TimeOff = append(d.TimeOff, Interval{From: ev.From.UTC(), To: ev.To.UTC()})
	default:
		return false
	}
	d.Position = pos
	return true
}
