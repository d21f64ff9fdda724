package razorpay

import (
	"fmt"
	"math"
	"strconv"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
)

// entity is one of razorpay-go's answers, map[string]any decoded by
// encoding/json: numbers are float64, nulls nil, notes [] when empty.
type entity map[string]any

// badShape is an answer that is not what Razorpay documents: the provider
// (or whatever answered in its place) is not working as it should.
func badShape(op, format string, args ...any) error {
	return domain.Detail(commands.ErrGatewayUnavailable, "razorpay: %s: unexpected answer: %s", op, fmt.Sprintf(format, args...))
}

// str reads a string field; absent or null is "".
func (e entity) str(key string) (string, error) {
	switch v := e[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("%s is %T, not a string", key, v)
	}
}

// mustStr reads a string field that must be there.
func (e entity) mustStr(key string) (string, error) {
	s, err := e.str(key)
	if err == nil && s == "" {
		err = fmt.Errorf("%s is missing", key)
	}
	return s, err
}

// amount reads a whole number of minor units.
func (e entity) amount(key string) (int64, error) {
	switch v := e[key].(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return int64(v), nil
		}
		return 0, fmt.Errorf("%s %v is not a whole number", key, v)
	case nil:
		return 0, fmt.Errorf("%s is missing", key)
	default:
		return 0, fmt.Errorf("%s is %T, not a number", key, v)
	}
}

// notes reads Razorpay's notes: an object, or [] (or null) when empty.
func (e entity) notes() (map[string]string, error) {
	switch v := e["notes"].(type) {
	case nil:
		return nil, nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("notes is a non-empty list")
	case map[string]any:
		n := make(map[string]string, len(v))
		for k, x := range v {
			switch s := x.(type) {
			case string:
				n[k] = s
			case float64:
				n[k] = strconv.FormatFloat(s, 'f', -1, 64)
			case bool:
				n[k] = strconv.FormatBool(s)
			case nil:
				n[k] = ""
			default:
				return nil, fmt.Errorf("note %q is %T", k, x)
			}
		}
		return n, nil
	default:
		return nil, fmt.Errorf("notes is %T", v)
	}
}

// fields reads several fields, stopping at the first error.
type fields struct {
	e   entity
	err error
}

func (f *fields) str(key string, dst *string, required bool) {
	if f.err != nil {
		return
	}
	if required {
		*dst, f.err = f.e.mustStr(key)
	} else {
		*dst, f.err = f.e.str(key)
	}
}

func (f *fields) amount(key string, dst *int64) {
	if f.err == nil {
		*dst, f.err = f.e.amount(key)
	}
}

func parseOrder(op string, e entity) (commands.GatewayOrder, error) {
	var o commands.GatewayOrder
	f := fields{e: e}
	f.str("id", &o.ID, true)
	f.amount("amount", &o.Amount)
	f.str("currency", &o.Currency, true)
	f.str("receipt", &o.Receipt, false)
	f.str("status", &o.Status, true)
	if f.err == nil {
		o.Notes, f.err = e.notes()
	}
	if f.err != nil {
		return commands.GatewayOrder{}, badShape(op, "order: %v", f.err)
	}
	return o, nil
}

func parsePayment(op string, e entity) (commands.GatewayPayment, error) {
	var p commands.GatewayPayment
	f := fields{e: e}
	f.str("id", &p.ID, true)
	f.str("order_id", &p.OrderID, false)
	f.amount("amount", &p.Amount)
	f.str("currency", &p.Currency, true)
	f.str("status", &p.Status, true)
	f.str("error_reason", &p.ErrorReason, false)
	if f.err == nil && p.ErrorReason == "" && p.Status == commands.GatewayPaymentFailed {
		f.str("error_code", &p.ErrorReason, false)
	}
	if f.err != nil {
		return commands.GatewayPayment{}, badShape(op, "payment: %v", f.err)
	}
	return p, nil
}

func parseRefund(op string, e entity) (commands.GatewayRefund, error) {
	var r commands.GatewayRefund
	f := fields{e: e}
	f.str("id", &r.ID, true)
	f.str("payment_id", &r.PaymentID, true)
	f.amount("amount", &r.Amount)
	f.str("status", &r.Status, true)
	if f.err != nil {
		return commands.GatewayRefund{}, badShape(op, "refund: %v", f.err)
	}
	return r, nil
}

// items reads a collection's items as entities.
func items(op string, e entity) ([]entity, error) {
	raw, ok := e["items"].([]any)
	if !ok {
		return nil, badShape(op, "collection items are %T", e["items"])
	}
	out := make([]entity, 0, len(raw))
	for i, x := range raw {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, badShape(op, "item %d is %T", i, x)
		}
		out = append(out, m)
	}
	return out, nil
}
