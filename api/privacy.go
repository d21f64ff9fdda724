package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/audit"
)

// erasePatient: POST /admin/patients/{id}/erase (admin). The patient's
// data key is shredded and the erasure recorded; the answer is the account
// as it now reads ("[erased]" fields, inactive, erased).
func (s *Server) erasePatient(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyOptional, func(r *http.Request, m commands.Meta, _ *struct{}) (any, error) {
		a, err := s.cfg.Commands.ErasePatient(r.Context(), m, chi.URLParam(r, "id"))
		if err != nil {
			return nil, err
		}
		s.sessions.forget(a.Role, a.ID)
		return toProfile(a), nil
	})
}

// exportJSON is everything the system holds about its caller.
type exportJSON struct {
	ExportedAt   time.Time                 `json:"exportedAt"`
	Profile      profileJSON               `json:"profile"`
	Appointments []projections.Appointment `json:"appointments"`
	Payments     []exportPayment           `json:"payments"`
	History      []exportEvent             `json:"accountHistory"`
	// Mails are the mails sent to the caller that the outbox still keeps
	// (absent where this process does not hold the outbox).
	Mails []Notification `json:"mails,omitempty"`
}

// exportPayment is a payment of one of the caller's appointments.
type exportPayment struct {
	AppointmentID string `json:"appointmentId"`
	projections.Payment
	Currency string `json:"currency"`
}

// exportEvent is one fact of the caller's account stream. Secrets (password
// and token hashes) are held but not handed out: their values read
// "[secret]".
type exportEvent struct {
	Type       string          `json:"type"`
	Position   uint64          `json:"position"`
	RecordedAt time.Time       `json:"recordedAt"`
	Data       json.RawMessage `json:"data"`
}

// maxExportAppointments bounds an export's appointments (pages of the
// read model).
const maxExportAppointments = 20_000

// exportMe: GET /me/export (patient).
func (s *Server) exportMe(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	a, err := s.cfg.Commands.Account(r.Context(), p.Role, p.UserID)
	if err != nil {
		return err
	}
	out := exportJSON{ExportedAt: s.cfg.Now().UTC(), Profile: toProfile(a), Appointments: []projections.Appointment{}, Payments: []exportPayment{}, History: []exportEvent{}}
	q := projections.AppointmentQuery{PatientID: p.UserID, Limit: projections.MaxPageSize}
	for len(out.Appointments) < maxExportAppointments {
		page, err := s.cfg.Appointments.Appointments(r.Context(), q)
		if err != nil {
			return err
		}
		out.Appointments = append(out.Appointments, page.Appointments...)
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	for _, ap := range out.Appointments {
		if ap.Payment.OrderID != "" || ap.Payment.PaymentID != "" {
			out.Payments = append(out.Payments, exportPayment{AppointmentID: ap.ID, Payment: ap.Payment, Currency: ap.Currency})
		}
	}
	hist, err := s.cfg.Commands.AccountHistory(r.Context(), p.Role, p.UserID)
	if err != nil {
		return err
	}
	for _, h := range hist {
		data, err := json.Marshal(h.Data)
		if err != nil {
			return err
		}
		out.History = append(out.History, exportEvent{Type: h.Type, Position: h.Position, RecordedAt: h.RecordedAt, Data: audit.RedactSecrets(data, "[secret]")})
	}
	if s.cfg.Notifications != nil && a.Email != "" {
		if out.Mails, err = s.cfg.Notifications.MailsSentTo(r.Context(), a.Email); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="prescripto-export.json"`)
	w.Header().Set("Cache-Control", "no-store")
	return reply(w, http.StatusOK, out)
}
