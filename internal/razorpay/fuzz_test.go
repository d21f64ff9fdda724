package razorpay_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/razorpay"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

// FuzzParseWebhook feeds ParseWebhook arbitrary bodies, signed correctly
// (so that parsing is reached) or with the fuzzed signature: it must never
// panic, and every error must be ErrBadSignature or ErrInvalid. The seed
// corpus is in testdata/fuzz/FuzzParseWebhook.
func FuzzParseWebhook(f *testing.F) {
	const secret = "fuzz-webhook-secret"
	c, err := razorpay.New(razorpay.Config{KeyID: "k", KeySecret: "s", WebhookSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"entity":"event","event":"payment.captured","payload":{"payment":{"entity":{"id":"pay_x","amount":100}}}}`), "", true)
	f.Fuzz(func(t *testing.T, body []byte, sig string, signIt bool) {
		if signIt {
			sig = sandbox.Sign(secret, body)
		}
		ev, err := c.ParseWebhook(body, sig)
		switch {
		case err == nil:
			if ev.Type == "" {
				t.Fatalf("parsed an event without a type: %+v", ev)
			}
			// The signature check: only the HMAC of these exact bytes
			// with the webhook secret lets a body in (hex, either case).
			if !signIt && !strings.EqualFold(sig, sandbox.Sign(secret, body)) {
				t.Fatalf("body %q accepted with signature %q", body, sig)
			}
		case !errors.Is(err, domain.ErrInvalid):
			t.Fatalf("error of no kind: %v", err)
		case signIt && errors.Is(err, commands.ErrBadSignature):
			t.Fatalf("a correctly signed body was refused: %v", err)
		}
	})
}
