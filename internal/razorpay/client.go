// Package razorpay is the payment Gateway (commands.Gateway) over Razorpay's
// API, through github.com/razorpay/razorpay-go. The same client speaks to
// Razorpay or, with BaseURL pointed at it, to the project's emulator
// (package sandbox).
package razorpay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	rzp "github.com/razorpay/razorpay-go"
	"github.com/razorpay/razorpay-go/constants"
	"github.com/razorpay/razorpay-go/requests"
	"github.com/razorpay/razorpay-go/resources"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
)

// DefaultBaseURL is Razorpay's API.
const DefaultBaseURL = constants.BASE_URL

// DefaultTimeout bounds one call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures a Client.
type Config struct {
	KeyID, KeySecret string // required
	// WebhookSecret verifies webhooks; empty refuses every webhook.
	WebhookSecret string
	// BaseURL is Razorpay's API root (default DefaultBaseURL), e.g. the
	// sandbox's http://host/sandbox/razorpay.
	BaseURL string
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration
	// CheckoutURL gives a checkout page for an order (the sandbox's); nil
	// for real keys.
	CheckoutURL func(orderID string) string
	// Transport carries the calls (default: a clone of
	// http.DefaultTransport); the in-process sandbox is reached through
	// one that serves its handler.
	Transport http.RoundTripper
}

// Validate checks c and fills in its defaults.
func (c *Config) Validate() error {
	if c.KeyID == "" || c.KeySecret == "" {
		return domain.Invalid("razorpay: the key id and key secret are required")
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return domain.Invalid("razorpay: base URL %q is not an http(s) URL", c.BaseURL)
	}
	if c.Timeout < 0 {
		return domain.Invalid("razorpay: timeout %s is negative", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return nil
}

// Client is a commands.Gateway speaking to Razorpay through razorpay-go.
// It is safe for concurrent use.
type Client struct {
	cfg       Config
	base      requests.Request // copied for each call, see call
	transport http.RoundTripper
}

var _ commands.Gateway = (*Client)(nil)

// New makes a Client. It builds razorpay-go's request itself rather than
// calling razorpay.NewClient, which writes a package-level variable.
func New(c Config) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var tr http.RoundTripper = c.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Client{
		cfg: c,
		base: requests.Request{
			Auth:       requests.Auth{Key: c.KeyID, Secret: c.KeySecret},
			HTTPClient: &http.Client{Timeout: c.Timeout, Transport: tr},
			Headers:    map[string]string{},
			Version:    rzp.SDKVersion,
			SDKName:    rzp.SDKName,
			BaseURL:    trimSlash(c.BaseURL),
		},
		transport: tr,
	}, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// KeyID is the public key id.
func (c *Client) KeyID() string { return c.cfg.KeyID }

// CheckoutURL is the configured checkout page of orderID, or "".
func (c *Client) CheckoutURL(orderID string) string {
	if c.cfg.CheckoutURL == nil {
		return ""
	}
	return c.cfg.CheckoutURL(orderID)
}

// api is razorpay-go's resources bound to one call's request.
type api struct {
	order   resources.Order
	payment resources.Payment
}

// call runs f against razorpay-go with a request of its own whose HTTP
// transport carries ctx (bounded by the timeout), so that a ctx that ends
// ends the HTTP request at once, and which records what Razorpay answered
// so that errors map on the status and Razorpay's error body.
func (c *Client) call(ctx context.Context, op string, f func(api) (map[string]any, error)) (m map[string]any, err error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rt := &callTransport{ctx: cctx, next: c.transport}
	req := c.base
	req.HTTPClient = &http.Client{Timeout: c.cfg.Timeout, Transport: rt}
	defer func() { // razorpay-go panics on some inputs; never let it through
		if p := recover(); p != nil {
			m, err = nil, domain.Detail(commands.ErrGatewayRefused, "razorpay: %s: the request could not be made: %v", op, p)
		}
	}()
	m, err = f(api{order: resources.Order{Request: &req}, payment: resources.Payment{Request: &req}})
	if err != nil {
		return nil, c.mapError(ctx, op, rt, err)
	}
	return m, nil
}

// unavailable is ErrGatewayUnavailable for a ctx that ended; it matches
// both the sentinel and the ctx's error.
func unavailable(op string, ctxErr error) error {
	return fmt.Errorf("%w: %w", domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: %v", op, ctxErr), ctxErr)
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// checkID refuses an id that is not Razorpay's shape before it reaches a
// URL: Razorpay would not know it anyway.
func checkID(op, kind, id string) error {
	if !idRE.MatchString(id) {
		return domain.Detail(commands.ErrGatewayNotFound, "razorpay: %s: %q is not a Razorpay %s id", op, id, kind)
	}
	return nil
}

// errRefusedLocally is the Detail for arguments no call is made for.
func errRefusedLocally(op, format string, args ...any) error {
	return domain.Detail(commands.ErrGatewayRefused, "razorpay: %s: %s", op, fmt.Sprintf(format, args...))
}

// isCtxErr tells a deadline or cancellation apart from other failures.
func isCtxErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
