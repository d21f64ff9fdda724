package razorpay

import (
	"context"
	"math"

	"github.com/prescripto/prescripto/commands"
)

// CreateOrder creates an order with payment_capture 1: Razorpay captures a
// payment as soon as it is authorized, so that a paid order is money
// received (a payment that comes too late is refunded, never left
// authorized). Capture stays for payments that an account's settings leave
// authorized.
func (c *Client) CreateOrder(ctx context.Context, o commands.NewOrder) (commands.GatewayOrder, error) {
	const op = "create order"
	if o.Amount <= 0 {
		return commands.GatewayOrder{}, errRefusedLocally(op, "amount %d is not positive", o.Amount)
	}
	data := map[string]any{
		"amount": o.Amount, "currency": o.Currency, "receipt": o.Receipt, "payment_capture": 1,
	}
	if len(o.Notes) > 0 {
		data["notes"] = o.Notes
	}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) { return a.order.Create(data, nil) })
	if err != nil {
		return commands.GatewayOrder{}, err
	}
	return parseOrder(op, m)
}

// OrderByReceipt finds the newest order created with receipt
// (GET /v1/orders?receipt=..., which Razorpay answers newest first).
func (c *Client) OrderByReceipt(ctx context.Context, receipt string) (commands.GatewayOrder, bool, error) {
	const op = "find order by receipt"
	if receipt == "" {
		return commands.GatewayOrder{}, false, nil
	}
	q := map[string]any{"receipt": receipt, "count": 1}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) { return a.order.All(q, nil) })
	if err != nil {
		return commands.GatewayOrder{}, false, err
	}
	list, err := items(op, m)
	if err != nil || len(list) == 0 {
		return commands.GatewayOrder{}, false, err
	}
	o, err := parseOrder(op, list[0])
	if err != nil {
		return commands.GatewayOrder{}, false, err
	}
	if o.Receipt != receipt { // a server that ignores the filter
		return commands.GatewayOrder{}, false, badShape(op, "asked for receipt %q, got %q", receipt, o.Receipt)
	}
	return o, true, nil
}

// Order fetches one order.
func (c *Client) Order(ctx context.Context, orderID string) (commands.GatewayOrder, error) {
	const op = "fetch order"
	if err := checkID(op, "order", orderID); err != nil {
		return commands.GatewayOrder{}, err
	}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) { return a.order.Fetch(orderID, nil, nil) })
	if err != nil {
		return commands.GatewayOrder{}, err
	}
	return parseOrder(op, m)
}

// OrderPayments lists the payments made against an order.
func (c *Client) OrderPayments(ctx context.Context, orderID string) ([]commands.GatewayPayment, error) {
	const op = "list order payments"
	if err := checkID(op, "order", orderID); err != nil {
		return nil, err
	}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) { return a.order.Payments(orderID, nil, nil) })
	if err != nil {
		return nil, err
	}
	list, err := items(op, m)
	if err != nil {
		return nil, err
	}
	out := make([]commands.GatewayPayment, 0, len(list))
	for _, e := range list {
		p, err := parsePayment(op, e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Payment fetches one payment.
func (c *Client) Payment(ctx context.Context, paymentID string) (commands.GatewayPayment, error) {
	const op = "fetch payment"
	if err := checkID(op, "payment", paymentID); err != nil {
		return commands.GatewayPayment{}, err
	}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) { return a.payment.Fetch(paymentID, nil, nil) })
	if err != nil {
		return commands.GatewayPayment{}, err
	}
	return parsePayment(op, m)
}

// Capture captures an authorized payment of amount in currency.
func (c *Client) Capture(ctx context.Context, paymentID string, amount int64, currency string) (commands.GatewayPayment, error) {
	const op = "capture payment"
	if err := checkID(op, "payment", paymentID); err != nil {
		return commands.GatewayPayment{}, err
	}
	if amount <= 0 || amount > math.MaxInt {
		return commands.GatewayPayment{}, errRefusedLocally(op, "amount %d is out of range", amount)
	}
	data := map[string]any{"currency": currency}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) {
		return a.payment.Capture(paymentID, int(amount), data, nil)
	})
	if err != nil {
		return commands.GatewayPayment{}, err
	}
	return parsePayment(op, m)
}

// Refund refunds amount of a captured payment (speed normal). The
// idempotency key goes in X-Refund-Idempotency, so that the same key
// returns the same refund instead of making a second one.
func (c *Client) Refund(ctx context.Context, paymentID string, amount int64, idempotencyKey string) (commands.GatewayRefund, error) {
	const op = "refund payment"
	if err := checkID(op, "payment", paymentID); err != nil {
		return commands.GatewayRefund{}, err
	}
	if amount <= 0 || amount > math.MaxInt {
		return commands.GatewayRefund{}, errRefusedLocally(op, "amount %d is out of range", amount)
	}
	var headers map[string]string
	if idempotencyKey != "" {
		headers = map[string]string{"X-Refund-Idempotency": idempotencyKey}
	}
	data := map[string]any{"speed": "normal"}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) {
		return a.payment.Refund(paymentID, int(amount), data, headers)
	})
	if err != nil {
		return commands.GatewayRefund{}, err
	}
	return parseRefund(op, m)
}

// RefundStatus fetches one refund of a payment.
func (c *Client) RefundStatus(ctx context.Context, paymentID, refundID string) (commands.GatewayRefund, error) {
	const op = "fetch refund"
	if err := checkID(op, "payment", paymentID); err != nil {
		return commands.GatewayRefund{}, err
	}
	if err := checkID(op, "refund", refundID); err != nil {
		return commands.GatewayRefund{}, err
	}
	m, err := c.call(ctx, op, func(a api) (map[string]any, error) {
		return a.payment.FetchRefund(paymentID, refundID, nil, nil)
	})
	if err != nil {
		return commands.GatewayRefund{}, err
	}
	return parseRefund(op, m)
}
