package sandbox

import (
	"encoding/json"
	"net/http"
	"time"
)

// order, payment and refund are the emulator's state; the *JSON types
// below are how Razorpay shows them on the wire.
type order struct {
	id         string
	amount     int64
	amountPaid int64
	currency   string
	receipt    string
	status     string // created, attempted, paid
	attempts   int
	notes      map[string]string
	autoCap    bool
	createdAt  time.Time
	payments   []string
}

type payment struct {
	id             string
	orderID        string
	amount         int64
	currency       string
	status         string // authorized, captured, refunded, failed
	captured       bool
	amountRefunded int64
	errCode        string
	errDesc        string
	errReason      string
	createdAt      time.Time
}

type refund struct {
	id        string
	paymentID string
	amount    int64
	currency  string
	status    string // pending, processed, failed
	createdAt time.Time
}

// notesJSON is Razorpay's notes: an object, or [] when there are none (as
// Razorpay's PHP backend answers an empty map).
func notesJSON(n map[string]string) any {
	if len(n) == 0 {
		return []string{}
	}
	return n
}

// nullable is a JSON string that is null when empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type orderJSON struct {
	ID         string  `json:"id"`
	Entity     string  `json:"entity"`
	Amount     int64   `json:"amount"`
	AmountPaid int64   `json:"amount_paid"`
	AmountDue  int64   `json:"amount_due"`
	Currency   string  `json:"currency"`
	Receipt    *string `json:"receipt"`
	OfferID    *string `json:"offer_id"`
	Status     string  `json:"status"`
	Attempts   int     `json:"attempts"`
	Notes      any     `json:"notes"`
	CreatedAt  int64   `json:"created_at"`
}

func (o *order) json() orderJSON {
	return orderJSON{
		ID: o.id, Entity: "order", Amount: o.amount, AmountPaid: o.amountPaid,
		AmountDue: max(o.amount-o.amountPaid, 0), Currency: o.currency,
		Receipt: nullable(o.receipt), Status: o.status, Attempts: o.attempts,
		Notes: notesJSON(o.notes), CreatedAt: o.createdAt.Unix(),
	}
}

type paymentJSON struct {
	ID               string            `json:"id"`
	Entity           string            `json:"entity"`
	Amount           int64             `json:"amount"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	OrderID          string            `json:"order_id"`
	InvoiceID        *string           `json:"invoice_id"`
	International    bool              `json:"international"`
	Method           string            `json:"method"`
	AmountRefunded   int64             `json:"amount_refunded"`
	RefundStatus     *string           `json:"refund_status"`
	Captured         bool              `json:"captured"`
	Description      string            `json:"description"`
	CardID           *string           `json:"card_id"`
	Bank             *string           `json:"bank"`
	Wallet           *string           `json:"wallet"`
	VPA              *string           `json:"vpa"`
	Email            string            `json:"email"`
	Contact          string            `json:"contact"`
	Notes            any               `json:"notes"`
	Fee              *int64            `json:"fee"`
	Tax              *int64            `json:"tax"`
	ErrorCode        *string           `json:"error_code"`
	ErrorDescription *string           `json:"error_description"`
	ErrorSource      *string           `json:"error_source"`
	ErrorStep        *string           `json:"error_step"`
	ErrorReason      *string           `json:"error_reason"`
	AcquirerData     map[string]string `json:"acquirer_data"`
	CreatedAt        int64             `json:"created_at"`
}

func (p *payment) json() paymentJSON {
	j := paymentJSON{
		ID: p.id, Entity: "payment", Amount: p.amount, Currency: p.currency,
		Status: p.status, OrderID: p.orderID, Method: "card",
		AmountRefunded: p.amountRefunded, Captured: p.captured,
		Description: "Sandbox payment", CardID: nullable("card_sandbox00000000"),
		// Razorpay's test-mode placeholders: the adapter must keep none of it.
		Email: "void@razorpay.com", Contact: "+919999999999",
		Notes: []string{}, ErrorCode: nullable(p.errCode),
		ErrorDescription: nullable(p.errDesc), ErrorReason: nullable(p.errReason),
		AcquirerData: map[string]string{}, CreatedAt: p.createdAt.Unix(),
	}
	if p.errCode != "" {
		j.ErrorSource, j.ErrorStep = nullable("customer"), nullable("payment_authentication")
	}
	switch {
	case p.amountRefunded > 0 && p.amountRefunded >= p.amount:
		j.RefundStatus = nullable("full")
	case p.amountRefunded > 0:
		j.RefundStatus = nullable("partial")
	}
	if p.captured {
		fee, tax := p.amount*2/100, int64(0)
		j.Fee, j.Tax = &fee, &tax
	}
	return j
}

type refundJSON struct {
	ID             string             `json:"id"`
	Entity         string             `json:"entity"`
	Amount         int64              `json:"amount"`
	Currency       string             `json:"currency"`
	PaymentID      string             `json:"payment_id"`
	Notes          any                `json:"notes"`
	Receipt        *string            `json:"receipt"`
	AcquirerData   map[string]*string `json:"acquirer_data"`
	CreatedAt      int64              `json:"created_at"`
	BatchID        *string            `json:"batch_id"`
	Status         string             `json:"status"`
	SpeedProcessed string             `json:"speed_processed"`
	SpeedRequested string             `json:"speed_requested"`
}

func (r *refund) json() refundJSON {
	return refundJSON{
		ID: r.id, Entity: "refund", Amount: r.amount, Currency: r.currency,
		PaymentID: r.paymentID, Notes: []string{},
		AcquirerData: map[string]*string{"arn": nil}, CreatedAt: r.createdAt.Unix(),
		Status: r.status, SpeedProcessed: "normal", SpeedRequested: "normal",
	}
}

type collectionJSON[T any] struct {
	Entity string `json:"entity"`
	Count  int    `json:"count"`
	Items  []T    `json:"items"`
}

func collection[T any](items []T) collectionJSON[T] {
	if items == nil {
		items = []T{}
	}
	return collectionJSON[T]{Entity: "collection", Count: len(items), Items: items}
}

// apiError is Razorpay's error answer: {"error":{...}}.
type apiError struct {
	status      int
	Code        string         `json:"code"`
	Description string         `json:"description"`
	Source      string         `json:"source"`
	Step        string         `json:"step"`
	Reason      string         `json:"reason"`
	Metadata    map[string]any `json:"metadata"`
	Field       *string        `json:"field,omitempty"`
}

// badRequest is a 400 validation error about field ("" for none).
func badRequest(field, description string) *apiError {
	return &apiError{
		status: http.StatusBadRequest, Code: "BAD_REQUEST_ERROR", Description: description,
		Source: "business", Step: "payment_initiation", Reason: "input_validation_failed",
		Metadata: map[string]any{}, Field: nullable(field),
	}
}

// notExist is Razorpay's answer for an id it does not know.
func notExist() *apiError {
	return badRequest("id", "The id provided does not exist")
}

func authFailed() *apiError {
	return &apiError{
		status: http.StatusUnauthorized, Code: "BAD_REQUEST_ERROR", Description: "Authentication failed",
		Source: "NA", Step: "NA", Reason: "NA", Metadata: map[string]any{},
	}
}

func serverError(status int) *apiError {
	return &apiError{
		status: status, Code: "SERVER_ERROR",
		Description: "The server encountered an error. The incident has been reported to admins.",
		Source:      "NA", Step: "NA", Reason: "server_error", Metadata: map[string]any{},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]*apiError{"error": e})
}
