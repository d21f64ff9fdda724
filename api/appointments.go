package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

type appointmentJSON struct {
	projections.Appointment
	Position uint64 `json:"position,omitempty"`
}

func toAppointment(res commands.AppointmentResult) appointmentJSON {
	a := res.Appointment
	out := appointmentJSON{Appointment: projections.Appointment{
		ID: a.ID, DoctorID: a.DoctorID, DoctorName: res.DoctorName, PatientID: a.PatientID, PatientName: a.PatientName,
		Start: a.Start, End: a.End, Timezone: res.Timezone, Status: string(a.Status), Fees: a.Fees, Currency: a.Currency,
		Payment: projections.Payment{
			Status: string(a.Payment.Status), OrderID: a.Payment.OrderID, PaymentID: a.Payment.PaymentID,
			Amount: a.Payment.Amount, RefundedAmount: a.Payment.RefundedAmount,
		},
		CreatedAt: a.CreatedAt, CancelReason: a.CancelReason,
	}, Position: res.Position}
	if a.Status == doctor.StatusHeld && !a.HoldExpiresAt.IsZero() {
		hold := a.HoldExpiresAt
		out.HoldExpiresAt = &hold
	}
	return out
}

type bookRequest struct {
	DoctorID string `json:"doctorId"`
	Start    string `json:"start"`
}

func (s *Server) book(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusCreated, bodyRequired, func(r *http.Request, m commands.Meta, req *bookRequest) (any, error) {
		if req.DoctorID == "" {
			return nil, domain.Invalid("doctorId is required")
		}
		start, err := parseInstant("start", req.Start)
		if err != nil {
			return nil, err
		}
		// No PatientName: the command records the patient's current name,
		// not the one in the token (PATCH /me may have changed it since).
		res, err := s.cfg.Commands.ReserveSlot(r.Context(), m, commands.ReserveSlot{DoctorID: req.DoctorID, Start: start})
		return toAppointment(res), err
	})
}

func (s *Server) listAppointments(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	limit, err := QueryInt(r, "limit", 50, 1, projections.MaxPageSize)
	if err != nil {
		return err
	}
	from, _, err1 := QueryTime(r, "from")
	to, _, err2 := QueryTime(r, "to")
	if err := firstErr(err1, err2); err != nil {
		return err
	}
	q := projections.AppointmentQuery{Status: r.URL.Query().Get("status"), From: from, To: to, Limit: limit, Cursor: r.URL.Query().Get("cursor")}
	switch p.Role {
	case domain.RolePatient:
		q.PatientID = p.UserID
	case domain.RoleDoctor:
		q.DoctorID = p.UserID
	case domain.RoleAdmin:
		q.PatientID, q.DoctorID = r.URL.Query().Get("patientId"), r.URL.Query().Get("doctorId")
	}
	page, err := s.cfg.Appointments.Appointments(r.Context(), q)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, page)
}

// errAppointmentNotFound is what anyone gets for an appointment that does
// not exist or is not theirs: the two are indistinguishable.
var errAppointmentNotFound = doctor.ErrAppointmentNotFound

// findAppointment looks an appointment up for the caller. A miss waits once
// for the read model to reach the log's head, so an appointment booked a
// moment ago is found; someone else's appointment is a miss too.
func (s *Server) findAppointment(ctx context.Context, id string) (projections.Appointment, error) {
	a, err := s.lookupAppointment(ctx, id)
	if err != nil {
		return a, err
	}
	p, _ := PrincipalFrom(ctx)
	switch {
	case p.Role == domain.RoleAdmin:
	case p.Role == domain.RolePatient && a.PatientID == p.UserID:
	case p.Role == domain.RoleDoctor && a.DoctorID == p.UserID:
	default:
		return projections.Appointment{}, errAppointmentNotFound
	}
	return a, nil
}

func (s *Server) getAppointment(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	a, err := s.findAppointment(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, a)
}

// lookupAppointment finds an appointment whoever asks (the callers check
// who may see it). A miss waits once for the read model to reach the log's
// head.
func (s *Server) lookupAppointment(ctx context.Context, id string) (projections.Appointment, error) {
	a, err := s.cfg.Appointments.Appointment(ctx, id)
	if projections.IsNotFound(err) {
		if err := s.catchUpAfterMiss(ctx, projAppointments); err != nil {
			return a, err
		}
		a, err = s.cfg.Appointments.Appointment(ctx, id)
	}
	if projections.IsNotFound(err) {
		return a, errAppointmentNotFound
	}
	return a, err
}

// appointmentCommand runs a command on an appointment the caller may see:
// someone else's is not found, exactly like one that does not exist.
func appointmentCommand[Req any](s *Server, w http.ResponseWriter, r *http.Request, b body, run func(ctx context.Context, m commands.Meta, doctorID, id string, req *Req) (commands.AppointmentResult, error)) error {
	return runCommand(s, w, r, http.StatusOK, b, func(r *http.Request, m commands.Meta, req *Req) (any, error) {
		a, err := s.findAppointment(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			return nil, err
		}
		res, err := run(r.Context(), m, a.DoctorID, a.ID, req)
		return toAppointment(res), err
	})
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	return appointmentCommand(s, w, r, bodyOptional, func(ctx context.Context, m commands.Meta, doctorID, id string, req *cancelRequest) (commands.AppointmentResult, error) {
		return s.cfg.Commands.CancelAppointment(ctx, m, commands.CancelAppointment{DoctorID: doctorID, AppointmentID: id, Reason: req.Reason})
	})
}

type rescheduleRequest struct {
	Start string `json:"start"`
}

func (s *Server) reschedule(w http.ResponseWriter, r *http.Request) error {
	return appointmentCommand(s, w, r, bodyRequired, func(ctx context.Context, m commands.Meta, doctorID, id string, req *rescheduleRequest) (commands.AppointmentResult, error) {
		start, err := parseInstant("start", req.Start)
		if err != nil {
			return commands.AppointmentResult{}, err
		}
		return s.cfg.Commands.RescheduleAppointment(ctx, m, commands.RescheduleAppointment{DoctorID: doctorID, AppointmentID: id, Start: start})
	})
}

// noBody is the (empty) body that complete and no-show accept.
type noBody struct{}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) error {
	return appointmentCommand(s, w, r, bodyOptional, func(ctx context.Context, m commands.Meta, doctorID, id string, _ *noBody) (commands.AppointmentResult, error) {
		return s.cfg.Commands.CompleteAppointment(ctx, m, commands.CompleteAppointment{DoctorID: doctorID, AppointmentID: id})
	})
}

func (s *Server) noShow(w http.ResponseWriter, r *http.Request) error {
	return appointmentCommand(s, w, r, bodyOptional, func(ctx context.Context, m commands.Meta, doctorID, id string, _ *noBody) (commands.AppointmentResult, error) {
		return s.cfg.Commands.MarkNoShow(ctx, m, commands.MarkNoShow{DoctorID: doctorID, AppointmentID: id})
	})
}
