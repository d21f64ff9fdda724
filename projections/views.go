// Package projections builds the read side: projectors consume the event
// store's global log (through Watermill), at least once, and keep read
// models that answer one question each. Every read-model entry remembers
// the position it applied, so replaying events is a no-op; each projection
// keeps its checkpoint with its data. Read models are disposable: they can
// be rebuilt from the log at any time, into a shadow copy that is swapped in
// when caught up.
package projections

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// ErrNotFound: no such entry in the read model.
var ErrNotFound = domain.NewError(domain.ErrNotFound, "not_found", "not found")

// ErrNotCaughtUp: a read asked for a position the read model has not
// reached within the wait.
var ErrNotCaughtUp = domain.NewError(domain.ErrUnavailable, "not_caught_up", "the read model has not caught up with the requested position yet")

// ErrInvalidCursor: a pagination cursor that this service did not issue.
var ErrInvalidCursor = domain.NewError(domain.ErrInvalid, "invalid_cursor", "invalid cursor")

// Doctor is a doctor as the directory shows it.
type Doctor struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Speciality      string `json:"speciality"`
	Degree          string `json:"degree"`
	ExperienceYears int    `json:"experienceYears"`
	About           string `json:"about"`
	Fees            int64  `json:"fees"`
	Currency        string `json:"currency"`
	Address         string `json:"address"`
	Available       bool   `json:"available"`
	ImageURL        string `json:"imageUrl"`
	Timezone        string `json:"timezone"`
	// Position of the last event applied to this entry.
	Position uint64 `json:"-"`
}

// DoctorFilter selects doctors; empty fields match all.
type DoctorFilter struct {
	Speciality string // exact, case-insensitive
	Query      string // substring of name, speciality or degree, case-insensitive
	Available  *bool
}

// Speciality counts the doctors of a speciality.
type Speciality struct {
	Name    string `json:"name"`
	Doctors int    `json:"doctors"`
}

// Payment of an appointment, as the domain's doctor.Payment: API.md names
// all five fields of the appointment's payment object, so none is omitted
// (an id not known yet is "", an amount 0). Amount is the current order's
// amount until a payment is captured, then the amount paid; RefundedAmount
// sums the processed refunds of that payment.
type Payment struct {
	Status         string `json:"status"`
	OrderID        string `json:"orderId"`
	PaymentID      string `json:"paymentId"`
	Amount         int64  `json:"amount"`
	RefundedAmount int64  `json:"refundedAmount"`
}

// Appointment is an appointment as readers see it.
//
// Timezone is the doctor's IANA zone, so that a client can show Start and
// End (UTC instants) as the doctor's local times. Like DoctorName it is the
// doctor's current one, joined at read time, not the zone at booking: API.md
// calls it "the doctor's" zone, the doctor's slots and calendar dates are in
// the current zone, and an appointment takes place where the doctor now
// practises. It is "" only for a doctor who never had a schedule.
//
// Fees are integer minor units of Currency (paise for INR: 50000 is
// INR 500.00), fixed at booking.
//
// HoldExpiresAt is set while the appointment is held (its slot is free
// again from that instant on, even before HoldExpired is recorded) and nil
// in every other status. It is shared by the copies of a view: do not
// modify what it points to.
type Appointment struct {
	ID            string     `json:"id"`
	DoctorID      string     `json:"doctorId"`
	DoctorName    string     `json:"doctorName"`
	PatientID     string     `json:"patientId"`
	PatientName   string     `json:"patientName"`
	Start         time.Time  `json:"start"`
	End           time.Time  `json:"end"`
	Timezone      string     `json:"timezone"`
	Status        string     `json:"status"`
	Fees          int64      `json:"fees"`
	Currency      string     `json:"currency"`
	Payment       Payment    `json:"payment"`
	HoldExpiresAt *time.Time `json:"holdExpiresAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	CancelReason  string     `json:"cancelReason"`
	Position      uint64     `json:"-"`
}

// AppointmentQuery selects appointments, newest booking first. PatientID
// and DoctorID restrict to one patient or doctor (set by the API from the
// caller, never from the request for patients and doctors).
type AppointmentQuery struct {
	PatientID string
	DoctorID  string
	Status    string
	From, To  time.Time // on Start; zero means open
	Limit     int       // 1..200
	Cursor    string
}

// AppointmentPage is one page of appointments.
type AppointmentPage struct {
	Appointments []Appointment `json:"appointments"`
	NextCursor   string        `json:"nextCursor,omitempty"`
}

// DaySlots are the free slots of one date in the doctor's zone.
type DaySlots struct {
	Date  string        `json:"date"`
	Slots []doctor.Slot `json:"slots"`
}

// FreeSlots answers GET /doctors/{id}/slots.
type FreeSlots struct {
	DoctorID string     `json:"doctorId"`
	Timezone string     `json:"timezone"`
	Days     []DaySlots `json:"days"`
}

// DoctorDashboard is a doctor's own overview.
type DoctorDashboard struct {
	Earnings     int64         `json:"earnings"` // fees of completed or paid (not refunded) appointments, minor units
	Currency     string        `json:"currency"`
	Appointments int           `json:"appointments"`
	Patients     int           `json:"patients"`
	Latest       []Appointment `json:"latest"`
}

// AdminDashboard is the clinic-wide overview.
type AdminDashboard struct {
	Doctors      int           `json:"doctors"`
	Patients     int           `json:"patients"`
	Appointments int           `json:"appointments"`
	Latest       []Appointment `json:"latest"`
}

// Directory answers questions about doctors.
type Directory interface {
	Doctors(ctx context.Context, f DoctorFilter) ([]Doctor, error)
	Doctor(ctx context.Context, id string) (Doctor, error)
	Specialities(ctx context.Context) ([]Speciality, error)
}

// Slots answers which slots are free.
type Slots interface {
	// FreeSlots lists the bookable slots of days dates from from, as seen at
	// now (past, too-soon and beyond-window slots are left out).
	FreeSlots(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (FreeSlots, error)
}

// SlotsJSON is an optional fast path of Slots for the hottest read: the
// answer already in its JSON form (FreeSlots.AppendJSON).
type SlotsJSON interface {
	FreeSlotsJSON(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) ([]byte, error)
}

// SlotsAnswer is a free-slots answer in its JSON form (FreeSlotsJSON) with
// the span of instants around the now it was asked at over which the
// doctor's holds stand as they did then. A held slot is free from its
// hold's expiry on, with no event to say so: as far as holds go, the
// answer holds again only at instants in [HoldsFrom, HoldsUntil).
// HoldsFrom is the latest hold expiry at or before now, HoldsUntil the
// earliest one after it; either is zero when there is none.
type SlotsAnswer struct {
	JSON       []byte
	HoldsFrom  time.Time
	HoldsUntil time.Time
}

// Covers reports whether t lies in [HoldsFrom, HoldsUntil).
func (a SlotsAnswer) Covers(t time.Time) bool {
	return (a.HoldsFrom.IsZero() || !t.Before(a.HoldsFrom)) && (a.HoldsUntil.IsZero() || t.Before(a.HoldsUntil))
}

// SlotsAnswers is what a cache in front of the free slots reads: the JSON
// answer with how long its holds stand (see SlotsAnswer).
type SlotsAnswers interface {
	FreeSlotsAnswer(ctx context.Context, doctorID string, from doctor.Date, days int, now time.Time) (SlotsAnswer, error)
}

// HoldWindow is the span [from, until) around now in which none of d's
// holds runs out (see SlotsAnswer); a zero end is unbounded.
func HoldWindow(d *doctor.Doctor, now time.Time) (from, until time.Time) {
	for _, a := range d.LiveAppointments() {
		if a.Status != doctor.StatusHeld || a.HoldExpiresAt.IsZero() {
			continue
		}
		switch e := a.HoldExpiresAt; {
		case !now.Before(e):
			if e.After(from) {
				from = e
			}
		case until.IsZero() || e.Before(until):
			until = e
		}
	}
	return from, until
}

// Appointments answers questions about appointments.
type Appointments interface {
	Appointment(ctx context.Context, id string) (Appointment, error)
	Appointments(ctx context.Context, q AppointmentQuery) (AppointmentPage, error)
}

// PaymentQuery selects payments for GET /admin/payments, newest change first.
type PaymentQuery struct {
	Status string // "" = all; else one of pending, paid, refund_pending, refunded, failed
	Limit  int    // 1..200 (default 50)
	Cursor string
}

// PaymentRow is the payment of one appointment that takes an online
// payment (every appointment whose payment status is not not_required).
// UpdatedAt is when the last payment event of the appointment was
// recorded (its reservation's, before any).
type PaymentRow struct {
	AppointmentID  string    `json:"appointmentId"`
	DoctorID       string    `json:"doctorId"`
	OrderID        string    `json:"orderId"`
	PaymentID      string    `json:"paymentId"`
	Status         string    `json:"status"`
	Amount         int64     `json:"amount"`
	RefundedAmount int64     `json:"refundedAmount"`
	Currency       string    `json:"currency"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// PaymentPage is one page of payments.
type PaymentPage struct {
	Payments   []PaymentRow `json:"payments"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// Payments answers the admin's payments list.
type Payments interface {
	Payments(ctx context.Context, q PaymentQuery) (PaymentPage, error)
}

// Dashboards answers the dashboards.
type Dashboards interface {
	DoctorDashboard(ctx context.Context, doctorID string) (DoctorDashboard, error)
	AdminDashboard(ctx context.Context) (AdminDashboard, error)
}

// Event is a decoded stored event as projections receive it.
type Event struct {
	ID         uuid.UUID // the stored event's id
	Position   uint64
	StreamID   string
	Revision   uint64
	Type       string
	Data       domain.Event
	Metadata   domain.Metadata
	RecordedAt time.Time
	// reg decoded the event (nil for an event made by hand); it opens the
	// personal fields (see Open).
	reg *domain.Registry
}

// Open opens the event's personal fields (names, free text), which Decode
// leaves sealed: a read model that keeps or shows them calls it first, so
// that the others never depend on the personal-data keys. A key store out
// of reach is an error to retry (domain.ErrUnavailable); an erased person's
// fields read "[erased]".
func (e *Event) Open() error {
	if e.reg == nil {
		return nil
	}
	d, err := e.reg.Open(e.Data)
	if err != nil {
		return err
	}
	e.Data = d
	return nil
}

// Projection is one read model's write side.
type Projection interface {
	// Name is permanent: it names the checkpoint and the consumer group.
	Name() string
	// Apply applies an event; events at or below the checkpoint are no-ops.
	Apply(ctx context.Context, e Event) error
	// Checkpoint is the position of the last applied event.
	Checkpoint(ctx context.Context) (uint64, error)
}

// BatchProjection is a Projection that can apply several events at once
// (a read model behind a network round trip: one write per document and
// collection instead of one per event). ApplyBatch has the effect of Apply
// called on each event in order, including the idempotency (events at or
// below the checkpoint, or already applied to a document, are no-ops), and
// moves the checkpoint to the last event once everything is written; if it
// fails, any part of the batch may have been applied and applying it again
// is safe. The Runner gives a BatchProjection the events the log already
// has beyond the one it was sent (see Runner), and a rebuild replays into
// it a page at a time.
type BatchProjection interface {
	Projection
	ApplyBatch(ctx context.Context, events []Event) error
}

// MaxSlotDays bounds the days of one free-slots request of the API.
const MaxSlotDays = 31

// MaxPageSize bounds AppointmentQuery.Limit.
const MaxPageSize = 200

// pageLimit defaults a page size of 0 to 50 and checks it is within
// 1..MaxPageSize.
func pageLimit(limit *int) error {
	if *limit == 0 {
		*limit = 50
	}
	if *limit < 1 || *limit > MaxPageSize {
		return domain.Invalid("limit must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// Validate normalises and checks a query.
func (q *AppointmentQuery) Validate() error {
	if err := pageLimit(&q.Limit); err != nil {
		return err
	}
	switch doctor.Status(q.Status) {
	case "", doctor.StatusHeld, doctor.StatusConfirmed, doctor.StatusCancelled, doctor.StatusExpired, doctor.StatusCompleted, doctor.StatusNoShow:
	default:
		return domain.Invalid("status must be one of held, confirmed, cancelled, expired, completed, no_show")
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return domain.Invalid("to must not be before from")
	}
	return nil
}

// Validate normalises and checks a payments query. not_required is not a
// status the list can show, so it is refused like any unknown one.
func (q *PaymentQuery) Validate() error {
	if err := pageLimit(&q.Limit); err != nil {
		return err
	}
	switch doctor.PaymentStatus(q.Status) {
	case "", doctor.PaymentPending, doctor.PaymentPaid, doctor.PaymentRefundPending, doctor.PaymentRefunded, doctor.PaymentFailedState:
	default:
		return domain.Invalid("status must be one of pending, paid, refund_pending, refunded, failed")
	}
	return nil
}

// Row is the record's row in the payments list.
func (r *AppointmentRecord) Row() PaymentRow {
	return PaymentRow{
		AppointmentID: r.ID, DoctorID: r.DoctorID, OrderID: r.Payment.OrderID, PaymentID: r.Payment.PaymentID,
		Status: r.Payment.Status, Amount: r.Payment.Amount, RefundedAmount: r.Payment.RefundedAmount,
		Currency: r.Currency, UpdatedAt: r.PaymentAt,
	}
}

// Listed reports whether the record has a row in the payments list, and
// one that q (validated) selects.
func (r *AppointmentRecord) Listed(q PaymentQuery) bool {
	s := r.Payment.Status
	return s != string(doctor.PaymentNotRequired) && (q.Status == "" || s == q.Status)
}

// IsNotFound reports whether err is a read-model miss.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
