package razorpay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
)

// sign is the hex HMAC-SHA256 of msg with secret.
func sign(secret string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return m.Sum(nil)
}

// verify compares a hex signature with the HMAC of msg in constant time.
func verify(secret string, msg []byte, signature string) bool {
	got, err := hex.DecodeString(signature)
	if err != nil || len(got) != sha256.Size || secret == "" {
		return false
	}
	return hmac.Equal(got, sign(secret, msg))
}

// VerifyPaymentSignature checks a checkout's razorpay_signature: the hex
// HMAC-SHA256 of "orderID|paymentID" with the key secret.
func (c *Client) VerifyPaymentSignature(orderID, paymentID, signature string) bool {
	if orderID == "" || paymentID == "" {
		return false
	}
	return verify(c.cfg.KeySecret, []byte(orderID+"|"+paymentID), signature)
}

// webhookEnvelope is Razorpay's webhook body, with the entities kept raw.
type webhookEnvelope struct {
	Entity  string `json:"entity"`
	Event   string `json:"event"`
	Payload map[string]struct {
		Entity json.RawMessage `json:"entity"`
	} `json:"payload"`
	CreatedAt int64 `json:"created_at"`
}

// The entities' fields the engine uses; nulls decode as "". Contact
// details (email, contact, vpa, card) are not read at all.
type (
	webhookPayment struct {
		ID          string `json:"id"`
		OrderID     string `json:"order_id"`
		Amount      int64  `json:"amount"`
		Currency    string `json:"currency"`
		Status      string `json:"status"`
		ErrorCode   string `json:"error_code"`
		ErrorReason string `json:"error_reason"`
	}
	webhookOrder struct {
		ID       string `json:"id"`
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
		Status   string `json:"status"`
	}
	webhookRefund struct {
		ID        string `json:"id"`
		PaymentID string `json:"payment_id"`
		Amount    int64  `json:"amount"`
		Currency  string `json:"currency"`
		Status    string `json:"status"`
	}
)

var knownEvents = map[string]bool{
	commands.WebhookPaymentAuthorized: true, commands.WebhookPaymentCaptured: true,
	commands.WebhookPaymentFailed: true, commands.WebhookOrderPaid: true,
	commands.WebhookRefundProcessed: true, commands.WebhookRefundFailed: true,
}

// ParseWebhook checks X-Razorpay-Signature (hex HMAC-SHA256 of the exact
// raw body with the webhook secret, in constant time) and parses the event.
// A bad or missing signature is ErrBadSignature; a body that is not a
// Razorpay event is ErrInvalid. Unknown event types parse (Type set, the
// rest best effort); for the known ones a malformed entity is ErrInvalid.
func (c *Client) ParseWebhook(body []byte, signature string) (commands.WebhookEvent, error) {
	if !verify(c.cfg.WebhookSecret, body, signature) {
		return commands.WebhookEvent{}, commands.ErrBadSignature
	}
	return parseWebhook(body)
}

func parseWebhook(body []byte) (commands.WebhookEvent, error) {
	var env webhookEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return commands.WebhookEvent{}, domain.Invalid("razorpay webhook: not JSON: %v", err)
	}
	if env.Entity != "event" || env.Event == "" {
		return commands.WebhookEvent{}, domain.Invalid("razorpay webhook: not an event")
	}
	ev := commands.WebhookEvent{Type: env.Event}
	if env.CreatedAt > 0 {
		ev.CreatedAt = time.Unix(env.CreatedAt, 0).UTC()
	}
	var p webhookPayment
	var o webhookOrder
	var r webhookRefund
	errP := decodeEntity(env.Payload["payment"].Entity, &p)
	errO := decodeEntity(env.Payload["order"].Entity, &o)
	errR := decodeEntity(env.Payload["refund"].Entity, &r)
	for _, err := range []error{errP, errO, errR} {
		if err != nil && knownEvents[env.Event] {
			return commands.WebhookEvent{}, domain.Invalid("razorpay webhook %s: %v", env.Event, err)
		}
	}
	ev.OrderID, ev.PaymentID = p.OrderID, p.ID
	ev.Amount, ev.Currency, ev.Status = p.Amount, p.Currency, p.Status
	ev.ErrorReason = p.ErrorReason
	if ev.ErrorReason == "" {
		ev.ErrorReason = p.ErrorCode
	}
	if ev.OrderID == "" {
		ev.OrderID = o.ID
	}
	if ev.PaymentID == "" && ev.Amount == 0 { // an order without its payment
		ev.Amount, ev.Currency, ev.Status = o.Amount, o.Currency, o.Status
	}
	if r.ID != "" {
		ev.RefundID, ev.PaymentID = r.ID, r.PaymentID
		ev.Amount, ev.Currency, ev.Status = r.Amount, r.Currency, r.Status
		if ev.Currency == "" {
			ev.Currency = p.Currency
		}
	}
	return ev, nil
}

// decodeEntity decodes an entity if there is one (absent or null is none).
func decodeEntity(raw json.RawMessage, dst any) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return json.Unmarshal(raw, dst)
}
