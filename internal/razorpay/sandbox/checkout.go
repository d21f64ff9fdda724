package sandbox

import (
	"crypto/hmac"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// CheckoutPath is the path of orderID's sandbox checkout page.
func CheckoutPath(orderID string) string {
	return "/sandbox/checkout/" + url.PathEscape(orderID)
}

// CheckoutHandler serves the sandbox checkout page at
// GET /sandbox/checkout/{orderId} (mount it at the server's root, without
// stripping a prefix) and its actions POST /sandbox/checkout/{orderId}/pay
// and /fail. Opened with ?return=/some/path (a same-origin relative path),
// the page sends the browser there afterwards (303) with
// razorpay_order_id, razorpay_payment_id and razorpay_signature (or
// razorpay_error_reason for a failure) in the query.
func (e *Emulator) CheckoutHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sandbox/checkout/{orderId}", e.checkoutPage)
	mux.HandleFunc("POST /sandbox/checkout/{orderId}/pay", e.checkoutPay)
	mux.HandleFunc("POST /sandbox/checkout/{orderId}/fail", e.checkoutFail)
	return mux
}

// safeReturn accepts only a same-origin relative path: "/" then not "/" or
// "\" (which browsers read as another host), no scheme, host or control
// characters. "" means none.
func safeReturn(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "", false
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", false
	}
	return s, true
}

// formToken ties a form to its order so that another site cannot post it
// blindly (it cannot compute the token without the key secret).
func (e *Emulator) formToken(orderID string) string {
	return Sign(e.keySecret, []byte("checkout|"+orderID))
}

type checkoutView struct {
	OrderID, Receipt, Amount, Currency, Status, Return, Token string
	Paid                                                      *Checkout
	FailedPayment, FailedReason, Error                        string
}

func (e *Emulator) view(orderID string) (checkoutView, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o, ok := e.orders[orderID]
	if !ok {
		return checkoutView{}, false
	}
	return checkoutView{
		OrderID: o.id, Receipt: o.receipt, Currency: o.currency, Status: o.status,
		Amount: fmt.Sprintf("%d.%02d", o.amount/100, o.amount%100), Token: e.formToken(o.id),
	}, true
}

// checkoutStart loads the order and the return path of a checkout request,
// answering the error itself when it returns false.
func (e *Emulator) checkoutStart(w http.ResponseWriter, r *http.Request, ret string) (checkoutView, bool) {
	v, ok := e.view(r.PathValue("orderId"))
	if !ok {
		render(w, http.StatusNotFound, checkoutView{Error: "No such sandbox order."})
		return v, false
	}
	if v.Return, ok = safeReturn(ret); !ok {
		render(w, http.StatusBadRequest, checkoutView{Error: "The return address must be a path on this site."})
		return v, false
	}
	return v, true
}

func (e *Emulator) checkoutPage(w http.ResponseWriter, r *http.Request) {
	if v, ok := e.checkoutStart(w, r, r.URL.Query().Get("return")); ok {
		render(w, http.StatusOK, v)
	}
}

// checkoutPost parses and checks a checkout form.
func (e *Emulator) checkoutPost(w http.ResponseWriter, r *http.Request) (checkoutView, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, checkoutView{Error: "The form could not be read."})
		return checkoutView{}, false
	}
	v, ok := e.checkoutStart(w, r, r.PostForm.Get("return"))
	if ok && !hmac.Equal([]byte(r.PostForm.Get("token")), []byte(v.Token)) {
		render(w, http.StatusForbidden, checkoutView{Error: "This form did not come from the sandbox checkout page."})
		return v, false
	}
	return v, ok
}

// redirect sends the browser to the return path with params added.
func redirect(w http.ResponseWriter, r *http.Request, ret string, params url.Values) {
	u, _ := url.Parse(ret) // checked by safeReturn
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (e *Emulator) checkoutPay(w http.ResponseWriter, r *http.Request) {
	v, ok := e.checkoutPost(w, r)
	if !ok {
		return
	}
	c, err := e.Pay(v.OrderID)
	if err != nil {
		v.Error = "The order cannot be paid: it is already paid."
		render(w, http.StatusConflict, v)
		return
	}
	if v.Return != "" {
		redirect(w, r, v.Return, url.Values{"razorpay_order_id": {c.OrderID},
			"razorpay_payment_id": {c.PaymentID}, "razorpay_signature": {c.Signature}})
		return
	}
	v.Paid, v.Status = &c, "paid"
	render(w, http.StatusOK, v)
}

func (e *Emulator) checkoutFail(w http.ResponseWriter, r *http.Request) {
	v, ok := e.checkoutPost(w, r)
	if !ok {
		return
	}
	const reason = "payment_cancelled"
	pid, err := e.Fail(v.OrderID, reason)
	if err != nil {
		v.Error = "The order is already paid."
		render(w, http.StatusConflict, v)
		return
	}
	if v.Return != "" {
		redirect(w, r, v.Return, url.Values{"razorpay_order_id": {v.OrderID},
			"razorpay_payment_id": {pid}, "razorpay_error_reason": {reason}})
		return
	}
	v.FailedPayment, v.FailedReason = pid, reason
	render(w, http.StatusOK, v)
}

func render(w http.ResponseWriter, status int, v checkoutView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = checkoutTmpl.Execute(w, v)
}

var checkoutTmpl = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox checkout — no real money moves</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:2rem auto}.banner{background:#fde68a;padding:.5rem;border:2px dashed #b45309;font-weight:bold}dt{font-weight:bold}form{display:inline-block;margin:1rem .5rem 0 0}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}</style>
</head><body>
<p class="banner">Sandbox — no real money moves</p>
{{if .Error}}<h1>Sandbox checkout</h1><p role="alert">{{.Error}}</p>
{{else}}<h1>Sandbox checkout</h1>
<dl><dt>Order</dt><dd>{{.OrderID}}</dd><dt>Receipt</dt><dd>{{.Receipt}}</dd>
<dt>Amount</dt><dd>{{.Amount}} {{.Currency}}</dd><dt>Status</dt><dd>{{.Status}}</dd></dl>
{{if .Paid}}<h2>Paid</h2><dl>
<dt>razorpay_order_id</dt><dd id="razorpay_order_id">{{.Paid.OrderID}}</dd>
<dt>razorpay_payment_id</dt><dd id="razorpay_payment_id">{{.Paid.PaymentID}}</dd>
<dt>razorpay_signature</dt><dd id="razorpay_signature">{{.Paid.Signature}}</dd></dl>
{{else if .FailedPayment}}<h2>Payment failed</h2><p>Payment {{.FailedPayment}}: {{.FailedReason}}</p>
{{else if ne .Status "paid"}}
<form method="post" action="{{.OrderID}}/pay"><input type="hidden" name="token" value="{{.Token}}"><input type="hidden" name="return" value="{{.Return}}"><button type="submit">Pay {{.Amount}} {{.Currency}}</button></form>
<form method="post" action="{{.OrderID}}/fail"><input type="hidden" name="token" value="{{.Token}}"><input type="hidden" name="return" value="{{.Return}}"><button type="submit">Fail</button></form>
{{end}}{{end}}
</body></html>
`))
