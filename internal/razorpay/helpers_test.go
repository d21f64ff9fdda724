package razorpay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/internal/razorpay"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

// rig is the adapter wired to the emulator over real HTTP: razorpay-go ->
// httptest server (mounted under /sandbox/razorpay as the binary does) ->
// emulator, and the emulator's webhooks -> a receiver that verifies them
// with the adapter.
type rig struct {
	emu    *sandbox.Emulator
	client *razorpay.Client
	url    string // the emulator's API base URL
	hooks  *receiver
}

// receiver records the webhooks it verified.
type receiver struct {
	mu     sync.Mutex
	events []commands.WebhookEvent
	bad    int
}

func (r *receiver) byType(typ string) []commands.WebhookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []commands.WebhookEvent
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func newRig(t *testing.T, timeout time.Duration) *rig {
	t.Helper()
	emu := sandbox.New(sandbox.Config{WebhookBackoff: 10 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/sandbox/razorpay/", http.StripPrefix("/sandbox/razorpay", emu.APIHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := &rig{emu: emu, url: srv.URL + "/sandbox/razorpay", hooks: &receiver{}}
	c, err := razorpay.New(razorpay.Config{
		KeyID: emu.KeyID(), KeySecret: emu.KeySecret(), WebhookSecret: emu.WebhookSecret(),
		BaseURL: r.url, Timeout: timeout, CheckoutURL: sandbox.CheckoutPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ev, err := c.ParseWebhook(body, req.Header.Get("X-Razorpay-Signature"))
		r.hooks.mu.Lock()
		defer r.hooks.mu.Unlock()
		if err != nil {
			r.hooks.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.hooks.events = append(r.hooks.events, ev)
	}))
	t.Cleanup(hooks.Close)
	t.Cleanup(emu.Close) // first: it ends hanging requests and deliveries
	emu.SetWebhookURL(hooks.URL)
	return r
}

// flush waits for the emulator's webhooks to be delivered.
func (r *rig) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.emu.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newOrder(t *testing.T, r *rig, receipt string) commands.GatewayOrder {
	t.Helper()
	o, err := r.client.CreateOrder(context.Background(), commands.NewOrder{Amount: 50000, Currency: "INR", Receipt: receipt})
	if err != nil {
		t.Fatal(err)
	}
	return o
}
