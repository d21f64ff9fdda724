package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// APIHandler serves Razorpay's REST API subset at /v1/...; mount it under a
// prefix with http.StripPrefix (razorpay-go's base URL is then
// http://host/prefix). Requests need basic auth with KeyID and KeySecret.
func (e *Emulator) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", e.createOrder)
	mux.HandleFunc("GET /v1/orders", e.listOrders)
	mux.HandleFunc("GET /v1/orders/{id}", e.getOrder)
	mux.HandleFunc("GET /v1/orders/{id}/payments", e.orderPayments)
	mux.HandleFunc("GET /v1/payments/{id}", e.getPayment)
	mux.HandleFunc("POST /v1/payments/{id}/capture", e.capturePayment)
	mux.HandleFunc("POST /v1/payments/{id}/refund", e.refundPayment)
	mux.HandleFunc("GET /v1/payments/{id}/refunds/{rid}", e.getRefund)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		e := badRequest("", "The requested URL was not found on the server.")
		e.status = http.StatusNotFound
		writeError(w, e)
	})
	return e.faulty(e.authenticated(mux))
}

// faulty applies the current Fault before next answers.
func (e *Emulator) faulty(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		f := e.fault
		e.mu.Unlock()
		if f.Latency > 0 && !e.sleep(r, f.Latency) {
			return
		}
		switch f.Mode {
		case Fault5xx:
			status := f.Status
			if status < 500 || status > 599 {
				status = http.StatusServiceUnavailable
			}
			writeError(w, serverError(status))
		case FaultHang:
			// The server notices a client that gave up only once the body
			// is read.
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			select {
			case <-r.Context().Done():
			case <-e.ctx.Done():
			}
		case FaultGarbage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// sleep waits d unless the request or the emulator ends first.
func (e *Emulator) sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-e.ctx.Done():
	}
	return false
}

func (e *Emulator) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		idOK := subtle.ConstantTimeCompare([]byte(id), []byte(e.keyID))
		secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(e.keySecret))
		if !ok || idOK&secretOK != 1 {
			writeError(w, authFailed())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// body is a decoded JSON request body.
type body map[string]any

func readBody(r *http.Request) (body, *apiError) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, badRequest("", "The request body could not be read")
	}
	b := body{}
	if len(raw) == 0 {
		return b, nil
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, badRequest("", "The request body is not valid JSON")
	}
	return b, nil
}

// int reads an integer field: present tells whether it was there at all.
func (b body) int(key string) (v int64, present bool, err *apiError) {
	raw, ok := b[key]
	if !ok || raw == nil {
		return 0, false, nil
	}
	switch x := raw.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true, nil
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, true, nil
		}
	}
	return 0, true, badRequest(key, fmt.Sprintf("The %s must be an integer.", key))
}

// string reads a string field ("" when absent).
func (b body) string(key string) (string, *apiError) {
	switch x := b[key].(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	}
	return "", badRequest(key, fmt.Sprintf("The %s must be a string.", key))
}

// bool reads a flag Razorpay accepts as true/false, 1/0 or "1"/"0".
func (b body) bool(key string, def bool) (bool, *apiError) {
	switch x := b[key].(type) {
	case nil:
		return def, nil
	case bool:
		return x, nil
	case float64:
		return x != 0, nil
	case string:
		if v, err := strconv.ParseBool(x); err == nil {
			return v, nil
		}
	}
	return false, badRequest(key, fmt.Sprintf("The %s field is invalid.", key))
}

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// notes validates Razorpay notes: at most 15 keys, string or number values
// of at most 256 characters.
func (b body) notes() (map[string]string, *apiError) {
	switch x := b["notes"].(type) {
	case nil:
		return nil, nil
	case []any:
		if len(x) == 0 {
			return nil, nil
		}
	case map[string]any:
		if len(x) > 15 {
			return nil, badRequest("notes", "Number of fields in notes should be less than or equal to 15")
		}
		n := make(map[string]string, len(x))
		for k, v := range x {
			switch s := v.(type) {
			case string:
				n[k] = s
			case float64:
				n[k] = strconv.FormatFloat(s, 'f', -1, 64)
			default:
				return nil, badRequest("notes", "The notes must be key-value pairs of strings")
			}
			if len(n[k]) > 256 {
				return nil, badRequest("notes", "The notes value may not be greater than 256 characters")
			}
		}
		return n, nil
	}
	return nil, badRequest("notes", "The notes must be key-value pairs of strings")
}

// orderRequest validates POST /v1/orders.
func orderRequest(b body) (*order, *apiError) {
	amount, present, err := b.int("amount")
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, badRequest("amount", "The amount field is required.")
	}
	if amount < 100 {
		return nil, badRequest("amount", "The amount must be atleast INR 1.00")
	}
	currency, err := b.string("currency")
	if err != nil {
		return nil, err
	}
	if !currencyRE.MatchString(currency) {
		return nil, badRequest("currency", "The currency must be a 3 letter ISO code.")
	}
	receipt, err := b.string("receipt")
	if err != nil {
		return nil, err
	}
	if len(receipt) > 40 {
		return nil, badRequest("receipt", "The receipt may not be greater than 40 characters.")
	}
	notes, err := b.notes()
	if err != nil {
		return nil, err
	}
	autoCap, err := b.bool("payment_capture", true)
	if err != nil {
		return nil, err
	}
	return &order{amount: amount, currency: currency, receipt: receipt, notes: notes, autoCap: autoCap, status: "created"}, nil
}

func (e *Emulator) createOrder(w http.ResponseWriter, r *http.Request) {
	b, aerr := readBody(r)
	if aerr == nil {
		var o *order
		if o, aerr = orderRequest(b); aerr == nil {
			e.mu.Lock()
			o.id, o.createdAt = newID("order"), e.now().UTC()
			e.orders[o.id] = o
			e.orderSeq = append(e.orderSeq, o.id)
			j := o.json()
			e.mu.Unlock()
			writeJSON(w, http.StatusOK, j)
			return
		}
	}
	writeError(w, aerr)
}

// listParams reads count (1..100, default 10) and skip (>= 0).
func listParams(r *http.Request) (count, skip int, err *apiError) {
	count, skip = 10, 0
	q := r.URL.Query()
	if s := q.Get("count"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > 100 {
			return 0, 0, badRequest("count", "The count must be between 1 and 100.")
		}
		count = n
	}
	if s := q.Get("skip"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 0 {
			return 0, 0, badRequest("skip", "The skip must be at least 0.")
		}
		skip = n
	}
	return count, skip, nil
}

func (e *Emulator) listOrders(w http.ResponseWriter, r *http.Request) {
	count, skip, aerr := listParams(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	receipt, filter := r.URL.Query().Get("receipt"), r.URL.Query().Has("receipt")
	var items []orderJSON
	e.mu.Lock()
	for i := len(e.orderSeq) - 1; i >= 0 && len(items) < count; i-- { // newest first
		o := e.orders[e.orderSeq[i]]
		if filter && o.receipt != receipt {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		items = append(items, o.json())
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, collection(items))
}

// answer writes what look finds (called with e.mu held), or Razorpay's
// "does not exist".
func answer[T any](e *Emulator, w http.ResponseWriter, look func() (T, bool)) {
	e.mu.Lock()
	j, ok := look()
	e.mu.Unlock()
	if !ok {
		writeError(w, notExist())
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (e *Emulator) getOrder(w http.ResponseWriter, r *http.Request) {
	answer(e, w, func() (orderJSON, bool) {
		o, ok := e.orders[r.PathValue("id")]
		if !ok {
			return orderJSON{}, false
		}
		return o.json(), true
	})
}

func (e *Emulator) orderPayments(w http.ResponseWriter, r *http.Request) {
	answer(e, w, func() (collectionJSON[paymentJSON], bool) {
		o, ok := e.orders[r.PathValue("id")]
		if !ok {
			return collectionJSON[paymentJSON]{}, false
		}
		var items []paymentJSON
		for _, id := range o.payments {
			items = append(items, e.payments[id].json())
		}
		return collection(items), true
	})
}

func (e *Emulator) getPayment(w http.ResponseWriter, r *http.Request) {
	answer(e, w, func() (paymentJSON, bool) {
		p, ok := e.payments[r.PathValue("id")]
		if !ok {
			return paymentJSON{}, false
		}
		return p.json(), true
	})
}

func (e *Emulator) getRefund(w http.ResponseWriter, r *http.Request) {
	answer(e, w, func() (refundJSON, bool) {
		rf, ok := e.refunds[r.PathValue("rid")]
		if !ok || rf.paymentID != r.PathValue("id") {
			return refundJSON{}, false
		}
		return rf.json(), true
	})
}
