package doctor_test

import (
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

func TestPaymentOrderClaims(t *testing.T) {
	t.Parallel()
	h1 := held("a1", "p1", at(2, 9, 0))
	base := setup(doctor.PaymentRequired, h1)
	const lease = 30 * time.Second
	claimed := func(when time.Time) doctor.PaymentOrderRequested {
		return doctor.PaymentOrderRequested{DoctorID: docID, AppointmentID: "a1", RequestedAt: when}
	}
	ask := func(by domain.Actor, now time.Time, want doctor.OrderClaim) when {
		return func(d *doctor.Doctor) error {
			got, err := d.RequestPaymentOrder("a1", by, now, lease)
			if err == nil && got != want {
				return domain.Invalid("claim = %d, want %d", got, want)
			}
			return err
		}
	}
	order := doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: "a1", OrderID: "order-a1", Amount: fees, Currency: "INR"}
	notNeeded := func(name string, given []domain.Event, now time.Time) scenario {
		return scenario{name: name, given: given, when: ask(patient("p1"), now, 0), err: doctor.ErrPaymentNotNeeded, kind: domain.ErrConflict}
	}
	run(t, []scenario{
		{name: "the first asker claims", given: base, when: ask(patient("p1"), now0, doctor.OrderClaimed), then: []domain.Event{claimed(now0)}},
		{name: "a fresh claim is in flight", given: with(base, claimed(now0)), when: ask(patient("p1"), now0.Add(lease-time.Nanosecond), doctor.OrderInFlight)},
		{
			name: "a claim older than the lease is taken over", given: with(base, claimed(now0)),
			when: ask(patient("p1"), now0.Add(lease), doctor.OrderClaimed), then: []domain.Event{claimed(now0.Add(lease))},
		},
		{name: "an order exists", given: with(base, claimed(now0), order), when: ask(patient("p1"), now0.Add(time.Second), doctor.OrderExists)},
		{
			name: "after a failed attempt the order is paid again", given: with(base, order, doctor.PaymentFailed{DoctorID: docID, AppointmentID: "a1", OrderID: "order-a1", PaymentID: "pay-0"}),
			when: ask(patient("p1"), now0.Add(time.Minute), doctor.OrderExists),
		},
		{name: "another patient", given: base, when: ask(patient("p2"), now0, 0), err: doctor.ErrAppointmentNotFound, kind: domain.ErrNotFound},
		{name: "the doctor does not pay", given: base, when: ask(theDoctor, now0, 0), err: doctor.ErrNotAllowed, kind: domain.ErrForbidden},
		notNeeded("policy none", setup(doctor.PaymentNone, confirmed("a1", "p1", at(2, 9, 0))), now0),
		notNeeded("a lapsed hold", base, now0.Add(15*time.Minute)),
		notNeeded("expired", with(base, expired(h1, now0.Add(15*time.Minute))), now0.Add(16*time.Minute)),
		notNeeded("cancelled", with(base, cancelled(h1, domain.RolePatient, "", false, now0)), now0.Add(time.Minute)),
		notNeeded("paid", with(base, order, captured("a1", "pay-1", false, now0), confirmedBy("a1", "pay-1", now0)), now0.Add(time.Minute)),
		notNeeded("optional, started", setup(doctor.PaymentOptional, pending("a1", "p1", at(2, 9, 0))), at(2, 9, 0)),
	})
}

func TestRefundLifecycle(t *testing.T) {
	t.Parallel()
	h1 := held("a1", "p1", at(2, 9, 0))
	order := doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: "a1", OrderID: "order-a1", Amount: fees, Currency: "INR"}
	paid := setup(doctor.PaymentRequired, h1, order, captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5)))
	issued := doctor.RefundIssued{DoctorID: docID, AppointmentID: "a1", PaymentID: "pay-1", RefundID: "r-1", Amount: fees, IssuedAt: at(1, 9, 0)}
	processed := doctor.RefundProcessed{DoctorID: docID, AppointmentID: "a1", PaymentID: "pay-1", RefundID: "r-1", Amount: fees, ProcessedAt: at(1, 9, 0)}
	failed := doctor.RefundFailed{DoctorID: docID, AppointmentID: "a1", PaymentID: "pay-1", RefundID: "r-1", Amount: fees, Reason: "bank down", FailedAt: at(1, 9, 0)}
	process := func(d *doctor.Doctor) error { return d.ProcessRefund("a1", "pay-1", "r-1", fees, at(1, 9, 0)) }
	status := func(want doctor.PaymentStatus, refunded int64) func(*testing.T, *doctor.Doctor, []domain.Event) {
		return func(t *testing.T, d *doctor.Doctor, _ []domain.Event) {
			if a := mustAppointment(t, d, "a1"); a.Payment.Status != want || a.Payment.RefundedAmount != refunded {
				t.Errorf("payment = %+v, want %s with %d refunded", a.Payment, want, refunded)
			}
		}
	}
	run(t, []scenario{
		{name: "issued is pending", given: paid, when: func(d *doctor.Doctor) error { return d.IssueRefund("a1", "pay-1", "r-1", fees, at(1, 9, 0)) }, then: []domain.Event{issued}, after: status(doctor.PaymentRefundPending, 0)},
		{name: "processed is refunded", given: with(paid, issued), when: process, then: []domain.Event{processed}, after: status(doctor.PaymentRefunded, fees)},
		{name: "processed twice records nothing", given: with(paid, issued, processed), when: process, after: status(doctor.PaymentRefunded, fees)},
		{name: "a webhook before the refund call returned", given: paid, when: process, then: []domain.Event{issued, processed}, after: status(doctor.PaymentRefunded, fees)},
		{
			name: "a failed refund stays pending and its amount is due again", given: with(paid, issued),
			when: func(d *doctor.Doctor) error { return d.FailRefund("a1", "r-1", "bank down", at(1, 9, 0)) }, then: []domain.Event{failed},
			after: func(t *testing.T, d *doctor.Doctor, h []domain.Event) {
				status(doctor.PaymentRefundPending, 0)(t, d, h)
				if left := d.RefundLeft("a1", "pay-1"); left != fees {
					t.Errorf("RefundLeft = %d, want %d", left, fees)
				}
			},
		},
		{name: "a failed refund is not processed later", given: with(paid, issued, failed), when: process, after: status(doctor.PaymentRefundPending, 0)},
		{
			name: "a processed refund does not fail", given: with(paid, issued, processed),
			when: func(d *doctor.Doctor) error { return d.FailRefund("a1", "r-1", "late news", at(1, 9, 0)) },
		},
	})
}

func TestRefundCutoff(t *testing.T) {
	t.Parallel()
	start := at(2, 9, 0)
	h1 := held("a1", "p1", start)
	order := doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: "a1", OrderID: "order-a1", Amount: fees, Currency: "INR"}
	paid := setup(doctor.PaymentRequired, h1, order, captured("a1", "pay-1", false, at(1, 8, 5)), confirmedBy("a1", "pay-1", at(1, 8, 5)))
	cancel := func(by domain.Actor, now time.Time) when {
		return func(d *doctor.Doctor) error { return d.Cancel("a1", "", by, now) }
	}
	c1 := confirmed("a1", "p1", start)
	dayBefore := start.Add(-24 * time.Hour) // the default cutoff is 24 h
	run(t, []scenario{
		{name: "patient at the cutoff: full refund", given: paid, when: cancel(patient("p1"), dayBefore), then: []domain.Event{cancelled(c1, domain.RolePatient, "", true, dayBefore)}},
		{
			name: "patient after the cutoff: nothing back", given: paid, when: cancel(patient("p1"), dayBefore.Add(time.Second)),
			then: []domain.Event{cancelled(c1, domain.RolePatient, "", false, dayBefore.Add(time.Second))},
		},
		{
			name: "the doctor after the cutoff: full refund", given: paid, when: cancel(theDoctor, dayBefore.Add(time.Hour)),
			then: []domain.Event{cancelled(c1, domain.RoleDoctor, "", true, dayBefore.Add(time.Hour))},
		},
		{
			name: "an admin after the cutoff: full refund", given: paid, when: cancel(admin, dayBefore.Add(time.Hour)),
			then: []domain.Event{cancelled(c1, domain.RoleAdmin, "", true, dayBefore.Add(time.Hour))},
		},
	})
}
