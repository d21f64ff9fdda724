package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/ledger"
)

// RescheduleAppointment moves an appointment to another slot of the same
// doctor, atomically: the old slot is released only if the new one is taken.
type RescheduleAppointment struct {
	DoctorID      string
	AppointmentID string
	Start         time.Time
}

// RescheduleAppointment runs the command. The new time is placed in the
// patient's ledger first (it must not overlap their other appointments);
// if the doctor's stream then refuses the move, the ledger is moved back.
func (h *Handler) RescheduleAppointment(ctx context.Context, m Meta, c RescheduleAppointment) (AppointmentResult, error) {
	before, moved, err := h.moveForPatient(ctx, m, c)
	if err != nil {
		return AppointmentResult{}, err
	}
	var out AppointmentResult
	m.target = c.AppointmentID
	pos, err := h.execDoctor(ctx, "RescheduleAppointment", c.DoctorID, m, request{body: struct {
		Start time.Time `json:"start"`
	}{c.Start.UTC()}}, func(d *doctor.Doctor, now time.Time) error {
		return d.Reschedule(c.AppointmentID, c.Start, m.Actor, now)
	}, h.appointmentView(c.AppointmentID, &out))
	if moved && (err == nil || refused(err)) {
		// Settle the ledger on the time the doctor's stream decided: the
		// new one, or the old one when the move was refused. (Unsettled,
		// after a crash, the entry holds both times until observed.)
		start, end := out.Appointment.Start, out.Appointment.End
		if err != nil {
			start, end = before.Start, before.End
		}
		_ = h.execLedger(ctx, "SettleBookingMove", before.PatientID, m, func(l *ledger.Ledger, now time.Time) error {
			l.Settle(before.ID, start, end, now)
			return nil
		})
	}
	out.Position = pos
	return out, err
}

// moveForPatient places a reschedule in the ledger of the appointment's
// patient, once the doctor's stream is known to take it (bookable). What
// the caller may not see, or an appointment that cannot move, places
// nothing: the doctor's step refuses it with the precise reason.
//
// The appointment's time is read from the stream's current state, not
// this process's cache: another api process may have moved it, and a
// ledger moved from a stale time (or left alone because the stale time is
// already the new one) would hold the patient at a time they left.
func (h *Handler) moveForPatient(ctx context.Context, m Meta, c RescheduleAppointment) (doctor.Appointment, bool, error) {
	var a doctor.Appointment
	var found bool
	_, err := view(ctx, h, h.doctors, doctor.StreamID(c.DoctorID), func(d *doctor.Doctor, _ uint64) { a, found = d.Appointment(c.AppointmentID) })
	mayMove := m.Actor.Role == domain.RoleAdmin || m.Actor.Role == domain.RoleSystem || (m.Actor.Role == domain.RolePatient && m.Actor.UserID == a.PatientID)
	if err != nil || !found || !mayMove || !a.Status.Live() || !a.Start.After(h.clock()) {
		return a, false, err
	}
	slot, err := h.bookable(ctx, c.DoctorID, "", a.ID, c.Start)
	if err != nil || slot.Start.Equal(a.Start) {
		return a, false, err
	}
	err = h.placeInLedger(ctx, "MoveBooking", a.PatientID, m, func(l *ledger.Ledger, now time.Time, observed map[string]ledger.Observation) error {
		return l.Move(a.ID, c.DoctorID, slot.Start, slot.End, h.rules, now, observed)
	})
	return a, err == nil, err
}
