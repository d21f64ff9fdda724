package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore/chain"
	"github.com/prescripto/prescripto/projections/audit"
)

// The auditors' routes read the event log itself (projections/audit), not
// a read model: they answer what was stored, in the order it was stored.

// auditStreamEvents answers GET /audit/streams/{stream}/events?from=&limit=.
func (s *Server) auditStreamEvents(w http.ResponseWriter, r *http.Request) error {
	stream := chi.URLParam(r, "stream")
	if !audit.ValidStream(stream) {
		return queryError("stream", "invalid", "The stream must be 1 to 200 printable characters, such as doctor-0190....")
	}
	q := r.URL.Query()
	var from uint64
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return queryError("from", "not_an_integer", "Query parameter %q must be a revision (an integer from 0).", "from")
		}
		from = n
	}
	limit, err := queryInt(q, "limit", 100, 1, audit.MaxPage)
	if err != nil {
		return err
	}
	evs, err := s.cfg.Audit.StreamEvents(r.Context(), stream, from, limit)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"stream": stream, "events": evs})
}

// auditAppointmentHistory answers GET /audit/appointments/{id}/history: the
// appointments read model names the appointment's doctor (waiting once for
// it to reach the log's head on a miss), and the doctor's stream gives the
// events.
func (s *Server) auditAppointmentHistory(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	a, err := s.lookupAppointment(r.Context(), id) // auditors and admins see every appointment
	if err != nil {
		return err
	}
	evs, err := s.cfg.Audit.AppointmentHistory(r.Context(), a.DoctorID, a.ID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"appointmentId": a.ID, "events": evs})
}

// auditScheduleAsOf answers GET /audit/doctors/{id}/schedule?asOf=&from=&days=.
func (s *Server) auditScheduleAsOf(w http.ResponseWriter, r *http.Request) error {
	asOf, ok, err := QueryTime(r, "asOf")
	if err != nil {
		return err
	}
	if !ok {
		return queryError("asOf", "required", "Query parameter %q is required: an RFC 3339 instant such as 2026-11-25T04:30:00Z.", "asOf")
	}
	if asOf.Year() < 2000 || asOf.Year() > 2200 {
		return queryError("asOf", "out_of_range", "Query parameter %q is out of range.", "asOf")
	}
	q := r.URL.Query()
	days, err := queryInt(q, "days", 7, 1, audit.MaxScheduleDays)
	if err != nil {
		return err
	}
	var from doctor.Date
	if v := q.Get("from"); v != "" {
		if from, err = doctor.ParseDate(v); err != nil {
			return queryError("from", "not_a_date", "Query parameter %q must be a date YYYY-MM-DD.", "from")
		}
		if from.Year < 2000 || from.Year > 2200 {
			return queryError("from", "out_of_range", "Query parameter %q is out of range.", "from")
		}
	}
	sch, err := s.cfg.Audit.ScheduleAsOf(r.Context(), audit.ScheduleQuery{DoctorID: chi.URLParam(r, "id"), AsOf: asOf, From: from, Days: days})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, sch)
}

// The bounds of GET /audit/verify. The server's write timeout is 30 s: the
// route verifies up to the log's head as of the request for at most
// verifyBudget, then answers what it checked (complete false, with the
// root at the last position it reached, itself an anchor); the command
// line's audit verify has no bound. verifyListed bounds the broken and
// legacy lists (their counts stay whole).
const (
	verifyBudget = 20 * time.Second
	verifyListed = 1000
)

// auditVerify answers GET /audit/verify?anchor=ROOT@POSITION.
func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) error {
	o := chain.Options{Budget: verifyBudget, MaxListed: verifyListed}
	if v := r.URL.Query().Get("anchor"); v != "" {
		a, err := chain.ParseAnchor(v)
		if err != nil {
			return queryError("anchor", "invalid", "Query parameter %q must be ROOT@POSITION, as audit verify prints it: 64 hex digits, @, a log position from 1.", "anchor")
		}
		o.Anchor = &a
	}
	rep, err := s.cfg.Audit.Verify(r.Context(), o)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, rep)
}
