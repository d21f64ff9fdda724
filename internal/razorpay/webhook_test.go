package razorpay_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/razorpay"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

func TestVerifyPaymentSignature(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	o1, o2 := newOrder(t, r, "a-1"), newOrder(t, r, "a-2")
	c1, err := r.emu.Pay(o1.ID)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.emu.Pay(o2.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		order, payment, sig string
		ok                  bool
	}{
		"good":                 {c1.OrderID, c1.PaymentID, c1.Signature, true},
		"other order's":        {c1.OrderID, c1.PaymentID, c2.Signature, false},
		"payment of another":   {c1.OrderID, c2.PaymentID, c1.Signature, false},
		"swapped":              {c1.PaymentID, c1.OrderID, c1.Signature, false},
		"empty":                {c1.OrderID, c1.PaymentID, "", false},
		"not hex":              {c1.OrderID, c1.PaymentID, "zz" + c1.Signature[2:], false},
		"truncated":            {c1.OrderID, c1.PaymentID, c1.Signature[:32], false},
		"signed with the hook": {c1.OrderID, c1.PaymentID, sandbox.Sign(r.emu.WebhookSecret(), []byte(c1.OrderID+"|"+c1.PaymentID)), false},
		"no ids":               {"", "", sandbox.Sign(r.emu.KeySecret(), []byte("|")), false},
	} {
		if got := r.client.VerifyPaymentSignature(tc.order, tc.payment, tc.sig); got != tc.ok {
			t.Errorf("%s: %v, want %v", name, got, tc.ok)
		}
	}
}

// TestWebhooksOfEachType drives the emulator through every event type the
// engine acts on and checks what the adapter parsed from the signed
// deliveries.
func TestWebhooksOfEachType(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	paid, failedOrder, refundFails := newOrder(t, r, "a-1"), newOrder(t, r, "a-2"), newOrder(t, r, "a-3")
	co, err := r.emu.Pay(paid.ID)
	if err != nil {
		t.Fatal(err)
	}
	failedID, err := r.emu.Fail(failedOrder.ID, "payment_cancelled")
	if err != nil {
		t.Fatal(err)
	}
	rf, err := r.client.Refund(t.Context(), co.PaymentID, 20000, "k1")
	if err != nil {
		t.Fatal(err)
	}
	co3, err := r.emu.Pay(refundFails.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.emu.SetRefundOutcome(sandbox.RefundFail)
	rf3, err := r.client.Refund(t.Context(), co3.PaymentID, 50000, "k3")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "all webhooks", func() bool {
		return len(r.hooks.byType(commands.WebhookRefundFailed)) == 1 && len(r.hooks.byType(commands.WebhookRefundProcessed)) == 1
	})
	r.flush(t)
	// at is the webhook of typ about paymentID (deliveries come in any
	// order, as Razorpay's do).
	at := func(typ, paymentID string) commands.WebhookEvent {
		for _, ev := range r.hooks.byType(typ) {
			if ev.PaymentID != paymentID {
				continue
			}
			if ev.CreatedAt.IsZero() || time.Since(ev.CreatedAt) > time.Minute {
				t.Errorf("%s created at %v", typ, ev.CreatedAt)
			}
			ev.CreatedAt = time.Time{}
			return ev
		}
		t.Fatalf("no %s webhook about %s", typ, paymentID)
		return commands.WebhookEvent{}
	}
	want := map[string]commands.WebhookEvent{
		commands.WebhookPaymentAuthorized: {Type: "payment.authorized", OrderID: paid.ID, PaymentID: co.PaymentID, Amount: 50000, Currency: "INR", Status: "authorized"},
		commands.WebhookPaymentCaptured:   {Type: "payment.captured", OrderID: paid.ID, PaymentID: co.PaymentID, Amount: 50000, Currency: "INR", Status: "captured"},
		commands.WebhookOrderPaid:         {Type: "order.paid", OrderID: paid.ID, PaymentID: co.PaymentID, Amount: 50000, Currency: "INR", Status: "captured"},
		commands.WebhookPaymentFailed:     {Type: "payment.failed", OrderID: failedOrder.ID, PaymentID: failedID, Amount: 50000, Currency: "INR", Status: "failed", ErrorReason: "payment_cancelled"},
		commands.WebhookRefundProcessed:   {Type: "refund.processed", PaymentID: co.PaymentID, RefundID: rf.ID, OrderID: paid.ID, Amount: 20000, Currency: "INR", Status: "processed"},
		commands.WebhookRefundFailed:      {Type: "refund.failed", PaymentID: co3.PaymentID, RefundID: rf3.ID, OrderID: refundFails.ID, Amount: 50000, Currency: "INR", Status: "failed"},
	}
	for typ, w := range want {
		if got := at(typ, w.PaymentID); got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", typ, got, w)
		}
	}
	if r.hooks.bad != 0 {
		t.Errorf("%d webhooks failed verification", r.hooks.bad)
	}
}

func TestParseWebhookRefusals(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	o := newOrder(t, r, "a-1")
	co, err := r.emu.Pay(o.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, err := r.emu.BuildWebhook(commands.WebhookOrderPaid, o.ID, co.PaymentID, "")
	if err != nil {
		t.Fatal(err)
	}
	sig := r.emu.SignWebhook(body)
	if ev, err := r.client.ParseWebhook(body, sig); err != nil || ev.OrderID != o.ID {
		t.Fatalf("good webhook: %+v %v", ev, err)
	}
	changed := bytes.Replace(body, []byte(`"amount":50000`), []byte(`"amount":50001`), 1)
	other, err := r.emu.BuildWebhook(commands.WebhookPaymentCaptured, "", co.PaymentID, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		body []byte
		sig  string
	}{
		"changed after signing": {changed, sig},
		"empty signature":       {body, ""},
		"another event's":       {body, r.emu.SignWebhook(other)},
		"signed with the key":   {body, sandbox.Sign(r.emu.KeySecret(), body)},
		"trailing newline":      {append(append([]byte{}, body...), '\n'), sig},
		"empty body":            {nil, sig},
	} {
		if _, err := r.client.ParseWebhook(tc.body, tc.sig); !errors.Is(err, commands.ErrBadSignature) {
			t.Errorf("%s: %v, want bad signature", name, err)
		}
	}
	noSecret, err := razorpay.New(razorpay.Config{KeyID: "k", KeySecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noSecret.ParseWebhook(body, sandbox.Sign("", body)); !errors.Is(err, commands.ErrBadSignature) {
		t.Errorf("without a webhook secret: %v", err)
	}
}

func TestParseWebhookShapes(t *testing.T) {
	t.Parallel()
	const secret = "whsec"
	c, err := razorpay.New(razorpay.Config{KeyID: "k", KeySecret: "s", WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	parse := func(body string) (commands.WebhookEvent, error) {
		return c.ParseWebhook([]byte(body), sandbox.Sign(secret, []byte(body)))
	}
	for name, body := range map[string]string{
		"not JSON":            `{"entity":"event",`,
		"an array":            `[]`,
		"not an event":        `{"entity":"payment","id":"pay_x"}`,
		"no event type":       `{"entity":"event","payload":{}}`,
		"amount as text":      `{"entity":"event","event":"payment.captured","payload":{"payment":{"entity":{"id":"pay_x","amount":"500"}}}}`,
		"fractional amount":   `{"entity":"event","event":"refund.processed","payload":{"refund":{"entity":{"id":"rfnd_x","amount":1.5}}}}`,
		"entity is a string":  `{"entity":"event","event":"order.paid","payload":{"order":{"entity":"order_x"}}}`,
		"payload is an array": `{"entity":"event","event":"order.paid","payload":[]}`,
	} {
		if _, err := parse(body); !errors.Is(err, domain.ErrInvalid) || errors.Is(err, commands.ErrBadSignature) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	ev, err := parse(`{"entity":"event","account_id":"acc_x","event":"payment.dispute.created","contains":["payment","dispute"],` +
		`"payload":{"payment":{"entity":{"id":"pay_x","order_id":"order_x","amount":500,"currency":"INR","status":"captured","email":"a@b.c","contact":"+91"}},` +
		`"dispute":{"entity":{"id":"disp_x","amount":500}}},"created_at":1700000000}`)
	if err != nil {
		t.Fatal(err)
	}
	want := commands.WebhookEvent{Type: "payment.dispute.created", OrderID: "order_x", PaymentID: "pay_x", Amount: 500,
		Currency: "INR", Status: "captured", CreatedAt: time.Unix(1700000000, 0).UTC()}
	if ev != want {
		t.Errorf("unknown type: %+v", ev)
	}
	if ev, err := parse(`{"entity":"event","event":"some.thing","payload":{"payment":{"entity":{"amount":"odd"}}}}`); err != nil || ev.Type != "some.thing" {
		t.Errorf("odd unknown event: %+v %v", ev, err)
	}
}
