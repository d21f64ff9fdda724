package doctor

import (
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Stored event type names. They never change; a breaking change of shape
// gets a new version (".v2") and an upcaster from the old one.
const (
	TypeDoctorRegistered        = "doctor.DoctorRegistered.v1"
	TypeProfileUpdated          = "doctor.ProfileUpdated.v1"
	TypeScheduleSet             = "doctor.ScheduleSet.v1"
	TypeTimeOffAdded            = "doctor.TimeOffAdded.v1"
	TypeSlotReserved            = "doctor.SlotReserved.v1"
	TypeAppointmentConfirmed    = "doctor.AppointmentConfirmed.v1"
	TypeHoldExpired             = "doctor.HoldExpired.v1"
	TypeAppointmentCancelled    = "doctor.AppointmentCancelled.v1"
	TypeAppointmentRescheduled  = "doctor.AppointmentRescheduled.v1"
	TypeAppointmentCompleted    = "doctor.AppointmentCompleted.v1"
	TypeAppointmentMarkedNoShow = "doctor.AppointmentMarkedNoShow.v1"
	TypePaymentOrderCreated     = "doctor.PaymentOrderCreated.v1"
	TypePaymentCaptured         = "doctor.PaymentCaptured.v1"
	TypePaymentFailed           = "doctor.PaymentFailed.v1"
	TypeRefundIssued            = "doctor.RefundIssued.v1"
	TypePaymentOrderRequested   = "doctor.PaymentOrderRequested.v1"
	TypeRefundProcessed         = "doctor.RefundProcessed.v1"
	TypeRefundFailed            = "doctor.RefundFailed.v1"
)

// Events lists the registrations of every doctor event type.
func Events() []domain.Registration {
	return []domain.Registration{
		domain.Type[DoctorRegistered](),
		domain.Type[ProfileUpdated](),
		domain.Type[ScheduleSet](),
		domain.Type[TimeOffAdded](),
		domain.Type[SlotReserved](),
		domain.Type[AppointmentConfirmed](),
		domain.Type[HoldExpired](),
		domain.Type[AppointmentCancelled](),
		domain.Type[AppointmentRescheduled](),
		domain.Type[AppointmentCompleted](),
		domain.Type[AppointmentMarkedNoShow](),
		domain.Type[PaymentOrderCreated](),
		domain.Type[PaymentCaptured](),
		domain.Type[PaymentFailed](),
		domain.Type[RefundIssued](),
		domain.Type[PaymentOrderRequested](),
		domain.Type[RefundProcessed](),
		domain.Type[RefundFailed](),
		domain.Type[AvailabilityLocked](),
		domain.Type[AvailabilityUnlocked](),
	}
}

// DoctorRegistered: an admin onboarded a doctor.
type DoctorRegistered struct {
	DoctorID     string    `json:"doctorId"`
	Profile      Profile   `json:"profile"`
	RegisteredAt time.Time `json:"registeredAt"`
}

// ProfileUpdated carries the whole profile after the change.
type ProfileUpdated struct {
	DoctorID string  `json:"doctorId"`
	Profile  Profile `json:"profile"`
}

// ScheduleSet replaces the booking rules. Existing bookings stay.
type ScheduleSet struct {
	DoctorID string   `json:"doctorId"`
	Schedule Schedule `json:"schedule"`
}

// TimeOffAdded blocks [From, To) for new bookings.
type TimeOffAdded struct {
	DoctorID  string    `json:"doctorId"`
	TimeOffID string    `json:"timeOffId"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Reason    string    `json:"reason"`
}

// SlotReserved: a patient took a slot. Status is held (awaiting a required
// payment until HoldExpiresAt) or confirmed.
type SlotReserved struct {
	DoctorID      string        `json:"doctorId"`
	AppointmentID string        `json:"appointmentId"`
	PatientID     string        `json:"patientId"`
	PatientName   string        `json:"patientName"`
	Start         time.Time     `json:"start"`
	End           time.Time     `json:"end"`
	Status        Status        `json:"status"`
	Fees          int64         `json:"fees"`
	Currency      string        `json:"currency"`
	PaymentStatus PaymentStatus `json:"paymentStatus"`
	HoldExpiresAt *time.Time    `json:"holdExpiresAt,omitempty"`
	ReservedAt    time.Time     `json:"reservedAt"`
}

// AppointmentConfirmed: a held appointment was paid.
type AppointmentConfirmed struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	PaymentID     string    `json:"paymentId"`
	ConfirmedAt   time.Time `json:"confirmedAt"`
}

// HoldExpired: a held appointment was not paid in time; its slot is free.
type HoldExpired struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	ExpiredAt     time.Time `json:"expiredAt"`
}

// AppointmentCancelled frees the slot at once. RefundDue is set when a
// captured payment has to be given back, RefundAmount of it (events
// recorded before refund amounts were kept have 0: the whole payment).
type AppointmentCancelled struct {
	DoctorID      string `json:"doctorId"`
	AppointmentID string `json:"appointmentId"`
	// PatientID is whose appointment it was (absent before erasure
	// existed): the reason is sealed with that patient's key.
	PatientID    string      `json:"patientId,omitempty"`
	Start        time.Time   `json:"start"`
	End          time.Time   `json:"end"`
	Reason       string      `json:"reason"`
	CancelledBy  domain.Role `json:"cancelledBy"`
	RefundDue    bool        `json:"refundDue"`
	RefundAmount int64       `json:"refundAmount,omitempty"`
	CancelledAt  time.Time   `json:"cancelledAt"`
}

// AppointmentRescheduled moves a live appointment to a new slot in one fact:
// the old slot is free only because the new one is taken.
type AppointmentRescheduled struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	PreviousStart time.Time `json:"previousStart"`
	PreviousEnd   time.Time `json:"previousEnd"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	RescheduledAt time.Time `json:"rescheduledAt"`
}

// AppointmentCompleted: the doctor saw the patient.
type AppointmentCompleted struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	CompletedAt   time.Time `json:"completedAt"`
}

// AppointmentMarkedNoShow: the patient did not come.
type AppointmentMarkedNoShow struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	MarkedAt      time.Time `json:"markedAt"`
}

// PaymentOrderCreated: a payment order (Razorpay) exists for the appointment.
type PaymentOrderCreated struct {
	DoctorID      string `json:"doctorId"`
	AppointmentID string `json:"appointmentId"`
	OrderID       string `json:"orderId"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
}

// PaymentCaptured: money arrived. RefundDue is set when it arrived for an
// appointment that can no longer use it (expired, cancelled, already paid).
type PaymentCaptured struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	PaymentID     string    `json:"paymentId"`
	OrderID       string    `json:"orderId"`
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency"`
	RefundDue     bool      `json:"refundDue"`
	CapturedAt    time.Time `json:"capturedAt"`
}

// PaymentFailed: a payment attempt failed; the hold stays until it expires.
type PaymentFailed struct {
	DoctorID      string `json:"doctorId"`
	AppointmentID string `json:"appointmentId"`
	OrderID       string `json:"orderId"`
	PaymentID     string `json:"paymentId"`
	Reason        string `json:"reason"`
}

// RefundIssued: the provider accepted a refund of a captured payment; it
// is pending until RefundProcessed (or RefundFailed).
type RefundIssued struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	PaymentID     string    `json:"paymentId"`
	RefundID      string    `json:"refundId"`
	Amount        int64     `json:"amount"`
	IssuedAt      time.Time `json:"issuedAt"`
}

// PaymentOrderRequested claims the creation of an appointment's payment
// order: the one caller whose claim is appended creates the order at the
// provider, so that concurrent requests (also from other processes) make
// one order. A claim older than the order lease may be taken over.
type PaymentOrderRequested struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	RequestedAt   time.Time `json:"requestedAt"`
}

// RefundProcessed: the provider paid a refund back.
type RefundProcessed struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	PaymentID     string    `json:"paymentId"`
	RefundID      string    `json:"refundId"`
	Amount        int64     `json:"amount"`
	ProcessedAt   time.Time `json:"processedAt"`
}

// RefundFailed: the provider could not pay a refund back; it is to be
// issued again.
type RefundFailed struct {
	DoctorID      string    `json:"doctorId"`
	AppointmentID string    `json:"appointmentId"`
	PaymentID     string    `json:"paymentId"`
	RefundID      string    `json:"refundId"`
	Amount        int64     `json:"amount"`
	Reason        string    `json:"reason"`
	FailedAt      time.Time `json:"failedAt"`
}

func (DoctorRegistered) EventType() string        { return TypeDoctorRegistered }
func (ProfileUpdated) EventType() string          { return TypeProfileUpdated }
func (ScheduleSet) EventType() string             { return TypeScheduleSet }
func (TimeOffAdded) EventType() string            { return TypeTimeOffAdded }
func (SlotReserved) EventType() string            { return TypeSlotReserved }
func (AppointmentConfirmed) EventType() string    { return TypeAppointmentConfirmed }
func (HoldExpired) EventType() string             { return TypeHoldExpired }
func (AppointmentCancelled) EventType() string    { return TypeAppointmentCancelled }
func (AppointmentRescheduled) EventType() string  { return TypeAppointmentRescheduled }
func (AppointmentCompleted) EventType() string    { return TypeAppointmentCompleted }
func (AppointmentMarkedNoShow) EventType() string { return TypeAppointmentMarkedNoShow }
func (PaymentOrderCreated) EventType() string     { return TypePaymentOrderCreated }
func (PaymentCaptured) EventType() string         { return TypePaymentCaptured }
func (PaymentFailed) EventType() string           { return TypePaymentFailed }
func (RefundIssued) EventType() string            { return TypeRefundIssued }
func (PaymentOrderRequested) EventType() string   { return TypePaymentOrderRequested }
func (RefundProcessed) EventType() string         { return TypeRefundProcessed }
func (RefundFailed) EventType() string            { return TypeRefundFailed }

// AppointmentEvent is implemented by every event about one appointment.
type AppointmentEvent interface {
	domain.Event
	AppointmentRef() string
}

func (e SlotReserved) AppointmentRef() string            { return e.AppointmentID }
func (e AppointmentConfirmed) AppointmentRef() string    { return e.AppointmentID }
func (e HoldExpired) AppointmentRef() string             { return e.AppointmentID }
func (e AppointmentCancelled) AppointmentRef() string    { return e.AppointmentID }
func (e AppointmentRescheduled) AppointmentRef() string  { return e.AppointmentID }
func (e AppointmentCompleted) AppointmentRef() string    { return e.AppointmentID }
func (e AppointmentMarkedNoShow) AppointmentRef() string { return e.AppointmentID }
func (e PaymentOrderCreated) AppointmentRef() string     { return e.AppointmentID }
func (e PaymentCaptured) AppointmentRef() string         { return e.AppointmentID }
func (e PaymentFailed) AppointmentRef() string           { return e.AppointmentID }
func (e RefundIssued) AppointmentRef() string            { return e.AppointmentID }
func (e PaymentOrderRequested) AppointmentRef() string   { return e.AppointmentID }
func (e RefundProcessed) AppointmentRef() string         { return e.AppointmentID }
func (e RefundFailed) AppointmentRef() string            { return e.AppointmentID }

// DoctorEvent is implemented by every event of a doctor stream.
type DoctorEvent interface {
	domain.Event
	DoctorRef() string
}

func (e DoctorRegistered) DoctorRef() string        { return e.DoctorID }
func (e ProfileUpdated) DoctorRef() string          { return e.DoctorID }
func (e ScheduleSet) DoctorRef() string             { return e.DoctorID }
func (e TimeOffAdded) DoctorRef() string            { return e.DoctorID }
func (e SlotReserved) DoctorRef() string            { return e.DoctorID }
func (e AppointmentConfirmed) DoctorRef() string    { return e.DoctorID }
func (e HoldExpired) DoctorRef() string             { return e.DoctorID }
func (e AppointmentCancelled) DoctorRef() string    { return e.DoctorID }
func (e AppointmentRescheduled) DoctorRef() string  { return e.DoctorID }
func (e AppointmentCompleted) DoctorRef() string    { return e.DoctorID }
func (e AppointmentMarkedNoShow) DoctorRef() string { return e.DoctorID }
func (e PaymentOrderCreated) DoctorRef() string     { return e.DoctorID }
func (e PaymentCaptured) DoctorRef() string         { return e.DoctorID }
func (e PaymentFailed) DoctorRef() string           { return e.DoctorID }
func (e RefundIssued) DoctorRef() string            { return e.DoctorID }
func (e PaymentOrderRequested) DoctorRef() string   { return e.DoctorID }
func (e RefundProcessed) DoctorRef() string         { return e.DoctorID }
func (e RefundFailed) DoctorRef() string            { return e.DoctorID }

// PersonalData implements domain.Personal: the patient's name.
func (e *SlotReserved) PersonalData() (string, []*string) {
	return e.PatientID, []*string{&e.PatientName}
}

// PersonalData implements domain.Personal: the reason, free text about
// the patient's appointment (events without a patient id carry none).
func (e *AppointmentCancelled) PersonalData() (string, []*string) {
	if e.PatientID == "" {
		return "", nil
	}
	return e.PatientID, []*string{&e.Reason}
}
