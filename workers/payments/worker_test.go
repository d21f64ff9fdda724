package payments_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/payment"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/payments"
)

// These tests drive the worker's decisions with recording fakes; the
// end-to-end tests (internal/app) run it on the real commands, store and
// Razorpay emulator.

var t0 = time.Date(2031, 3, 3, 4, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// fakeCommands records the commands the worker runs.
type fakeCommands struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeCommands) record(s string) (commands.AppointmentResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return commands.AppointmentResult{}, nil
}

func (f *fakeCommands) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCommands) SettlePayment(_ context.Context, _ commands.Meta, c commands.SettlePayment) (commands.AppointmentResult, error) {
	return f.record("settle " + c.AppointmentID + " " + c.OrderID + " " + c.PaymentID)
}
func (f *fakeCommands) FailPayment(_ context.Context, _ commands.Meta, c commands.FailPayment) (commands.AppointmentResult, error) {
	return f.record("fail " + c.AppointmentID + " " + c.PaymentID)
}
func (f *fakeCommands) CreatePaymentOrder(_ context.Context, _ commands.Meta, c commands.CreatePaymentOrder) (commands.AppointmentResult, error) {
	return f.record("order " + c.AppointmentID + " " + c.Order.ID)
}
func (f *fakeCommands) ExpireHold(_ context.Context, _ commands.Meta, c commands.ExpireHold) (commands.AppointmentResult, error) {
	return f.record("expire " + c.AppointmentID)
}
func (f *fakeCommands) IssueRefund(_ context.Context, _ commands.Meta, c commands.IssueRefund) (commands.AppointmentResult, error) {
	return f.record("issue " + c.RefundID)
}
func (f *fakeCommands) ProcessRefund(_ context.Context, _ commands.Meta, c commands.ProcessRefund) (commands.AppointmentResult, error) {
	return f.record("processed " + c.RefundID)
}
func (f *fakeCommands) FailRefund(_ context.Context, _ commands.Meta, c commands.FailRefund) (commands.AppointmentResult, error) {
	return f.record("refund failed " + c.RefundID)
}

// fakeGateway answers what a test sets and records refund keys.
type fakeGateway struct {
	commands.Gateway // unused methods panic
	mu               sync.Mutex
	byReceipt        map[string]commands.GatewayOrder
	payments         map[string][]commands.GatewayPayment
	refundKeys       []string
	asked            int // OrderPayments calls
}

func (g *fakeGateway) OrderByReceipt(_ context.Context, receipt string) (commands.GatewayOrder, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.byReceipt[receipt]
	return o, ok, nil
}

func (g *fakeGateway) OrderPayments(_ context.Context, orderID string) ([]commands.GatewayPayment, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	return g.payments[orderID], nil
}

func (g *fakeGateway) Refund(_ context.Context, paymentID string, amount int64, key string) (commands.GatewayRefund, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refundKeys = append(g.refundKeys, key)
	return commands.GatewayRefund{ID: "rfnd_" + key[:8], PaymentID: paymentID, Amount: amount, Status: commands.GatewayRefundPending}, nil
}

type rig struct {
	w   *payments.Worker
	cmd *fakeCommands
	gw  *fakeGateway
	clk *clock
	pos uint64
}

func newRig() *rig {
	r := &rig{cmd: &fakeCommands{}, gw: &fakeGateway{byReceipt: map[string]commands.GatewayOrder{}, payments: map[string][]commands.GatewayPayment{}}, clk: &clock{now: t0}}
	r.w = payments.New(payments.Config{Commands: r.cmd, Gateway: r.gw, Now: r.clk.Now, PollAfter: time.Minute, ExpiryLead: 30 * time.Second, OrderLease: 30 * time.Second})
	return r
}

func (r *rig) apply(t *testing.T, events ...domain.Event) {
	t.Helper()
	for _, e := range events {
		r.pos++
		if err := r.w.Apply(context.Background(), projections.Event{Position: r.pos, Data: e, RecordedAt: r.clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// tick runs one tick and returns the commands it ran.
func (r *rig) tick() []string {
	before := len(r.cmd.Calls())
	r.w.Tick(context.Background())
	return r.cmd.Calls()[before:]
}

func held(id string) doctor.SlotReserved {
	until := t0.Add(15 * time.Minute)
	return doctor.SlotReserved{DoctorID: "d1", AppointmentID: id, PatientID: "p1", Start: t0.Add(24 * time.Hour), Status: doctor.StatusHeld,
		Fees: 50000, Currency: "INR", PaymentStatus: doctor.PaymentPending, HoldExpiresAt: &until}
}

func ordered(id, orderID string) doctor.PaymentOrderCreated {
	return doctor.PaymentOrderCreated{DoctorID: "d1", AppointmentID: id, OrderID: orderID, Amount: 50000, Currency: "INR"}
}

func webhook(event, orderID, paymentID, refundID string) payment.WebhookReceived {
	return payment.WebhookReceived{Provider: "razorpay", EventID: "evt_" + event + paymentID + refundID, Event: event, OrderID: orderID, PaymentID: paymentID, RefundID: refundID, Amount: 50000, Currency: "INR"}
}

func TestWebhookBeforeItsOrderWaitsForIt(t *testing.T) {
	r := newRig()
	r.apply(t, held("a1"))
	// The webhook overtakes the order's record (its request still running).
	r.apply(t, webhook("payment.captured", "order_1", "pay_1", ""))
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("acted on a webhook of an unknown order: %v", got)
	}
	r.apply(t, ordered("a1", "order_1"))
	if got := r.tick(); !slices.Equal(got, []string{"settle a1 order_1 pay_1"}) {
		t.Fatalf("after the order: %v", got)
	}
	// The capture reaches the log: nothing more to do for the fact.
	r.apply(t, doctor.PaymentCaptured{DoctorID: "d1", AppointmentID: "a1", PaymentID: "pay_1", OrderID: "order_1", Amount: 50000, Currency: "INR"},
		doctor.AppointmentConfirmed{DoctorID: "d1", AppointmentID: "a1", PaymentID: "pay_1"})
	r.clk.Set(t0.Add(time.Hour))
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("acted again: %v", got)
	}
}

func TestHoldRunsOut(t *testing.T) {
	r := newRig()
	r.apply(t, held("a1"), held("a2"), ordered("a2", "order_2"))
	r.clk.Set(t0.Add(14*time.Minute + 29*time.Second))
	if got := r.tick(); !slices.Equal(got, nil) {
		t.Fatalf("before the lead: %v", got)
	}
	r.clk.Set(t0.Add(14*time.Minute + 30*time.Second)) // a2's order is asked about; nothing paid yet
	asked := func() int { r.gw.mu.Lock(); defer r.gw.mu.Unlock(); return r.gw.asked }
	before := asked() // the minute-after-the-order ask came at the first tick
	if got := r.tick(); len(got) != 0 || asked() != before+1 {
		t.Fatalf("at the lead: %v, %d asks", got, asked()-before)
	}
	r.clk.Set(t0.Add(14*time.Minute + 50*time.Second))
	if r.tick(); asked() != before+1 {
		t.Fatalf("asked %d times in the lead before the expiry; want once", asked()-before)
	}
	r.clk.Set(t0.Add(15 * time.Minute))
	got := r.tick()
	slices.Sort(got)
	if !slices.Equal(got, []string{"expire a1", "expire a2"}) {
		t.Fatalf("at expiry: %v", got)
	}
}

func TestPaidOrderFoundByReconciliation(t *testing.T) {
	r := newRig()
	r.apply(t, held("a1"), ordered("a1", "order_1"))
	r.gw.payments["order_1"] = []commands.GatewayPayment{
		{ID: "pay_0", OrderID: "order_1", Status: commands.GatewayPaymentFailed},
		{ID: "pay_1", OrderID: "order_1", Status: commands.GatewayPaymentCaptured, Amount: 50000, Currency: "INR"},
	}
	r.clk.Set(t0.Add(time.Minute))
	if got := r.tick(); !slices.Equal(got, []string{"settle a1 order_1 pay_1"}) {
		t.Fatalf("reconciliation: %v", got)
	}
}

func TestDeadClaimersOrderIsAdopted(t *testing.T) {
	r := newRig()
	r.apply(t, held("a1"), doctor.PaymentOrderRequested{DoctorID: "d1", AppointmentID: "a1", RequestedAt: t0})
	r.gw.byReceipt["a1"] = commands.GatewayOrder{ID: "order_9", Amount: 50000, Currency: "INR", Receipt: "a1"}
	r.clk.Set(t0.Add(29 * time.Second))
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("within the lease: %v", got)
	}
	r.clk.Set(t0.Add(30 * time.Second))
	if got := r.tick(); !slices.Equal(got, []string{"order a1 order_9"}) {
		t.Fatalf("after the lease: %v", got)
	}
}

func TestFailedRefundIsMadeAnewUnderANewKey(t *testing.T) {
	r := newRig()
	r.apply(t, held("a1"), ordered("a1", "order_1"),
		doctor.PaymentCaptured{DoctorID: "d1", AppointmentID: "a1", PaymentID: "pay_1", OrderID: "order_1", Amount: 50000, Currency: "INR"},
		doctor.AppointmentConfirmed{DoctorID: "d1", AppointmentID: "a1", PaymentID: "pay_1"},
		doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: "a1", CancelledBy: domain.RoleDoctor, RefundDue: true, RefundAmount: 50000})
	first := r.tick()
	if len(first) != 1 || len(r.gw.refundKeys) != 1 {
		t.Fatalf("refund: %v, keys %v", first, r.gw.refundKeys)
	}
	rid := first[0][len("issue "):]
	// Until the issued refund is in the log, a retry (a crash, another
	// worker) uses the same key: the provider answers the same refund.
	r.tick()
	if len(r.gw.refundKeys) != 2 || r.gw.refundKeys[1] != r.gw.refundKeys[0] {
		t.Fatalf("a retry changed the key: %v", r.gw.refundKeys)
	}
	r.apply(t, doctor.RefundIssued{DoctorID: "d1", AppointmentID: "a1", PaymentID: "pay_1", RefundID: rid, Amount: 50000})
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("refunded twice: %v", got)
	}
	r.apply(t, webhook("refund.failed", "", "pay_1", rid))
	if got := r.tick(); !slices.Equal(got, []string{"refund failed " + rid}) {
		t.Fatalf("refund.failed: %v", got)
	}
	r.apply(t, doctor.RefundFailed{DoctorID: "d1", AppointmentID: "a1", PaymentID: "pay_1", RefundID: rid, Amount: 50000})
	if got := r.tick(); len(got) != 1 || len(r.gw.refundKeys) != 3 || r.gw.refundKeys[2] == r.gw.refundKeys[0] {
		t.Fatalf("after the failure: %v, keys %v", got, r.gw.refundKeys)
	}
}

func TestUnknownWebhookTypesAreIgnored(t *testing.T) {
	r := newRig()
	r.apply(t, held("a1"), ordered("a1", "order_1"), webhook("subscription.charged", "order_1", "pay_1", ""))
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("acted on an unknown type: %v", got)
	}
}

// settleRefusing is fakeCommands whose SettlePayment finds the payment is
// not the appointment's (a webhook naming our order with another payment).
type settleRefusing struct{ *fakeCommands }

func (f settleRefusing) SettlePayment(ctx context.Context, m commands.Meta, c commands.SettlePayment) (commands.AppointmentResult, error) {
	f.record("settle " + c.PaymentID)
	return commands.AppointmentResult{}, doctor.ErrPaymentMismatch
}

func TestAWebhookChangingNothingIsActedOnOnce(t *testing.T) {
	r := newRig()
	cmds := settleRefusing{r.cmd}
	r.w = payments.New(payments.Config{Commands: cmds, Gateway: r.gw, Now: r.clk.Now})
	r.apply(t, held("a1"), ordered("a1", "order_1"), webhook("payment.captured", "order_1", "pay_other", ""))
	if got := r.tick(); len(got) != 1 {
		t.Fatalf("first tick: %v", got)
	}
	for range 3 {
		if got := r.tick(); len(got) != 0 {
			t.Fatalf("acted again on a webhook that changed nothing: %v", got)
		}
	}
}
