package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrUnknownEvent is Redeliver's answer for an event it never sent.
var ErrUnknownEvent = errors.New("sandbox: no such webhook event")

// event is a webhook as sent: its X-Razorpay-Event-Id, type and exact body.
type event struct {
	id, typ string
	body    []byte
}

// Delivery is one attempt to deliver a webhook.
type Delivery struct {
	EventID    string
	Type       string
	Attempt    int    // 1 for the first try of an event or a Redeliver
	StatusCode int    // 0 when the request failed or the webhook was lost
	Err        string // the network error, if any
	Dropped    bool   // webhooks were disabled: lost on the way
	At         time.Time
}

// envelope is Razorpay's webhook body.
type envelope struct {
	Entity    string                     `json:"entity"`
	AccountID string                     `json:"account_id"`
	Event     string                     `json:"event"`
	Contains  []string                   `json:"contains"`
	Payload   map[string]json.RawMessage `json:"payload"`
	CreatedAt int64                      `json:"created_at"`
}

// newEvent builds an event of typ from pairs of entity name and entity
// ("payment", paymentJSON, "order", orderJSON, ...).
func (e *Emulator) newEvent(typ string, pairs ...any) event {
	env := envelope{Entity: "event", AccountID: "acc_sandbox0000000", Event: typ,
		Contains: []string{}, Payload: map[string]json.RawMessage{}, CreatedAt: e.now().Unix()}
	for i := 0; i+1 < len(pairs); i += 2 {
		name, _ := pairs[i].(string)
		wrapped, err := json.Marshal(map[string]any{"entity": pairs[i+1]})
		if err != nil || name == "" {
			continue
		}
		env.Contains = append(env.Contains, name)
		env.Payload[name] = wrapped
	}
	b, err := json.Marshal(env)
	if err != nil { // only plain structs go in: cannot happen
		b = []byte(`{}`)
	}
	return event{id: newID("evt"), typ: typ, body: b}
}

// BuildWebhook builds the body of a webhook of type typ from the current
// state of the given ids (empty ones are left out), for tests that craft,
// reorder or tamper with events. Sign it with SignWebhook.
func (e *Emulator) BuildWebhook(typ, orderID, paymentID, refundID string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var pairs []any
	if refundID != "" {
		rf, ok := e.refunds[refundID]
		if !ok {
			return nil, fmt.Errorf("build webhook: refund %q: %w", refundID, ErrUnknownRefund)
		}
		pairs = append(pairs, "refund", rf.json())
	}
	if paymentID != "" {
		p, ok := e.payments[paymentID]
		if !ok {
			return nil, fmt.Errorf("build webhook: payment %q: %w", paymentID, ErrUnknownEvent)
		}
		pairs = append(pairs, "payment", p.json())
	}
	if orderID != "" {
		o, ok := e.orders[orderID]
		if !ok {
			return nil, fmt.Errorf("build webhook: %q: %w", orderID, ErrUnknownOrder)
		}
		pairs = append(pairs, "order", o.json())
	}
	return e.newEvent(typ, pairs...).body, nil
}

// emit records events and delivers each in the background.
func (e *Emulator) emit(evs []event) {
	for _, ev := range evs {
		e.mu.Lock()
		e.events[ev.id] = ev
		e.mu.Unlock()
		e.send(ev)
	}
}

// Redeliver sends a recorded event again, with the same event id and body
// (a duplicate delivery, as Razorpay makes).
func (e *Emulator) Redeliver(eventID string) error {
	e.mu.Lock()
	ev, ok := e.events[eventID]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("redeliver %q: %w", eventID, ErrUnknownEvent)
	}
	e.send(ev)
	return nil
}

// Deliveries lists every delivery attempt so far, oldest first.
func (e *Emulator) Deliveries() []Delivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Delivery(nil), e.deliveries...)
}

// Flush waits until no webhook delivery or retry is under way, or ctx ends.
func (e *Emulator) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		e.mu.Lock()
		n := e.inflight
		e.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush webhooks: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// send delivers ev in the background, retrying with back-off on network
// errors and non-2xx answers, at most e.attempts times.
func (e *Emulator) send(ev event) {
	e.mu.Lock()
	url, on := e.webhookURL, e.webhooksOn
	if !on || url == "" {
		e.deliveries = append(e.deliveries, Delivery{EventID: ev.id, Type: ev.typ, Attempt: 1, Dropped: true, At: e.now()})
		e.mu.Unlock()
		return
	}
	e.inflight++
	e.mu.Unlock()
	done := func() {
		e.mu.Lock()
		e.inflight--
		e.mu.Unlock()
	}
	started := e.goTrack(func() {
		defer done()
		wait := e.backoff
		for attempt := 1; attempt <= e.attempts; attempt++ {
			if e.deliverOnce(url, ev, attempt) {
				return
			}
			select {
			case <-e.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
		e.log.Warn().Str("event_id", ev.id).Str("event", ev.typ).Int("attempts", e.attempts).Msg("sandbox webhook not delivered; giving up")
	})
	if !started {
		done()
	}
}

// deliverOnce posts ev once and records the attempt; true on a 2xx.
func (e *Emulator) deliverOnce(url string, ev event, attempt int) bool {
	d := Delivery{EventID: ev.id, Type: ev.typ, Attempt: attempt}
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, url, bytes.NewReader(ev.body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Razorpay-Signature", e.SignWebhook(ev.body))
		req.Header.Set("X-Razorpay-Event-Id", ev.id)
		var resp *http.Response
		if resp, err = e.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
			d.StatusCode = resp.StatusCode
		}
	}
	if err != nil {
		d.Err = err.Error()
	}
	e.mu.Lock()
	d.At = e.now()
	e.deliveries = append(e.deliveries, d)
	e.mu.Unlock()
	e.log.Debug().Str("event_id", ev.id).Str("event", ev.typ).Int("attempt", attempt).Int("status", d.StatusCode).Msg("sandbox webhook")
	return d.StatusCode >= 200 && d.StatusCode < 300
}
