package readmodeltest

import (
	"errors"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// ---- payments of appointments ----

// diyaFee is Dr. Diya Menon's fee (policy required).
const diyaFee = 30000

// expectPayment checks an appointment's status and payment.
func (s *suite) expectPayment(t *testing.T, m Models, id string, status doctor.Status, pay projections.Payment) {
	t.Helper()
	a := s.appointment(t, m, id)
	if a.Status != string(status) || a.Payment != pay {
		t.Errorf("%s: status %q payment %+v; want %q %+v", id, a.Status, a.Payment, status, pay)
	}
}

func (s *suite) appointmentPayments(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	expect := func(id string, status doctor.Status, pay projections.Payment) {
		t.Helper()
		s.expectPayment(t, m, id, status, pay)
	}
	step := func(change func()) { mark := len(h.events); change(); more(t, m, h, mark) }
	paid := projections.Payment{Status: "paid", OrderID: "order_1", PaymentID: "pay_1", Amount: diyaFee}

	// Required payment: held, claimed, ordered (the order's amount), paid, confirmed.
	step(func() { h.reserve(diya, "y1", priya, kol(2, 9, 0)) })
	expect("y1", doctor.StatusHeld, projections.Payment{Status: "pending"})
	step(func() { h.orderClaim("y1") })
	expect("y1", doctor.StatusHeld, projections.Payment{Status: "pending"})
	step(func() { h.order("y1", "order_1") })
	expect("y1", doctor.StatusHeld, projections.Payment{Status: "pending", OrderID: "order_1", Amount: diyaFee})
	step(func() { h.order("y1", "order_2") })
	expect("y1", doctor.StatusHeld, projections.Payment{Status: "pending", OrderID: "order_2", Amount: diyaFee})
	step(func() { h.fail("y1", "order_2", "pay_declined") })
	expect("y1", doctor.StatusHeld, projections.Payment{Status: "failed", OrderID: "order_2", Amount: diyaFee})
	step(func() { h.capture("y1", "pay_1", "order_1", false, true) })
	expect("y1", doctor.StatusConfirmed, paid)
	// A second payment for a paid appointment is due back: the first stands,
	// and refunding the second (issued, processed) does not touch it; nor
	// does a later order.
	step(func() { h.capture("y1", "pay_2", "order_2", true, false) })
	expect("y1", doctor.StatusConfirmed, paid)
	step(func() { h.refund("y1", "pay_2", "rfnd_2"); h.refunded("y1", "pay_2", "rfnd_2", diyaFee) })
	expect("y1", doctor.StatusConfirmed, paid)
	step(func() { h.order("y1", "order_3") })
	expect("y1", doctor.StatusConfirmed, paid)
	step(func() { h.cancel("y1", "", domain.RolePatient, true) })
	expect("y1", doctor.StatusCancelled, paid)
	step(func() { h.refund("y1", "pay_1", "rfnd_1") })
	expect("y1", doctor.StatusCancelled, projections.Payment{Status: "refund_pending", OrderID: "order_1", PaymentID: "pay_1", Amount: diyaFee})

	// Paid after the hold expired: recorded as paid (refund due), then
	// refunded; the refund's webhook came first, so the log records it
	// issued and processed at once.
	step(func() { h.reserve(diya, "y2", rahul, kol(2, 9, 30)); h.order("y2", "order_y2"); h.expire("y2") })
	expect("y2", doctor.StatusExpired, projections.Payment{Status: "pending", OrderID: "order_y2", Amount: diyaFee})
	step(func() { h.capture("y2", "pay_y2", "order_y2", true, false) })
	expect("y2", doctor.StatusExpired, projections.Payment{Status: "paid", OrderID: "order_y2", PaymentID: "pay_y2", Amount: diyaFee})
	step(func() { h.refund("y2", "pay_y2", "rfnd_y2"); h.refunded("y2", "pay_y2", "rfnd_y2", diyaFee) })
	refunded := projections.Payment{Status: "refunded", OrderID: "order_y2", PaymentID: "pay_y2", Amount: diyaFee, RefundedAmount: diyaFee}
	expect("y2", doctor.StatusExpired, refunded)
	// A second payment of the order, due back too, leaves the refunded one
	// as it is.
	step(func() { h.capture("y2", "pay_y2b", "order_y2", true, false) })
	expect("y2", doctor.StatusExpired, refunded)

	// Optional payment: confirmed and pending, paid at the clinic or online
	// (here without an order the log knows of: the payment's amount).
	step(func() { h.reserve(chen, "y3", sara, time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)) })
	expect("y3", doctor.StatusConfirmed, projections.Payment{Status: "pending"})
	step(func() { h.capture("y3", "pay_y3", "", false, false) })
	expect("y3", doctor.StatusConfirmed, projections.Payment{Status: "paid", PaymentID: "pay_y3", Amount: 15000})

	// No payment needed.
	step(func() { h.reserve(asha, "y4", priya, kol(2, 9, 0)) })
	expect("y4", doctor.StatusConfirmed, projections.Payment{Status: "not_required"})
}

// appointmentRefunds: a refund is pending until processed; a failed one
// keeps the payment refund_pending until it is issued again and processed;
// partial refunds add up, and the payment is refunded only when none of
// its refunds is pending.
func (s *suite) appointmentRefunds(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	step := func(change func()) { mark := len(h.events); change(); more(t, m, h, mark) }
	pay := func(status string, refunded int64) projections.Payment {
		return projections.Payment{Status: status, OrderID: "order_r1", PaymentID: "pay_r1", Amount: diyaFee, RefundedAmount: refunded}
	}
	step(func() {
		h.reserve(diya, "r1", priya, kol(3, 9, 0))
		h.order("r1", "order_r1")
		h.capture("r1", "pay_r1", "order_r1", false, true)
		h.cancel("r1", "doctor unwell", domain.RoleDoctor, true)
	})
	s.expectPayment(t, m, "r1", doctor.StatusCancelled, pay("paid", 0))
	step(func() { h.refund("r1", "pay_r1", "rf_1") })
	s.expectPayment(t, m, "r1", doctor.StatusCancelled, pay("refund_pending", 0))
	step(func() { h.refundFailed("r1", "pay_r1", "rf_1", diyaFee) })
	s.expectPayment(t, m, "r1", doctor.StatusCancelled, pay("refund_pending", 0))
	// Issued again in two parts.
	step(func() { h.refundOf("r1", "pay_r1", "rf_2", 10000); h.refundOf("r1", "pay_r1", "rf_3", 20000) })
	s.expectPayment(t, m, "r1", doctor.StatusCancelled, pay("refund_pending", 0))
	step(func() { h.refunded("r1", "pay_r1", "rf_2", 10000) })
	s.expectPayment(t, m, "r1", doctor.StatusCancelled, pay("refund_pending", 10000))
	step(func() { h.refunded("r1", "pay_r1", "rf_3", 20000) })
	s.expectPayment(t, m, "r1", doctor.StatusCancelled, pay("refunded", diyaFee))
}

// appointmentHolds: holdExpiresAt is set while held and cleared by a
// confirmation, an expiry or a cancellation.
func (s *suite) appointmentHolds(t *testing.T) {
	h := newHistory()
	h.base()
	m := s.with(t, h)
	until := nowK.Add(15 * time.Minute)
	expect := func(id string, want *time.Time) {
		t.Helper()
		got := s.appointment(t, m, id).HoldExpiresAt
		if (got == nil) != (want == nil) || (got != nil && !got.Equal(*want)) {
			t.Errorf("%s: holdExpiresAt %v, want %v", id, got, want)
		}
	}
	step := func(change func()) { mark := len(h.events); change(); more(t, m, h, mark) }
	step(func() {
		h.reserve(diya, "h1", priya, kol(3, 9, 0))
		h.reserve(diya, "h2", rahul, kol(3, 9, 30))
		h.reserve(diya, "h3", sara, kol(3, 10, 0))
		h.reserve(asha, "h4", sara, kol(3, 10, 0))
	})
	for _, id := range []string{"h1", "h2", "h3"} {
		expect(id, &until)
	}
	expect("h4", nil)
	step(func() { h.reschedule("h1", kol(3, 11, 0)); h.order("h1", "order_h1") })
	expect("h1", &until)
	step(func() { h.capture("h1", "pay_h1", "order_h1", false, true) })
	expect("h1", nil)
	step(func() { h.expire("h2") })
	expect("h2", nil)
	step(func() { h.cancel("h3", "changed my mind", domain.RolePatient, false) })
	expect("h3", nil)
}

// ---- the payments list ----

func (s *suite) payments(t *testing.T, m Models, q projections.PaymentQuery) []projections.PaymentRow {
	t.Helper()
	if m.Payments == nil {
		t.Fatal("Models.Payments is not set")
	}
	rows, err := walkPayments(ctx, m.Payments, q)
	if err != nil {
		t.Fatalf("Payments(%+v): %v", q, err)
	}
	return rows
}

// paymentIDs lists the rows as "appointment:status".
func paymentIDs(rows []projections.PaymentRow) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r.AppointmentID+":"+r.Status)
	}
	return out
}

func (s *suite) paymentList(t *testing.T) {
	m := s.newModels(t)
	expectNames(t, "no payments", paymentIDs(s.payments(t, m, projections.PaymentQuery{})))
	h := newHistory()
	h.base()
	h.appointments()
	feed(t, m, h.events...)
	// Newest payment change first: a09 captured, a06 refund issued, a07
	// failed, a05 captured; the appointments that take no online payment
	// are not listed.
	all := func(what string, q projections.PaymentQuery, want ...string) {
		t.Helper()
		for _, limit := range []int{0, 1, 2, 3, projections.MaxPageSize} {
			q.Limit = limit
			expectNames(t, what, paymentIDs(s.payments(t, m, q)), want...)
		}
	}
	all("all", projections.PaymentQuery{}, "a09:paid", "a06:refund_pending", "a07:failed", "a05:paid")
	all("paid", projections.PaymentQuery{Status: "paid"}, "a09:paid", "a05:paid")
	all("refund_pending", projections.PaymentQuery{Status: "refund_pending"}, "a06:refund_pending")
	all("failed", projections.PaymentQuery{Status: "failed"}, "a07:failed")
	all("pending", projections.PaymentQuery{Status: "pending"})
	all("refunded", projections.PaymentQuery{Status: "refunded"})

	mark := len(h.events)
	h.refunded("a06", "pay_a06", "rfnd_a06", diyaFee)
	h.reserve(diya, "a11", sara, kol(4, 9, 0))
	h.orderClaim("a05") // not a payment change
	h.complete("a05")   // nor is this
	more(t, m, h, mark)
	all("all after more", projections.PaymentQuery{}, "a11:pending", "a06:refunded", "a09:paid", "a07:failed", "a05:paid")
	all("pending after more", projections.PaymentQuery{Status: "pending"}, "a11:pending")

	rows := s.payments(t, m, projections.PaymentQuery{Status: "refunded"})
	processed := h.events[mark]
	want := projections.PaymentRow{
		AppointmentID: "a06", DoctorID: diya, OrderID: "order_a06", PaymentID: "pay_a06", Status: "refunded",
		Amount: diyaFee, RefundedAmount: diyaFee, Currency: "INR", UpdatedAt: processed.RecordedAt.UTC(),
	}
	if len(rows) != 1 || paymentViews(rows)[0] != want {
		t.Errorf("refunded rows:\n got %+v\nwant %+v", rows, want)
	}
	rows = s.payments(t, m, projections.PaymentQuery{Status: "pending"})
	reserved := h.events[mark+1]
	if len(rows) != 1 || !rows[0].UpdatedAt.Equal(reserved.RecordedAt) || rows[0].Amount != 0 || rows[0].Currency != "INR" {
		t.Errorf("a pending payment without an order: %+v, want updatedAt %v (its reservation)", rows, reserved.RecordedAt)
	}
	// A cursor stays valid while the list changes under it: the rows after
	// it are those that last changed before it.
	first, err := m.Payments.Payments(ctx, projections.PaymentQuery{Limit: 2})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	mark = len(h.events)
	h.capture("a07", "pay_a07", "order_a07", false, false)
	more(t, m, h, mark)
	next, err := m.Payments.Payments(ctx, projections.PaymentQuery{Limit: 2, Cursor: first.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	expectNames(t, "the page after the first, after a07 changed", paymentIDs(next.Payments), "a09:paid", "a05:paid")
	expectNames(t, "all at last", paymentIDs(s.payments(t, m, projections.PaymentQuery{})),
		"a07:paid", "a11:pending", "a06:refunded", "a09:paid", "a05:paid")
}

func (s *suite) paymentValidation(t *testing.T) {
	h := newHistory()
	h.base()
	h.appointments()
	m := s.with(t, h)
	if m.Payments == nil {
		t.Fatal("Models.Payments is not set")
	}
	apptCursor, err := m.Appointments.Appointments(ctx, projections.AppointmentQuery{Limit: 1})
	if err != nil || apptCursor.NextCursor == "" {
		t.Fatalf("appointments page: %+v, %v", apptCursor, err)
	}
	for _, c := range []struct {
		name string
		q    projections.PaymentQuery
		want *domain.Error
	}{
		{"limit -1", projections.PaymentQuery{Limit: -1}, nil},
		{"limit 201", projections.PaymentQuery{Limit: projections.MaxPageSize + 1}, nil},
		{"unknown status", projections.PaymentQuery{Status: "captured"}, nil},
		{"an appointment status", projections.PaymentQuery{Status: "confirmed"}, nil},
		{"not_required is never listed", projections.PaymentQuery{Status: "not_required"}, nil},
		{"garbage cursor", projections.PaymentQuery{Cursor: "%%%not base64%%%"}, projections.ErrInvalidCursor},
		{"foreign cursor", projections.PaymentQuery{Cursor: "not-a-cursor"}, projections.ErrInvalidCursor},
		{"an appointments cursor", projections.PaymentQuery{Cursor: apptCursor.NextCursor}, projections.ErrInvalidCursor},
	} {
		_, err := m.Payments.Payments(ctx, c.q)
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: got %v, want an error of kind invalid", c.name, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v (code %q), want %s", c.name, err, domain.CodeOf(err), c.want.Code)
		}
	}
	for _, limit := range []int{1, projections.MaxPageSize} {
		if _, err := m.Payments.Payments(ctx, projections.PaymentQuery{Limit: limit}); err != nil {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
}
