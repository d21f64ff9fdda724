// Package doctor is the doctor-schedule aggregate (stream "doctor-{id}"): the
// profile, the booking rules, time off and every appointment of one doctor.
// All bookings of a doctor are decided here against one stream revision,
// which is what makes double-booking impossible.
package doctor

import (
	"slices"
	"strings"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Category is the stream category of doctors.
const Category = "doctor"

// StreamID is the stream of doctor id.
func StreamID(id string) string { return Category + "-" + id }

// Status of an appointment.
type Status string

const (
	StatusHeld      Status = "held"
	StatusConfirmed Status = "confirmed"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
	StatusCompleted Status = "completed"
	StatusNoShow    Status = "no_show"
)

// Live reports whether the appointment occupies its slot.
func (s Status) Live() bool { return s == StatusHeld || s == StatusConfirmed }

// PaymentStatus of an appointment.
type PaymentStatus string

const (
	PaymentNotRequired   PaymentStatus = "not_required"
	PaymentPending       PaymentStatus = "pending"
	PaymentPaid          PaymentStatus = "paid"
	PaymentRefundPending PaymentStatus = "refund_pending"
	PaymentRefunded      PaymentStatus = "refunded"
	PaymentFailedState   PaymentStatus = "failed"
)

// Payment is the payment state of an appointment: its current order, the
// payment that paid it, the amount paid (or, before that, the amount of the
// order) and how much of it was paid back.
type Payment struct {
	Status         PaymentStatus `json:"status"`
	OrderID        string        `json:"orderId,omitempty"`
	PaymentID      string        `json:"paymentId,omitempty"`
	Amount         int64         `json:"amount,omitempty"`
	RefundedAmount int64         `json:"refundedAmount,omitempty"`
}

// Appointment is one booking as the aggregate knows it.
type Appointment struct {
	ID            string
	DoctorID      string
	PatientID     string
	PatientName   string
	Start, End    time.Time
	Status        Status
	Fees          int64
	Currency      string
	Payment       Payment
	HoldExpiresAt time.Time // zero unless held
	CreatedAt     time.Time
	CancelReason  string

	// OrderRequestedAt is when the current claim on creating a payment
	// order was recorded (zero when none is open).
	OrderRequestedAt time.Time

	captured map[string]int64   // payment id -> amount
	refunded map[string]int64   // payment id -> amount of its refunds not failed
	refunds  map[string]*refund // refund id -> refund
	orders   []Order
}

// TimeOff is a blocked range [From, To).
type TimeOff struct {
	ID     string    `json:"id"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
}

// Doctor is the aggregate. The zero value is a doctor not yet registered.
// It changes only through apply; behaviour methods check invariants, then
// record (apply and remember) events, which Changes returns.
type Doctor struct {
	id         string
	registered bool
	profile    Profile
	// availabilityLocked: an admin made the doctor unavailable.
	availabilityLocked bool
	grid               *Grid
	timeOff            []TimeOff
	appointments       map[string]*Appointment
	orders             map[string]string // payment order id -> appointment id
	live               liveIndex         // live appointments by start; never overlapping
	held               int               // live appointments on hold
	strs               domain.Strings    // see share
	changes            []domain.Event
	seal               Sealer // nil: personal fields recorded as given
}

// Sealer seals a personal field about subject for storage (see
// domain.Personal). A doctor given one seals the patient's name and the
// cancel reasons as it records them, so that its state (and any snapshot
// of it) never holds them in the clear.
type Sealer func(subject, plaintext string) (string, error)

// SealWith makes the doctor seal personal fields with s as it records them.
func (d *Doctor) SealWith(s Sealer) { d.seal = s }

// sealed is v sealed for subject (v itself without a sealer, or empty).
func (d *Doctor) sealed(subject, v string) (string, error) {
	if d.seal == nil || v == "" {
		return v, nil
	}
	return d.seal(subject, v)
}

type interval struct {
	start, end int64 // unix nanos
	id         string
}

// New returns an empty aggregate for doctor id, ready to be folded.
func New(id string) *Doctor {
	return &Doctor{id: id, appointments: map[string]*Appointment{}, orders: map[string]string{}}
}

// ID is the doctor's id.
func (d *Doctor) ID() string { return d.id }

// Registered reports whether the doctor exists.
func (d *Doctor) Registered() bool { return d.registered }

// Profile is the current profile.
func (d *Doctor) Profile() Profile { return d.profile }

// Grid is the compiled schedule, or nil before one is set.
func (d *Doctor) Grid() *Grid { return d.grid }

// TimeOffs lists the time-off ranges.
func (d *Doctor) TimeOffs() []TimeOff { return slices.Clone(d.timeOff) }

// Appointment returns a copy of one appointment.
func (d *Doctor) Appointment(id string) (Appointment, bool) {
	a, ok := d.appointments[id]
	if !ok {
		return Appointment{}, false
	}
	return a.copy(), true
}

// LiveAppointments lists the appointments that occupy a slot, by start.
func (d *Doctor) LiveAppointments() []Appointment {
	out := make([]Appointment, 0, d.live.Len())
	d.live.all(func(iv interval) bool {
		out = append(out, d.appointments[iv.id].copy())
		return true
	})
	return out
}

// AppointmentCount is the number of appointments ever made.
func (d *Doctor) AppointmentCount() int { return len(d.appointments) }

func (a *Appointment) copy() Appointment {
	c := *a
	c.captured, c.refunded, c.refunds, c.orders = nil, nil, nil, nil
	return c
}

// Changes are the events recorded since the last ClearChanges.
func (d *Doctor) Changes() []domain.Event { return d.changes }

// ClearChanges forgets the recorded events (after they were stored).
func (d *Doctor) ClearChanges() { d.changes = nil }

// Load folds stored events into the aggregate.
func (d *Doctor) Load(events ...domain.Event) {
	for _, e := range events {
		d.apply(e)
	}
}

func (d *Doctor) record(e domain.Event) {
	d.apply(e)
	d.changes = append(d.changes, e)
}

// apply is the only place state changes.
func (d *Doctor) apply(ev domain.Event) {
	switch e := ev.(type) {
	case DoctorRegistered:
		d.registered = true
		d.profile = e.Profile
	case ProfileUpdated:
		d.profile = e.Profile
	case AvailabilityLocked:
		d.availabilityLocked = true
	case AvailabilityUnlocked:
		d.availabilityLocked = false
	case ScheduleSet:
		g, err := e.Schedule.Compile()
		if err == nil { // a stored schedule was valid when decided
			d.grid = g
		}
	case TimeOffAdded:
		d.timeOff = append(d.timeOff, TimeOff{ID: e.TimeOffID, From: e.From, To: e.To, Reason: e.Reason})
	case SlotReserved:
		// The aggregate keeps every appointment for its whole life, so the
		// strings that repeat from one appointment to the next are shared
		// (see share) rather than kept once per appointment as decoded.
		doctorID := e.DoctorID
		if doctorID == d.id {
			doctorID = d.id
		}
		a := &Appointment{
			ID: e.AppointmentID, DoctorID: doctorID, PatientID: d.share(e.PatientID), PatientName: d.share(e.PatientName),
			Start: e.Start, End: e.End, Status: e.Status.canonical(), Fees: e.Fees, Currency: d.share(e.Currency),
			Payment: Payment{Status: e.PaymentStatus.canonical()}, CreatedAt: e.ReservedAt,
		}
		if e.HoldExpiresAt != nil {
			a.HoldExpiresAt = *e.HoldExpiresAt
		}
		d.appointments[a.ID] = a
		d.occupy(a)
	case AppointmentConfirmed:
		if a := d.appointments[e.AppointmentID]; a != nil {
			if a.Status == StatusHeld {
				d.held--
			}
			a.Status = StatusConfirmed
			a.HoldExpiresAt = time.Time{}
		}
	case HoldExpired:
		if a := d.appointments[e.AppointmentID]; a != nil {
			d.release(a)
			a.Status = StatusExpired
		}
	case AppointmentCancelled:
		if a := d.appointments[e.AppointmentID]; a != nil {
			d.release(a)
			a.Status = StatusCancelled
			a.CancelReason = e.Reason
		}
	case AppointmentRescheduled:
		if a := d.appointments[e.AppointmentID]; a != nil {
			d.release(a)
			a.Start, a.End = e.Start, e.End
			d.occupy(a)
		}
	case AppointmentCompleted:
		if a := d.appointments[e.AppointmentID]; a != nil {
			d.release(a)
			a.Status = StatusCompleted
		}
	case AppointmentMarkedNoShow:
		if a := d.appointments[e.AppointmentID]; a != nil {
			d.release(a)
			a.Status = StatusNoShow
		}
	default:
		d.applyPayment(ev)
	}
}

// maxShared bounds the strings one aggregate shares: past it (a doctor
// with that many patients) new ones are kept as they are.
const maxShared = 4096

// share returns s, or an equal string this aggregate already holds (see
// domain.Strings): otherwise each of a doctor's appointments would keep
// its own copy of the patient's id and name and of the currency.
func (d *Doctor) share(s string) string {
	if d.strs.Max == 0 {
		d.strs.Max = maxShared
	}
	return d.strs.Share(s)
}

// canonical returns the constant equal to s, if any, so that an
// appointment does not keep a decoded copy of its status.
func (s Status) canonical() Status {
	for _, c := range [...]Status{StatusHeld, StatusConfirmed, StatusCancelled, StatusExpired, StatusCompleted, StatusNoShow} {
		if s == c {
			return c
		}
	}
	return s
}

func (s PaymentStatus) canonical() PaymentStatus {
	for _, c := range [...]PaymentStatus{PaymentNotRequired, PaymentPending, PaymentPaid, PaymentRefundPending, PaymentRefunded, PaymentFailedState} {
		if s == c {
			return c
		}
	}
	return s
}

// occupy inserts a live appointment into the interval index.
func (d *Doctor) occupy(a *Appointment) {
	if !a.Status.Live() {
		return
	}
	d.live.insert(interval{a.Start.UnixNano(), a.End.UnixNano(), a.ID})
	if a.Status == StatusHeld {
		d.held++
	}
}

// release removes a live appointment from the interval index.
func (d *Doctor) release(a *Appointment) {
	if !a.Status.Live() {
		return
	}
	d.live.remove(interval{a.Start.UnixNano(), a.End.UnixNano(), a.ID})
	if a.Status == StatusHeld {
		d.held--
	}
}

// overlapping returns the ids of live appointments overlapping [start, end),
// other than except, by start.
func (d *Doctor) overlapping(start, end time.Time, except string) []string {
	s, e := start.UnixNano(), end.UnixNano()
	var out []string
	// Live intervals do not overlap each other, so of those starting
	// before s only the last one can reach past s.
	if iv, ok := d.live.lastBefore(s); ok && iv.end > s && iv.id != except {
		out = append(out, iv.id)
	}
	for iv, ok := d.live.ceil(interval{start: s}); ok && iv.start < e; iv, ok = d.live.higher(iv) {
		if iv.id != except {
			out = append(out, iv.id)
		}
	}
	return out
}

// ---- behaviour ----

// Register onboards the doctor.
func (d *Doctor) Register(p Profile, now time.Time) error {
	if d.registered {
		return ErrDoctorExists
	}
	p = p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	d.record(DoctorRegistered{DoctorID: d.id, Profile: p, RegisteredAt: now.UTC()})
	return nil
}

// UpdateProfile replaces the profile (callers merge a patch first). An
// unchanged profile records nothing.
func (d *Doctor) UpdateProfile(p Profile) error {
	if !d.registered {
		return ErrDoctorNotFound
	}
	p = p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	if p == d.profile {
		return nil
	}
	d.record(ProfileUpdated{DoctorID: d.id, Profile: p})
	return nil
}

// SetSchedule replaces the booking rules; existing bookings stay.
func (d *Doctor) SetSchedule(s Schedule) error {
	if !d.registered {
		return ErrDoctorNotFound
	}
	s.Timezone = strings.TrimSpace(s.Timezone)
	s.Weekly = slices.Clone(s.Weekly)
	if _, err := s.Compile(); err != nil {
		return err
	}
	if d.grid != nil && schedulesEqual(d.grid.s, s) {
		return nil
	}
	d.record(ScheduleSet{DoctorID: d.id, Schedule: s})
	return nil
}

func schedulesEqual(a, b Schedule) bool {
	w1, w2 := a.Weekly, b.Weekly
	a.Weekly, b.Weekly = nil, nil
	return a.Timezone == b.Timezone && a.SlotMinutes == b.SlotMinutes && a.BookingWindowDays == b.BookingWindowDays &&
		a.MinNoticeMinutes == b.MinNoticeMinutes && a.PaymentPolicy == b.PaymentPolicy && a.HoldMinutes == b.HoldMinutes &&
		a.RefundCutoffHours == b.RefundCutoffHours &&
		slices.Equal(w1, w2)
}

// MaxTimeOff bounds one time-off range.
const MaxTimeOff = 366 * 24 * time.Hour

// AddTimeOff blocks [from, to). Live bookings inside the range are refused
// with ErrBookingsInRange unless cancelBookings, which cancels them first.
func (d *Doctor) AddTimeOff(id string, from, to time.Time, reason string, cancelBookings bool, by domain.Role, now time.Time) error {
	if !d.registered {
		return ErrDoctorNotFound
	}
	reason = strings.TrimSpace(reason)
	switch {
	case id == "":
		return domain.Detail(ErrInvalidTimeOff, "time off needs an id")
	case !from.Before(to):
		return domain.Detail(ErrInvalidTimeOff, "from must be before to")
	case to.Sub(from) > MaxTimeOff:
		return domain.Detail(ErrInvalidTimeOff, "time off may span at most 366 days")
	case !to.After(now):
		return domain.Detail(ErrInvalidTimeOff, "time off must end in the future")
	case !domain.TextOK(reason, 0, 500):
		return domain.Detail(ErrInvalidTimeOff, "reason must be at most 500 characters of plain text (no control characters)")
	}
	for _, t := range d.timeOff {
		if t.ID == id {
			return domain.Detail(ErrInvalidTimeOff, "time off %s exists", id)
		}
	}
	hit := d.overlapping(from, to, "")
	if len(hit) > 0 && !cancelBookings {
		return domain.Detail(ErrBookingsInRange, "%d booking(s) in that range; set cancelBookings to cancel them", len(hit))
	}
	cancelReason := "doctor time off"
	if reason != "" {
		cancelReason += ": " + reason
	}
	reasons := make([]string, len(hit)) // sealed for each patient before anything is recorded
	for i, aid := range hit {
		var err error
		if reasons[i], err = d.sealed(d.appointments[aid].PatientID, cancelReason); err != nil {
			return err
		}
	}
	for i, aid := range hit {
		d.recordCancel(d.appointments[aid], reasons[i], by, now)
	}
	d.record(TimeOffAdded{DoctorID: d.id, TimeOffID: id, From: from.UTC(), To: to.UTC(), Reason: reason})
	return nil
}

// Reservation asks for a slot.
type Reservation struct {
	AppointmentID string
	PatientID     string
	PatientName   string
	Start         time.Time
}

// Reserve books the slot starting at r.Start, held until paid when the
// doctor requires payment, confirmed otherwise.
func (d *Doctor) Reserve(r Reservation, now time.Time) error {
	if r.AppointmentID == "" || r.PatientID == "" {
		return domain.Detail(ErrInvalidSlot, "an appointment needs an id and a patient")
	}
	if _, dup := d.appointments[r.AppointmentID]; dup {
		return ErrAppointmentExists
	}
	slot, lapsed, err := d.checkSlot(r.Start, now, "")
	if err != nil {
		return err
	}
	name, err := d.sealed(r.PatientID, r.PatientName)
	if err != nil {
		return err
	}
	e := SlotReserved{
		DoctorID: d.id, AppointmentID: r.AppointmentID, PatientID: r.PatientID, PatientName: name,
		Start: slot.Start, End: slot.End, Status: StatusConfirmed,
		Fees: d.profile.Fees, Currency: d.profile.Currency, PaymentStatus: PaymentNotRequired,
		ReservedAt: now.UTC(),
	}
	d.expireLapsed(lapsed, now)
	switch d.grid.s.PaymentPolicy {
	case PaymentOptional:
		e.PaymentStatus = PaymentPending
	case PaymentRequired:
		e.Status, e.PaymentStatus = StatusHeld, PaymentPending
		// Whole seconds, rounded up: what the API shows is the hold.
		until := ceilSecond(now.UTC().Add(time.Duration(d.grid.s.HoldMinutes) * time.Minute))
		e.HoldExpiresAt = &until
	}
	if e.Fees == 0 {
		e.PaymentStatus = PaymentNotRequired
		if e.Status == StatusHeld {
			e.Status, e.HoldExpiresAt = StatusConfirmed, nil
		}
	}
	d.record(e)
	return nil
}

// checkSlot applies every booking invariant to a slot starting at start,
// ignoring appointment except (a reschedule's own slot). A hold whose time
// ran out at now does not keep its slot, even before its HoldExpired is
// recorded: lapsed lists those the slot overlaps, for the caller to expire
// in the same append as the booking that takes their place.
func (d *Doctor) checkSlot(start time.Time, now time.Time, except string) (slot Slot, lapsed []string, err error) {
	switch {
	case !d.registered:
		return Slot{}, nil, ErrDoctorNotFound
	case !d.profile.Available:
		return Slot{}, nil, ErrDoctorUnavailable
	case d.grid == nil:
		return Slot{}, nil, ErrNoSchedule
	case start.IsZero():
		return Slot{}, nil, domain.Detail(ErrInvalidSlot, "start is required")
	case !start.After(now):
		return Slot{}, nil, ErrInThePast
	}
	slot, ok := d.grid.Fit(start)
	if !ok {
		return Slot{}, nil, ErrOutsideSchedule
	}
	if slot.Start.Before(d.grid.EarliestStart(now)) {
		return Slot{}, nil, domain.Detail(ErrInsufficientNotice, "slots must be booked at least %d minutes ahead", d.grid.s.MinNoticeMinutes)
	}
	if d.grid.LastBookableDate(now).Before(d.grid.DateIn(slot.Start)) {
		return Slot{}, nil, domain.Detail(ErrBeyondWindow, "slots can be booked at most %d days ahead", d.grid.s.BookingWindowDays)
	}
	for _, t := range d.timeOff {
		if slot.Start.Before(t.To) && slot.End.After(t.From) {
			return Slot{}, nil, ErrDoctorTimeOff
		}
	}
	for _, id := range d.overlapping(slot.Start, slot.End, except) {
		if a := d.appointments[id]; a.Status != StatusHeld || now.Before(a.HoldExpiresAt) {
			return Slot{}, nil, ErrSlotUnavailable
		}
		lapsed = append(lapsed, id)
	}
	return slot, lapsed, nil
}

// CanReserve says whether the slot starting at start could be booked (or an
// appointment except moved there) at now, and which slot it is, deciding
// nothing: the check a booking's other steps (the patient's ledger) are
// made on before the booking itself.
func (d *Doctor) CanReserve(start, now time.Time, except string) (Slot, error) {
	slot, _, err := d.checkSlot(start, now, except)
	return slot, err
}

// expireLapsed records HoldExpired for holds that ran out (see checkSlot).
func (d *Doctor) expireLapsed(lapsed []string, now time.Time) {
	for _, id := range lapsed {
		a := d.appointments[id]
		d.record(HoldExpired{DoctorID: d.id, AppointmentID: a.ID, Start: a.Start, End: a.End, ExpiredAt: now.UTC()})
	}
}

// FreeSlots lists the slots of date that a patient could book at now.
func (d *Doctor) FreeSlots(date Date, now time.Time) []Slot {
	if !d.registered || !d.profile.Available || d.grid == nil {
		return nil
	}
	var out []Slot
	for _, s := range d.grid.Slots(date) {
		if _, _, err := d.checkSlot(s.Start, now, ""); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// appointmentFor finds an appointment the actor may act on: a patient only
// their own, a doctor only this doctor's; anything else looks not found.
func (d *Doctor) appointmentFor(id string, by domain.Actor) (*Appointment, error) {
	a, ok := d.appointments[id]
	if !ok || !d.mayTouch(a, by) {
		return nil, ErrAppointmentNotFound
	}
	return a, nil
}

func (d *Doctor) mayTouch(a *Appointment, by domain.Actor) bool {
	switch by.Role {
	case domain.RoleAdmin, domain.RoleSystem:
		return true
	case domain.RolePatient:
		return a.PatientID == by.UserID
	case domain.RoleDoctor:
		return d.id == by.UserID
	}
	return false
}

// Reschedule moves a live appointment to the slot starting at start, in one
// event. Patients (their own) and admins may reschedule.
func (d *Doctor) Reschedule(id string, start time.Time, by domain.Actor, now time.Time) error {
	a, err := d.appointmentFor(id, by)
	if err != nil {
		return err
	}
	if by.Role != domain.RolePatient && by.Role != domain.RoleAdmin && by.Role != domain.RoleSystem {
		return domain.Detail(ErrNotAllowed, "only the patient or an admin may reschedule")
	}
	if !a.Status.Live() {
		return domain.Detail(ErrInvalidTransition, "a %s appointment cannot be rescheduled", a.Status)
	}
	if !a.Start.After(now) {
		return ErrAppointmentStarted
	}
	slot, lapsed, err := d.checkSlot(start, now, a.ID)
	if err != nil {
		return err
	}
	if slot.Start.Equal(a.Start) {
		return nil // already there
	}
	d.expireLapsed(lapsed, now)
	d.record(AppointmentRescheduled{
		DoctorID: d.id, AppointmentID: a.ID, PreviousStart: a.Start, PreviousEnd: a.End,
		Start: slot.Start, End: slot.End, RescheduledAt: now.UTC(),
	})
	return nil
}

// Cancel frees a live appointment's slot. Patients may cancel their own
// before it starts; the doctor and admins at any time before it is done.
func (d *Doctor) Cancel(id, reason string, by domain.Actor, now time.Time) error {
	a, err := d.appointmentFor(id, by)
	if err != nil {
		return err
	}
	reason = strings.TrimSpace(reason)
	if !domain.TextOK(reason, 0, 500) {
		return domain.Invalid("reason must be at most 500 characters of plain text (no control characters)")
	}
	if !a.Status.Live() {
		return domain.Detail(ErrInvalidTransition, "a %s appointment cannot be cancelled", a.Status)
	}
	if by.Role == domain.RolePatient && !a.Start.After(now) {
		return ErrAppointmentStarted
	}
	if reason, err = d.sealed(a.PatientID, reason); err != nil {
		return err
	}
	d.recordCancel(a, reason, by.Role, now)
	return nil
}

func (d *Doctor) recordCancel(a *Appointment, reason string, by domain.Role, now time.Time) {
	refund := d.refundOnCancel(a, by, now)
	d.record(AppointmentCancelled{
		DoctorID: d.id, AppointmentID: a.ID, PatientID: a.PatientID, Start: a.Start, End: a.End, Reason: reason,
		CancelledBy: by, RefundDue: refund > 0, RefundAmount: refund, CancelledAt: now.UTC(),
	})
}

// Complete marks a confirmed appointment as attended, once it has started.
func (d *Doctor) Complete(id string, by domain.Actor, now time.Time) error {
	a, err := d.closable(id, by, now)
	if err != nil {
		return err
	}
	d.record(AppointmentCompleted{DoctorID: d.id, AppointmentID: a.ID, CompletedAt: now.UTC()})
	return nil
}

// MarkNoShow marks a confirmed appointment as missed, once it has started.
func (d *Doctor) MarkNoShow(id string, by domain.Actor, now time.Time) error {
	a, err := d.closable(id, by, now)
	if err != nil {
		return err
	}
	d.record(AppointmentMarkedNoShow{DoctorID: d.id, AppointmentID: a.ID, MarkedAt: now.UTC()})
	return nil
}

func (d *Doctor) closable(id string, by domain.Actor, now time.Time) (*Appointment, error) {
	a, err := d.appointmentFor(id, by)
	if err != nil {
		return nil, err
	}
	if by.Role == domain.RolePatient {
		return nil, domain.Detail(ErrNotAllowed, "only the doctor or an admin may close an appointment")
	}
	if a.Status != StatusConfirmed {
		return nil, domain.Detail(ErrInvalidTransition, "a %s appointment cannot be closed", a.Status)
	}
	if now.Before(a.Start) {
		return nil, ErrAppointmentNotStarted
	}
	return a, nil
}

// ExpireHold frees a held slot whose payment did not arrive in time.
func (d *Doctor) ExpireHold(id string, now time.Time) error {
	a, ok := d.appointments[id]
	if !ok {
		return ErrAppointmentNotFound
	}
	if a.Status != StatusHeld {
		return domain.Detail(ErrInvalidTransition, "a %s appointment holds nothing", a.Status)
	}
	if now.Before(a.HoldExpiresAt) {
		return ErrHoldActive
	}
	d.record(HoldExpired{DoctorID: d.id, AppointmentID: a.ID, Start: a.Start, End: a.End, ExpiredAt: now.UTC()})
	return nil
}

// ExpiredHolds lists the held appointments whose hold ran out at now.
func (d *Doctor) ExpiredHolds(now time.Time) []string {
	if d.held == 0 {
		return nil
	}
	var out []string
	d.live.all(func(iv interval) bool {
		a := d.appointments[iv.id]
		if a.Status == StatusHeld && !now.Before(a.HoldExpiresAt) {
			out = append(out, a.ID)
		}
		return true
	})
	return out
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
