package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/ledger"
)

// ReserveSlot books the slot of DoctorID starting at Start for the patient
// who asks (Meta.Actor).
type ReserveSlot struct {
	DoctorID    string
	Start       time.Time
	PatientName string
}

// ReserveSlot runs the command. With an Idempotency-Key the appointment id
// is derived from the key, so a retry returns the original appointment.
func (h *Handler) ReserveSlot(ctx context.Context, m Meta, c ReserveSlot) (AppointmentResult, error) {
	const command = "ReserveSlot"
	if m.Actor.Role != domain.RolePatient {
		return AppointmentResult{}, domain.Detail(doctor.ErrNotAllowed, "only patients book appointments")
	}
	// The patient's key (the name is read and sealed with it) before the
	// doctor's batch: see warmKey.
	if err := h.warmKey(ctx, m.Actor.UserID); err != nil {
		return AppointmentResult{}, err
	}
	if c.PatientName == "" {
		name, err := h.patientName(ctx, m.Actor.UserID)
		if err != nil {
			return AppointmentResult{}, err
		}
		c.PatientName = name
	}
	apptID := newID(m, command, "appointment:"+c.DoctorID)
	var req request
	if m.IdempotencyKey != "" {
		// The doctor is the claim's stream and the appointment its
		// target; the body adds the start.
		m.target = apptID
		req = request{body: struct {
			Start time.Time `json:"start"`
		}{c.Start.UTC()}, ids: map[string]string{"appointment": apptID}}
	}
	// The patient's rules first (ledger): the place is reserved before the
	// slot is taken, and released if the doctor's stream refuses it.
	inLedger, err := h.reserveForPatient(ctx, m, c.DoctorID, apptID, c.Start)
	if err != nil {
		return AppointmentResult{}, err
	}
	var out AppointmentResult
	pos, err := h.execDoctor(ctx, command, c.DoctorID, m, req, func(d *doctor.Doctor, now time.Time) error {
		if a, exists := d.Appointment(apptID); exists && m.IdempotencyKey != "" {
			if a.PatientID != m.Actor.UserID || !a.Start.Equal(c.Start) {
				return ErrIdempotencyKeyReused
			}
			return nil // a retry: the appointment stands
		}
		return d.Reserve(doctor.Reservation{AppointmentID: apptID, PatientID: m.Actor.UserID, PatientName: c.PatientName, Start: c.Start}, now)
	}, h.appointmentView(apptID, &out))
	if err != nil && inLedger && refused(err) {
		h.releaseIfAbsent(ctx, m, m.Actor.UserID, c.DoctorID, apptID)
	}
	out.Position = pos
	if err == nil && m.IdempotencyKey != "" && (out.Appointment.PatientID != m.Actor.UserID || !out.Appointment.Start.Equal(c.Start)) {
		return AppointmentResult{}, ErrIdempotencyKeyReused
	}
	return out, err
}

// reserveForPatient places a booking in the patient's ledger (see
// ledger.Ledger.Reserve), once the doctor's stream is known to take it
// (bookable): a booking the doctor refuses is refused before the ledger.
// A keyed retry of a booking that exists places nothing.
func (h *Handler) reserveForPatient(ctx context.Context, m Meta, doctorID, apptID string, start time.Time) (bool, error) {
	slot, err := h.bookable(ctx, doctorID, apptID, "", start)
	if err != nil || slot.Start.IsZero() {
		return false, err
	}
	want := ledger.Entry{AppointmentID: apptID, DoctorID: doctorID, Start: slot.Start, End: slot.End}
	if m.IdempotencyKey != "" {
		want.KeyID = keyID(m).String()
	}
	err = h.placeInLedger(ctx, "ReserveBooking", m.Actor.UserID, m, func(l *ledger.Ledger, now time.Time, observed map[string]ledger.Observation) error {
		return l.Reserve(want, h.rules, now, observed)
	})
	return err == nil, err
}
