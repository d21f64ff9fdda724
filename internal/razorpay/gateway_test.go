package razorpay_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/razorpay"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]razorpay.Config{
		"no key id":      {KeySecret: "s"},
		"no key secret":  {KeyID: "k"},
		"not http":       {KeyID: "k", KeySecret: "s", BaseURL: "ftp://example.com"},
		"no host":        {KeyID: "k", KeySecret: "s", BaseURL: "http://"},
		"garbage":        {KeyID: "k", KeySecret: "s", BaseURL: "::"},
		"negative limit": {KeyID: "k", KeySecret: "s", Timeout: -time.Second},
	} {
		if _, err := razorpay.New(c); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	c, err := razorpay.New(razorpay.Config{KeyID: "rzp_test_x", KeySecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID() != "rzp_test_x" || c.CheckoutURL("order_x") != "" {
		t.Errorf("KeyID %q CheckoutURL %q", c.KeyID(), c.CheckoutURL("order_x"))
	}
}

func TestOrders(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	ctx := context.Background()
	notes := map[string]string{"appointment": "a-1", "doctor": "d-1"}
	o, err := r.client.CreateOrder(ctx, commands.NewOrder{Amount: 50000, Currency: "INR", Receipt: "a-1", Notes: notes})
	if err != nil {
		t.Fatal(err)
	}
	want := commands.GatewayOrder{ID: o.ID, Amount: 50000, Currency: "INR", Receipt: "a-1", Status: "created", Notes: notes}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("created %+v, want %+v", o, want)
	}
	got, err := r.client.Order(ctx, o.ID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("fetched %+v, %v", got, err)
	}
	newer := newOrder(t, r, "a-1") // no notes: Razorpay answers "notes": []
	if newer.Notes != nil {
		t.Errorf("empty notes parsed as %v", newer.Notes)
	}
	newOrder(t, r, "a-2")
	found, ok, err := r.client.OrderByReceipt(ctx, "a-1")
	if err != nil || !ok || found.ID != newer.ID {
		t.Fatalf("by receipt: %+v %v %v, want the newest %s", found, ok, err, newer.ID)
	}
	if _, ok, err := r.client.OrderByReceipt(ctx, "a-none"); ok || err != nil {
		t.Fatalf("unknown receipt: %v %v", ok, err)
	}
	if r.emu.OrderCount() != 3 {
		t.Errorf("emulator has %d orders", r.emu.OrderCount())
	}
	if got := r.client.CheckoutURL(o.ID); got != "/sandbox/checkout/"+o.ID {
		t.Errorf("checkout URL %q", got)
	}
}

func TestPaymentCaptureRefund(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	ctx := context.Background()
	o := newOrder(t, r, "a-1")
	failed, err := r.emu.Fail(o.ID, "payment_cancelled")
	if err != nil {
		t.Fatal(err)
	}
	co, err := r.emu.Pay(o.ID, sandbox.LeaveAuthorized())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := r.client.OrderPayments(ctx, o.ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("order payments %+v %v", ps, err)
	}
	if ps[0] != (commands.GatewayPayment{ID: failed, OrderID: o.ID, Amount: 50000, Currency: "INR", Status: "failed", ErrorReason: "payment_cancelled"}) {
		t.Errorf("failed payment %+v", ps[0])
	}
	if ps[1].ID != co.PaymentID || ps[1].Status != commands.GatewayPaymentAuthorized {
		t.Errorf("authorized payment %+v", ps[1])
	}
	p, err := r.client.Capture(ctx, co.PaymentID, 50000, "INR")
	if err != nil || p.Status != commands.GatewayPaymentCaptured || p.Amount != 50000 {
		t.Fatalf("capture %+v %v", p, err)
	}
	if _, err := r.client.Capture(ctx, co.PaymentID, 50000, "INR"); !errors.Is(err, commands.ErrGatewayRefused) {
		t.Fatalf("second capture: %v, want refused", err)
	}
	if p, err = r.client.Payment(ctx, co.PaymentID); err != nil || p.Status != commands.GatewayPaymentCaptured {
		t.Fatalf("payment %+v %v", p, err)
	}
	if o, err = r.client.Order(ctx, o.ID); err != nil || o.Status != "paid" {
		t.Fatalf("order %+v %v", o, err)
	}
	rf, err := r.client.Refund(ctx, co.PaymentID, 50000, "refund-a-1")
	if err != nil || rf.PaymentID != co.PaymentID || rf.Amount != 50000 || rf.Status != commands.GatewayRefundPending {
		t.Fatalf("refund %+v %v", rf, err)
	}
	again, err := r.client.Refund(ctx, co.PaymentID, 50000, "refund-a-1")
	if err != nil || again.ID != rf.ID {
		t.Fatalf("retried refund %+v %v, want %s again", again, err, rf.ID)
	}
	if _, err := r.client.Refund(ctx, co.PaymentID, 100, "refund-other"); !errors.Is(err, commands.ErrGatewayRefused) {
		t.Fatalf("refund beyond the captured amount: %v", err)
	}
	eventually(t, "the refund processed", func() bool {
		st, err := r.client.RefundStatus(ctx, co.PaymentID, rf.ID)
		return err == nil && st.Status == commands.GatewayRefundProcessed && st.ID == rf.ID
	})
	if p, _ = r.client.Payment(ctx, co.PaymentID); p.Status != commands.GatewayPaymentRefunded {
		t.Errorf("payment after a full refund: %s", p.Status)
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	r := newRig(t, 300*time.Millisecond)
	ctx := context.Background()
	o := newOrder(t, r, "a-1")
	co, err := r.emu.Pay(o.ID)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(context.Context, *razorpay.Client) error{
		"create": func(ctx context.Context, c *razorpay.Client) error {
			_, err := c.CreateOrder(ctx, commands.NewOrder{Amount: 50000, Currency: "INR", Receipt: "x"})
			return err
		},
		"by receipt": func(ctx context.Context, c *razorpay.Client) error {
			_, _, err := c.OrderByReceipt(ctx, "a-1")
			return err
		},
		"order":          func(ctx context.Context, c *razorpay.Client) error { _, err := c.Order(ctx, o.ID); return err },
		"order payments": func(ctx context.Context, c *razorpay.Client) error { _, err := c.OrderPayments(ctx, o.ID); return err },
		"payment": func(ctx context.Context, c *razorpay.Client) error {
			_, err := c.Payment(ctx, co.PaymentID)
			return err
		},
		"capture": func(ctx context.Context, c *razorpay.Client) error {
			_, err := c.Capture(ctx, co.PaymentID, 50000, "INR")
			return err
		},
		"refund": func(ctx context.Context, c *razorpay.Client) error {
			_, err := c.Refund(ctx, co.PaymentID, 100, "k")
			return err
		},
		"refund status": func(ctx context.Context, c *razorpay.Client) error {
			_, err := c.RefundStatus(ctx, co.PaymentID, "rfnd_00000000000000")
			return err
		},
	}
	faults := map[string]sandbox.Fault{
		"503":      {Mode: sandbox.Fault5xx},
		"502":      {Mode: sandbox.Fault5xx, Status: 502},
		"hang":     {Mode: sandbox.FaultHang},
		"slow":     {Latency: time.Second},
		"not JSON": {Mode: sandbox.FaultGarbage},
	}
	for fname, f := range faults {
		r.emu.SetFault(f)
		for cname, call := range calls {
			start := time.Now()
			err := call(ctx, r.client)
			if !errors.Is(err, commands.ErrGatewayUnavailable) || !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("%s, %s: %v, want unavailable", fname, cname, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s, %s: took %s, beyond the timeout", fname, cname, d)
			}
		}
	}
	r.emu.SetFault(sandbox.Fault{})
	wrongKey, err := razorpay.New(razorpay.Config{KeyID: r.emu.KeyID(), KeySecret: "wrong", BaseURL: r.url})
	if err != nil {
		t.Fatal(err)
	}
	for cname, call := range calls {
		if err := call(ctx, wrongKey); !errors.Is(err, commands.ErrGatewayRefused) {
			t.Errorf("wrong key, %s: %v, want refused", cname, err)
		}
	}
}

func TestUnknownIDs(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	ctx := context.Background()
	o := newOrder(t, r, "a-1")
	co, err := r.emu.Pay(o.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"order_00000000000000", "order_x/../payments", "", "order_a?b=c", "%zz"} {
		if _, err := r.client.Order(ctx, id); !errors.Is(err, commands.ErrGatewayNotFound) {
			t.Errorf("order %q: %v", id, err)
		}
		if _, err := r.client.OrderPayments(ctx, id); !errors.Is(err, commands.ErrGatewayNotFound) {
			t.Errorf("order payments %q: %v", id, err)
		}
	}
	for _, id := range []string{"pay_00000000000000", "pay x"} {
		if _, err := r.client.Payment(ctx, id); !errors.Is(err, commands.ErrGatewayNotFound) {
			t.Errorf("payment %q: %v", id, err)
		}
		if _, err := r.client.Capture(ctx, id, 100, "INR"); !errors.Is(err, commands.ErrGatewayNotFound) {
			t.Errorf("capture %q: %v", id, err)
		}
		if _, err := r.client.Refund(ctx, id, 100, ""); !errors.Is(err, commands.ErrGatewayNotFound) {
			t.Errorf("refund %q: %v", id, err)
		}
	}
	if _, err := r.client.RefundStatus(ctx, co.PaymentID, "rfnd_00000000000000"); !errors.Is(err, commands.ErrGatewayNotFound) {
		t.Errorf("refund status: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2*time.Second)
	ctx := context.Background()
	for name, no := range map[string]commands.NewOrder{
		"below 1 rupee":  {Amount: 99, Currency: "INR", Receipt: "a"},
		"zero":           {Amount: 0, Currency: "INR", Receipt: "a"},
		"bad currency":   {Amount: 100, Currency: "rupees", Receipt: "a"},
		"long receipt":   {Amount: 100, Currency: "INR", Receipt: "0123456789012345678901234567890123456789x"},
		"too many notes": {Amount: 100, Currency: "INR", Notes: manyNotes(16)},
	} {
		_, err := r.client.CreateOrder(ctx, no)
		if !errors.Is(err, commands.ErrGatewayRefused) || !errors.Is(err, domain.ErrUnprocessable) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	o := newOrder(t, r, "a-1")
	co, err := r.emu.Pay(o.ID, sandbox.LeaveAuthorized())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.Capture(ctx, co.PaymentID, 40000, "INR"); !errors.Is(err, commands.ErrGatewayRefused) {
		t.Errorf("capture of another amount: %v", err)
	}
	if _, err := r.client.Capture(ctx, co.PaymentID, 50000, "USD"); !errors.Is(err, commands.ErrGatewayRefused) {
		t.Errorf("capture in another currency: %v", err)
	}
	if _, err := r.client.Refund(ctx, co.PaymentID, 100, "k"); !errors.Is(err, commands.ErrGatewayRefused) {
		t.Errorf("refund of an uncaptured payment: %v", err)
	}
}

func manyNotes(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[string(rune('a'+i))] = "v"
	}
	return m
}

func TestContextEndsTheCall(t *testing.T) {
	t.Parallel()
	r := newRig(t, 10*time.Second)
	r.emu.SetFault(sandbox.Fault{Mode: sandbox.FaultHang})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.client.Order(ctx, "order_00000000000000")
	if !errors.Is(err, commands.ErrGatewayUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %s", d)
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if _, err := r.client.Payment(cancelled, "pay_00000000000000"); !errors.Is(err, context.Canceled) || !errors.Is(err, commands.ErrGatewayUnavailable) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	c, err := razorpay.New(razorpay.Config{KeyID: "k", KeySecret: "s", BaseURL: "http://127.0.0.1:1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Order(context.Background(), "order_x"); !errors.Is(err, commands.ErrGatewayUnavailable) {
		t.Errorf("err = %v", err)
	}
}
