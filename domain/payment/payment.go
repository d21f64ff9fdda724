// Package payment holds the facts a payment provider tells the engine on
// its own: a verified webhook, appended as it arrived to a stream of its
// own (named by the provider's event id, appended with expected revision
// "no stream", so that a redelivered webhook is recorded once). The
// payments worker reads these facts from the log and acts on the doctor
// streams; the webhook's HTTP answer waits for nothing but the append.
package payment

import (
	"time"

	"github.com/prescripto/prescripto/domain"
)

// TypeWebhookReceived is the stored name of WebhookReceived.
const TypeWebhookReceived = "payment.WebhookReceived.v1"

// Category is the stream category of provider webhooks.
const Category = "webhook"

// StreamID is the stream of the provider's event eventID, e.g.
// "webhook-razorpay.evt_29aB3c".
func StreamID(provider, eventID string) string { return Category + "-" + provider + "." + eventID }

// WebhookReceived is a verified webhook, reduced to the facts the engine
// uses: no payer contact details are stored.
type WebhookReceived struct {
	Provider    string    `json:"provider"` // "razorpay"
	EventID     string    `json:"eventId"`
	Event       string    `json:"event"` // e.g. "payment.captured"
	OrderID     string    `json:"orderId,omitempty"`
	PaymentID   string    `json:"paymentId,omitempty"`
	RefundID    string    `json:"refundId,omitempty"`
	Amount      int64     `json:"amount,omitempty"`
	Currency    string    `json:"currency,omitempty"`
	Status      string    `json:"status,omitempty"`
	ErrorReason string    `json:"errorReason,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	ReceivedAt  time.Time `json:"receivedAt"`
}

// EventType implements domain.Event.
func (WebhookReceived) EventType() string { return TypeWebhookReceived }

// Events lists the registrations of the payment facts.
func Events() []domain.Registration {
	return []domain.Registration{domain.Type[WebhookReceived]()}
}

// EventIDOK says whether id can name a webhook stream: 1 to 64 letters,
// digits, '_' or '-' (Razorpay's are "evt_" and 14 alphanumerics, but a
// provider's ids are not ours to trust further).
func EventIDOK(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
