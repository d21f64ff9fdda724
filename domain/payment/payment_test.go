package payment_test

import (
	"flag"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/payment"
	"github.com/prescripto/prescripto/internal/goldentest"
)

// go test ./domain/payment -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func TestGolden(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	samples := []domain.Event{payment.WebhookReceived{
		Provider: "razorpay", EventID: "evt_29QQoUBi66xm2f", Event: "payment.failed", OrderID: "order_DBJOWzybf0sJbb",
		PaymentID: "pay_29QQoUBi66xm2f", RefundID: "rfnd_FgRAHdNOM4ZVbO", Amount: 50000, Currency: "INR", Status: "failed",
		ErrorReason: "payment_failed", CreatedAt: at, ReceivedAt: at.Add(time.Second),
	}}
	goldentest.Run(t, reg, payment.Events(), samples, *update)
}

func TestEventIDOK(t *testing.T) {
	t.Parallel()
	for id, ok := range map[string]bool{
		"evt_29QQoUBi66xm2f": true, "a": true, "": false, "evt/../x": false, "evt 1": false, "évt": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := payment.EventIDOK(id); got != ok {
			t.Errorf("EventIDOK(%q) = %v, want %v", id, got, ok)
		}
	}
}
