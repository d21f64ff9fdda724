package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/ledger"
)

// DefaultLedgerGrace is how long a patient's reservation counts before its
// appointment must exist in the doctor's stream: well above any command's
// run (a booking's two appends happen within its request).
const DefaultLedgerGrace = 2 * time.Minute

func newLedgerStreams() *streams[*ledger.Ledger] {
	return newStreams(func(stream string) *ledger.Ledger {
		_, id, _ := strings.Cut(stream, "-")
		return ledger.New(id)
	})
}

// execLedger runs one decision on a patient's ledger. The ledger step never
// claims an Idempotency-Key: the doctor's step of the same request does.
func (h *Handler) execLedger(ctx context.Context, command, patientID string, m Meta, decide func(l *ledger.Ledger, now time.Time) error) error {
	m.IdempotencyKey = ""
	_, err := run(ctx, h, h.ledgers, step[*ledger.Ledger]{
		command: command, stream: ledger.StreamID(patientID), meta: m, decide: decide, view: func(*ledger.Ledger) {},
	})
	return err
}

// placeInLedger runs decide on the patient's ledger as the ledger alone
// has it; when that refuses (the limit, an overlap), it asks the doctors'
// streams how the ledger's appointments stand and decides once more with
// that: ended appointments stop counting there and then.
func (h *Handler) placeInLedger(ctx context.Context, command, patientID string, m Meta, decide func(l *ledger.Ledger, now time.Time, observed map[string]ledger.Observation) error) error {
	err := h.execLedger(ctx, command, patientID, m, func(l *ledger.Ledger, now time.Time) error { return decide(l, now, nil) })
	if !errors.Is(err, ledger.ErrBookingLimit) && !errors.Is(err, ledger.ErrOverlapping) {
		return err
	}
	observed, oerr := h.observeLedger(ctx, patientID)
	if oerr != nil {
		return oerr
	}
	return h.execLedger(ctx, command, patientID, m, func(l *ledger.Ledger, now time.Time) error { return decide(l, now, observed) })
}

// observeLedger asks each doctor's stream about the appointments in the
// patient's ledger. A held appointment whose hold ran out counts as ended
// (its slot is free).
func (h *Handler) observeLedger(ctx context.Context, patientID string) (map[string]ledger.Observation, error) {
	var entries []ledger.Entry
	if _, err := view(ctx, h, h.ledgers, ledger.StreamID(patientID), func(l *ledger.Ledger, _ uint64) { entries = l.Entries() }); err != nil {
		return nil, err
	}
	now := h.clock()
	observed := make(map[string]ledger.Observation, len(entries))
	for _, e := range entries {
		var o ledger.Observation
		err := h.Doctor(ctx, e.DoctorID, func(d *doctor.Doctor) {
			a, ok := d.Appointment(e.AppointmentID)
			lapsed := a.Status == doctor.StatusHeld && !now.Before(a.HoldExpiresAt)
			o = ledger.Observation{Exists: ok, Live: ok && a.Status.Live() && !lapsed, Start: a.Start, End: a.End}
		})
		if err != nil && !errors.Is(err, doctor.ErrDoctorNotFound) {
			return nil, err
		}
		observed[e.AppointmentID] = o
	}
	return observed, nil
}

// bookable checks, before the patient's ledger is touched, that the
// doctor's stream would take a booking at start (or the move of except
// there): a request the doctor refuses anyway appends nothing. A refusal
// on cached state is checked again on the stream's tail before it stands
// (another process may have freed the slot); an appointment that exists
// already (a keyed retry) passes, for the doctor's step to answer it.
func (h *Handler) bookable(ctx context.Context, doctorID, apptID, except string, start time.Time) (doctor.Slot, error) {
	var slot doctor.Slot
	var err error
	check := func(d *doctor.Doctor) {
		if _, exists := d.Appointment(apptID); exists && apptID != "" {
			slot, err = doctor.Slot{}, nil
			return
		}
		slot, err = d.CanReserve(start, h.clock(), except)
	}
	found, perr := peek(ctx, h, h.doctors, doctor.StreamID(doctorID), check)
	if perr != nil {
		return slot, perr
	}
	if !found {
		return slot, doctor.ErrDoctorNotFound
	}
	if err == nil {
		return slot, nil
	}
	if _, verr := view(ctx, h, h.doctors, doctor.StreamID(doctorID), func(d *doctor.Doctor, _ uint64) { check(d) }); verr != nil {
		return slot, verr
	}
	return slot, err
}

// releaseIfAbsent releases a patient's reservation whose booking the
// doctor's stream refused: only if that stream does not have the
// appointment (a retry of a booking that went through must not). A
// release that fails is left to the ledger's grace period.
func (h *Handler) releaseIfAbsent(ctx context.Context, m Meta, patientID, doctorID, apptID string) {
	exists := false
	if _, err := peek(ctx, h, h.doctors, doctor.StreamID(doctorID), func(d *doctor.Doctor) { _, exists = d.Appointment(apptID) }); err != nil {
		return
	}
	if exists {
		return
	}
	_ = h.execLedger(ctx, "ReleaseBooking", patientID, m, func(l *ledger.Ledger, now time.Time) error {
		l.Release(apptID, "refused by the doctor's schedule", now)
		return nil
	})
}

// refused reports whether err is a decision against the request (the
// doctor's stream said no), as opposed to an outcome not known (a store
// that did not answer).
func refused(err error) bool {
	for _, k := range []error{domain.ErrConflict, domain.ErrUnprocessable, domain.ErrInvalid, domain.ErrNotFound, domain.ErrForbidden} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
