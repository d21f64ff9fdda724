package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/internal/ical"
	"github.com/prescripto/prescripto/projections"
)

// calendarEvent is an appointment as a calendar entry: the same UID and
// SEQUENCE (the position of its last change) as the invitations mailed
// about it, so a calendar that has one takes the other as its update.
func calendarEvent(a projections.Appointment, stamp time.Time) ical.Event {
	e := ical.Event{UID: a.ID, Sequence: ical.Sequence(a.Position), Start: a.Start, End: a.End, Stamp: stamp}
	e.Summary = "Appointment with " + a.DoctorName
	if a.PatientName != "" {
		e.Description = "Prescripto appointment " + a.ID + " of " + a.PatientName
	} else {
		e.Description = "Prescripto appointment " + a.ID
	}
	switch a.Status {
	case "cancelled", "expired":
		e.Cancelled = true
	}
	return e
}

func writeCalendar(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// appointmentCalendar serves GET /appointments/{id}/calendar.ics to its
// patient or its doctor (someone else's is not found).
func (s *Server) appointmentCalendar(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	a, err := s.findAppointment(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeCalendar(w, ical.Write("", calendarEvent(a, s.cfg.Now())))
	return nil
}
