package readmodeltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	_ "time/tzdata" // the zones below must not depend on the machine

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// The fixture: five doctors, three patients, and a log builder that hands
// out increasing positions (with gaps, as other streams interleave in the
// real log) and per-stream revisions.
//
//	asha  Dr. Asha Rao    Cardiology   INR 500.00  available    Asia/Kolkata, Mon-Fri 09:00-12:00, 30 min, policy none
//	ben   Dr. Ben Carter  Cardiology   INR 800.00  unavailable  Asia/Kolkata, same hours, policy none
//	chen  Dr. Chen Li     Dermatology  USD 150.00  available    America/New_York, Sundays 00:00-04:00, 30 min, policy optional
//	diya  Dr. Diya Menon  Pediatrics   INR 300.00  available    Asia/Kolkata, same hours as asha, policy required (15 min hold)
//	zed   Dr. Aaron Zed   Neurology    INR 600.00  available    no schedule
const (
	asha = "doc-asha"
	ben  = "doc-ben"
	chen = "doc-chen"
	diya = "doc-diya"
	zed  = "doc-zed"

	priya = "pat-priya"
	rahul = "pat-rahul"
	sara  = "pat-sara"
)

var (
	kolkata = mustZone("Asia/Kolkata")
	newYork = mustZone("America/New_York")

	// nowK is Monday 2026-06-01 08:00 in Kolkata, the "now" of the Kolkata
	// doctors' slot questions (bookable up to and including 2026-06-15).
	nowK = kol(1, 8, 0)
	// nowNY is Friday 2026-02-27 12:00 UTC, the "now" of Dr. Chen's.
	nowNY = time.Date(2026, time.February, 27, 12, 0, 0, 0, time.UTC)
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// kol is wall-clock h:m on 2026-06-<day> in Kolkata, as a UTC instant.
func kol(day, h, m int) time.Time {
	return time.Date(2026, time.June, day, h, m, 0, 0, kolkata).UTC()
}

func date(y int, m time.Month, d int) doctor.Date { return doctor.Date{Year: y, Month: m, Day: d} }

func profileOf(id string) doctor.Profile {
	switch id {
	case asha:
		return doctor.Profile{Name: "Dr. Asha Rao", Speciality: "Cardiology", Degree: "MD", ExperienceYears: 12, About: "Heart specialist.",
			Fees: 50000, Currency: "INR", Address: "12 MG Road, Bengaluru", ImageURL: "https://img.example.com/asha.png", Available: true}
	case ben:
		return doctor.Profile{Name: "Dr. Ben Carter", Speciality: "Cardiology", Degree: "MBBS", ExperienceYears: 20,
			Fees: 80000, Currency: "INR", Address: "4 Park Street, Kolkata", Available: false}
	case chen:
		return doctor.Profile{Name: "Dr. Chen Li", Speciality: "Dermatology", Degree: "MD", ExperienceYears: 7,
			Fees: 15000, Currency: "USD", Address: "200 W 57th St, New York", Available: true}
	case diya:
		return doctor.Profile{Name: "Dr. Diya Menon", Speciality: "Pediatrics", Degree: "MBBS", ExperienceYears: 5,
			Fees: 30000, Currency: "INR", Address: "8 Marine Drive, Kochi", Available: true}
	case zed:
		return doctor.Profile{Name: "Dr. Aaron Zed", Speciality: "Neurology", Degree: "DM", ExperienceYears: 30,
			Fees: 60000, Currency: "INR", Address: "1 Ring Road, Delhi", Available: true}
	}
	panic("no profile for " + id)
}

func weekdays(start, end string) []doctor.WeeklyHours {
	var w []doctor.WeeklyHours
	for wd := 1; wd <= 5; wd++ {
		w = append(w, doctor.WeeklyHours{Weekday: wd, Start: start, End: end})
	}
	return w
}

func kolkataSchedule(p doctor.PaymentPolicy) doctor.Schedule {
	s := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 14, MinNoticeMinutes: 60,
		PaymentPolicy: p, Weekly: weekdays("09:00", "12:00")}
	if p == doctor.PaymentRequired {
		s.HoldMinutes = 15
	}
	return s
}

func newYorkSchedule() doctor.Schedule {
	return doctor.Schedule{Timezone: "America/New_York", SlotMinutes: 30, BookingWindowDays: 30, MinNoticeMinutes: 0,
		PaymentPolicy: doctor.PaymentOptional, Weekly: []doctor.WeeklyHours{{Weekday: 7, Start: "00:00", End: "04:00"}}}
}

func patientName(id string) string {
	switch id {
	case priya:
		return "Priya Shah"
	case rahul:
		return "Rahul Verma"
	case sara:
		return "Sara Khan"
	}
	return "Patient " + id
}

// history builds a log of projection events.
type history struct {
	pos     uint64
	clock   time.Time // advances a minute per event: reservedAt, cancelledAt...
	revs    map[string]uint64
	events  []projections.Event
	profile map[string]doctor.Profile
	policy  map[string]doctor.PaymentPolicy
	appts   map[string]*doctor.SlotReserved // current state of each appointment's slot
}

func newHistory() *history {
	return &history{
		clock: time.Date(2026, time.May, 25, 4, 0, 0, 0, time.UTC), revs: map[string]uint64{},
		profile: map[string]doctor.Profile{}, policy: map[string]doctor.PaymentPolicy{}, appts: map[string]*doctor.SlotReserved{},
	}
}

// add appends an event of stream and returns it.
func (h *history) add(stream string, actor domain.Actor, data domain.Event) projections.Event {
	h.pos++
	if len(h.events)%3 == 2 {
		h.pos++ // a position taken by a stream no read model reads (an email claim, say)
	}
	h.clock = h.clock.Add(time.Minute)
	rev := h.revs[stream]
	h.revs[stream] = rev + 1
	e := projections.Event{
		Position: h.pos, StreamID: stream, Revision: rev, Type: data.EventType(), Data: data,
		Metadata: domain.Metadata{
			EventID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", stream, rev)), Actor: actor,
			CorrelationID: fmt.Sprintf("corr-%d", h.pos), OccurredAt: h.clock,
		},
		RecordedAt: h.clock,
	}
	h.events = append(h.events, e)
	return e
}

// last is the position of the last event.
func (h *history) last() uint64 { return h.pos }

var (
	adminActor = domain.Actor{UserID: "adm-1", Role: domain.RoleAdmin}
)

func (h *history) doc(id string) {
	p := profileOf(id)
	h.profile[id] = p
	h.add(doctor.StreamID(id), adminActor, doctor.DoctorRegistered{DoctorID: id, Profile: p, RegisteredAt: h.clock})
}

func (h *history) schedule(id string, s doctor.Schedule) {
	h.policy[id] = s.PaymentPolicy
	h.add(doctor.StreamID(id), adminActor, doctor.ScheduleSet{DoctorID: id, Schedule: s})
}

func (h *history) updateProfile(id string, change func(p *doctor.Profile)) {
	p := h.profile[id]
	change(&p)
	h.profile[id] = p
	h.add(doctor.StreamID(id), adminActor, doctor.ProfileUpdated{DoctorID: id, Profile: p})
}

func (h *history) timeOff(id, timeOffID string, from, to time.Time, reason string) {
	h.add(doctor.StreamID(id), domain.Actor{UserID: id, Role: domain.RoleDoctor},
		doctor.TimeOffAdded{DoctorID: id, TimeOffID: timeOffID, From: from, To: to, Reason: reason})
}

func (h *history) account(id, name string, role domain.Role, doctorID string) {
	h.add(account.StreamID(role, id), domain.System, account.Registered{
		AccountID: id, Name: name, Email: id + "@example.com", PasswordHash: "$2a$04$hash", Role: role, DoctorID: doctorID, RegisteredAt: h.clock,
	})
}

// base registers every doctor with its schedule, the three patients, a
// doctor's login and an admin.
func (h *history) base() {
	h.account("adm-1", "Admin", domain.RoleAdmin, "")
	for _, id := range []string{asha, ben, chen, diya, zed} {
		h.doc(id)
	}
	h.schedule(asha, kolkataSchedule(doctor.PaymentNone))
	h.schedule(ben, kolkataSchedule(doctor.PaymentNone))
	h.schedule(chen, newYorkSchedule())
	h.schedule(diya, kolkataSchedule(doctor.PaymentRequired))
	h.account("acc-asha", "Dr. Asha Rao", domain.RoleDoctor, asha)
	for _, p := range []string{priya, rahul, sara} {
		h.account(p, patientName(p), domain.RolePatient, "")
	}
}

// reserve books the slot of doctor id starting at start, as the command
// side would under the doctor's payment policy.
func (h *history) reserve(docID, apptID, patientID string, start time.Time) doctor.SlotReserved {
	p := h.profile[docID]
	reservedAt := h.clock.Add(time.Minute)
	e := doctor.SlotReserved{
		DoctorID: docID, AppointmentID: apptID, PatientID: patientID, PatientName: patientName(patientID),
		Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed, Fees: p.Fees, Currency: p.Currency,
		PaymentStatus: doctor.PaymentNotRequired, ReservedAt: reservedAt,
	}
	switch h.policy[docID] {
	case doctor.PaymentOptional:
		e.PaymentStatus = doctor.PaymentPending
	case doctor.PaymentRequired:
		// Held for 15 minutes from the suite's "now" (nowK), so that a
		// hold answers as held to the suite's slot questions; a hold that
		// ran out frees its slot at once, even before HoldExpired.
		until := nowK.Add(15 * time.Minute)
		e.Status, e.PaymentStatus, e.HoldExpiresAt = doctor.StatusHeld, doctor.PaymentPending, &until
	}
	h.add(doctor.StreamID(docID), domain.Actor{UserID: patientID, Role: domain.RolePatient}, e)
	c := e
	h.appts[apptID] = &c
	return e
}

func (h *history) appt(id string) *doctor.SlotReserved {
	a := h.appts[id]
	if a == nil {
		panic("no appointment " + id)
	}
	return a
}

// cancel cancels an appointment; refundDue gives its whole fee back.
func (h *history) cancel(id, reason string, by domain.Role, refundDue bool) {
	a := h.appt(id)
	actor := domain.Actor{UserID: a.PatientID, Role: by}
	if by == domain.RoleDoctor {
		actor.UserID = a.DoctorID
	}
	e := doctor.AppointmentCancelled{
		DoctorID: a.DoctorID, AppointmentID: id, Start: a.Start, End: a.End, Reason: reason, CancelledBy: by, RefundDue: refundDue, CancelledAt: h.clock,
	}
	if refundDue {
		e.RefundAmount = a.Fees
	}
	h.add(doctor.StreamID(a.DoctorID), actor, e)
}

func (h *history) reschedule(id string, start time.Time) {
	a := h.appt(id)
	prevStart, prevEnd := a.Start, a.End
	a.Start, a.End = start, start.Add(30*time.Minute)
	h.add(doctor.StreamID(a.DoctorID), domain.Actor{UserID: a.PatientID, Role: domain.RolePatient}, doctor.AppointmentRescheduled{
		DoctorID: a.DoctorID, AppointmentID: id, PreviousStart: prevStart, PreviousEnd: prevEnd, Start: a.Start, End: a.End, RescheduledAt: h.clock,
	})
}

func (h *history) complete(id string) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.Actor{UserID: a.DoctorID, Role: domain.RoleDoctor},
		doctor.AppointmentCompleted{DoctorID: a.DoctorID, AppointmentID: id, CompletedAt: a.End})
}

func (h *history) noShow(id string) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.Actor{UserID: a.DoctorID, Role: domain.RoleDoctor},
		doctor.AppointmentMarkedNoShow{DoctorID: a.DoctorID, AppointmentID: id, MarkedAt: a.End})
}

func (h *history) expire(id string) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.System,
		doctor.HoldExpired{DoctorID: a.DoctorID, AppointmentID: id, Start: a.Start, End: a.End, ExpiredAt: h.clock})
}

func (h *history) order(id, orderID string) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.Actor{UserID: a.PatientID, Role: domain.RolePatient},
		doctor.PaymentOrderCreated{DoctorID: a.DoctorID, AppointmentID: id, OrderID: orderID, Amount: a.Fees, Currency: a.Currency})
}

// capture records a captured payment, and the confirmation of a held
// appointment when it can use it (as the aggregate decides).
func (h *history) capture(id, paymentID, orderID string, refundDue, confirm bool) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.System, doctor.PaymentCaptured{
		DoctorID: a.DoctorID, AppointmentID: id, PaymentID: paymentID, OrderID: orderID, Amount: a.Fees, Currency: a.Currency,
		RefundDue: refundDue, CapturedAt: h.clock,
	})
	if confirm {
		h.add(doctor.StreamID(a.DoctorID), domain.System,
			doctor.AppointmentConfirmed{DoctorID: a.DoctorID, AppointmentID: id, PaymentID: paymentID, ConfirmedAt: h.clock})
	}
}

func (h *history) fail(id, orderID, paymentID string) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.System,
		doctor.PaymentFailed{DoctorID: a.DoctorID, AppointmentID: id, OrderID: orderID, PaymentID: paymentID, Reason: "card declined"})
}

// refund issues a refund of the whole fee.
func (h *history) refund(id, paymentID, refundID string) {
	h.refundOf(id, paymentID, refundID, h.appt(id).Fees)
}

// refundOf issues a refund of amount.
func (h *history) refundOf(id, paymentID, refundID string, amount int64) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.System,
		doctor.RefundIssued{DoctorID: a.DoctorID, AppointmentID: id, PaymentID: paymentID, RefundID: refundID, Amount: amount, IssuedAt: h.clock})
}

// refunded records that an issued refund of amount was paid back.
func (h *history) refunded(id, paymentID, refundID string, amount int64) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.System,
		doctor.RefundProcessed{DoctorID: a.DoctorID, AppointmentID: id, PaymentID: paymentID, RefundID: refundID, Amount: amount, ProcessedAt: h.clock})
}

// refundFailed records that an issued refund of amount failed.
func (h *history) refundFailed(id, paymentID, refundID string, amount int64) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.System, doctor.RefundFailed{
		DoctorID: a.DoctorID, AppointmentID: id, PaymentID: paymentID, RefundID: refundID, Amount: amount, Reason: "bank rejected", FailedAt: h.clock,
	})
}

// orderClaim records a claim on creating the appointment's payment order
// (read models ignore it).
func (h *history) orderClaim(id string) {
	a := h.appt(id)
	h.add(doctor.StreamID(a.DoctorID), domain.Actor{UserID: a.PatientID, Role: domain.RolePatient},
		doctor.PaymentOrderRequested{DoctorID: a.DoctorID, AppointmentID: id, RequestedAt: h.clock})
}

// appointments books and moves the ten appointments of the dashboards and
// status tests, in this booking order:
//
//	a01 priya asha  06-02 09:00  completed                 (not_required)
//	a02 rahul asha  06-02 09:30  cancelled by the patient  (not_required)
//	a03 sara  asha  06-02 10:00  rescheduled to 06-03 11:00, confirmed
//	a04 priya asha  06-03 09:00  no_show
//	a05 rahul diya  06-02 09:00  held, order, captured, confirmed (paid)
//	a06 sara  diya  06-02 09:30  held, expired, paid late (refund due), refunded
//	a07 priya chen  2026-03-08 00:00 EST  confirmed, payment failed
//	a08 rahul asha  06-04 09:00  confirmed
//	a09 priya diya  06-03 09:00  held, captured, confirmed, cancelled by the doctor with a refund due (still paid)
//	a10 sara  asha  06-05 09:00  confirmed
func (h *history) appointments() {
	h.reserve(asha, "a01", priya, kol(2, 9, 0))
	h.reserve(asha, "a02", rahul, kol(2, 9, 30))
	h.reserve(asha, "a03", sara, kol(2, 10, 0))
	h.reserve(asha, "a04", priya, kol(3, 9, 0))
	h.cancel("a02", "feeling better", domain.RolePatient, false)
	h.reschedule("a03", kol(3, 11, 0))
	h.reserve(diya, "a05", rahul, kol(2, 9, 0))
	h.order("a05", "order_a05")
	h.capture("a05", "pay_a05", "order_a05", false, true)
	h.reserve(diya, "a06", sara, kol(2, 9, 30))
	h.order("a06", "order_a06")
	h.expire("a06")
	h.capture("a06", "pay_a06", "order_a06", true, false)
	h.reserve(chen, "a07", priya, time.Date(2026, time.March, 8, 5, 0, 0, 0, time.UTC))
	h.order("a07", "order_a07")
	h.fail("a07", "order_a07", "pay_a07_declined")
	h.reserve(asha, "a08", rahul, kol(4, 9, 0))
	h.complete("a01")
	h.noShow("a04")
	h.refund("a06", "pay_a06", "rfnd_a06")
	h.reserve(diya, "a09", priya, kol(3, 9, 0))
	h.capture("a09", "pay_a09", "", false, true)
	h.cancel("a09", "doctor unwell", domain.RoleDoctor, true)
	h.reserve(asha, "a10", sara, kol(5, 9, 0))
}

// rich is a history that uses every event type: the base, the ten
// appointments, time off, profile and schedule changes, refunds issued,
// failed and processed, and an order claim.
func rich() *history {
	h := newHistory()
	h.base()
	h.appointments()
	h.timeOff(asha, "to-1", kol(8, 9, 0), kol(8, 10, 30), "conference")
	h.updateProfile(asha, func(p *doctor.Profile) { p.Name = "Dr. Asha Rao-Iyer"; p.Fees = 55000 })
	h.reserve(asha, "a11", rahul, kol(9, 11, 30))
	h.refund("a09", "pay_a09", "rfnd_a09")
	h.refundFailed("a09", "pay_a09", "rfnd_a09", 30000)
	h.refund("a09", "pay_a09", "rfnd_a09b")
	h.refunded("a09", "pay_a09", "rfnd_a09b", 30000)
	h.refunded("a06", "pay_a06", "rfnd_a06", 30000)
	h.orderClaim("a07")
	h.updateProfile(ben, func(p *doctor.Profile) { p.Available = true })
	h.schedule(zed, kolkataSchedule(doctor.PaymentOptional))
	h.reserve(zed, "a12", sara, kol(2, 11, 0))
	h.account("pat-new", "New Patient", domain.RolePatient, "")
	return h
}

// feed applies events to every projection of m, in order: one at a time,
// or in batches of m.Batch to the projections that take batches.
func feed(t testing.TB, m Models, events ...projections.Event) {
	t.Helper()
	ctx := context.Background()
	for len(events) > 0 {
		n := min(max(m.Batch, 1), len(events))
		chunk := events[:n]
		events = events[n:]
		for _, p := range m.Projections {
			if b, ok := p.(projections.BatchProjection); ok && m.Batch > 1 {
				if err := b.ApplyBatch(ctx, chunk); err != nil {
					t.Fatalf("%s.ApplyBatch(%d..%d): %v", p.Name(), chunk[0].Position, chunk[n-1].Position, err)
				}
				continue
			}
			for _, e := range chunk {
				if err := p.Apply(ctx, e); err != nil {
					t.Fatalf("%s.Apply(%s at %d): %v", p.Name(), e.Type, e.Position, err)
				}
			}
		}
	}
}
