package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Gateway is the payment provider (Razorpay) as the payment commands see
// it: a port, so that commands import no provider client. Its adapter
// (internal/razorpay) speaks to Razorpay, or to the project's emulator,
// through razorpay-go.
//
// Every call is bounded by the adapter's own timeout. A provider that does
// not answer, answers 5xx or cannot be reached is ErrGatewayUnavailable (a
// 503 to a client, a retry with back-off to a worker); a request the
// provider refuses is ErrGatewayRefused; an id it does not know is
// ErrGatewayNotFound.
type Gateway interface {
	// KeyID is the public key id a checkout needs.
	KeyID() string
	// CheckoutURL is where a patient pays orderID without a Razorpay
	// Checkout script (the sandbox's checkout page), or "" for real keys.
	CheckoutURL(orderID string) string

	// CreateOrder creates an order.
	CreateOrder(ctx context.Context, o NewOrder) (GatewayOrder, error)
	// OrderByReceipt finds the order created with receipt, if any (the
	// newest when there are several).
	OrderByReceipt(ctx context.Context, receipt string) (GatewayOrder, bool, error)
	// Order fetches one order.
	Order(ctx context.Context, orderID string) (GatewayOrder, error)
	// OrderPayments lists the payments made against an order.
	OrderPayments(ctx context.Context, orderID string) ([]GatewayPayment, error)
	// Payment fetches one payment.
	Payment(ctx context.Context, paymentID string) (GatewayPayment, error)
	// Capture captures an authorized payment of amount in currency and
	// returns it as it stands afterwards.
	Capture(ctx context.Context, paymentID string, amount int64, currency string) (GatewayPayment, error)
	// Refund refunds amount of a captured payment. idempotencyKey makes a
	// retried refund (also from another process) the same refund.
	Refund(ctx context.Context, paymentID string, amount int64, idempotencyKey string) (GatewayRefund, error)
	// RefundStatus fetches one refund of a payment.
	RefundStatus(ctx context.Context, paymentID, refundID string) (GatewayRefund, error)

	// VerifyPaymentSignature checks a checkout's signature: HMAC-SHA256 of
	// "orderID|paymentID" with the key secret, in constant time.
	VerifyPaymentSignature(orderID, paymentID, signature string) bool
	// ParseWebhook checks a webhook's signature (HMAC-SHA256 of the exact
	// raw body with the webhook secret, in constant time) and parses it.
	// A bad signature is ErrBadSignature; a body that is not a Razorpay
	// event is ErrInvalid.
	ParseWebhook(body []byte, signature string) (WebhookEvent, error)
}

// NewOrder asks for an order.
type NewOrder struct {
	Amount   int64 // minor units
	Currency string
	Receipt  string // the appointment id
	Notes    map[string]string
}

// GatewayOrder is an order as the provider reports it.
type GatewayOrder struct {
	ID       string
	Amount   int64
	Currency string
	Receipt  string
	Status   string // created, attempted, paid
	Notes    map[string]string
}

// Payment statuses as Razorpay reports them.
const (
	GatewayPaymentCreated    = "created"
	GatewayPaymentAuthorized = "authorized"
	GatewayPaymentCaptured   = "captured"
	GatewayPaymentRefunded   = "refunded"
	GatewayPaymentFailed     = "failed"
)

// GatewayPayment is a payment as the provider reports it.
type GatewayPayment struct {
	ID          string
	OrderID     string
	Amount      int64
	Currency    string
	Status      string // see GatewayPayment* constants
	ErrorReason string // for a failed payment
}

// Refund statuses as Razorpay reports them.
const (
	GatewayRefundPending   = "pending"
	GatewayRefundProcessed = "processed"
	GatewayRefundFailed    = "failed"
)

// GatewayRefund is a refund as the provider reports it.
type GatewayRefund struct {
	ID        string
	PaymentID string
	Amount    int64
	Status    string // see GatewayRefund* constants
}

// Webhook event types the engine acts on.
const (
	WebhookPaymentAuthorized = "payment.authorized"
	WebhookPaymentCaptured   = "payment.captured"
	WebhookPaymentFailed     = "payment.failed"
	WebhookOrderPaid         = "order.paid"
	WebhookRefundProcessed   = "refund.processed"
	WebhookRefundFailed      = "refund.failed"
)

// WebhookEvent is a verified webhook, reduced to the facts the engine uses
// (no payer contact details are kept).
type WebhookEvent struct {
	Type        string // e.g. "payment.captured"; unknown types are kept too
	OrderID     string
	PaymentID   string
	RefundID    string
	Amount      int64 // of the payment, or of the refund for refund.*
	Currency    string
	Status      string // the payment's or refund's status in the event
	ErrorReason string
	CreatedAt   time.Time
}

// Errors of a Gateway.
var (
	ErrGatewayUnavailable = domain.NewError(domain.ErrUnavailable, "payment_provider_unavailable", "the payment provider is not answering; retry")
	ErrGatewayRefused     = domain.NewError(domain.ErrUnprocessable, "payment_provider_refused", "the payment provider refused the request")
	ErrGatewayNotFound    = domain.NewError(domain.ErrNotFound, "payment_not_found", "the payment provider knows no such order or payment")
	ErrBadSignature       = domain.NewError(domain.ErrInvalid, "bad_signature", "the signature does not match")
)
