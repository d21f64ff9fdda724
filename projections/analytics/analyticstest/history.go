package analyticstest

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// history builds a log of projection events: positions with gaps (other
// streams' events), a clock that the caller moves.
type history struct {
	pos    uint64
	clock  time.Time
	revs   map[string]uint64
	events []projections.Event
}

func newHistory(start time.Time) *history {
	return &history{clock: start, revs: map[string]uint64{}}
}

var system = domain.Actor{UserID: "system", Role: domain.RoleAdmin}

// add appends an event recorded at the history's clock.
func (h *history) add(stream string, data domain.Event) projections.Event {
	h.pos++
	if len(h.events)%4 == 3 {
		h.pos++ // a position of a stream the model does not read
	}
	rev := h.revs[stream]
	h.revs[stream] = rev + 1
	e := projections.Event{
		Position: h.pos, StreamID: stream, Revision: rev, Type: data.EventType(), Data: data,
		Metadata: domain.Metadata{
			EventID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", stream, rev)), Actor: system, OccurredAt: h.clock,
		},
		RecordedAt: h.clock,
	}
	h.events = append(h.events, e)
	return e
}

func (h *history) doc(id, name, speciality, currency string) {
	h.add(doctor.StreamID(id), doctor.DoctorRegistered{DoctorID: id, RegisteredAt: h.clock, Profile: doctor.Profile{
		Name: name, Speciality: speciality, Fees: 50000, Currency: currency, Available: true,
	}})
}

// patient registers a patient (personal data the analytics must never show).
func (h *history) patient(id, name, email string) {
	h.add("patient-"+id, account.Registered{AccountID: id, Name: name, Email: email, Role: domain.RolePatient, RegisteredAt: h.clock})
}

func (h *history) schedule(id, zone string, slotMinutes int, weekly ...doctor.WeeklyHours) {
	h.add(doctor.StreamID(id), doctor.ScheduleSet{DoctorID: id, Schedule: doctor.Schedule{
		Timezone: zone, SlotMinutes: slotMinutes, BookingWindowDays: 365, PaymentPolicy: doctor.PaymentNone,
		RefundCutoffHours: 24, Weekly: weekly,
	}})
}

func (h *history) timeOff(id string, from, to time.Time) {
	h.add(doctor.StreamID(id), doctor.TimeOffAdded{DoctorID: id, TimeOffID: fmt.Sprintf("off-%d", h.pos), From: from, To: to, Reason: "leave"})
}

func (h *history) reserve(docID, apptID, patientID, patientName string, start time.Time, minutes int, fees int64, currency string, held bool) {
	st, pay := doctor.StatusConfirmed, doctor.PaymentNotRequired
	var exp *time.Time
	if held {
		st, pay = doctor.StatusHeld, doctor.PaymentPending
		t := h.clock.Add(15 * time.Minute)
		exp = &t
	}
	h.add(doctor.StreamID(docID), doctor.SlotReserved{
		DoctorID: docID, AppointmentID: apptID, PatientID: patientID, PatientName: patientName,
		Start: start, End: start.Add(time.Duration(minutes) * time.Minute), Status: st, Fees: fees, Currency: currency,
		PaymentStatus: pay, HoldExpiresAt: exp, ReservedAt: h.clock,
	})
}

func (h *history) appt(docID string, e domain.Event) { h.add(doctor.StreamID(docID), e) }

func (h *history) cancel(docID, id, patientID string) {
	h.appt(docID, doctor.AppointmentCancelled{DoctorID: docID, AppointmentID: id, PatientID: patientID, Reason: "cannot come", CancelledBy: domain.RolePatient, CancelledAt: h.clock})
}

func (h *history) complete(docID, id string) {
	h.appt(docID, doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: id, CompletedAt: h.clock})
}

func (h *history) noShow(docID, id string) {
	h.appt(docID, doctor.AppointmentMarkedNoShow{DoctorID: docID, AppointmentID: id, MarkedAt: h.clock})
}

func (h *history) expire(docID, id string) {
	h.appt(docID, doctor.HoldExpired{DoctorID: docID, AppointmentID: id, ExpiredAt: h.clock})
}

func (h *history) confirm(docID, id, paymentID string) {
	h.appt(docID, doctor.AppointmentConfirmed{DoctorID: docID, AppointmentID: id, PaymentID: paymentID, ConfirmedAt: h.clock})
}

func (h *history) reschedule(docID, id string, start time.Time, minutes int) {
	h.appt(docID, doctor.AppointmentRescheduled{DoctorID: docID, AppointmentID: id, Start: start, End: start.Add(time.Duration(minutes) * time.Minute), RescheduledAt: h.clock})
}

func (h *history) capture(docID, id, paymentID string, amount int64, currency string) {
	h.appt(docID, doctor.PaymentCaptured{DoctorID: docID, AppointmentID: id, PaymentID: paymentID, OrderID: "order_" + id, Amount: amount, Currency: currency, CapturedAt: h.clock})
}

func (h *history) refund(docID, id, paymentID, refundID string, amount int64) {
	h.appt(docID, doctor.RefundIssued{DoctorID: docID, AppointmentID: id, PaymentID: paymentID, RefundID: refundID, Amount: amount, IssuedAt: h.clock})
	h.appt(docID, doctor.RefundProcessed{DoctorID: docID, AppointmentID: id, PaymentID: paymentID, RefundID: refundID, Amount: amount, ProcessedAt: h.clock})
}
