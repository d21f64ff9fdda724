package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/payments"
)

// payRig is an engine whose payments go to the Razorpay emulator (over
// HTTP, through razorpay-go, as to Razorpay), with a doctor who requires
// payment (held 15 minutes) and one who takes it optionally.
type payRig struct {
	*testenv.Env
	required, optional testenv.DoctorLogin
	patient            testenv.AuthResult
}

func newPayRig(t testing.TB, o testenv.Options) *payRig {
	t.Helper()
	e := testenv.Start(t, o)
	r := &payRig{Env: e}
	r.required = e.NewDoctor(t, "Dr. Held", "Cardiology")
	r.setPolicy(t, r.required.ID, "required")
	r.optional = e.NewDoctor(t, "Dr. Optional", "Cardiology")
	r.setPolicy(t, r.optional.ID, "optional")
	r.patient = e.Register(t, "Pia Patient")
	return r
}

func (r *payRig) setPolicy(t testing.TB, doctorID, policy string) {
	t.Helper()
	weekly := []map[string]any{}
	for wd := 1; wd <= 7; wd++ {
		weekly = append(weekly, map[string]any{"weekday": wd, "start": "10:00", "end": "21:00"})
	}
	r.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + doctorID + "/schedule", Token: r.AdminToken, Body: map[string]any{
		"timezone": testenv.Zone, "slotMinutes": 30, "bookingWindowDays": 30, "minNoticeMinutes": 30,
		"paymentPolicy": policy, "holdMinutes": 15, "weekly": weekly,
	}}).Must(t, http.StatusOK)
}

// order asks for the appointment's payment order.
func (r *payRig) order(t testing.TB, token, apptID string) (*testenv.Res, paymentOrder) {
	t.Helper()
	res := r.Post(t, "/appointments/"+apptID+"/payment", token, nil)
	var o paymentOrder
	if res.Status/100 == 2 {
		res.Decode(t, &o)
	}
	return res, o
}

type paymentOrder struct {
	OrderID       string     `json:"orderId"`
	Amount        int64      `json:"amount"`
	Currency      string     `json:"currency"`
	KeyID         string     `json:"keyId"`
	AppointmentID string     `json:"appointmentId"`
	HoldExpiresAt *time.Time `json:"holdExpiresAt"`
	CheckoutURL   string     `json:"checkoutUrl"`
}

func (r *payRig) verify(t testing.TB, token string, c sandbox.Checkout) *testenv.Res {
	t.Helper()
	return r.Post(t, "/payments/razorpay/verify", token, map[string]string{
		"razorpay_order_id": c.OrderID, "razorpay_payment_id": c.PaymentID, "razorpay_signature": c.Signature,
	})
}

// appointment reads an appointment as its patient sees it (after the
// read model reached the log's head).
func (r *payRig) appointment(t testing.TB, token, id string) testenv.Appointment {
	t.Helper()
	var a testenv.Appointment
	r.Do(t, testenv.Req{Method: http.MethodGet, Path: "/appointments/" + id, Token: token, MinPosition: r.Head(t)}).Must(t, http.StatusOK).Decode(t, &a)
	return a
}

// await polls the appointment until cond holds (the payments worker acts
// on its own ticks), failing after 15 s.
func (r *payRig) await(t testing.TB, token, id, what string, cond func(testenv.Appointment) bool) testenv.Appointment {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := r.appointment(t, token, id)
		if cond(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: appointment stayed %s with payment %+v", what, a.Status, a.Payment)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func paid(a testenv.Appointment) bool { return a.Status == "confirmed" && a.Payment.Status == "paid" }

func TestPaymentThroughVerify(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	slot := testenv.At(1, 10, 0)
	a := r.MustBook(t, r.patient.Token, r.required.ID, slot)
	if a.Status != "held" || a.HoldExpiresAt == nil || !a.HoldExpiresAt.Equal(testenv.DefaultNow.Add(15*time.Minute)) || a.Payment.Status != "pending" {
		t.Fatalf("booked %+v (hold %v)", a, a.HoldExpiresAt)
	}
	if r.FreeSlots(t, r.required.ID, testenv.Date(1), 1, a.Position).Has(slot) {
		t.Fatal("a held slot is offered")
	}
	res, o := r.order(t, r.patient.Token, a.ID)
	res.Must(t, http.StatusCreated)
	if o.OrderID == "" || o.Amount != 50000 || o.Currency != "INR" || o.KeyID != r.Razorpay.KeyID() || o.AppointmentID != a.ID ||
		o.HoldExpiresAt == nil || !o.HoldExpiresAt.Equal(*a.HoldExpiresAt) {
		t.Fatalf("order %+v", o)
	}
	res, again := r.order(t, r.patient.Token, a.ID)
	res.Must(t, http.StatusOK)
	if again.OrderID != o.OrderID || r.Razorpay.OrderCount() != 1 {
		t.Fatalf("a retry answered order %s (first %s); the provider has %d orders", again.OrderID, o.OrderID, r.Razorpay.OrderCount())
	}
	r.Razorpay.SetWebhooksEnabled(false) // only the browser's verify confirms
	c, err := r.Razorpay.Pay(o.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	var got testenv.Appointment
	r.verify(t, r.patient.Token, c).Must(t, http.StatusOK).Decode(t, &got)
	if !paid(got) || got.Payment.PaymentID == nil || *got.Payment.PaymentID != c.PaymentID || got.Payment.Amount != 50000 || got.HoldExpiresAt != nil {
		t.Fatalf("verified %+v", got)
	}
	head := r.Head(t)
	r.verify(t, r.patient.Token, c).Must(t, http.StatusOK) // idempotent
	if r.Head(t) != head {
		t.Errorf("the same verify again appended events (head %d -> %d)", head, r.Head(t))
	}
	// The admin sees it among the payments.
	var list struct {
		Payments []struct {
			AppointmentID, Status string
			Amount                int64
		}
	}
	r.Do(t, testenv.Req{Method: http.MethodGet, Path: "/admin/payments?status=paid", Token: r.AdminToken, MinPosition: head}).Must(t, http.StatusOK).Decode(t, &list)
	if len(list.Payments) != 1 || list.Payments[0].AppointmentID != a.ID || list.Payments[0].Amount != 50000 {
		t.Errorf("admin payments %+v", list.Payments)
	}
	r.Do(t, testenv.Req{Method: http.MethodGet, Path: "/admin/payments?status=nope", Token: r.AdminToken}).CheckProblem(t, http.StatusBadRequest, "invalid_query")
	// Nothing is left to pay.
	res, _ = r.order(t, r.patient.Token, a.ID)
	res.CheckProblem(t, http.StatusConflict, "payment_not_needed")
}

func TestPaymentThroughWebhookOnly(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	_, o := r.order(t, r.patient.Token, a.ID)
	if _, err := r.Razorpay.Pay(o.OrderID); err != nil { // the tab closes: no verify
		t.Fatal(err)
	}
	got := r.await(t, r.patient.Token, a.ID, "webhook", paid)
	if got.Payment.OrderID == nil || *got.Payment.OrderID != o.OrderID {
		t.Errorf("paid %+v", got.Payment)
	}
}

func TestPaymentThroughReconciliationOnly(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	_, o := r.order(t, r.patient.Token, a.ID)
	r.Razorpay.SetWebhooksEnabled(false) // the webhook is lost
	if _, err := r.Razorpay.Pay(o.OrderID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := r.appointment(t, r.patient.Token, a.ID); got.Status != "held" {
		t.Fatalf("confirmed before anyone asked: %+v", got)
	}
	r.Clock.Advance(time.Minute) // the worker asks about open orders a minute after they are made
	r.await(t, r.patient.Token, a.ID, "reconciliation", paid)
}

func TestUnpaidHoldExpires(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	slot := testenv.At(1, 10, 0)
	withOrder := r.MustBook(t, r.patient.Token, r.required.ID, slot)
	r.order(t, r.patient.Token, withOrder.ID)
	other := r.Register(t, "Olga Other")
	noOrder := r.MustBook(t, other.Token, r.required.ID, slot.Add(30*time.Minute))

	r.Clock.Advance(15 * time.Minute) // both holds run out now
	// The slot is free at once, before the worker expires anything.
	s := r.FreeSlots(t, r.required.ID, testenv.Date(1), 1, r.Head(t))
	if !s.Has(slot) || !s.Has(slot.Add(30*time.Minute)) {
		t.Errorf("lapsed holds still hold their slots: %v", s.All())
	}
	for _, x := range []struct {
		token, id string
	}{{r.patient.Token, withOrder.ID}, {other.Token, noOrder.ID}} {
		r.await(t, x.token, x.id, "expiry", func(a testenv.Appointment) bool { return a.Status == "expired" })
	}
	res, _ := r.order(t, r.patient.Token, withOrder.ID)
	res.CheckProblem(t, http.StatusConflict, "payment_not_needed")
	// Another patient takes the slot.
	r.MustBook(t, other.Token, r.required.ID, slot)
}

func TestLatePaymentIsRefunded(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	_, o := r.order(t, r.patient.Token, a.ID)
	r.Clock.Advance(16 * time.Minute)
	r.await(t, r.patient.Token, a.ID, "expiry", func(a testenv.Appointment) bool { return a.Status == "expired" })
	c, err := r.Razorpay.Pay(o.OrderID) // money arrives after the hold expired
	if err != nil {
		t.Fatal(err)
	}
	got := r.await(t, r.patient.Token, a.ID, "refund", func(a testenv.Appointment) bool { return a.Payment.Status == "refunded" })
	if got.Status != "expired" || got.Payment.RefundedAmount != 50000 || *got.Payment.PaymentID != c.PaymentID {
		t.Errorf("late payment %+v", got)
	}
	// The browser's verify, late too, changes nothing.
	var v testenv.Appointment
	r.verify(t, r.patient.Token, c).Must(t, http.StatusOK).Decode(t, &v)
	if v.Status != "expired" || v.Payment.Status != "refunded" {
		t.Errorf("late verify %+v", v)
	}
}

func TestCancelRefunds(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	book := func(start time.Time) testenv.Appointment {
		a := r.MustBook(t, r.patient.Token, r.required.ID, start)
		_, o := r.order(t, r.patient.Token, a.ID)
		c, err := r.Razorpay.Pay(o.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		r.verify(t, r.patient.Token, c).Must(t, http.StatusOK)
		return a
	}
	early := book(testenv.At(3, 10, 0)) // three days ahead: before the 24 h cutoff
	late := book(testenv.At(0, 18, 0))  // today: after it
	byDoctor := book(testenv.At(0, 19, 0))
	cancel := func(token, id string) {
		r.Post(t, "/appointments/"+id+"/cancel", token, map[string]string{"reason": "plans changed"}).Must(t, http.StatusOK)
	}
	cancel(r.patient.Token, early.ID)
	cancel(r.patient.Token, late.ID)
	cancel(r.required.Token, byDoctor.ID)
	for _, id := range []string{early.ID, byDoctor.ID} {
		got := r.await(t, r.patient.Token, id, "refund", func(a testenv.Appointment) bool { return a.Payment.Status == "refunded" })
		if got.Payment.RefundedAmount != 50000 {
			t.Errorf("%s refunded %d", id, got.Payment.RefundedAmount)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := r.appointment(t, r.patient.Token, late.ID); got.Payment.Status != "paid" || got.Payment.RefundedAmount != 0 {
		t.Errorf("a cancellation after the cutoff refunded: %+v", got.Payment)
	}
}

func TestOptionalPayment(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.optional.ID, testenv.At(1, 10, 0))
	if a.Status != "confirmed" || a.Payment.Status != "pending" || a.HoldExpiresAt != nil {
		t.Fatalf("optional booking %+v", a)
	}
	_, o := r.order(t, r.patient.Token, a.ID)
	if o.HoldExpiresAt != nil {
		t.Errorf("an optional order has a hold: %+v", o)
	}
	c, err := r.Razorpay.Pay(o.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	var got testenv.Appointment
	r.verify(t, r.patient.Token, c).Must(t, http.StatusOK).Decode(t, &got)
	if !paid(got) {
		t.Errorf("optional paid %+v", got)
	}
}

// TestPaymentTampering: what a forger or a replay can send is refused or
// ignored, and no appointment changes wrongly.
func TestPaymentTampering(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	r.Razorpay.SetWebhooksEnabled(false)
	mine := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	_, myOrder := r.order(t, r.patient.Token, mine.ID)
	other := r.Register(t, "Oscar Other")
	theirs := r.MustBook(t, other.Token, r.required.ID, testenv.At(1, 11, 0))
	_, theirOrder := r.order(t, other.Token, theirs.ID)
	theirPay, err := r.Razorpay.Pay(theirOrder.OrderID)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("verify", func(t *testing.T) {
		bad := func(c sandbox.Checkout, status int, code string) {
			t.Helper()
			r.verify(t, r.patient.Token, c).CheckProblem(t, status, code)
		}
		bad(sandbox.Checkout{OrderID: myOrder.OrderID, PaymentID: theirPay.PaymentID, Signature: "00" + theirPay.Signature[2:]}, 400, "bad_signature")
		// A valid signature, of another order: mine is not paid by it.
		bad(sandbox.Checkout{OrderID: myOrder.OrderID, PaymentID: theirPay.PaymentID, Signature: theirPay.Signature}, 400, "bad_signature")
		// Someone else's whole, valid checkout.
		bad(theirPay, 404, "appointment_not_found")
		r.Post(t, "/payments/razorpay/verify", r.patient.Token, map[string]string{"razorpay_order_id": myOrder.OrderID}).CheckProblem(t, 400, "invalid_input")
		// A failed payment is no payment.
		failed, err := r.Razorpay.Fail(myOrder.OrderID, "card declined")
		if err != nil {
			t.Fatal(err)
		}
		bad(sandbox.Checkout{OrderID: myOrder.OrderID, PaymentID: failed, Signature: r.Razorpay.CheckoutSignature(myOrder.OrderID, failed)}, 409, "payment_not_captured")
		// A checkout that paid another amount, or currency.
		short, err := r.Razorpay.Pay(myOrder.OrderID, sandbox.PayAmount(100))
		if err != nil {
			t.Fatal(err)
		}
		bad(short, 422, "payment_mismatch")
		second := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 12, 0))
		_, secondOrder := r.order(t, r.patient.Token, second.ID)
		dollars, err := r.Razorpay.Pay(secondOrder.OrderID, sandbox.PayCurrency("USD"))
		if err != nil {
			t.Fatal(err)
		}
		bad(dollars, 422, "payment_mismatch")
	})

	t.Run("webhooks", func(t *testing.T) {
		post := func(body []byte, sig, id string) *testenv.Res {
			return r.Do(t, testenv.Req{Method: http.MethodPost, Path: "/webhooks/razorpay", Body: body,
				Header: http.Header{"X-Razorpay-Signature": {sig}, "X-Razorpay-Event-Id": {id}}})
		}
		body, err := r.Razorpay.BuildWebhook("payment.captured", theirOrder.OrderID, theirPay.PaymentID, "")
		if err != nil {
			t.Fatal(err)
		}
		sig := r.Razorpay.SignWebhook(body)
		post(body, "deadbeef", "evt_forged1").CheckProblem(t, 400, "bad_signature")
		post(body, "", "evt_forged2").CheckProblem(t, 400, "bad_signature")
		changed := append([]byte(nil), body...)
		changed[len(changed)-2] ^= 1
		post(changed, sig, "evt_forged3").CheckProblem(t, 400, "bad_signature")
		post(body, sig, "").CheckProblem(t, 400, "invalid_header")
		post(body, sig, "../../etc").CheckProblem(t, 400, "invalid_header")
		// A webhook that names my order with their payment: the worker asks
		// Razorpay, finds the payment is not of my order, and records
		// nothing for me.
		mixed, err := r.Razorpay.BuildWebhook("payment.captured", myOrder.OrderID, theirPay.PaymentID, "")
		if err != nil {
			t.Fatal(err)
		}
		var ack struct{ Status string }
		post(mixed, r.Razorpay.SignWebhook(mixed), "evt_mixed").Must(t, 200).Decode(t, &ack)
		if ack.Status != "recorded" {
			t.Errorf("ack %+v", ack)
		}
		unknown := []byte(`{"entity":"event","event":"subscription.charged","payload":{},"created_at":1}`)
		post(unknown, r.Razorpay.SignWebhook(unknown), "evt_unknown").Must(t, 200)
		// Theirs, genuine, twice: recorded once, confirms theirs.
		post(body, sig, "evt_genuine").Must(t, 200).Decode(t, &ack)
		post(body, sig, "evt_genuine").Must(t, 200).Decode(t, &ack)
		if ack.Status != "duplicate" {
			t.Errorf("replayed webhook answered %+v", ack)
		}
		r.await(t, other.Token, theirs.ID, "genuine webhook", paid)
		time.Sleep(100 * time.Millisecond)
		if got := r.appointment(t, r.patient.Token, mine.ID); got.Status != "held" || got.Payment.Status != "pending" {
			t.Errorf("mine after the tampering: %s %+v", got.Status, got.Payment)
		}
	})
}

func TestConcurrentOrdersMakeOne(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	var wg sync.WaitGroup
	ids := make([]string, 20)
	codes := make([]int, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, o := r.order(t, r.patient.Token, a.ID)
			ids[i], codes[i] = o.OrderID, res.Status
		}()
	}
	wg.Wait()
	created := 0
	for i := range ids {
		if ids[i] != ids[0] || ids[i] == "" {
			t.Errorf("answer %d: order %q (status %d), answer 0: %q", i, ids[i], codes[i], ids[0])
		}
		if codes[i] == http.StatusCreated {
			created++
		}
	}
	if n := r.Razorpay.OrderCount(); n != 1 || created != 1 {
		t.Errorf("20 concurrent requests made %d Razorpay orders, %d answered 201", n, created)
	}
}

func TestRazorpayDown(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{PaymentWorker: paymentsWorkerFast()})
	r.Razorpay.SetFault(sandbox.Fault{Mode: sandbox.Fault5xx})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0)) // booking does not need Razorpay
	res, _ := r.order(t, r.patient.Token, a.ID)
	res.CheckProblem(t, http.StatusServiceUnavailable, "payment_provider_unavailable")
	// The failed attempt's claim stands for the order lease: meanwhile a
	// request is told the order is on its way.
	res, _ = r.order(t, r.patient.Token, a.ID)
	res.CheckProblem(t, http.StatusServiceUnavailable, "payment_order_pending")
	r.Clock.Advance(31 * time.Second)
	r.Razorpay.SetFault(sandbox.Fault{Mode: sandbox.FaultHang})
	start := time.Now()
	res, _ = r.order(t, r.patient.Token, a.ID)
	res.CheckProblem(t, http.StatusServiceUnavailable, "payment_provider_unavailable")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a hanging Razorpay held the request %v", d)
	}
	r.Razorpay.SetFault(sandbox.Fault{})
	var o paymentOrder
	deadline := time.Now().Add(15 * time.Second)
	for {
		var res *testenv.Res
		res, o = r.order(t, r.patient.Token, a.ID)
		if res.Status/100 == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no order after Razorpay came back: %s", res)
		}
		r.Clock.Advance(31 * time.Second)
	}
	r.Razorpay.SetWebhooksEnabled(false)
	if _, err := r.Razorpay.Pay(o.OrderID); err != nil {
		t.Fatal(err)
	}
	r.Razorpay.SetFault(sandbox.Fault{Mode: sandbox.Fault5xx})
	r.Clock.Advance(2 * time.Minute) // the worker asks, and fails, and backs off
	time.Sleep(300 * time.Millisecond)
	if got := r.appointment(t, r.patient.Token, a.ID); got.Status != "held" {
		t.Fatalf("confirmed while Razorpay was down: %+v", got)
	}
	r.Razorpay.SetFault(sandbox.Fault{})
	r.await(t, r.patient.Token, a.ID, "catching up", paid)
	if n := r.Razorpay.OrderCount(); n != 1 {
		t.Errorf("%d Razorpay orders", n)
	}
}

// paymentsWorkerFast retries failed actions quickly.
func paymentsWorkerFast() payments.Config {
	return payments.Config{Tick: 10 * time.Millisecond, MaxPoll: 200 * time.Millisecond}
}

// TestSandboxCheckout pays as a browser does in the demo: the in-process
// sandbox's checkout page, its Pay button, the redirect back with
// Razorpay's three fields, then verify.
func TestSandboxCheckout(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{Sandbox: true})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	res, o := r.order(t, r.patient.Token, a.ID)
	res.Must(t, http.StatusCreated)
	if o.CheckoutURL != "/sandbox/checkout/"+o.OrderID || !strings.HasPrefix(o.KeyID, "rzp_test_sandbox") {
		t.Fatalf("sandbox order %+v", o)
	}
	page, err := r.Client.Get(r.Server.URL + o.CheckoutURL + "?return=/appointments")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.Contains(string(body), "Sandbox") || !strings.Contains(string(body), "no real money") {
		t.Fatalf("checkout page %d:\n%s", page.StatusCode, body)
	}
	m := regexp.MustCompile(`name="token" value="([0-9a-f]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no form token in\n%s", body)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back, err := noRedirect.PostForm(r.Server.URL+o.CheckoutURL+"/pay", url.Values{"token": {string(m[1])}, "return": {"/appointments"}})
	if err != nil {
		t.Fatal(err)
	}
	back.Body.Close()
	loc, err := url.Parse(back.Header.Get("Location"))
	if back.StatusCode != http.StatusSeeOther || err != nil || loc.Path != "/appointments" {
		t.Fatalf("pay answered %d, Location %q", back.StatusCode, back.Header.Get("Location"))
	}
	q := loc.Query()
	c := sandbox.Checkout{OrderID: q.Get("razorpay_order_id"), PaymentID: q.Get("razorpay_payment_id"), Signature: q.Get("razorpay_signature")}
	var got testenv.Appointment
	r.verify(t, r.patient.Token, c).Must(t, http.StatusOK).Decode(t, &got)
	if !paid(got) {
		t.Errorf("after the sandbox checkout: %+v", got)
	}
}

func TestSandboxRefusesRealKeys(t *testing.T) {
	t.Parallel()
	for _, o := range []app.PaymentOptions{
		{Sandbox: true, KeyID: "rzp_live_x", KeySecret: "s", WebhookSecret: "w"},
		{KeyID: "rzp_live_x"},
		{KeySecret: "s"},
	} {
		if err := o.Validate(app.RoleAll); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
	if err := (app.PaymentOptions{Sandbox: true}).Validate(app.RoleAPI); err == nil {
		t.Error("the sandbox is accepted outside serve")
	}
}

// TestTwoWorkersSettleEachHoldOnce: two worker processes (beside the
// projector and the api, on the production wiring) reconcile the same
// holds; each hold is confirmed or expired exactly once, and nothing is
// refunded (no payment was taken twice).
func TestTwoWorkersSettleEachHoldOnce(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{Production: true, Roles: true})
	r.StartWorkerReplica(t)
	r.Razorpay.SetWebhooksEnabled(false) // reconciliation only
	const n = 12
	type held struct {
		token, id string
		pay       bool
	}
	var all []held
	for i := range n {
		p := r.Register(t, fmt.Sprintf("Patient %d", i))
		a := r.MustBook(t, p.Token, r.required.ID, testenv.At(1, 10, 0).Add(time.Duration(i)*30*time.Minute))
		_, o := r.order(t, p.Token, a.ID)
		h := held{token: p.Token, id: a.ID, pay: i%2 == 0}
		if h.pay {
			if _, err := r.Razorpay.Pay(o.OrderID); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, h)
	}
	r.Clock.Advance(16 * time.Minute) // every hold ran out; the paid ones are found paid first
	for _, h := range all {
		want := "expired"
		if h.pay {
			want = "confirmed"
		}
		r.await(t, h.token, h.id, "settling", func(a testenv.Appointment) bool { return a.Status == want })
	}
	time.Sleep(300 * time.Millisecond) // give a duplicate a chance to show
	recs, err := r.App.Store.ReadStream(context.Background(), doctor.StreamID(r.required.ID), 0, eventstore.Forward, 100000)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, rec := range recs {
		switch rec.Type {
		case doctor.TypeHoldExpired, doctor.TypeAppointmentConfirmed, doctor.TypePaymentCaptured, doctor.TypeRefundIssued:
			e, err := r.App.Registry.Decode(rec.Type, rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			outcomes[rec.Type+" "+e.(doctor.AppointmentEvent).AppointmentRef()]++
		}
	}
	for _, h := range all {
		for _, typ := range []string{doctor.TypeHoldExpired, doctor.TypeAppointmentConfirmed, doctor.TypePaymentCaptured} {
			want := 0
			switch {
			case typ == doctor.TypeHoldExpired && !h.pay, typ != doctor.TypeHoldExpired && h.pay:
				want = 1
			}
			if got := outcomes[typ+" "+h.id]; got != want {
				t.Errorf("%s: %d %s, want %d", h.id, got, typ, want)
			}
		}
		if outcomes[doctor.TypeRefundIssued+" "+h.id] != 0 {
			t.Errorf("%s was refunded", h.id)
		}
	}
}

// TestPaymentPoliciesNeedRazorpay: without keys or the sandbox, online
// payment policies are refused at schedule time and the payment routes
// say payments are off.
func TestPaymentPoliciesNeedRazorpay(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{NoPayments: true})
	d := e.NewDoctor(t, "Dr. Clinic Only", "Cardiology")
	for _, policy := range []string{"required", "optional"} {
		e.Do(t, testenv.Req{Method: http.MethodPut, Path: "/doctors/" + d.ID + "/schedule", Token: e.AdminToken, Body: map[string]any{
			"timezone": testenv.Zone, "slotMinutes": 30, "bookingWindowDays": 30, "minNoticeMinutes": 30,
			"paymentPolicy": policy, "holdMinutes": 15, "weekly": []map[string]any{{"weekday": 1, "start": "10:00", "end": "21:00"}},
		}}).CheckProblem(t, http.StatusUnprocessableEntity, "payments_disabled")
	}
	p := e.Register(t, "Nia Patient")
	a := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 0))
	e.Post(t, "/appointments/"+a.ID+"/payment", p.Token, nil).CheckProblem(t, http.StatusUnprocessableEntity, "payments_disabled")
	e.Post(t, "/payments/razorpay/verify", p.Token, map[string]string{"razorpay_order_id": "order_1", "razorpay_payment_id": "pay_1", "razorpay_signature": "ab"}).
		CheckProblem(t, http.StatusUnprocessableEntity, "payments_disabled")
}

// TestHoldExpiresAfterRestart: the worker's timers come from the log: a
// hold that runs out while the engine is down is expired after it starts.
func TestHoldExpiresAfterRestart(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	r.order(t, r.patient.Token, a.ID)
	r.Stop()
	r.Clock.Advance(20 * time.Minute)
	e2 := testenv.Start(t, r.Options())
	(&payRig{Env: e2}).await(t, r.patient.Token, a.ID, "expiry after a restart", func(a testenv.Appointment) bool { return a.Status == "expired" })
}

// TestHoldRunningOutDuringVerify: payments verified just as their holds
// run out end as exactly one of confirmed-and-paid or expired-and-refunded.
func TestHoldRunningOutDuringVerify(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	r.Razorpay.SetWebhooksEnabled(false)
	type booked struct {
		id string
		c  sandbox.Checkout
	}
	var all []booked
	for i := range 8 {
		a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0).Add(time.Duration(i)*30*time.Minute))
		_, o := r.order(t, r.patient.Token, a.ID)
		c, err := r.Razorpay.Pay(o.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, booked{a.ID, c})
	}
	r.Clock.Advance(15 * time.Minute) // every hold runs out now: the worker expires what is not paid yet
	var wg sync.WaitGroup
	for i, b := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%4) * 15 * time.Millisecond) // some after the worker's next ticks
			res := r.verify(t, r.patient.Token, b.c)
			if res.Status != http.StatusOK {
				t.Errorf("verify %s: %s", b.id, res)
			}
		}()
	}
	wg.Wait()
	outcomes := map[string]int{}
	for _, b := range all {
		got := r.await(t, r.patient.Token, b.id, "settled", func(a testenv.Appointment) bool {
			return paid(a) || (a.Status == "expired" && a.Payment.Status == "refunded")
		})
		outcomes[got.Status]++
		if got.Status == "confirmed" && got.Payment.RefundedAmount != 0 || got.Status == "expired" && got.Payment.RefundedAmount != 50000 {
			t.Errorf("%s: %s with %+v", b.id, got.Status, got.Payment)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestLateWebhooksMoveNothingBack: a payment.failed delivered after the
// capture, and the capture's webhooks again, leave the appointment paid.
func TestLateWebhooksMoveNothingBack(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{})
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	_, o := r.order(t, r.patient.Token, a.ID)
	c, err := r.Razorpay.Pay(o.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	r.await(t, r.patient.Token, a.ID, "webhooks", paid)
	failed, err := r.Razorpay.BuildWebhook("payment.failed", o.OrderID, c.PaymentID, "")
	if err != nil {
		t.Fatal(err)
	}
	r.Do(t, testenv.Req{Method: http.MethodPost, Path: "/webhooks/razorpay", Body: failed,
		Header: http.Header{"X-Razorpay-Signature": {r.Razorpay.SignWebhook(failed)}, "X-Razorpay-Event-Id": {"evt_latefail"}}}).Must(t, http.StatusOK)
	for _, d := range r.Razorpay.Deliveries() {
		_ = r.Razorpay.Redeliver(d.EventID)
	}
	time.Sleep(200 * time.Millisecond)
	if got := r.appointment(t, r.patient.Token, a.ID); !paid(got) {
		t.Errorf("after late and repeated webhooks: %s %+v", got.Status, got.Payment)
	}
	// The counters saw it.
	m := r.Get(t, "//metrics", "").Must(t, http.StatusOK)
	for _, want := range []string{`prescripto_payment_requests_total{event="webhook_duplicate"}`, `prescripto_payment_requests_total{event="order_created"}`, `prescripto_payments_total{event="captured"}`} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestOneOrderAcrossAPIProcesses: concurrent order requests for one
// appointment through two api processes make one Razorpay order.
func TestOneOrderAcrossAPIProcesses(t *testing.T) {
	t.Parallel()
	r := newPayRig(t, testenv.Options{Production: true, Roles: true})
	replica := &payRig{Env: r.StartAPIReplica(t)}
	a := r.MustBook(t, r.patient.Token, r.required.ID, testenv.At(1, 10, 0))
	rigs := []*payRig{r, replica}
	ids := make([]string, 20)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			res, o := rigs[i%2].order(t, r.patient.Token, a.ID)
			if res.Status/100 != 2 {
				t.Errorf("order %d: %s", i, res)
			}
			ids[i] = o.OrderID
		})
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Errorf("answer %d: order %s, answer 0: %s", i, ids[i], ids[0])
		}
	}
	if n := r.Razorpay.OrderCount(); n != 1 {
		t.Errorf("two api processes made %d Razorpay orders", n)
	}
}
