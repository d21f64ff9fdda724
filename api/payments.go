package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/projections"
)

// paymentOrderJSON answers POST /appointments/{id}/payment. Every field of
// the contract is present: holdExpiresAt is null unless the appointment is
// held, checkoutUrl "" unless a checkout page (the sandbox's) serves it.
type paymentOrderJSON struct {
	OrderID       string     `json:"orderId"`
	Amount        int64      `json:"amount"`
	Currency      string     `json:"currency"`
	KeyID         string     `json:"keyId"`
	AppointmentID string     `json:"appointmentId"`
	HoldExpiresAt *time.Time `json:"holdExpiresAt"`
	CheckoutURL   string     `json:"checkoutUrl"`
	Position      uint64     `json:"position,omitempty"`
}

// createPaymentOrder: 201 with a new order, 200 with the one that exists.
func (s *Server) createPaymentOrder(w http.ResponseWriter, r *http.Request) error {
	var req noBody
	if _, err := DecodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	m, err := s.meta(r)
	if err != nil {
		return err
	}
	a, err := s.findAppointment(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	o, err := s.cfg.Commands.PayAppointment(r.Context(), m, commands.PayAppointment{DoctorID: a.DoctorID, AppointmentID: a.ID})
	if err != nil {
		return err
	}
	out := paymentOrderJSON{
		OrderID: o.OrderID, Amount: o.Amount, Currency: o.Currency, KeyID: o.KeyID, AppointmentID: o.AppointmentID,
		CheckoutURL: o.CheckoutURL, Position: o.Position,
	}
	if !o.HoldExpiresAt.IsZero() {
		out.HoldExpiresAt = &o.HoldExpiresAt
	}
	status := http.StatusOK
	if o.Created {
		status = http.StatusCreated
		s.cfg.Metrics.Payment("order_created")
	} else {
		s.cfg.Metrics.Payment("order_returned")
	}
	return reply(w, status, out)
}

type verifyRequest struct {
	OrderID   string `json:"razorpay_order_id"`
	PaymentID string `json:"razorpay_payment_id"`
	Signature string `json:"razorpay_signature"`
}

// verifyPayment confirms a checkout (see commands.VerifyPayment).
func (s *Server) verifyPayment(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *verifyRequest) (any, error) {
		var missing []FieldError
		for _, f := range []struct{ name, v string }{
			{"razorpay_order_id", req.OrderID}, {"razorpay_payment_id", req.PaymentID}, {"razorpay_signature", req.Signature},
		} {
			if f.v == "" {
				missing = append(missing, FieldError{Field: f.name, Code: "required", Detail: f.name + " is required"})
			}
		}
		if len(missing) > 0 {
			return nil, ErrInvalidInput.WithDetail("razorpay_order_id, razorpay_payment_id and razorpay_signature are required.").WithFields(missing...)
		}
		res, err := s.cfg.Commands.VerifyPayment(r.Context(), m, commands.VerifyPayment{OrderID: req.OrderID, PaymentID: req.PaymentID, Signature: req.Signature})
		if err != nil {
			return nil, err
		}
		s.cfg.Metrics.Payment("verified")
		return toAppointment(res), nil
	})
}

// webhookAnswer is the body of a webhook's 200.
type webhookAnswer struct {
	Status string `json:"status"` // "recorded" or "duplicate"
}

// razorpayWebhook records a verified webhook in the log and answers: the
// payments worker acts on it from there. Razorpay retries anything but a
// 2xx, so a duplicate (or an event type the engine ignores) is a 200 too.
func (s *Server) razorpayWebhook(w http.ResponseWriter, r *http.Request) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrBodyTooLarge.WithCause(err)
		}
		return ErrMalformedJSON.WithDetail("The request body could not be read.").WithCause(err)
	}
	m := commands.Meta{
		Actor:           domain.Actor{UserID: "razorpay", Role: domain.RoleSystem},
		CorrelationID:   CorrelationIDFrom(r.Context()),
		CausationID:     RequestIDFrom(r.Context()),
		RequestID:       RequestIDFrom(r.Context()),
		ClientRequestID: ClientRequestIDFrom(r.Context()),
	}
	res, err := s.cfg.Commands.RecordWebhook(r.Context(), m, commands.Webhook{
		Body: raw, Signature: r.Header.Get("X-Razorpay-Signature"), EventID: r.Header.Get("X-Razorpay-Event-Id"),
	})
	switch {
	case errors.Is(err, commands.ErrBadSignature):
		s.cfg.Metrics.Payment("webhook_bad_signature")
		return err
	case err != nil:
		return err
	case res.Duplicate:
		s.cfg.Metrics.Payment("webhook_duplicate")
		return reply(w, http.StatusOK, webhookAnswer{Status: "duplicate"})
	}
	s.cfg.Metrics.Payment("webhook_recorded")
	return reply(w, http.StatusOK, webhookAnswer{Status: "recorded"})
}

// paymentStatuses are the statuses GET /admin/payments filters by.
var paymentStatuses = map[string]bool{
	"pending": true, "paid": true, "refund_pending": true, "refunded": true, "failed": true,
}

// listPayments answers GET /admin/payments.
func (s *Server) listPayments(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	limit, err := QueryInt(r, "limit", 50, 1, projections.MaxPageSize)
	if err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	if status != "" && !paymentStatuses[status] {
		return ErrInvalidQuery.WithDetail("status must be one of pending, paid, refund_pending, refunded, failed.").
			WithFields(FieldError{Field: "status", Code: CodeInvalidQuery, Detail: "unknown payment status"})
	}
	page, err := s.cfg.Payments.Payments(r.Context(), projections.PaymentQuery{Status: status, Limit: limit, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, page)
}
