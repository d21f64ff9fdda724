package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rzp "github.com/razorpay/razorpay-go"
	rzperrors "github.com/razorpay/razorpay-go/errors"
	"github.com/razorpay/razorpay-go/requests"
	"github.com/razorpay/razorpay-go/resources"

	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

// client is razorpay-go pointed at an emulator over a real HTTP server.
type client struct {
	order   *resources.Order
	payment *resources.Payment
}

func start(t *testing.T, c sandbox.Config) (*sandbox.Emulator, client) {
	t.Helper()
	if c.WebhookBackoff == 0 {
		c.WebhookBackoff = 10 * time.Millisecond
	}
	emu := sandbox.New(c)
	srv := httptest.NewServer(emu.APIHandler())
	t.Cleanup(srv.Close)
	t.Cleanup(emu.Close)
	return emu, connect(srv.URL, emu.KeyID(), emu.KeySecret())
}

// connect builds razorpay-go's request without razorpay.NewClient, which
// writes a package variable (a race between parallel tests).
func connect(url, key, secret string) client {
	req := &requests.Request{
		Auth: requests.Auth{Key: key, Secret: secret}, HTTPClient: &http.Client{Timeout: 5 * time.Second},
		Headers: map[string]string{}, Version: rzp.SDKVersion, SDKName: rzp.SDKName, BaseURL: url,
	}
	return client{order: &resources.Order{Request: req}, payment: &resources.Payment{Request: req}}
}

func createOrder(t *testing.T, c client, receipt string) string {
	t.Helper()
	o, err := c.order.Create(map[string]any{"amount": 50000, "currency": "INR", "receipt": receipt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o["id"].(string)
}

// wantBadRequest checks a Razorpay 400 with the description.
func wantBadRequest(t *testing.T, what string, err error, desc string) {
	t.Helper()
	var bad *rzperrors.BadRequestError
	if !errors.As(err, &bad) || bad.Message != desc {
		t.Errorf("%s: %v, want BAD_REQUEST_ERROR %q", what, err, desc)
	}
}

func TestOrderShapesAndValidation(t *testing.T) {
	t.Parallel()
	emu, c := start(t, sandbox.Config{Now: func() time.Time { return time.Unix(1700000000, 0) }})
	o, err := c.order.Create(map[string]any{"amount": 50000, "currency": "INR", "receipt": "r-1", "notes": map[string]string{"k": "v"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"entity": "order", "amount": 50000.0, "amount_paid": 0.0, "amount_due": 50000.0,
		"currency": "INR", "receipt": "r-1", "status": "created", "attempts": 0.0, "created_at": 1700000000.0} {
		if o[k] != v {
			t.Errorf("order %s = %#v, want %#v", k, o[k], v)
		}
	}
	if n, ok := o["notes"].(map[string]any); !ok || n["k"] != "v" {
		t.Errorf("notes %#v", o["notes"])
	}
	plain := createOrder(t, c, "r-1")
	if got, _ := c.order.Fetch(plain, nil, nil); fmt.Sprint(got["notes"]) != "[]" {
		t.Errorf("empty notes answer %#v, want [] as Razorpay does", got["notes"])
	}
	notes := map[string]any{}
	for i := range 16 {
		notes[fmt.Sprint("k", i)] = "v"
	}
	for name, tc := range map[string]struct {
		body map[string]any
		desc string
	}{
		"small":     {map[string]any{"amount": 99, "currency": "INR"}, "The amount must be atleast INR 1.00"},
		"no amount": {map[string]any{"currency": "INR"}, "The amount field is required."},
		"currency":  {map[string]any{"amount": 100, "currency": "IN"}, "The currency must be a 3 letter ISO code."},
		"receipt":   {map[string]any{"amount": 100, "currency": "INR", "receipt": "0123456789012345678901234567890123456789x"}, "The receipt may not be greater than 40 characters."},
		"notes":     {map[string]any{"amount": 100, "currency": "INR", "notes": notes}, "Number of fields in notes should be less than or equal to 15"},
	} {
		_, err := c.order.Create(tc.body, nil)
		wantBadRequest(t, name, err, tc.desc)
	}
	_, err = c.order.Fetch("order_00000000000000", nil, nil)
	wantBadRequest(t, "unknown order", err, "The id provided does not exist")
	list, err := c.order.All(map[string]any{"receipt": "r-1"}, nil)
	if err != nil || list["entity"] != "collection" || list["count"] != 2.0 {
		t.Fatalf("list %v %v", list, err)
	}
	if first := list["items"].([]any)[0].(map[string]any); first["id"] != plain {
		t.Errorf("newest first: got %v", first["id"])
	}
	skipped, _ := c.order.All(map[string]any{"receipt": "r-1", "skip": 1, "count": 1}, nil)
	if items := skipped["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != o["id"] {
		t.Errorf("skip/count: %v", skipped)
	}
	if emu.OrderCount() != 2 {
		t.Errorf("%d orders", emu.OrderCount())
	}
}

func TestAuthAndFaults(t *testing.T) {
	t.Parallel()
	emu, c := start(t, sandbox.Config{})
	srv := httptest.NewServer(emu.APIHandler())
	defer srv.Close()
	_, err := connect(srv.URL, emu.KeyID(), "wrong").order.Fetch("order_x", nil, nil)
	wantBadRequest(t, "wrong secret", err, "Authentication failed")
	resp, err := http.Get(srv.URL + "/v1/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no auth: %d", resp.StatusCode)
	}
	emu.SetFault(sandbox.Fault{Mode: sandbox.Fault5xx, Status: 502})
	// Razorpay's body carries "code", razorpay-go switches on
	// "internal_error_code": a real 5xx reaches it as a BadRequestError
	// (which is why the adapter maps on the HTTP status).
	_, err = c.order.All(nil, nil)
	wantBadRequest(t, "5xx", err, "The server encountered an error. The incident has been reported to admins.")
	emu.SetFault(sandbox.Fault{Mode: sandbox.FaultHang})
	hang := connect(srv.URL, emu.KeyID(), emu.KeySecret())
	hang.order.Request.HTTPClient.Timeout = 100 * time.Millisecond
	if _, err := hang.order.Create(map[string]any{"amount": 100}, nil); err == nil {
		t.Error("hang: answered")
	}
	emu.SetFault(sandbox.Fault{})
	if _, err := c.order.All(nil, nil); err != nil {
		t.Errorf("after the fault: %v", err)
	}
}

func TestCaptureAndRefund(t *testing.T) {
	t.Parallel()
	emu, c := start(t, sandbox.Config{})
	co, err := emu.Pay(createOrder(t, c, "r"), sandbox.LeaveAuthorized())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.payment.Capture(co.PaymentID, 40000, map[string]any{"currency": "INR"}, nil)
	wantBadRequest(t, "other amount", err, "Capture amount must be equal to the amount authorized")
	_, err = c.payment.Refund(co.PaymentID, 100, nil, nil)
	wantBadRequest(t, "refund uncaptured", err, "The payment has not been captured yet and cannot be refunded")
	p, err := c.payment.Capture(co.PaymentID, 50000, map[string]any{"currency": "INR"}, nil)
	if err != nil || p["status"] != "captured" || p["captured"] != true || p["order_id"] != co.OrderID {
		t.Fatalf("capture %v %v", p, err)
	}
	_, err = c.payment.Capture(co.PaymentID, 50000, map[string]any{"currency": "INR"}, nil)
	wantBadRequest(t, "captured twice", err, "This payment has already been captured")
	key := map[string]string{"X-Refund-Idempotency": "same"}
	r1, err := c.payment.Refund(co.PaymentID, 20000, nil, key)
	if err != nil || r1["status"] != "pending" || r1["entity"] != "refund" {
		t.Fatalf("refund %v %v", r1, err)
	}
	r2, err := c.payment.Refund(co.PaymentID, 20000, nil, key)
	if err != nil || r2["id"] != r1["id"] {
		t.Fatalf("same key: %v %v", r2, err)
	}
	_, err = c.payment.Refund(co.PaymentID, 30001, nil, nil)
	wantBadRequest(t, "beyond", err, "The refund amount provided is greater than amount captured")
	p, _ = c.payment.Fetch(co.PaymentID, nil, nil)
	if p["amount_refunded"] != 20000.0 || p["refund_status"] != "partial" || p["status"] != "captured" {
		t.Errorf("after one refund: %v", p)
	}
	rid := r1["id"].(string)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.payment.FetchRefund(co.PaymentID, rid, nil, nil)
		if err == nil && r["status"] == "processed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund not processed: %v %v", r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hookServer receives webhooks, checks their signature, and answers 500
// to the first failFirst ones.
type hookServer struct {
	emu       *sandbox.Emulator
	failFirst int32
	seen      atomic.Int32
	mu        sync.Mutex
	ok        map[string]int // event id -> verified deliveries
	badSig    int
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if h.seen.Add(1) <= h.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get("X-Razorpay-Signature") != h.emu.SignWebhook(body) {
		h.badSig++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.ok[r.Header.Get("X-Razorpay-Event-Id")]++
}

func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	emu, c := start(t, sandbox.Config{})
	h := &hookServer{emu: emu, failFirst: 2, ok: map[string]int{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	emu.SetWebhookURL(srv.URL)
	if _, err := emu.Pay(createOrder(t, c, "r")); err != nil {
		t.Fatal(err)
	}
	flush(t, emu)
	types := map[string]bool{}
	failures := 0
	for _, d := range emu.Deliveries() {
		if d.StatusCode == http.StatusInternalServerError {
			failures++
		}
		if d.StatusCode == http.StatusOK {
			types[d.Type] = true
		}
	}
	if failures != 2 || !types["payment.authorized"] || !types["payment.captured"] || !types["order.paid"] || len(types) != 3 {
		t.Fatalf("deliveries %+v", emu.Deliveries())
	}
	h.mu.Lock()
	if len(h.ok) != 3 || h.badSig != 0 {
		t.Errorf("verified %v, bad %d", h.ok, h.badSig)
	}
	h.mu.Unlock()

	emu.SetWebhooksEnabled(false)
	if _, err := emu.Fail(createOrder(t, c, "r2"), "payment_cancelled"); err != nil {
		t.Fatal(err)
	}
	all := emu.Deliveries()
	lost := all[len(all)-1]
	if !lost.Dropped || lost.Type != "payment.failed" {
		t.Fatalf("lost webhook %+v", lost)
	}
	emu.SetWebhooksEnabled(true)
	for range 2 { // redelivered twice: a duplicate
		if err := emu.Redeliver(lost.EventID); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, emu)
	h.mu.Lock()
	if h.ok[lost.EventID] != 2 {
		t.Errorf("redelivered %d times", h.ok[lost.EventID])
	}
	h.mu.Unlock()
	if err := emu.Redeliver("evt_nope"); !errors.Is(err, sandbox.ErrUnknownEvent) {
		t.Errorf("unknown event: %v", err)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	emu, c := start(t, sandbox.Config{WebhookAttempts: 3})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer srv.Close()
	emu.SetWebhookURL(srv.URL)
	if _, err := emu.Fail(createOrder(t, c, "r"), ""); err != nil {
		t.Fatal(err)
	}
	flush(t, emu)
	if n := len(emu.Deliveries()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func flush(t *testing.T, emu *sandbox.Emulator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := emu.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentOrdersAndPayments(t *testing.T) {
	t.Parallel()
	emu, c := start(t, sandbox.Config{})
	const n = 20
	var wg sync.WaitGroup
	ids := make(chan string, n)
	var paidTwice atomic.Int32
	for i := range n {
		wg.Go(func() {
			id := createOrder(t, c, fmt.Sprint("r-", i))
			ids <- id
			var inner sync.WaitGroup
			for range 2 { // two browsers pay the same order: one wins
				inner.Go(func() {
					if _, err := emu.Pay(id); errors.Is(err, sandbox.ErrOrderPaid) {
						paidTwice.Add(1)
					}
				})
			}
			inner.Wait()
			if _, err := c.order.Payments(id, nil, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != n || emu.OrderCount() != n || emu.PaymentCount() != n || paidTwice.Load() != n {
		t.Errorf("orders %d/%d, payments %d, refused %d", len(seen), emu.OrderCount(), emu.PaymentCount(), paidTwice.Load())
	}
}
