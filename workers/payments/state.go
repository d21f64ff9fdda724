package payments

import (
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/payment"
)

// appt is the payment work of one appointment that takes online payment,
// folded from the log.
type appt struct {
	doctorID, id string
	status       doctor.Status
	start        time.Time
	holdUntil    time.Time // zero unless held
	orders       []string
	orderedAt    time.Time // when the newest order was recorded
	claimAt      time.Time // an open claim on creating the order
	claimChecked time.Time // the claim whose order was looked for, not found
	current      string    // the payment that paid the appointment
	captured     map[string]int64
	failed       map[string]bool  // payments recorded as failed
	due          map[string]int64 // payment -> amount to give back, in total
	refunds      map[string]*refund
	facts        []fact          // webhook facts not yet reflected in the log
	handled      map[string]bool // webhooks acted on (by event id)

	nextPoll    time.Time     // next time its open order is asked about
	pollWait    time.Duration // the back-off of those asks
	leadChecked bool          // its orders were asked about in the hold's last ExpiryLead
	retryAt     time.Time     // after a failed action: real (wall) time, not the log's
	retries     int

	scheduled time.Time // its earliest entry on the due heap
}

type refundState uint8

const (
	refundPending refundState = iota
	refundProcessed
	refundFailed
)

type refund struct {
	paymentID string
	amount    int64
	state     refundState
	next      time.Time
	wait      time.Duration
}

// fact is a verified webhook about the appointment, and when the log
// recorded it.
type fact struct {
	payment.WebhookReceived
	at time.Time
}

// open reports whether the fact is still to be acted on: not acted on yet,
// and not reflected in the log.
func (a *appt) open(f fact) bool {
	if a.handled[f.EventID] {
		return false
	}
	switch f.Event {
	case webhookPaymentAuthorized, webhookPaymentCaptured, webhookOrderPaid:
		_, seen := a.captured[f.PaymentID]
		return f.PaymentID != "" && !seen
	case webhookPaymentFailed:
		_, seen := a.captured[f.PaymentID]
		return f.PaymentID != "" && !seen && !a.failed[f.PaymentID] && a.current == ""
	case webhookRefundProcessed:
		r := a.refunds[f.RefundID]
		return f.RefundID != "" && (r == nil || r.state == refundPending)
	case webhookRefundFailed:
		r := a.refunds[f.RefundID]
		return r != nil && r.state == refundPending
	}
	return false
}

// openFacts drops the facts the log reflects now and returns the rest.
func (a *appt) openFacts() []fact {
	kept := a.facts[:0]
	for _, f := range a.facts {
		if a.open(f) {
			kept = append(kept, f)
		}
	}
	clear(a.facts[len(kept):])
	a.facts = kept
	return kept
}

// refundLeft is what is still to be given back of payment p: its due
// amount less the refunds issued for it that did not fail.
func (a *appt) refundLeft(p string) int64 {
	left := a.due[p]
	for _, r := range a.refunds {
		if r.paymentID == p && r.state != refundFailed {
			left -= r.amount
		}
	}
	return max(left, 0)
}

// failedRefunds counts the failed refunds of payment p: the attempt number
// of its next refund, which keys that refund at the provider.
func (a *appt) failedRefunds(p string) int {
	n := 0
	for _, r := range a.refunds {
		if r.paymentID == p && r.state == refundFailed {
			n++
		}
	}
	return n
}

// wake is the earliest time something may be due for the appointment
// (zero: nothing is).
func (a *appt) wake(c Config) time.Time {
	var at time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if len(a.openFacts()) > 0 {
		soonest(time.Unix(0, 0))
	}
	switch {
	case a.status == doctor.StatusHeld && len(a.orders) == 0 && a.uncheckedClaim():
		soonest(a.claimAt.Add(c.OrderLease)) // look for the order of a claimer that died
	case a.status == doctor.StatusHeld && len(a.orders) == 0:
		soonest(a.holdUntil)
	case a.status == doctor.StatusHeld:
		if a.leadChecked {
			soonest(a.holdUntil)
		} else {
			soonest(a.holdUntil.Add(-c.ExpiryLead))
		}
		soonest(a.nextPoll)
	case a.status == doctor.StatusConfirmed && a.current == "" && len(a.orders) > 0 && a.nextPoll.Before(a.start):
		soonest(a.nextPoll)
	}
	for p := range a.due {
		if a.refundLeft(p) > 0 {
			soonest(time.Unix(0, 0))
		}
	}
	for _, r := range a.refunds {
		if r.state == refundPending {
			soonest(r.next)
		}
	}
	return at
}

// uncheckedClaim: a claim on creating the order was recorded and its order
// was not looked for yet.
func (a *appt) uncheckedClaim() bool { return !a.claimAt.IsZero() && !a.claimAt.Equal(a.claimChecked) }
