package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// AddTimeOff blocks a range of a doctor's time. Bookings inside it are
// refused unless CancelBookings, which cancels them in the same append.
type AddTimeOff struct {
	DoctorID       string
	From, To       time.Time
	Reason         string
	CancelBookings bool
}

// TimeOffResult is the time off added.
type TimeOffResult struct {
	TimeOff   doctor.TimeOff
	Cancelled []string // ids of the appointments it cancelled
	Position  uint64
}

// AddTimeOff runs the command.
func (h *Handler) AddTimeOff(ctx context.Context, m Meta, c AddTimeOff) (TimeOffResult, error) {
	if err := mayManageDoctor(m, c.DoctorID); err != nil {
		return TimeOffResult{}, err
	}
	id := newID(m, "AddTimeOff", "timeoff")
	var out TimeOffResult
	req := request{body: struct {
		From           time.Time `json:"from"`
		To             time.Time `json:"to"`
		Reason         string    `json:"reason"`
		CancelBookings bool      `json:"cancelBookings"`
	}{c.From.UTC(), c.To.UTC(), c.Reason, c.CancelBookings}, ids: map[string]string{"timeOff": id}}
	pos, err := h.execDoctor(ctx, "AddTimeOff", c.DoctorID, m, req, func(d *doctor.Doctor, now time.Time) error {
		// Only this decision's events: the aggregate also holds those of
		// the commands decided before it in the same batch, and a decision
		// retried after a conflict starts over.
		before := len(d.Changes())
		out.Cancelled = nil
		if err := d.AddTimeOff(id, c.From, c.To, c.Reason, c.CancelBookings, m.Actor.Role, now); err != nil {
			return err
		}
		for _, e := range d.Changes()[before:] {
			if ac, ok := e.(doctor.AppointmentCancelled); ok {
				out.Cancelled = append(out.Cancelled, ac.AppointmentID)
			}
		}
		return nil
	}, func(d *doctor.Doctor) {
		for _, t := range d.TimeOffs() {
			if t.ID == id {
				out.TimeOff = t
			}
		}
	})
	out.Position = pos
	return out, err
}
