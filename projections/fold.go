package projections

import (
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// AppointmentRecord is what a read model keeps of an appointment: the view
// readers get, and what folding the appointment's events needs that
// readers do not see. Its methods are the one statement of the fold for
// every read model; they mirror the aggregate's (domain/doctor, apply and
// applyPayment).
type AppointmentRecord struct {
	Appointment
	// PaymentAt is when the last payment event of the appointment was
	// recorded (the reservation's, before any), PaymentPos its position:
	// the order of the payments query, newest change first.
	PaymentAt  time.Time
	PaymentPos uint64
	// Refunds are the refunds of the current payment, in issue order
	// (refunds of a payment that is due back change nothing readers see).
	Refunds []Refund
}

// Refund is a refund of an appointment's current payment.
type Refund struct {
	ID     string
	Amount int64
	State  RefundState
}

// RefundState is where a refund stands.
type RefundState string

// The states of a refund.
const (
	RefundPending   RefundState = "pending"
	RefundProcessed RefundState = "processed"
	RefundFailed    RefundState = "failed"
)

// NewAppointmentRecord is the record of an appointment reserved by ev, the
// event e carries.
func NewAppointmentRecord(ev doctor.SlotReserved, e Event) AppointmentRecord {
	r := AppointmentRecord{
		Appointment: Appointment{
			ID: ev.AppointmentID, DoctorID: ev.DoctorID, PatientID: ev.PatientID, PatientName: ev.PatientName,
			Start: ev.Start, End: ev.End, Status: string(ev.Status), Fees: ev.Fees, Currency: ev.Currency,
			Payment: Payment{Status: string(ev.PaymentStatus)}, CreatedAt: ev.ReservedAt, Position: e.Position,
		},
		PaymentAt: e.RecordedAt, PaymentPos: e.Position,
	}
	if ev.Status == doctor.StatusHeld && ev.HoldExpiresAt != nil {
		until := *ev.HoldExpiresAt
		r.HoldExpiresAt = &until
	}
	return r
}

// Fold applies e, an event about the appointment after its reservation
// (anything else is ignored), and moves the record's position to e's. The
// caller has checked that e is newer than the record. A payment event
// (order, capture, failure, refund issued, processed or failed) moves
// PaymentAt and PaymentPos whether or not it changes the view's payment;
// a payment order claim (PaymentOrderRequested) is not one.
func (r *AppointmentRecord) Fold(e Event) {
	ev, ok := e.Data.(doctor.AppointmentEvent)
	if !ok {
		return
	}
	if _, ok := ev.(doctor.SlotReserved); ok {
		return
	}
	r.Position = e.Position
	if r.foldPayment(ev) {
		r.PaymentAt, r.PaymentPos = e.RecordedAt, e.Position
		return
	}
	switch ev := ev.(type) {
	case doctor.AppointmentConfirmed:
		r.Status = string(doctor.StatusConfirmed)
	case doctor.HoldExpired:
		r.Status = string(doctor.StatusExpired)
	case doctor.AppointmentCancelled:
		r.Status, r.CancelReason = string(doctor.StatusCancelled), ev.Reason
	case doctor.AppointmentRescheduled:
		r.Start, r.End = ev.Start, ev.End
	case doctor.AppointmentCompleted:
		r.Status = string(doctor.StatusCompleted)
	case doctor.AppointmentMarkedNoShow:
		r.Status = string(doctor.StatusNoShow)
	}
	if r.Status != string(doctor.StatusHeld) {
		r.HoldExpiresAt = nil
	}
}

// foldPayment applies a payment event and reports whether ev was one. The
// appointment's payment is the first one captured: a later capture (money
// due back) and its refunds leave the view as it is.
func (r *AppointmentRecord) foldPayment(ev doctor.AppointmentEvent) bool {
	p := &r.Payment
	switch ev := ev.(type) {
	case doctor.PaymentOrderCreated:
		if p.PaymentID == "" {
			p.OrderID, p.Amount = ev.OrderID, ev.Amount
		}
	case doctor.PaymentCaptured:
		if p.PaymentID == "" {
			*p = Payment{Status: string(doctor.PaymentPaid), OrderID: ev.OrderID, PaymentID: ev.PaymentID, Amount: ev.Amount}
		}
	case doctor.PaymentFailed:
		if p.Status == string(doctor.PaymentPending) {
			p.Status = string(doctor.PaymentFailedState)
		}
	case doctor.RefundIssued:
		if ev.PaymentID == p.PaymentID {
			f := Refund{ID: ev.RefundID, Amount: ev.Amount, State: RefundPending}
			if old := r.refund(ev.RefundID); old != nil {
				*old = f
			} else {
				r.Refunds = append(r.Refunds, f)
			}
			p.Status = string(doctor.PaymentRefundPending)
		}
	case doctor.RefundProcessed:
		if f := r.refund(ev.RefundID); f != nil && ev.PaymentID == p.PaymentID {
			f.State = RefundProcessed
			p.RefundedAmount += f.Amount
			if !r.refundsPending() {
				p.Status = string(doctor.PaymentRefunded)
			}
		}
	case doctor.RefundFailed:
		if f := r.refund(ev.RefundID); f != nil && f.State == RefundPending {
			f.State = RefundFailed // the worker issues it again; the status stays refund_pending
		}
	default:
		return false
	}
	return true
}

// refund finds a refund of the current payment by id.
func (r *AppointmentRecord) refund(id string) *Refund {
	for i := range r.Refunds {
		if r.Refunds[i].ID == id {
			return &r.Refunds[i]
		}
	}
	return nil
}

func (r *AppointmentRecord) refundsPending() bool {
	for _, f := range r.Refunds {
		if f.State == RefundPending {
			return true
		}
	}
	return false
}
