package app

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/internal/razorpay"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/payments"
)

// PaymentOptions configures online payment (Razorpay).
type PaymentOptions struct {
	// KeyID, KeySecret and WebhookSecret (RAZORPAY_KEY_ID,
	// RAZORPAY_KEY_SECRET, RAZORPAY_WEBHOOK_SECRET) are real Razorpay keys.
	KeyID, KeySecret, WebhookSecret string
	// BaseURL (RAZORPAY_BASE_URL) points the client at another
	// Razorpay-compatible endpoint (default Razorpay's API).
	BaseURL string
	// Sandbox (RAZORPAY_SANDBOX) serves the Razorpay emulator in this
	// process, with its checkout page under /sandbox/checkout/; never with
	// real keys, and only where the API, the projections and the workers
	// run together (serve): its orders live in this process.
	Sandbox bool
	// Gateway, when set, is used as it is (tests).
	Gateway commands.Gateway
	// Timeout bounds each call to Razorpay (default 10 s).
	Timeout time.Duration
	// OrderWait bounds a request's wait for the order another request is
	// creating (default 10 s; see commands.Config).
	OrderWait time.Duration
	// Worker tunes the payments worker (zero values: its defaults).
	Worker payments.Config
}

// enabled reports whether online payment is configured.
func (p PaymentOptions) enabled() bool { return p.Gateway != nil || p.KeyID != "" || p.Sandbox }

// Validate checks the combination of settings for role.
func (p PaymentOptions) Validate(role Role) error {
	if role == "" {
		role = RoleAll
	}
	switch {
	case p.Sandbox && p.KeyID != "":
		return errors.New("RAZORPAY_SANDBOX is refused together with real Razorpay keys (RAZORPAY_KEY_ID)")
	case p.Sandbox && role != RoleAll:
		return errors.New("RAZORPAY_SANDBOX runs only in `prescripto serve`: the sandbox's orders live in the process that serves it")
	case p.KeyID != "" && (p.KeySecret == "" || p.WebhookSecret == ""):
		return errors.New("RAZORPAY_KEY_ID needs RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET")
	case p.KeyID == "" && (p.KeySecret != "" || p.WebhookSecret != ""):
		return errors.New("RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET need RAZORPAY_KEY_ID")
	}
	return nil
}

// sandboxHost is the made-up host of in-process calls to the sandbox and
// of its webhooks to this process's API; nothing resolves it.
const sandboxHost = "http://prescripto.sandbox"

// openPayments makes the payment gateway: the one given, Razorpay with
// real keys, or the in-process sandbox, reached through razorpay-go like
// Razorpay itself (over an in-process transport), its webhooks delivered
// to this process's API the same way.
func (sh *shared) openPayments() error {
	p := sh.opts.Payments
	if err := p.Validate(sh.opts.Role); err != nil {
		return err
	}
	switch {
	case p.Gateway != nil:
		sh.gateway = p.Gateway
	case p.KeyID != "":
		gw, err := razorpay.New(razorpay.Config{
			KeyID: p.KeyID, KeySecret: p.KeySecret, WebhookSecret: p.WebhookSecret, BaseURL: p.BaseURL, Timeout: p.Timeout,
		})
		if err != nil {
			return err
		}
		sh.gateway = gw
	case p.Sandbox:
		logger := sh.opts.Logger.With().Str("component", "razorpay-sandbox").Logger()
		emu := sandbox.New(sandbox.Config{
			WebhookURL: sandboxHost + "/api/v1/webhooks/razorpay", Client: &http.Client{Transport: &sh.self, Timeout: 10 * time.Second},
			Now: sh.opts.Now, Logger: &logger,
		})
		sh.closers = append(sh.closers, func() error { emu.Close(); return nil })
		gw, err := razorpay.New(razorpay.Config{
			KeyID: emu.KeyID(), KeySecret: emu.KeySecret(), WebhookSecret: emu.WebhookSecret(),
			BaseURL: sandboxHost + "/sandbox/razorpay", Timeout: p.Timeout,
			Transport:   handlerTransport{h: http.StripPrefix("/sandbox/razorpay", emu.APIHandler())},
			CheckoutURL: sandbox.CheckoutPath,
		})
		if err != nil {
			return err
		}
		sh.gateway, sh.sandbox = gw, emu
	}
	return nil
}

// withSandbox serves the sandbox's checkout page beside h.
func (sh *shared) withSandbox(h http.Handler) http.Handler {
	if sh.sandbox == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/sandbox/checkout/", sh.sandbox.CheckoutHandler())
	mux.Handle("/", h)
	return mux
}

// newPaymentsWorker is the payments worker (see newWorker for its runner).
func newPaymentsWorker(sh *shared, cmds *commands.Handler) (*projections.Live[*payments.Worker], error) {
	cfg := sh.opts.Payments.Worker
	cfg.Commands, cfg.Gateway, cfg.Now = cmds, sh.gateway, sh.opts.Now
	cfg.Logger = sh.opts.Logger.With().Str("component", "payments").Logger()
	if cfg.Metrics == nil {
		m, err := payments.NewMetrics(sh.prom)
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	return projections.NewLive(func() *payments.Worker { return payments.New(cfg) }), nil
}

// localRunner is a runner of ps with the in-process transport, forwarding
// from the store itself.
func (sh *shared) localRunner(topic string, ps ...projections.Runnable) (*projections.Runner, error) {
	pub, sub := projections.NewGoChannel(sh.opts.Logger)
	return projections.NewRunner(projections.RunnerConfig{
		Store: sh.store, Registry: sh.reg, Publisher: pub, Subscriber: sub, Logger: sh.opts.Logger, Forward: true,
		Projections: ps, Topic: topic, Middleware: sh.opts.RunnerMiddleware, Metrics: sh.applies,
	})
}

// selfTransport sends requests to this process's own HTTP handler, in
// process (set once the handler is built).
type selfTransport struct{ h atomic.Pointer[http.Handler] }

func (t *selfTransport) set(h http.Handler) { t.h.Store(&h) }

// RoundTrip implements http.RoundTripper.
func (t *selfTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := t.h.Load()
	if h == nil {
		return nil, errors.New("app: the handler is not built yet")
	}
	return handlerTransport{h: *h}.RoundTrip(r)
}

// handlerTransport serves requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

// RoundTrip implements http.RoundTripper.
func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err // the handler gave up with the caller (a timeout)
	}
	res := rec.Result()
	res.Request = r
	return res, nil
}
