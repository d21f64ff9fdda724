// Package sandbox is a Razorpay emulator: the subset of Razorpay's REST API
// that Prescripto uses (orders, order payments, payment fetch and capture,
// refunds), a checkout page that completes or fails a payment the way
// Razorpay Checkout would, and signed webhooks delivered like Razorpay's
// (asynchronously, retried, possibly duplicated or lost on request).
//
// It serves two masters: the tests, which reach it through razorpay-go with
// the client's base URL pointed at an httptest server, and RAZORPAY_SANDBOX=1,
// where the binary mounts it in-process. No real money moves, ever.
package sandbox

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Config configures an Emulator. Every field is optional.
type Config struct {
	// KeyID, KeySecret and WebhookSecret are the credentials it accepts and
	// signs with; empty ones are generated (rzp_test_sandbox_...).
	KeyID, KeySecret, WebhookSecret string
	// WebhookURL receives the webhooks; empty drops them (SetWebhookURL
	// sets it later, e.g. once the server listens).
	WebhookURL string
	// Client delivers webhooks (default: 10s timeout).
	Client *http.Client
	// Now is the clock for created_at (default time.Now).
	Now func() time.Time
	// Logger logs webhook deliveries (nil: silent).
	Logger *zerolog.Logger
	// WebhookAttempts bounds the deliveries of one event (default 5);
	// WebhookBackoff is the wait before the first retry, doubled after
	// each (default 200ms).
	WebhookAttempts int
	WebhookBackoff  time.Duration
}

// FaultMode is how the API misbehaves.
type FaultMode int

// Fault modes.
const (
	FaultNone    FaultMode = iota // answer normally
	Fault5xx                      // answer 503 (or Fault.Status) with Razorpay's server error body
	FaultHang                     // answer nothing until the request ends
	FaultGarbage                  // answer 200 with a body that is not JSON (a broken proxy)
)

// Fault is the API's misbehaviour: a mode, and a latency added before any
// answer.
type Fault struct {
	Mode    FaultMode
	Status  int // for Fault5xx: 500..599 (default 503)
	Latency time.Duration
}

// RefundOutcome is what becomes of a new refund.
type RefundOutcome int

// Refund outcomes.
const (
	RefundProcess RefundOutcome = iota // processed right after creation (default)
	RefundFail                         // failed right after creation
	RefundHold                         // stays pending until ProcessRefund
)

// Emulator is an in-memory Razorpay. It is safe for concurrent use; Close
// stops its background deliveries.
type Emulator struct {
	keyID, keySecret, webhookSecret string
	client                          *http.Client
	now                             func() time.Time
	log                             zerolog.Logger
	attempts                        int
	backoff                         time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	bgMu   sync.Mutex // guards closed and wg.Add against Close
	closed bool
	wg     sync.WaitGroup

	mu            sync.Mutex
	webhookURL    string
	webhooksOn    bool
	fault         Fault
	refundOutcome RefundOutcome
	orders        map[string]*order
	orderSeq      []string // creation order
	payments      map[string]*payment
	refunds       map[string]*refund
	idempotency   map[string]string // refund idempotency key -> refund id
	events        map[string]event
	deliveries    []Delivery
	inflight      int
}

// New makes an Emulator.
func New(c Config) *Emulator {
	e := &Emulator{
		keyID: c.KeyID, keySecret: c.KeySecret, webhookSecret: c.WebhookSecret,
		client: c.Client, now: c.Now, log: zerolog.Nop(),
		attempts: c.WebhookAttempts, backoff: c.WebhookBackoff,
		webhookURL: c.WebhookURL, webhooksOn: true,
		orders: map[string]*order{}, payments: map[string]*payment{},
		refunds: map[string]*refund{}, idempotency: map[string]string{},
		events: map[string]event{},
	}
	if e.keyID == "" {
		e.keyID = "rzp_test_sandbox_" + randomID(14)
	}
	if e.keySecret == "" {
		e.keySecret = randomID(24)
	}
	if e.webhookSecret == "" {
		e.webhookSecret = randomID(24)
	}
	if e.client == nil {
		e.client = &http.Client{Timeout: 10 * time.Second}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if c.Logger != nil {
		e.log = *c.Logger
	}
	if e.attempts <= 0 {
		e.attempts = 5
	}
	if e.backoff <= 0 {
		e.backoff = 200 * time.Millisecond
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Close stops the background work (webhook deliveries and retries, refund
// processing) and waits for it to end.
func (e *Emulator) Close() {
	e.bgMu.Lock()
	e.closed = true
	e.bgMu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// KeyID is the key id the API accepts.
func (e *Emulator) KeyID() string { return e.keyID }

// KeySecret is the key secret the API accepts and checkout signatures use.
func (e *Emulator) KeySecret() string { return e.keySecret }

// WebhookSecret is the secret webhooks are signed with.
func (e *Emulator) WebhookSecret() string { return e.webhookSecret }

// SetWebhookURL sets where webhooks go ("" drops them).
func (e *Emulator) SetWebhookURL(url string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.webhookURL = url
}

// SetFault makes the API misbehave (Fault{} restores it).
func (e *Emulator) SetFault(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fault = f
}

// SetWebhooksEnabled turns delivery on or off; while off, events are
// recorded (Redeliver can send them later) but lost on the way.
func (e *Emulator) SetWebhooksEnabled(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.webhooksOn = on
}

// SetRefundOutcome sets what becomes of the refunds created from now on.
func (e *Emulator) SetRefundOutcome(o RefundOutcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refundOutcome = o
}

// OrderCount is how many orders were created.
func (e *Emulator) OrderCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.orders)
}

// PaymentCount is how many payments were made (including failed ones).
func (e *Emulator) PaymentCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.payments)
}

// RefundCount is how many refunds were created (including failed ones).
func (e *Emulator) RefundCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.refunds)
}

// Sign is the hex HMAC-SHA256 of msg with secret, as Razorpay signs.
func Sign(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// CheckoutSignature is the signature Razorpay Checkout hands the browser
// for a payment: Sign(keySecret, "orderID|paymentID").
func (e *Emulator) CheckoutSignature(orderID, paymentID string) string {
	return Sign(e.keySecret, []byte(orderID+"|"+paymentID))
}

// SignWebhook is the X-Razorpay-Signature of a webhook body.
func (e *Emulator) SignWebhook(body []byte) string {
	return Sign(e.webhookSecret, body)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomID is n random base62 characters from crypto/rand.
func randomID(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(base62)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil { // crypto/rand does not fail on supported platforms
			v = big.NewInt(int64(time.Now().UnixNano() % int64(len(base62))))
		}
		b[i] = base62[v.Int64()]
	}
	return string(b)
}

// newID is a Razorpay-style id: prefix, "_", 14 base62 characters.
func newID(prefix string) string { return prefix + "_" + randomID(14) }

// goTrack runs f in the background, tracked by Close; after Close it
// runs nothing and returns false.
func (e *Emulator) goTrack(f func()) bool {
	e.bgMu.Lock()
	defer e.bgMu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
	return true
}
