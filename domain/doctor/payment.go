package doctor

import (
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Order is a payment order of an appointment: the provider's id and what
// it asks for.
type Order struct {
	ID       string
	Amount   int64
	Currency string
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
}

// OrderClaim is what RequestPaymentOrder decided.
type OrderClaim int

const (
	// OrderExists: the appointment has an order; pay that one.
	OrderExists OrderClaim = iota
	// OrderClaimed: this caller's claim was recorded: create the order.
	OrderClaimed
	// OrderInFlight: another caller's fresh claim is creating the order.
	OrderInFlight
)

// RequestPaymentOrder decides who creates an appointment's payment order:
// nobody when it has one, the caller when nobody has claimed it (or the
// last claim is older than lease: its holder died), else somebody else.
// Only the patient (or an admin or the system) may ask, and only while
// something is still to be paid.
func (d *Doctor) RequestPaymentOrder(id string, by domain.Actor, now time.Time, lease time.Duration) (OrderClaim, error) {
	a, err := d.appointmentFor(id, by)
	if err != nil {
		return 0, err
	}
	if by.Role == domain.RoleDoctor {
		return 0, domain.Detail(ErrNotAllowed, "only the patient pays")
	}
	if err := a.payable(now); err != nil {
		return 0, err
	}
	if len(a.orders) > 0 {
		return OrderExists, nil
	}
	if !a.OrderRequestedAt.IsZero() && now.Before(a.OrderRequestedAt.Add(lease)) {
		return OrderInFlight, nil
	}
	d.record(PaymentOrderRequested{DoctorID: d.id, AppointmentID: a.ID, RequestedAt: now.UTC()})
	return OrderClaimed, nil
}

// payable says whether the appointment can still be paid online at now.
func (a *Appointment) payable(now time.Time) error {
	switch {
	case a.Payment.Status == PaymentNotRequired:
		return domain.Detail(ErrPaymentNotNeeded, "this appointment takes no online payment")
	case !a.Status.Live():
		return domain.Detail(ErrPaymentNotNeeded, "a %s appointment takes no payment", a.Status)
	case a.Payment.Status != PaymentPending && a.Payment.Status != PaymentFailedState:
		return domain.Detail(ErrPaymentNotNeeded, "the payment is %s", a.Payment.Status)
	case a.Status == StatusHeld && !now.Before(a.HoldExpiresAt):
		return domain.Detail(ErrPaymentNotNeeded, "the hold expired at %s", a.HoldExpiresAt.Format(time.RFC3339))
	case !now.Before(a.Start):
		return domain.Detail(ErrPaymentNotNeeded, "the appointment has started")
	}
	return nil
}

// CurrentOrder is the appointment's newest payment order.
func (d *Doctor) CurrentOrder(id string) (Order, bool) {
	a, ok := d.appointments[id]
	if !ok || len(a.orders) == 0 {
		return Order{}, false
	}
	return a.orders[len(a.orders)-1], true
}

// OrderOf finds a payment order of this doctor's appointments by its id.
func (d *Doctor) OrderOf(orderID string) (appointmentID string, o Order, ok bool) {
	appointmentID, ok = d.orders[orderID]
	if !ok {
		return "", Order{}, false
	}
	for _, o := range d.appointments[appointmentID].orders {
		if o.ID == orderID {
			return appointmentID, o, true
		}
	}
	return "", Order{}, false
}

// CreatePaymentOrder records the order the provider created for an
// appointment, at the appointment's fee. It is recorded whatever became of
// the appointment since the claim (a payment against it must still be
// traceable, and refunded); the same order twice records nothing.
func (d *Doctor) CreatePaymentOrder(id string, o Order, by domain.Actor) error {
	a, err := d.appointmentFor(id, by)
	if err != nil {
		return err
	}
	if o.ID == "" {
		return domain.Invalid("order id is required")
	}
	if owner, seen := d.orders[o.ID]; seen {
		if owner != a.ID {
			return domain.Invalid("order %s belongs to another appointment", o.ID)
		}
		return nil
	}
	if a.Payment.Status == PaymentNotRequired {
		return domain.Detail(ErrPaymentNotNeeded, "this appointment takes no online payment")
	}
	if o.Amount != a.Fees || o.Currency != a.Currency {
		return domain.Invalid("the order is for %d %s, the appointment costs %d %s", o.Amount, o.Currency, a.Fees, a.Currency)
	}
	d.record(PaymentOrderCreated{DoctorID: d.id, AppointmentID: a.ID, OrderID: o.ID, Amount: o.Amount, Currency: o.Currency})
	return nil
}

// CapturePayment records a verified payment against one of the
// appointment's orders, once per payment id. Its amount and currency must
// be the order's. A held appointment becomes confirmed, also when its hold
// ran out but was not expired yet (nobody else can have its slot); money
// for an appointment that cannot use it any more is recorded with
// RefundDue.
func (d *Doctor) CapturePayment(id, paymentID, orderID string, amount int64, currency string, now time.Time) error {
	a, ok := d.appointments[id]
	if !ok {
		return ErrAppointmentNotFound
	}
	if paymentID == "" {
		return domain.Invalid("a payment needs an id")
	}
	if _, seen := a.captured[paymentID]; seen {
		return nil // idempotent by payment id
	}
	if owner, ok := d.orders[orderID]; !ok || owner != a.ID {
		return domain.Detail(ErrPaymentMismatch, "order %q is not an order of this appointment", orderID)
	}
	_, o, _ := d.OrderOf(orderID)
	if amount != o.Amount || currency != o.Currency {
		return domain.Detail(ErrPaymentMismatch, "the payment is %d %s, the order %d %s", amount, currency, o.Amount, o.Currency)
	}
	usable := a.Status.Live() && (a.Payment.Status == PaymentPending || a.Payment.Status == PaymentFailedState)
	d.record(PaymentCaptured{
		DoctorID: d.id, AppointmentID: a.ID, PaymentID: paymentID, OrderID: orderID, Amount: amount,
		Currency: currency, RefundDue: !usable, CapturedAt: now.UTC(),
	})
	if usable && a.Status == StatusHeld {
		d.record(AppointmentConfirmed{DoctorID: d.id, AppointmentID: a.ID, PaymentID: paymentID, ConfirmedAt: now.UTC()})
	}
	return nil
}

// FailPayment records a failed payment attempt of a still unpaid
// appointment; anything later (a payment that succeeded) wins over it.
func (d *Doctor) FailPayment(id, orderID, paymentID, reason string) error {
	a, ok := d.appointments[id]
	if !ok {
		return ErrAppointmentNotFound
	}
	if a.Payment.Status != PaymentPending {
		return nil
	}
	if _, seen := a.captured[paymentID]; seen {
		return nil
	}
	d.record(PaymentFailed{DoctorID: d.id, AppointmentID: a.ID, OrderID: orderID, PaymentID: paymentID, Reason: domain.Clip(reason, 200)})
	return nil
}

// RefundLeft is how much of a captured payment is not being or been
// refunded.
func (d *Doctor) RefundLeft(id, paymentID string) int64 {
	a, ok := d.appointments[id]
	if !ok {
		return 0
	}
	return a.captured[paymentID] - a.refunded[paymentID]
}

// IssueRefund records a refund the provider accepted, once per refund id;
// the refunds of a payment never add up to more than it.
func (d *Doctor) IssueRefund(id, paymentID, refundID string, amount int64, now time.Time) error {
	a, ok := d.appointments[id]
	if !ok {
		return ErrAppointmentNotFound
	}
	if refundID == "" {
		return domain.Invalid("refund id is required")
	}
	if _, seen := a.refunds[refundID]; seen {
		return nil
	}
	captured, ok := a.captured[paymentID]
	if !ok {
		return ErrPaymentUnknown
	}
	if left := captured - a.refunded[paymentID]; amount <= 0 || amount > left {
		return domain.Invalid("refund amount must be between 1 and the %d left of the captured %d", left, captured)
	}
	d.record(RefundIssued{DoctorID: d.id, AppointmentID: a.ID, PaymentID: paymentID, RefundID: refundID, Amount: amount, IssuedAt: now.UTC()})
	return nil
}

// ProcessRefund records that a refund was paid back. A refund the log has
// not seen issued yet (its webhook overtook the call that made it) is
// recorded as issued first.
func (d *Doctor) ProcessRefund(id, paymentID, refundID string, amount int64, now time.Time) error {
	a, ok := d.appointments[id]
	if !ok {
		return ErrAppointmentNotFound
	}
	r, seen := a.refunds[refundID]
	if !seen {
		if err := d.IssueRefund(id, paymentID, refundID, amount, now); err != nil {
			return err
		}
		r = a.refunds[refundID]
	}
	if r.state != refundPending {
		return nil
	}
	d.record(RefundProcessed{DoctorID: d.id, AppointmentID: a.ID, PaymentID: r.paymentID, RefundID: refundID, Amount: r.amount, ProcessedAt: now.UTC()})
	return nil
}

// FailRefund records that a pending refund failed; its amount is due again.
func (d *Doctor) FailRefund(id, refundID, reason string, now time.Time) error {
	a, ok := d.appointments[id]
	if !ok {
		return ErrAppointmentNotFound
	}
	r, seen := a.refunds[refundID]
	if !seen || r.state != refundPending {
		return nil
	}
	d.record(RefundFailed{DoctorID: d.id, AppointmentID: a.ID, PaymentID: r.paymentID, RefundID: refundID, Amount: r.amount, Reason: domain.Clip(reason, 200), FailedAt: now.UTC()})
	return nil
}

// refundOnCancel is what cancelling a paid appointment gives back: all of
// what is left of the payment when a doctor, an admin or the system
// cancels, or the patient does at least the schedule's refund cutoff
// before the start; nothing otherwise.
func (d *Doctor) refundOnCancel(a *Appointment, by domain.Role, now time.Time) int64 {
	if a.Payment.Status != PaymentPaid {
		return 0
	}
	left := a.captured[a.Payment.PaymentID] - a.refunded[a.Payment.PaymentID]
	if by != domain.RolePatient {
		return left
	}
	cutoff := DefaultRefundCutoffHours
	if d.grid != nil {
		cutoff = d.grid.s.RefundCutoffHours
	}
	if a.Start.Sub(now) >= time.Duration(cutoff)*time.Hour {
		return left
	}
	return 0
}

// applyPayment folds the payment events.
func (d *Doctor) applyPayment(ev domain.Event) {
	ref, ok := ev.(AppointmentEvent)
	if !ok {
		return
	}
	a := d.appointments[ref.AppointmentRef()]
	if a == nil {
		return
	}
	switch e := ev.(type) {
	case PaymentOrderRequested:
		a.OrderRequestedAt = e.RequestedAt
	case PaymentOrderCreated:
		a.orders = append(a.orders, Order{ID: e.OrderID, Amount: e.Amount, Currency: d.share(e.Currency)})
		d.orders[e.OrderID] = a.ID
		a.OrderRequestedAt = time.Time{}
		if a.Payment.PaymentID == "" {
			a.Payment.OrderID, a.Payment.Amount = e.OrderID, e.Amount
		}
	case PaymentCaptured:
		if a.captured == nil {
			a.captured = map[string]int64{}
		}
		a.captured[e.PaymentID] = e.Amount
		if a.Payment.PaymentID == "" {
			a.Payment = Payment{Status: PaymentPaid, OrderID: e.OrderID, PaymentID: e.PaymentID, Amount: e.Amount}
		}
	case PaymentFailed:
		if a.Payment.Status == PaymentPending {
			a.Payment.Status = PaymentFailedState
		}
	case RefundIssued:
		if a.refunds == nil {
			a.refunds, a.refunded = map[string]*refund{}, map[string]int64{}
		}
		a.refunds[e.RefundID] = &refund{paymentID: e.PaymentID, amount: e.Amount}
		a.refunded[e.PaymentID] += e.Amount
		if e.PaymentID == a.Payment.PaymentID {
			a.Payment.Status = PaymentRefundPending
		}
	case RefundProcessed:
		if r := a.refunds[e.RefundID]; r != nil {
			r.state = refundProcessed
			if e.PaymentID == a.Payment.PaymentID {
				a.Payment.RefundedAmount += r.amount
				if !a.refundsPending(e.PaymentID) {
					a.Payment.Status = PaymentRefunded
				}
			}
		}
	case RefundFailed:
		if r := a.refunds[e.RefundID]; r != nil && r.state == refundPending {
			r.state = refundFailed
			a.refunded[e.PaymentID] -= r.amount
		}
	}
}

func (a *Appointment) refundsPending(paymentID string) bool {
	for _, r := range a.refunds {
		if r.paymentID == paymentID && r.state == refundPending {
			return true
		}
	}
	return false
}
