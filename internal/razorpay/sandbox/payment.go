package sandbox

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors of the simulation API.
var (
	ErrUnknownOrder  = errors.New("sandbox: no such order")
	ErrOrderPaid     = errors.New("sandbox: the order is already paid")
	ErrUnknownRefund = errors.New("sandbox: no such pending refund")
)

// Checkout is what Razorpay Checkout hands the browser after a payment.
type Checkout struct {
	OrderID   string
	PaymentID string
	Signature string // hex HMAC-SHA256("OrderID|PaymentID", key secret)
}

// PayOption changes how Pay pays.
type PayOption func(*payOptions)

type payOptions struct {
	capture  *bool
	amount   int64
	currency string
}

// LeaveAuthorized leaves the payment authorized (not captured), whatever
// the order's payment_capture says.
func LeaveAuthorized() PayOption {
	return func(o *payOptions) { f := false; o.capture = &f }
}

// Capture captures the payment at once, whatever the order's
// payment_capture says.
func Capture() PayOption {
	return func(o *payOptions) { t := true; o.capture = &t }
}

// PayAmount pays amount instead of the order's amount (a tampered checkout).
func PayAmount(amount int64) PayOption {
	return func(o *payOptions) { o.amount = amount }
}

// PayCurrency pays in currency instead of the order's (a tampered checkout).
func PayCurrency(currency string) PayOption {
	return func(o *payOptions) { o.currency = currency }
}

// Pay completes a payment of orderID as Razorpay Checkout would: the
// payment is authorized and, when the order asked for automatic capture
// (payment_capture, default on) or Capture() is given, captured. It sends
// payment.authorized, then payment.captured and order.paid for a capture.
// A paid order refuses another payment.
func (e *Emulator) Pay(orderID string, opts ...PayOption) (Checkout, error) {
	var po payOptions
	for _, opt := range opts {
		opt(&po)
	}
	e.mu.Lock()
	o, ok := e.orders[orderID]
	if !ok {
		e.mu.Unlock()
		return Checkout{}, fmt.Errorf("pay %q: %w", orderID, ErrUnknownOrder)
	}
	if o.status == "paid" {
		e.mu.Unlock()
		return Checkout{}, fmt.Errorf("pay %q: %w", orderID, ErrOrderPaid)
	}
	p := e.newPaymentLocked(o)
	p.status = "authorized"
	if po.amount > 0 {
		p.amount = po.amount
	}
	if po.currency != "" {
		p.currency = po.currency
	}
	evs := []event{e.newEvent("payment.authorized", "payment", p.json())}
	if capture := o.autoCap; (po.capture == nil && capture) || (po.capture != nil && *po.capture) {
		evs = append(evs, e.captureLocked(p)...)
	}
	e.mu.Unlock()
	e.emit(evs)
	return Checkout{OrderID: orderID, PaymentID: p.id, Signature: e.CheckoutSignature(orderID, p.id)}, nil
}

// Fail records a failed payment attempt on orderID with Razorpay's
// error_reason reason (e.g. "payment_cancelled") and sends payment.failed.
// It returns the failed payment's id.
func (e *Emulator) Fail(orderID, reason string) (string, error) {
	if reason == "" {
		reason = "payment_failed"
	}
	e.mu.Lock()
	o, ok := e.orders[orderID]
	if !ok {
		e.mu.Unlock()
		return "", fmt.Errorf("fail %q: %w", orderID, ErrUnknownOrder)
	}
	if o.status == "paid" {
		e.mu.Unlock()
		return "", fmt.Errorf("fail %q: %w", orderID, ErrOrderPaid)
	}
	p := e.newPaymentLocked(o)
	p.status, p.errCode, p.errDesc, p.errReason = "failed", "BAD_REQUEST_ERROR", "Payment failed", reason
	ev := e.newEvent("payment.failed", "payment", p.json())
	e.mu.Unlock()
	e.emit([]event{ev})
	return p.id, nil
}

// newPaymentLocked adds a payment attempt to o; e.mu is held.
func (e *Emulator) newPaymentLocked(o *order) *payment {
	p := &payment{id: newID("pay"), orderID: o.id, amount: o.amount, currency: o.currency, createdAt: e.now().UTC()}
	e.payments[p.id] = p
	o.payments = append(o.payments, p.id)
	o.attempts++
	o.status = "attempted"
	return p
}

// captureLocked captures an authorized payment and returns the events it
// causes; e.mu is held.
func (e *Emulator) captureLocked(p *payment) []event {
	p.status, p.captured = "captured", true
	evs := []event{e.newEvent("payment.captured", "payment", p.json())}
	o := e.orders[p.orderID]
	o.amountPaid += p.amount
	if o.amountPaid >= o.amount {
		o.status = "paid"
		evs = append(evs, e.newEvent("order.paid", "payment", p.json(), "order", o.json()))
	}
	return evs
}

// captureRequest checks POST /v1/payments/{id}/capture against p.
func captureRequest(b body, p *payment) *apiError {
	amount, present, aerr := b.int("amount")
	if aerr != nil {
		return aerr
	}
	currency, aerr := b.string("currency")
	switch {
	case aerr != nil:
		return aerr
	case p.captured:
		return badRequest("", "This payment has already been captured")
	case p.status != "authorized":
		return badRequest("", "Only payments which have been authorized and not yet captured can be captured")
	case !present:
		return badRequest("amount", "The amount field is required.")
	case amount != p.amount:
		return badRequest("amount", "Capture amount must be equal to the amount authorized")
	case currency == "":
		return badRequest("currency", "The currency field is required.")
	case currency != p.currency:
		return badRequest("currency", "Currency should be same as the payment currency")
	}
	return nil
}

func (e *Emulator) capturePayment(w http.ResponseWriter, r *http.Request) {
	b, aerr := readBody(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	e.mu.Lock()
	p, ok := e.payments[r.PathValue("id")]
	if !ok {
		e.mu.Unlock()
		writeError(w, notExist())
		return
	}
	if aerr := captureRequest(b, p); aerr != nil {
		e.mu.Unlock()
		writeError(w, aerr)
		return
	}
	evs := e.captureLocked(p)
	j := p.json()
	e.mu.Unlock()
	e.emit(evs)
	writeJSON(w, http.StatusOK, j)
}

// refundLocked creates a refund of p (the whole refundable rest when
// amount is absent); e.mu is held.
func (e *Emulator) refundLocked(p *payment, b body) (*refund, *apiError) {
	amount, present, aerr := b.int("amount")
	if aerr != nil {
		return nil, aerr
	}
	if !p.captured {
		return nil, badRequest("", "The payment has not been captured yet and cannot be refunded")
	}
	rest := p.amount - p.amountRefunded
	if !present {
		amount = rest
	}
	switch {
	case rest <= 0:
		return nil, badRequest("", "The payment has been fully refunded already")
	case amount <= 0:
		return nil, badRequest("amount", "The amount must be at least 1.")
	case amount > rest:
		return nil, badRequest("amount", "The refund amount provided is greater than amount captured")
	}
	rf := &refund{id: newID("rfnd"), paymentID: p.id, amount: amount, currency: p.currency, status: "pending", createdAt: e.now().UTC()}
	e.refunds[rf.id] = rf
	p.amountRefunded += amount
	if p.amountRefunded >= p.amount {
		p.status = "refunded"
	}
	return rf, nil
}

func (e *Emulator) refundPayment(w http.ResponseWriter, r *http.Request) {
	b, aerr := readBody(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	key := r.Header.Get("X-Refund-Idempotency")
	e.mu.Lock()
	p, ok := e.payments[r.PathValue("id")]
	if !ok {
		e.mu.Unlock()
		writeError(w, notExist())
		return
	}
	if id, seen := e.idempotency[key]; key != "" && seen {
		rf := e.refunds[id]
		j := rf.json()
		e.mu.Unlock()
		if rf.paymentID != p.id {
			writeError(w, badRequest("", "The idempotency key was used for another payment"))
			return
		}
		writeJSON(w, http.StatusOK, j)
		return
	}
	rf, aerr := e.refundLocked(p, b)
	if aerr != nil {
		e.mu.Unlock()
		writeError(w, aerr)
		return
	}
	if key != "" {
		e.idempotency[key] = rf.id
	}
	outcome, j := e.refundOutcome, rf.json()
	evs := []event{e.newEvent("refund.created", "refund", j, "payment", p.json())}
	e.mu.Unlock()
	e.emit(evs)
	if outcome != RefundHold {
		e.goTrack(func() { _ = e.ProcessRefund(rf.id, outcome == RefundProcess) })
	}
	writeJSON(w, http.StatusOK, j)
}

// ProcessRefund settles a pending refund: processed when ok (sends
// refund.processed), else failed (the amount becomes refundable again;
// sends refund.failed).
func (e *Emulator) ProcessRefund(refundID string, ok bool) error {
	e.mu.Lock()
	rf, found := e.refunds[refundID]
	if !found || rf.status != "pending" {
		e.mu.Unlock()
		return fmt.Errorf("process refund %q: %w", refundID, ErrUnknownRefund)
	}
	p := e.payments[rf.paymentID]
	typ := "refund.processed"
	rf.status = "processed"
	if !ok {
		typ, rf.status = "refund.failed", "failed"
		p.amountRefunded -= rf.amount
		if p.status == "refunded" {
			p.status = "captured"
		}
	}
	ev := e.newEvent(typ, "refund", rf.json(), "payment", p.json())
	e.mu.Unlock()
	e.emit([]event{ev})
	return nil
}
