package razorpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	rzperrors "github.com/razorpay/razorpay-go/errors"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
)

// apiError is Razorpay's error body: {"error":{"code":..,"description":..}}.
type apiError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
	Reason      string `json:"reason"`
	Field       string `json:"field"`
}

// statusError is an answer razorpay-go must not interpret: a 5xx, a
// redirect, or an error that is not Razorpay's JSON. It ends the call as a
// transport error, so razorpay-go returns it as it is.
type statusError struct {
	status int
	desc   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("answered %d %s", e.status, e.desc)
}

// callTransport is one call's transport: it puts the call's ctx on the
// request (razorpay-go makes requests without one) and keeps the status
// and Razorpay error of the answer.
type callTransport struct {
	ctx    context.Context
	next   http.RoundTripper
	status int
	apiErr *apiError
}

// RoundTrip implements http.RoundTripper.
func (t *callTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r.WithContext(t.ctx))
	if err != nil {
		return nil, err
	}
	t.status = resp.StatusCode
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var wrapped struct {
		Error *apiError `json:"error"`
	}
	parsed := json.Unmarshal(body, &wrapped) == nil && wrapped.Error != nil
	if parsed {
		t.apiErr = wrapped.Error
	}
	if resp.StatusCode >= 500 || resp.StatusCode < 400 || !parsed {
		desc := http.StatusText(resp.StatusCode)
		if parsed {
			desc = wrapped.Error.Description
		}
		return nil, &statusError{status: resp.StatusCode, desc: desc}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// mapError maps what a razorpay-go call returned to the port's errors:
// ctx ended, timeouts, network errors, 5xx and answers that are not
// Razorpay's are ErrGatewayUnavailable; an id Razorpay does not know is
// ErrGatewayNotFound; any other 4xx is ErrGatewayRefused.
func (c *Client) mapError(ctx context.Context, op string, rt *callTransport, err error) error {
	if ctx.Err() != nil {
		return unavailable(op, ctx.Err())
	}
	var (
		se  *statusError
		srv *rzperrors.ServerError
		gw  *rzperrors.GatewayError
		bad *rzperrors.BadRequestError
	)
	switch {
	case errors.As(err, &se):
		return domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: %v", op, se)
	case isCtxErr(err):
		return fmt.Errorf("%w: %w", domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: no answer within %s", op, c.cfg.Timeout), err)
	case errors.As(err, &srv), errors.As(err, &gw):
		return domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: %v", op, err)
	case errors.As(err, &bad):
		return refusal(op, rt, bad)
	}
	// Network errors and answers razorpay-go could not decode.
	return domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: %v", op, err)
}

// refusal maps a 4xx: Razorpay answers an unknown id with 400 "The id
// provided does not exist" (its only signal: there is no error code for
// it), bad credentials with 401, a path it does not serve (a wrong base
// URL) with 404.
func refusal(op string, rt *callTransport, bad *rzperrors.BadRequestError) error {
	desc := bad.Message
	if rt.apiErr != nil && rt.apiErr.Description != "" {
		desc = rt.apiErr.Description
	}
	switch {
	case strings.Contains(strings.ToLower(desc), "does not exist"):
		return domain.Detail(commands.ErrGatewayNotFound, "razorpay: %s: %s", op, desc)
	case rt.status == http.StatusNotFound:
		return domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: 404 %s (check RAZORPAY_BASE_URL)", op, desc)
	case rt.status == http.StatusUnauthorized:
		return domain.Detail(commands.ErrGatewayRefused, "razorpay: %s: %s (check RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET)", op, desc)
	}
	return domain.Detail(commands.ErrGatewayRefused, "razorpay: %s: %d %s", op, rt.status, desc)
}
