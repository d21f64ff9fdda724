package doctor

import (
	"time"

	"github.com/prescripto/prescripto/domain"
)

// A read model that asks an aggregate only which slots are free (the
// free-slots projection) need not keep every appointment the doctor ever
// had: an appointment that no longer occupies its slot never does again
// (no command revives one that was cancelled, expired, completed or marked
// a no-show), and a confirmed one that has ended can only be closed or
// cancelled, which frees nothing a patient could still book. Forget and
// ForgetEnded drop those, so that such a model grows with the doctor's
// future calendar instead of the doctor's history. An aggregate that forgot
// anything answers FreeSlots, LiveAppointments' holds and the hold window
// exactly as before for every now at or after the ForgetEnded instant, and
// ignores later events about what it forgot; it must not decide commands.

// Forget drops appointment id if it no longer occupies its slot, with its
// payment orders, and reports whether it did.
func (d *Doctor) Forget(id string) bool {
	a := d.appointments[id]
	if a == nil || a.Status.Live() {
		return false
	}
	d.drop(id, a)
	return true
}

// drop deletes appointment a (of id) and its payment orders.
func (d *Doctor) drop(id string, a *Appointment) {
	for _, o := range a.orders {
		delete(d.orders, o.ID)
	}
	delete(d.appointments, id)
}

// ForgetEnded drops the confirmed appointments that ended at or before t
// (holds stay until they are confirmed or expire: the hold window counts
// a lapsed hold until its HoldExpired), and forgets the strings shared so
// far (see share), which would otherwise keep every past patient's id and
// name. It returns how many appointments it dropped.
func (d *Doctor) ForgetEnded(t time.Time) int {
	end := t.UnixNano()
	var ended []interval
	d.live.all(func(iv interval) bool {
		if iv.start >= end { // this one and all later ones end after t
			return false
		}
		if iv.end <= end && d.appointments[iv.id].Status == StatusConfirmed {
			ended = append(ended, iv)
		}
		return true
	})
	for _, iv := range ended {
		d.live.remove(iv)
		d.drop(iv.id, d.appointments[iv.id])
	}
	d.strs = domain.Strings{}
	return len(ended)
}

// DecidedAt is when the command that recorded e was decided (its now), or
// the zero time for an event that does not say.
func DecidedAt(e domain.Event) time.Time {
	switch e := e.(type) {
	case DoctorRegistered:
		return e.RegisteredAt
	case SlotReserved:
		return e.ReservedAt
	case AppointmentConfirmed:
		return e.ConfirmedAt
	case HoldExpired:
		return e.ExpiredAt
	case AppointmentCancelled:
		return e.CancelledAt
	case AppointmentRescheduled:
		return e.RescheduledAt
	case AppointmentCompleted:
		return e.CompletedAt
	case AppointmentMarkedNoShow:
		return e.MarkedAt
	case PaymentCaptured:
		return e.CapturedAt
	case RefundIssued:
		return e.IssuedAt
	case PaymentOrderRequested:
		return e.RequestedAt
	case RefundProcessed:
		return e.ProcessedAt
	case RefundFailed:
		return e.FailedAt
	}
	return time.Time{}
}
