package doctor_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
)

// The model test drives one doctor in America/New_York over the weekend of
// the 2026 spring-forward change (Saturday 7 to Monday 9 March), working
// 01:00-03:30 every day in 30-minute slots at first: 13 slots in all, 3 of
// them on the short Sunday. Two patients book, pay (or fail to, or pay the
// wrong amount), cancel and reschedule against a simple model while the
// clock moves, refunds are issued, paid back or fail, and the doctor changes
// fee, slot length and hours under live bookings; collisions are frequent.

// minModelSequences is how many sequences one `go test` run must check,
// whatever -rapid.checks says; PRESCRIPTO_MODEL_SEQUENCES asks for more
// (`make proof`: 10,000).
const minModelSequences = 1000

// modelSequences is the number of sequences this run must check.
func modelSequences(t *testing.T) int {
	v := os.Getenv("PRESCRIPTO_MODEL_SEQUENCES")
	if v == "" {
		return minModelSequences
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("PRESCRIPTO_MODEL_SEQUENCES=%q: want a positive number", v)
	}
	return n
}

var nyLoc = mustZone("America/New_York")

func modelSchedule(p doctor.PaymentPolicy) doctor.Schedule {
	return gridSchedule(p, modelGrids[0])
}

// modelGrid is a slot length and daily hours the doctor may switch to.
// Apart from the first, each cuts the first one's slots off its grid
// (45-minute slots across the DST gap, 20-minute ones, a grid shifted by
// a quarter hour), so old bookings straddle the new slots.
type modelGrid struct {
	minutes    int
	start, end string
}

var modelGrids = []modelGrid{{30, "01:00", "03:30"}, {45, "01:00", "03:30"}, {20, "01:30", "03:30"}, {30, "01:15", "03:45"}}

func gridSchedule(p doctor.PaymentPolicy, g modelGrid) doctor.Schedule {
	return doctor.Schedule{
		Timezone: "America/New_York", SlotMinutes: g.minutes, BookingWindowDays: 1, MinNoticeMinutes: 60,
		PaymentPolicy: p, HoldMinutes: 15, RefundCutoffHours: 2, Weekly: everyDay(g.start, g.end),
	}
}

// modelFees are the fees the doctor may charge (0: no online payment).
var modelFees = []int64{fees, fees, fees + 5000, 0}

// errInvalidInput matches domain.Invalid errors (code invalid_input).
var errInvalidInput = domain.Invalid("any")

var modelDates = []doctor.Date{
	{Year: 2026, Month: time.March, Day: 7},
	{Year: 2026, Month: time.March, Day: 8},
	{Year: 2026, Month: time.March, Day: 9},
}

type mAppt struct {
	id, patient string
	start, end  time.Time
	status      doctor.Status
	holdUntil   time.Time // kept after the hold ends, cleared by confirmation (as the aggregate does)
	fees        int64     // the fee when booked, whatever the doctor charges since
	payable     bool      // the booking took online payment (not "not_required")
	ordered     bool      // its order "ord-{id}" is recorded

	// Payment state, folded as the aggregate's applyPayment does.
	pay            doctor.PaymentStatus
	mainPay        string           // the first captured payment: the one Payment shows
	payments       []string         // captured payment ids, in order
	captured       map[string]int64 // payment id -> amount
	refunded       map[string]int64 // payment id -> refunds issued and not failed
	issued         map[string]int64 // payment id -> every refund ever issued (failed ones too)
	refunds        map[string]*mRefund
	refundIDs      []string // refund ids, in order
	refundedAmount int64    // refunds of mainPay paid back
}

type mRefund struct {
	payment string
	amount  int64
	state   string // pending, processed, failed
}

// left is what of payment pid is neither refunded nor being refunded.
func (a *mAppt) left(pid string) int64 { return a.captured[pid] - a.refunded[pid] }

func (a *mAppt) issue(pid, rid string, amount int64) {
	a.refunds[rid] = &mRefund{payment: pid, amount: amount, state: "pending"}
	a.refundIDs = append(a.refundIDs, rid)
	a.refunded[pid] += amount
	a.issued[pid] += amount
	if pid == a.mainPay {
		a.pay = doctor.PaymentRefundPending
	}
}

func (a *mAppt) process(rid string) {
	r := a.refunds[rid]
	r.state = "processed"
	if r.payment != a.mainPay {
		return
	}
	a.refundedAmount += r.amount
	for _, o := range a.refunds {
		if o.payment == r.payment && o.state == "pending" {
			return
		}
	}
	a.pay = doctor.PaymentRefunded
}

func (a *mAppt) live() bool {
	return a.status == doctor.StatusHeld || a.status == doctor.StatusConfirmed
}

type model struct {
	d       *doctor.Doctor
	history []domain.Event // everything recorded so far, setup included

	now      time.Time
	policy   doctor.PaymentPolicy
	grid     modelGrid
	fee      int64         // the doctor's fee now
	slots    []time.Time   // every slot start of modelDates on the current grid
	slotLen  time.Duration // the current grid's slot length
	appts    map[string]*mAppt
	order    []string // appointment ids by creation
	timeOff  [][2]time.Time
	nextID   int
	nextPay  int
	nextTOff int
	nextFail int
	nextRfnd int

	stats map[string]int // outcome counts, "book: slot_unavailable"

	folded    *doctor.Doctor // folded from history[:foldedLen]
	foldedLen int
}

func newModel(t *rapid.T, stats map[string]int) *model {
	m := &model{
		stats:  stats,
		now:    time.Date(2026, time.March, 7, 0, 0, 0, 0, nyLoc).UTC(),
		policy: rapid.SampledFrom([]doctor.PaymentPolicy{doctor.PaymentRequired, doctor.PaymentRequired, doctor.PaymentOptional, doctor.PaymentNone}).Draw(t, "policy"),
		appts:  map[string]*mAppt{},
		fee:    fees,
	}
	m.history = []domain.Event{registered(), doctor.ScheduleSet{DoctorID: docID, Schedule: modelSchedule(m.policy)}}
	m.d = given(m.history...)
	m.useGrid(t, modelGrids[0])
	if len(m.slots) != 13 {
		t.Fatalf("the model grid has %d slots, want 13", len(m.slots))
	}
	return m
}

// useGrid makes g the model's grid: its slots are compiled from the
// schedule alone (the grid's slot arithmetic has its own tests), never read
// from the aggregate under test.
func (m *model) useGrid(t *rapid.T, g modelGrid) {
	c, err := gridSchedule(m.policy, g).Compile()
	if err != nil {
		t.Fatalf("grid %+v: %v", g, err)
	}
	m.grid, m.slotLen, m.slots = g, c.SlotLength(), nil
	for _, date := range modelDates {
		for _, s := range c.Slots(date) {
			m.slots = append(m.slots, s.Start)
		}
	}
}

// ---- the model's rules ----

func civilDay(x time.Time) int64 {
	y, mo, d := x.In(nyLoc).Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func (m *model) liveByStart() []*mAppt {
	var out []*mAppt
	for _, id := range m.order {
		if a := m.appts[id]; a.live() {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// slotErr is the model's verdict on booking start at now, ignoring except,
// with the holds that ran out in the way (free, to be expired first).
func (m *model) slotErr(start time.Time, except string) (*domain.Error, []*mAppt) {
	switch {
	case !start.After(m.now):
		return doctor.ErrInThePast, nil
	case !slices.ContainsFunc(m.slots, start.Equal):
		return doctor.ErrOutsideSchedule, nil
	case start.Before(m.now.Add(60 * time.Minute)):
		return doctor.ErrInsufficientNotice, nil
	case civilDay(start) > civilDay(m.now)+1:
		return doctor.ErrBeyondWindow, nil
	}
	end := start.Add(m.slotLen)
	for _, r := range m.timeOff {
		if start.Before(r[1]) && end.After(r[0]) {
			return doctor.ErrDoctorTimeOff, nil
		}
	}
	var lapsed []*mAppt
	for _, a := range m.liveByStart() {
		if a.id != except && start.Before(a.end) && end.After(a.start) {
			if a.status != doctor.StatusHeld || m.now.Before(a.holdUntil) {
				return doctor.ErrSlotUnavailable, nil
			}
			lapsed = append(lapsed, a)
		}
	}
	return nil, lapsed
}

// expireLapsed are the events that free lapsed holds, and marks them.
func (m *model) lapsedEvents(lapsed []*mAppt) []domain.Event {
	var out []domain.Event
	for _, a := range lapsed {
		out = append(out, doctor.HoldExpired{DoctorID: docID, AppointmentID: a.id, Start: a.start, End: a.end, ExpiredAt: m.now})
	}
	return out
}

// ---- drawing ----

var modelPatients = []string{"p1", "p2"}

// drawStart is mostly a grid slot, often one a live appointment holds,
// sometimes just off the grid.
func (m *model) drawStart(t *rapid.T) time.Time {
	s := m.slots[rapid.IntRange(0, len(m.slots)-1).Draw(t, "slot")]
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "collide") {
		s = live[rapid.IntRange(0, len(live)-1).Draw(t, "taken")].start
	}
	switch rapid.IntRange(0, 9).Draw(t, "offGrid") {
	case 0:
		return s.Add(15 * time.Minute)
	case 1:
		return s.Add(time.Second)
	}
	return s
}

// drawAppt is an existing appointment id, often a live one, now and then
// an unknown one.
func (m *model) drawAppt(t *rapid.T) string {
	if len(m.order) == 0 || rapid.IntRange(0, 9).Draw(t, "unknown") == 0 {
		return "a-unknown"
	}
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "pickLive") {
		return live[rapid.IntRange(0, len(live)-1).Draw(t, "live")].id
	}
	return m.order[rapid.IntRange(0, len(m.order)-1).Draw(t, "appt")]
}

func (m *model) owner(id string) string {
	if a := m.appts[id]; a != nil {
		return a.patient
	}
	return "p1"
}

func otherPatient(p string) string {
	if p == "p1" {
		return "p2"
	}
	return "p1"
}

// ---- running one command ----

// expect runs a command and compares its outcome with the model's: the
// same sentinel error and nothing recorded, or exactly the events wanted.
// On success it appends the events to the history.
func (m *model) expect(t *rapid.T, what string, err error, wantErr *domain.Error, want []domain.Event) bool {
	t.Helper()
	got := m.d.Changes()
	m.d.ClearChanges()
	verb, _, _ := strings.Cut(what, " ")
	switch {
	case wantErr != nil:
		m.stats[verb+": "+wantErr.Code]++
	case len(got) == 0:
		m.stats[verb+": no-op"]++
	default:
		for _, e := range got {
			m.stats[verb+": "+e.EventType()]++
			if c, ok := e.(doctor.PaymentCaptured); ok && c.RefundDue {
				m.stats[verb+": refund due"]++
			}
			if c, ok := e.(doctor.AppointmentCancelled); ok && c.RefundDue {
				m.stats[verb+": refund due"]++
			}
		}
	}
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s: got error %v (code %q), the model wants %s", what, err, domain.CodeOf(err), wantErr.Code)
		}
		if len(got) != 0 {
			t.Fatalf("%s: refused (%v) but recorded\n%s", what, err, dumpEvents(got))
		}
		return false
	}
	if err != nil {
		t.Fatalf("%s: unexpected error %v (code %q)", what, err, domain.CodeOf(err))
	}
	if !eventsEqual(got, want) {
		t.Fatalf("%s: events differ from the model's\n%s", what, diffEvents(got, want))
	}
	m.history = append(m.history, got...)
	return true
}

func (m *model) book(t *rapid.T) {
	patientID := rapid.SampledFrom(modelPatients).Draw(t, "patient")
	start := m.drawStart(t)
	id := fmt.Sprintf("a%d", m.nextID)
	if len(m.order) > 0 && rapid.IntRange(0, 9).Draw(t, "reuseID") == 0 {
		id = m.order[rapid.IntRange(0, len(m.order)-1).Draw(t, "reused")]
	}
	err := m.d.Reserve(doctor.Reservation{AppointmentID: id, PatientID: patientID, PatientName: nameOf(patientID), Start: start}, m.now)

	var wantErr *domain.Error
	var lapsed []*mAppt
	if m.appts[id] != nil {
		wantErr = doctor.ErrAppointmentExists
	} else {
		wantErr, lapsed = m.slotErr(start, "")
	}
	e := doctor.SlotReserved{
		DoctorID: docID, AppointmentID: id, PatientID: patientID, PatientName: nameOf(patientID),
		Start: start, End: start.Add(m.slotLen), Status: doctor.StatusConfirmed, Fees: m.fee, Currency: "INR",
		PaymentStatus: doctor.PaymentNotRequired, ReservedAt: m.now,
	}
	switch {
	case m.fee == 0:
	case m.policy == doctor.PaymentOptional:
		e.PaymentStatus = doctor.PaymentPending
	case m.policy == doctor.PaymentRequired:
		until := m.now.Add(15 * time.Minute)
		e.Status, e.PaymentStatus, e.HoldExpiresAt = doctor.StatusHeld, doctor.PaymentPending, &until
	}
	if !m.expect(t, "book "+id+" at "+start.Format(time.RFC3339), err, wantErr, append(m.lapsedEvents(lapsed), e)) {
		return
	}
	for _, l := range lapsed {
		l.status = doctor.StatusExpired
	}
	for _, o := range m.liveByStart() {
		if o.end.Sub(o.start) != m.slotLen || !slices.ContainsFunc(m.slots, o.start.Equal) {
			m.stats["book: beside a booking of another grid"]++
			break
		}
	}
	for _, o := range m.liveByStart() {
		if o.fees != m.fee {
			m.stats["book: beside a booking at another fee"]++
			break
		}
	}
	a := &mAppt{
		id: id, patient: patientID, start: start, end: e.End, status: e.Status, fees: m.fee,
		payable: e.PaymentStatus != doctor.PaymentNotRequired, pay: e.PaymentStatus,
		captured: map[string]int64{}, refunded: map[string]int64{}, issued: map[string]int64{}, refunds: map[string]*mRefund{},
	}
	if e.HoldExpiresAt != nil {
		a.holdUntil = *e.HoldExpiresAt
	}
	m.appts[id] = a
	m.order = append(m.order, id)
	m.nextID++
}

func (m *model) expire(t *rapid.T) {
	id := m.drawAppt(t)
	err := m.d.ExpireHold(id, m.now)
	a := m.appts[id]
	var wantErr *domain.Error
	switch {
	case a == nil:
		wantErr = doctor.ErrAppointmentNotFound
	case a.status != doctor.StatusHeld:
		wantErr = doctor.ErrInvalidTransition
	case m.now.Before(a.holdUntil):
		wantErr = doctor.ErrHoldActive
	}
	var want []domain.Event
	if a != nil {
		want = []domain.Event{doctor.HoldExpired{DoctorID: docID, AppointmentID: id, Start: a.start, End: a.end, ExpiredAt: m.now}}
	}
	if m.expect(t, "expire "+id, err, wantErr, want) {
		a.status = doctor.StatusExpired
	}
}

// pay records the appointment's order if it has none, then captures a
// payment (a new one or one seen before), now and then of the wrong amount
// or currency; one time in five a payment attempt fails instead.
func (m *model) pay(t *rapid.T) {
	id := m.drawAppt(t)
	var due []string // live and still to be paid
	for _, a := range m.liveByStart() {
		if a.pay == doctor.PaymentPending || a.pay == doctor.PaymentFailedState {
			due = append(due, a.id)
		}
	}
	if len(due) > 0 && rapid.Bool().Draw(t, "payDue") {
		id = rapid.SampledFrom(due).Draw(t, "due")
	}
	a := m.appts[id]
	if rapid.IntRange(0, 4).Draw(t, "failPayment") == 0 {
		m.failPayment(t, id, a)
		return
	}
	pid := fmt.Sprintf("pay%d", m.nextPay)
	if a != nil && len(a.payments) > 0 && rapid.Bool().Draw(t, "samePayment") {
		pid = rapid.SampledFrom(a.payments).Draw(t, "payment")
	}
	if a != nil && a.payable && !a.ordered {
		err := m.d.CreatePaymentOrder(id, doctor.Order{ID: "ord-" + id, Amount: a.fees, Currency: "INR"}, domain.Actor{Role: domain.RoleSystem})
		want := []domain.Event{doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: id, OrderID: "ord-" + id, Amount: a.fees, Currency: "INR"}}
		m.expect(t, "order "+id, err, nil, want)
		a.ordered = true
	}
	amount, currency := fees, "INR"
	if a != nil {
		amount = a.fees
	}
	wrong := true
	switch rapid.IntRange(0, 7).Draw(t, "tamper") {
	case 0:
		amount++
	case 1:
		amount--
	case 2:
		currency = "USD"
	default:
		wrong = false
	}
	err := m.d.CapturePayment(id, pid, "ord-"+id, amount, currency, m.now)
	var wantErr *domain.Error
	var want []domain.Event
	switch {
	case a == nil:
		wantErr = doctor.ErrAppointmentNotFound
	case slices.Contains(a.payments, pid):
		// Idempotency by payment id comes first, even for a wrong amount.
		if wrong {
			m.stats["pay: known payment, wrong amount: no-op"]++
		}
	case !a.payable || wrong:
		wantErr = doctor.ErrPaymentMismatch
	default:
		usable := a.live() && (a.pay == doctor.PaymentPending || a.pay == doctor.PaymentFailedState)
		want = append(want, doctor.PaymentCaptured{
			DoctorID: docID, AppointmentID: id, PaymentID: pid, OrderID: "ord-" + id, Amount: amount,
			Currency: currency, RefundDue: !usable, CapturedAt: m.now,
		})
		if usable && a.status == doctor.StatusHeld {
			want = append(want, doctor.AppointmentConfirmed{DoctorID: docID, AppointmentID: id, PaymentID: pid, ConfirmedAt: m.now})
		}
		if usable && a.pay == doctor.PaymentFailedState {
			m.stats["pay: paid after a failed attempt"]++
		}
	}
	if !m.expect(t, fmt.Sprintf("pay %s with %s: %d %s", id, pid, amount, currency), err, wantErr, want) || len(want) == 0 {
		return
	}
	if len(want) == 2 {
		a.status, a.holdUntil = doctor.StatusConfirmed, time.Time{}
	}
	if a.mainPay == "" {
		a.mainPay, a.pay = pid, doctor.PaymentPaid
	}
	a.captured[pid] = amount
	a.payments = append(a.payments, pid)
	m.nextPay++
}

// failPayment records a failed attempt: only while the payment is pending
// (a failed one stays failed, a paid one paid).
func (m *model) failPayment(t *rapid.T, id string, a *mAppt) {
	pid := fmt.Sprintf("fail%d", m.nextFail)
	if a != nil && len(a.payments) > 0 && rapid.Bool().Draw(t, "failCaptured") {
		pid = rapid.SampledFrom(a.payments).Draw(t, "captured")
	}
	err := m.d.FailPayment(id, "ord-"+id, pid, "card declined")
	var wantErr *domain.Error
	var want []domain.Event
	switch {
	case a == nil:
		wantErr = doctor.ErrAppointmentNotFound
	case a.pay == doctor.PaymentPending:
		want = []domain.Event{doctor.PaymentFailed{DoctorID: docID, AppointmentID: id, OrderID: "ord-" + id, PaymentID: pid, Reason: "card declined"}}
	}
	if a != nil && a.mainPay != "" {
		m.stats["fail: after a capture"]++
	}
	if m.expect(t, fmt.Sprintf("fail %s with %s", id, pid), err, wantErr, want) && len(want) > 0 {
		a.pay = doctor.PaymentFailedState
		m.nextFail++
	}
}

// paidAppts are the appointments with a captured payment.
func (m *model) paidAppts() []string {
	var paid []string
	for _, id := range m.order {
		if len(m.appts[id].payments) > 0 {
			paid = append(paid, id)
		}
	}
	return paid
}

// refund issues a refund, records one paid back (issued first if the log
// has not seen it) or one that failed.
func (m *model) refund(t *rapid.T) {
	paid := m.paidAppts()
	if len(paid) == 0 && rapid.IntRange(0, 4).Draw(t, "refundNothing") != 0 {
		m.pay(t) // nothing to refund yet
		return
	}
	id := m.drawAppt(t)
	if len(paid) > 0 && rapid.IntRange(0, 4).Draw(t, "anyAppt") != 0 {
		id = rapid.SampledFrom(paid).Draw(t, "paid")
	}
	a := m.appts[id]
	rid := fmt.Sprintf("r%d", m.nextRfnd)
	if a != nil && len(a.refundIDs) > 0 && rapid.IntRange(0, 2).Draw(t, "knownRefund") != 0 {
		var pending []string
		for _, r := range a.refundIDs {
			if a.refunds[r].state == "pending" {
				pending = append(pending, r)
			}
		}
		if len(pending) > 0 && rapid.IntRange(0, 3).Draw(t, "pendingRefund") != 0 {
			rid = rapid.SampledFrom(pending).Draw(t, "pending")
		} else {
			rid = rapid.SampledFrom(a.refundIDs).Draw(t, "refundID")
		}
	}
	pid := "pay-unknown"
	if a != nil && len(a.payments) > 0 && rapid.IntRange(0, 5).Draw(t, "unknownPayment") != 0 {
		pid = rapid.SampledFrom(a.payments).Draw(t, "refundOf")
	}
	var left int64
	if a != nil {
		left = a.left(pid)
	}
	amount := rapid.SampledFrom([]int64{left, left, left / 2, left + 1, 0}).Draw(t, "refundAmount")
	var again []string // payments with a failed refund's amount due again
	if a != nil {
		for _, p := range a.payments {
			if a.left(p) > a.captured[p]-a.issued[p] {
				again = append(again, p)
			}
		}
	}
	reissue := len(again) > 0 && rapid.Bool().Draw(t, "reissue")
	if reissue {
		pid = rapid.SampledFrom(again).Draw(t, "again")
		rid, left = fmt.Sprintf("r%d", m.nextRfnd), a.left(pid)
		amount = left
	}

	// issueErr is IssueRefund's verdict on a refund id not seen yet.
	issueErr := func() *domain.Error {
		switch {
		case a.captured[pid] == 0:
			return doctor.ErrPaymentUnknown
		case amount <= 0 || amount > left:
			return errInvalidInput
		}
		return nil
	}
	issued := doctor.RefundIssued{DoctorID: docID, AppointmentID: id, PaymentID: pid, RefundID: rid, Amount: amount, IssuedAt: m.now}
	var err error
	var wantErr *domain.Error
	var want []domain.Event
	var r *mRefund
	if a != nil {
		r = a.refunds[rid]
	}
	// Mostly the steps that can record something for this refund id: a
	// new one is issued (or its webhook overtakes the issue), a pending
	// one is paid back or fails.
	step := rapid.IntRange(0, 5).Draw(t, "refundStep")
	switch {
	case reissue:
		step = 0
	case step == 5: // any step
		step = rapid.IntRange(0, 2).Draw(t, "anyStep")
	case r == nil:
		step %= 2
	case r.state == "pending":
		step = 1 + step%2
	default:
		step %= 3
	}
	switch step {
	case 0:
		err = m.d.IssueRefund(id, pid, rid, amount, m.now)
		switch {
		case a == nil:
			wantErr = doctor.ErrAppointmentNotFound
		case r != nil: // the same refund id again: nothing
		default:
			if wantErr = issueErr(); wantErr == nil {
				want = []domain.Event{issued}
				if amount > a.captured[pid]-a.issued[pid] {
					m.stats["refund: reissued after a failed refund"]++
				}
			}
		}
		if m.expect(t, fmt.Sprintf("refund %s of %s: %s %d", rid, id, pid, amount), err, wantErr, want) && len(want) > 0 {
			a.issue(pid, rid, amount)
			m.nextRfnd++
		}
	case 1:
		err = m.d.ProcessRefund(id, pid, rid, amount, m.now)
		switch {
		case a == nil:
			wantErr = doctor.ErrAppointmentNotFound
		case r == nil:
			if wantErr = issueErr(); wantErr == nil {
				want = []domain.Event{issued, doctor.RefundProcessed{DoctorID: docID, AppointmentID: id, PaymentID: pid, RefundID: rid, Amount: amount, ProcessedAt: m.now}}
			}
		case r.state == "pending":
			want = []domain.Event{doctor.RefundProcessed{DoctorID: docID, AppointmentID: id, PaymentID: r.payment, RefundID: rid, Amount: r.amount, ProcessedAt: m.now}}
		}
		if m.expect(t, fmt.Sprintf("process-refund %s of %s: %s %d", rid, id, pid, amount), err, wantErr, want) && len(want) > 0 {
			if r == nil {
				a.issue(pid, rid, amount)
				m.nextRfnd++
			}
			a.process(rid)
		}
	default:
		err = m.d.FailRefund(id, rid, "bank rejected", m.now)
		switch {
		case a == nil:
			wantErr = doctor.ErrAppointmentNotFound
		case r != nil && r.state == "pending":
			want = []domain.Event{doctor.RefundFailed{DoctorID: docID, AppointmentID: id, PaymentID: r.payment, RefundID: rid, Amount: r.amount, Reason: "bank rejected", FailedAt: m.now}}
		}
		if m.expect(t, fmt.Sprintf("fail-refund %s of %s", rid, id), err, wantErr, want) && len(want) > 0 {
			r.state = "failed"
			a.refunded[r.payment] -= r.amount
		}
	}
}

func (m *model) cancel(t *rapid.T) {
	id := m.drawAppt(t)
	a := m.appts[id]
	by := rapid.SampledFrom([]domain.Actor{patient(m.owner(id)), patient(otherPatient(m.owner(id))), theDoctor, otherDoctor, admin}).Draw(t, "by")
	err := m.d.Cancel(id, "", by, m.now)
	var wantErr *domain.Error
	switch {
	case a == nil || (by.Role == domain.RolePatient && by.UserID != a.patient) || by == otherDoctor:
		wantErr = doctor.ErrAppointmentNotFound
	case !a.live():
		wantErr = doctor.ErrInvalidTransition
	case by.Role == domain.RolePatient && !a.start.After(m.now):
		wantErr = doctor.ErrAppointmentStarted
	}
	var want []domain.Event
	if a != nil {
		refund := m.refundOnCancel(a, by.Role)
		want = []domain.Event{doctor.AppointmentCancelled{
			DoctorID: docID, AppointmentID: id, PatientID: a.patient, Start: a.start, End: a.end, CancelledBy: by.Role,
			RefundDue: refund > 0, RefundAmount: refund, CancelledAt: m.now,
		}}
	}
	if m.expect(t, fmt.Sprintf("cancel %s by %v", id, by), err, wantErr, want) {
		a.status = doctor.StatusCancelled
	}
}

func (m *model) reschedule(t *rapid.T) {
	id := m.drawAppt(t)
	a := m.appts[id]
	start := m.drawStart(t)
	by := rapid.SampledFrom([]domain.Actor{patient(m.owner(id)), patient(m.owner(id)), patient(otherPatient(m.owner(id))), theDoctor, admin}).Draw(t, "by")
	err := m.d.Reschedule(id, start, by, m.now)
	var wantErr *domain.Error
	var lapsed []*mAppt
	switch {
	case a == nil || (by.Role == domain.RolePatient && by.UserID != a.patient):
		wantErr = doctor.ErrAppointmentNotFound
	case by.Role == domain.RoleDoctor:
		wantErr = doctor.ErrNotAllowed
	case !a.live():
		wantErr = doctor.ErrInvalidTransition
	case !a.start.After(m.now):
		wantErr = doctor.ErrAppointmentStarted
	default:
		wantErr, lapsed = m.slotErr(start, id)
	}
	var want []domain.Event
	if a != nil && !start.Equal(a.start) {
		want = append(m.lapsedEvents(lapsed), doctor.AppointmentRescheduled{
			DoctorID: docID, AppointmentID: id, PreviousStart: a.start, PreviousEnd: a.end,
			Start: start, End: start.Add(m.slotLen), RescheduledAt: m.now,
		})
	}
	if m.expect(t, fmt.Sprintf("reschedule %s to %v by %v", id, start, by), err, wantErr, want) && len(want) > 0 {
		if a.end.Sub(a.start) != m.slotLen {
			m.stats["reschedule: onto another grid"]++
		}
		a.start, a.end = start, start.Add(m.slotLen)
		for _, l := range lapsed {
			l.status = doctor.StatusExpired
		}
	}
}

func (m *model) close(t *rapid.T, noShow bool) {
	id := m.drawAppt(t)
	a := m.appts[id]
	by := rapid.SampledFrom([]domain.Actor{theDoctor, theDoctor, admin, patient(m.owner(id)), otherDoctor}).Draw(t, "by")
	var err error
	var want []domain.Event
	status := doctor.StatusCompleted
	if noShow {
		err, status = m.d.MarkNoShow(id, by, m.now), doctor.StatusNoShow
		want = []domain.Event{doctor.AppointmentMarkedNoShow{DoctorID: docID, AppointmentID: id, MarkedAt: m.now}}
	} else {
		err = m.d.Complete(id, by, m.now)
		want = []domain.Event{doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: id, CompletedAt: m.now}}
	}
	var wantErr *domain.Error
	switch {
	case a == nil || by == otherDoctor:
		wantErr = doctor.ErrAppointmentNotFound
	case by.Role == domain.RolePatient:
		wantErr = doctor.ErrNotAllowed
	case a.status != doctor.StatusConfirmed:
		wantErr = doctor.ErrInvalidTransition
	case m.now.Before(a.start):
		wantErr = doctor.ErrAppointmentNotStarted
	}
	if m.expect(t, fmt.Sprintf("close %s (%s) by %v", id, status, by), err, wantErr, want) {
		a.status = status
	}
}

func (m *model) addTimeOff(t *rapid.T) {
	cancelBookings := rapid.Bool().Draw(t, "cancelBookings")
	from := m.slots[rapid.IntRange(0, len(m.slots)-1).Draw(t, "from")]
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "overLive") {
		from = live[rapid.IntRange(0, len(live)-1).Draw(t, "over")].start
	}
	from = from.Add(time.Duration(rapid.IntRange(-1, 1).Draw(t, "shift")) * 15 * time.Minute)
	to := from.Add(time.Duration(rapid.IntRange(1, 4).Draw(t, "quarters")) * 15 * time.Minute)
	id := fmt.Sprintf("t%d", m.nextTOff)
	by := rapid.SampledFrom([]domain.Role{domain.RoleDoctor, domain.RoleDoctor, domain.RoleAdmin}).Draw(t, "timeOffBy")
	err := m.d.AddTimeOff(id, from, to, "", cancelBookings, by, m.now)

	var wantErr *domain.Error
	var want []domain.Event
	var hit []*mAppt
	for _, a := range m.liveByStart() {
		if a.start.Before(to) && a.end.After(from) {
			hit = append(hit, a)
		}
	}
	switch {
	case !to.After(m.now):
		wantErr = doctor.ErrInvalidTimeOff
	case len(hit) > 0 && !cancelBookings:
		wantErr = doctor.ErrBookingsInRange
	}
	for _, a := range hit {
		refund := m.refundOnCancel(a, by)
		want = append(want, doctor.AppointmentCancelled{
			DoctorID: docID, AppointmentID: a.id, PatientID: a.patient, Start: a.start, End: a.end, Reason: "doctor time off",
			CancelledBy: by, RefundDue: refund > 0, RefundAmount: refund, CancelledAt: m.now,
		})
	}
	want = append(want, doctor.TimeOffAdded{DoctorID: docID, TimeOffID: id, From: from, To: to})
	if !m.expect(t, fmt.Sprintf("time off %v-%v cancel=%v by %s", from, to, cancelBookings, by), err, wantErr, want) {
		return
	}
	if by == domain.RoleAdmin && len(hit) > 0 {
		m.stats["time: cancelled by an admin"]++
	}
	for _, a := range hit {
		a.status = doctor.StatusCancelled
	}
	m.timeOff = append(m.timeOff, [2]time.Time{from, to})
	m.nextTOff++
}

// setSchedule changes the payment policy, and now and then the slot length
// and hours, under whatever bookings are live: they keep their times.
func (m *model) setSchedule(t *rapid.T) {
	p := rapid.SampledFrom([]doctor.PaymentPolicy{doctor.PaymentRequired, doctor.PaymentOptional, doctor.PaymentNone}).Draw(t, "newPolicy")
	g := m.grid
	if rapid.Bool().Draw(t, "newGrid") {
		g = rapid.SampledFrom(modelGrids).Draw(t, "grid")
	}
	s := gridSchedule(p, g)
	err := m.d.SetSchedule(s)
	var want []domain.Event
	if p != m.policy || g != m.grid {
		want = []domain.Event{doctor.ScheduleSet{DoctorID: docID, Schedule: s}}
	}
	if !m.expect(t, fmt.Sprintf("set schedule %s %+v", p, g), err, nil, want) || len(want) == 0 {
		return
	}
	if g != m.grid && len(m.liveByStart()) > 0 {
		m.stats["set: grid changed under live bookings"]++
	}
	m.policy = p
	m.useGrid(t, g)
}

// setFee changes the doctor's fee; bookings keep theirs.
func (m *model) setFee(t *rapid.T) {
	f := rapid.SampledFrom(modelFees).Draw(t, "fee")
	p := profile()
	p.Fees = f
	err := m.d.UpdateProfile(p)
	var want []domain.Event
	if f != m.fee {
		want = []domain.Event{doctor.ProfileUpdated{DoctorID: docID, Profile: p}}
	}
	if m.expect(t, fmt.Sprintf("fee %d", f), err, nil, want) {
		m.fee = f
	}
}

func (m *model) advance(t *rapid.T) {
	minutes := rapid.SampledFrom([]int{1, 5, 15, 30, 60, 180}).Draw(t, "minutes")
	m.now = m.now.Add(time.Duration(minutes) * time.Minute)
}

// ---- invariants ----

func (m *model) check(t *rapid.T) {
	t.Helper()
	live := m.d.LiveAppointments()
	for i := 1; i < len(live); i++ {
		if live[i].Start.Before(live[i-1].End) {
			t.Fatalf("live appointments overlap: %s %v-%v and %s %v-%v",
				live[i-1].ID, live[i-1].Start, live[i-1].End, live[i].ID, live[i].Start, live[i].End)
		}
	}

	var want []string
	for _, a := range m.liveByStart() {
		want = append(want, fmt.Sprintf("%s %s %s %v", a.id, a.patient, a.status, a.start))
	}
	var got []string
	for _, a := range live {
		got = append(got, fmt.Sprintf("%s %s %s %v", a.ID, a.PatientID, a.Status, a.Start))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("live appointments\n aggregate %q\n     model %q", got, want)
	}

	for _, id := range m.order {
		a, ma := mustAppt(t, m.d, id), m.appts[id]
		if a.Status != ma.status || !a.Start.Equal(ma.start) || !a.End.Equal(ma.end) || !a.HoldExpiresAt.Equal(ma.holdUntil) ||
			a.Fees != ma.fees || a.Payment.Status != ma.pay || a.Payment.PaymentID != ma.mainPay ||
			a.Payment.RefundedAmount != ma.refundedAmount || a.Payment.Amount != ma.shownAmount() {
			t.Fatalf("appointment %s: aggregate %+v, model %+v", id, a, *ma)
		}
		for _, pid := range append(ma.payments, "pay-unknown") {
			if got := m.d.RefundLeft(id, pid); got != ma.left(pid) {
				t.Fatalf("RefundLeft(%s, %s) = %d, model %d", id, pid, got, ma.left(pid))
			}
		}
	}

	var wantExpired []string
	for _, a := range m.liveByStart() {
		if a.status == doctor.StatusHeld && !m.now.Before(a.holdUntil) {
			wantExpired = append(wantExpired, a.id)
		}
	}
	if got := m.d.ExpiredHolds(m.now); !reflect.DeepEqual(got, wantExpired) {
		t.Fatalf("ExpiredHolds = %v, model %v", got, wantExpired)
	}

	for _, date := range modelDates {
		var wantFree []time.Time
		for _, s := range m.slots {
			if err, _ := m.slotErr(s, ""); doctor.DateOf(s.In(nyLoc)) == date && err == nil {
				wantFree = append(wantFree, s)
			}
		}
		if got := starts(m.d.FreeSlots(date, m.now)); !slices.EqualFunc(got, wantFree, time.Time.Equal) {
			t.Fatalf("FreeSlots(%v) = %v, model %v", date, got, wantFree)
		}
	}

	// A freshly folded aggregate equals the incrementally built one. Load
	// is deterministic, so the fold is redone only when the history grew;
	// it is still compared after every action, which catches a refused
	// command that changed state without recording an event.
	if m.folded == nil || m.foldedLen != len(m.history) {
		m.folded, m.foldedLen = doctor.New(docID), len(m.history)
		m.folded.Load(m.history...)
	}
	if msg := compareAggregates(m.d, m.folded, m.order); msg != "" {
		t.Fatalf("refolded aggregate differs: %s", msg)
	}
}

func mustAppt(t *rapid.T, d *doctor.Doctor, id string) doctor.Appointment {
	a, ok := d.Appointment(id)
	if !ok {
		t.Fatalf("appointment %s missing", id)
	}
	return a
}

// restore goes on from a snapshot of the aggregate, as a process that
// restarted would: the restored aggregate must agree with the folded one on
// everything observable, snapshot to the same bytes, and (as the sequence
// goes on with it) decide exactly as the folded one would have.
func (m *model) restore(t *rapid.T) {
	b, err := m.d.MarshalSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := doctor.RestoreSnapshot(docID, b)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if msg := compareAggregates(m.d, r, m.order); msg != "" {
		t.Fatalf("restored aggregate differs: %s", msg)
	}
	again, err := r.MarshalSnapshot()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("the restored aggregate snapshots to other bytes (%v)", err)
	}
	if _, err := doctor.RestoreSnapshot("another", b); !errors.Is(err, doctor.ErrSnapshotShape) {
		t.Fatalf("another doctor's snapshot: %v", err)
	}
	if _, err := doctor.RestoreSnapshot(docID, b[:len(b)-1]); !errors.Is(err, doctor.ErrSnapshotShape) {
		t.Fatalf("a truncated snapshot: %v", err)
	}
	m.stats["restore"]++
	m.d = r
}

// checkStoredRoundTrip folds the history as it would come back from the
// store: encoded, decoded through the catalog registry.
func (m *model) checkStoredRoundTrip(t *rapid.T) {
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	f := doctor.New(docID)
	for _, e := range m.history {
		data, err := domain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := reg.Decode(e.EventType(), data)
		if err != nil {
			t.Fatal(err)
		}
		f.Load(back)
	}
	if msg := compareAggregates(m.d, f, m.order); msg != "" {
		t.Fatalf("aggregate folded from stored events differs: %s", msg)
	}
}

func modelProperty(done *int, stats map[string]int) func(*rapid.T) {
	return func(t *rapid.T) {
		m := newModel(t, stats)
		t.Repeat(map[string]func(*rapid.T){
			"book":       m.book,
			"book again": m.book, // booking is the main source of collisions
			"expire":     m.expire,
			"pay":        m.pay,
			"cancel":     m.cancel,
			"reschedule": m.reschedule,
			"complete":   func(t *rapid.T) { m.close(t, false) },
			"no-show":    func(t *rapid.T) { m.close(t, true) },
			"time off":   m.addTimeOff,
			"schedule":   m.setSchedule,
			"fee":        m.setFee,
			"refund":     m.refund,
			"refund too": m.refund, // refunds need a captured payment first: give them room
			"advance":    m.advance,
			"restore":    m.restore,
			"":           m.check,
		})
		m.checkStoredRoundTrip(t)
		*done++
	}
}

// TestModel runs the state machine until at least minModelSequences
// sequences passed: rapid.Check runs -rapid.checks of them per call (100 by
// default, a fifth with -short), so it is called as often as needed.
func TestModel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	done, calls := 0, 0
	stats := map[string]int{}
	for want := modelSequences(t); done < want; {
		before := done
		rapid.Check(t, modelProperty(&done, stats))
		calls++
		if done == before {
			t.Fatalf("rapid.Check ran no sequence (is -rapid.checks 0?)")
		}
	}
	t.Logf("model: %d sequences in %d rapid.Check calls, %v", done, calls, time.Since(start).Round(time.Millisecond))

	// The model is only worth something if the interesting outcomes happen.
	keys := make([]string, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-50s %7d\n", k, stats[k])
	}
	t.Logf("outcomes:\n%s", b.String())
	for _, k := range []string{
		"book: " + doctor.TypeSlotReserved, "book: slot_unavailable", "book: appointment_exists", "book: outside_schedule",
		"book: insufficient_notice", "book: beyond_booking_window", "book: in_the_past", "book: doctor_time_off",
		"reschedule: " + doctor.TypeAppointmentRescheduled, "reschedule: slot_unavailable", "reschedule: no-op",
		"reschedule: appointment_started", "reschedule: forbidden",
		"expire: " + doctor.TypeHoldExpired, "expire: hold_active",
		"pay: " + doctor.TypeAppointmentConfirmed, "pay: refund due", "pay: no-op",
		"cancel: " + doctor.TypeAppointmentCancelled, "cancel: appointment_started", "cancel: appointment_not_found",
		"close: " + doctor.TypeAppointmentCompleted, "close: " + doctor.TypeAppointmentMarkedNoShow, "close: appointment_not_started",
		"time: " + doctor.TypeTimeOffAdded, "time: bookings_in_range", "time: " + doctor.TypeAppointmentCancelled,
		"set: " + doctor.TypeScheduleSet, "cancel: refund due", "time: refund due",
		// payments, refunds, fee and grid changes, admin time off
		"pay: payment_mismatch", "pay: known payment, wrong amount: no-op", "pay: paid after a failed attempt",
		"fail: " + doctor.TypePaymentFailed, "fail: no-op", "fail: after a capture",
		"refund: " + doctor.TypeRefundIssued, "refund: invalid_input", "refund: payment_unknown", "refund: no-op",
		"refund: reissued after a failed refund",
		"process-refund: " + doctor.TypeRefundIssued, "process-refund: " + doctor.TypeRefundProcessed, "process-refund: no-op",
		"fail-refund: " + doctor.TypeRefundFailed, "fail-refund: no-op",
		"fee: " + doctor.TypeProfileUpdated, "book: beside a booking at another fee",
		"set: grid changed under live bookings", "book: beside a booking of another grid",
		"time: cancelled by an admin",
	} {
		if stats[k] == 0 {
			t.Errorf("no sequence reached %q", k)
		}
	}
}

// refundOnCancel is what cancelling a gives back: what is left of its
// payment, when it is paid (not being refunded already), unless the
// patient cancels within the refund cutoff.
func (m *model) refundOnCancel(a *mAppt, by domain.Role) int64 {
	if a.pay != doctor.PaymentPaid || (by == domain.RolePatient && a.start.Sub(m.now) < 2*time.Hour) {
		return 0
	}
	return a.left(a.mainPay)
}

// shownAmount is the appointment's Payment.Amount: the payment's, or
// before one its order's.
func (a *mAppt) shownAmount() int64 {
	switch {
	case a.mainPay != "":
		return a.captured[a.mainPay]
	case a.ordered:
		return a.fees
	}
	return 0
}
