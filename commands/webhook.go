package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/payment"
	"github.com/prescripto/prescripto/eventstore"
)

// ErrBadEventID: a webhook without a usable event id.
var ErrBadEventID = domain.NewError(domain.ErrInvalid, "invalid_header", "X-Razorpay-Event-Id must be 1 to 64 letters, digits, '_' or '-'")

// Webhook is a provider's webhook as it arrived.
type Webhook struct {
	Body      []byte // exactly as received
	Signature string
	EventID   string
}

// WebhookResult says what became of a webhook.
type WebhookResult struct {
	Event     WebhookEvent
	Duplicate bool // its event id was recorded before
	Position  uint64
}

// RecordWebhook verifies a webhook and appends it, reduced to its facts,
// to the stream of its event id with expected revision "no stream": a
// redelivery finds the stream and is recorded once. Nothing else is done
// here, so the provider gets its answer after one append; the payments
// worker acts on the fact from the log (a crash after the answer loses
// nothing).
func (h *Handler) RecordWebhook(ctx context.Context, m Meta, w Webhook) (WebhookResult, error) {
	if h.gateway == nil {
		return WebhookResult{}, ErrPaymentsDisabled
	}
	ev, err := h.gateway.ParseWebhook(w.Body, w.Signature)
	if err != nil {
		return WebhookResult{}, err
	}
	if !payment.EventIDOK(w.EventID) {
		return WebhookResult{}, ErrBadEventID
	}
	now := h.clock()
	fact := payment.WebhookReceived{
		Provider: "razorpay", EventID: w.EventID, Event: domain.Clip(ev.Type, 64), OrderID: ev.OrderID, PaymentID: ev.PaymentID,
		RefundID: ev.RefundID, Amount: ev.Amount, Currency: ev.Currency, Status: ev.Status,
		ErrorReason: domain.Clip(ev.ErrorReason, 200), CreatedAt: ev.CreatedAt, ReceivedAt: now,
	}
	stream := payment.StreamID(fact.Provider, w.EventID)
	// A fresh event id, not one derived from the stream: a redelivery must
	// meet "no stream" and be told a duplicate, not be taken for an
	// idempotent retry of the same append.
	id, err := uuid.NewV7()
	if err != nil {
		return WebhookResult{}, err
	}
	m.IdempotencyKey = ""
	data, err := h.encode([]domain.Event{fact}, []uuid.UUID{id}, m, now)
	if err != nil {
		return WebhookResult{}, err
	}
	res, err := h.store.Append(ctx, stream, eventstore.NoStream, data)
	switch {
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return WebhookResult{Event: ev, Duplicate: true}, nil
	case err != nil:
		return WebhookResult{}, storeErr(err)
	}
	return WebhookResult{Event: ev, Position: res.Position}, nil
}
