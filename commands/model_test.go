package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"pgregory.net/rapid"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/razorpay"
	"github.com/prescripto/prescripto/internal/razorpay/sandbox"
)

// The store-layer model: two command handlers (two api processes) on one
// embedded SQLite store, paying through the Razorpay adapter and the
// project's emulator over HTTP, as the API does (PayAppointment, the
// checkout, VerifyPayment). First, random commands go through either
// handler one at a time and each answer, and exactly what it appended to
// the doctor's stream, is compared with a small model of slots,
// appointments and payments. Then goroutines send random commands at once
// and the log, folded afresh, must account for every answer.

// storeModelRuns is how many sequential sequences and concurrent rounds
// one run checks: PRESCRIPTO_MODEL_SEQUENCES (`make proof`: 10,000) asks
// for a twentieth of that of each, CI's default is 30 and 10.
func storeModelRuns(t *testing.T) (sequences, rounds int) {
	v := os.Getenv("PRESCRIPTO_MODEL_SEQUENCES")
	if v == "" {
		return 30, 10
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("PRESCRIPTO_MODEL_SEQUENCES=%q: want a positive number", v)
	}
	return max(30, n/20), max(10, n/20)
}

// storeRig is one store, one emulator and two handlers on them.
type storeRig struct {
	e       *env
	hs      [2]*commands.Handler
	emu     *sandbox.Emulator
	reqs    atomic.Int64
	doctors atomic.Int64
}

func newStoreRig(t *testing.T) *storeRig {
	t.Helper()
	r := &storeRig{e: newEnv(t), emu: sandbox.New(sandbox.Config{})}
	mux := http.NewServeMux()
	mux.Handle("/sandbox/razorpay/", http.StripPrefix("/sandbox/razorpay", r.emu.APIHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(r.emu.Close) // first: it ends what it runs in the background
	for i := range r.hs {
		// Each process has its own client to the provider.
		gw, err := razorpay.New(razorpay.Config{
			KeyID: r.emu.KeyID(), KeySecret: r.emu.KeySecret(), WebhookSecret: r.emu.WebhookSecret(),
			BaseURL: srv.URL + "/sandbox/razorpay", Timeout: 20 * time.Second, CheckoutURL: sandbox.CheckoutPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.hs[i], err = commands.New(commands.Config{
			Store: r.e.store, Registry: r.e.reg, Now: r.e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}, Gateway: gw,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

const modelFee = int64(50000)

// fataler is what the helpers need of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// newDoctor registers a doctor working 10:00-21:00 IST every day in
// 30-minute slots; a patient cancelling within an hour of the start gets
// nothing back.
func (r *storeRig) newDoctor(t fataler, policy doctor.PaymentPolicy) (commands.DoctorResult, *doctor.Grid) {
	t.Helper()
	n := r.doctors.Add(1)
	s := schedule(policy)
	s.RefundCutoffHours = 1
	d, err := r.hs[n%2].RegisterDoctor(context.Background(), commands.Meta{Actor: admin.Actor, RequestID: "setup"}, commands.RegisterDoctor{
		Profile: doctor.Profile{Name: fmt.Sprintf("Dr Model %d", n), Speciality: "General physician", Fees: modelFee, Currency: "INR", Available: true},
		Email:   fmt.Sprintf("model-%d@clinic.example", n), Password: "s3cret-pass", Schedule: s,
	})
	if err != nil {
		t.Fatalf("register doctor: %v", err)
	}
	g, err := d.Schedule.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return d, g
}

func (r *storeRig) meta(a domain.Actor) commands.Meta {
	return commands.Meta{Actor: a, RequestID: fmt.Sprintf("req-%d", r.reqs.Add(1))}
}

// nextSlots are the first n slots of g starting after from.
func nextSlots(g *doctor.Grid, from time.Time, n int) []time.Time {
	var out []time.Time
	for day := g.DateIn(from); len(out) < n; day = day.AddDays(1) {
		for _, s := range g.Slots(day) {
			if s.Start.After(from) && len(out) < n {
				out = append(out, s.Start)
			}
		}
	}
	return out
}

// stored is one event of a doctor's stream with the request that
// appended it.
type stored struct {
	ev  domain.Event
	req string
}

// readDoctor reads a doctor's stream from revision from on.
func (r *storeRig) readDoctor(t fataler, id string, from uint64) []stored {
	t.Helper()
	recs, err := r.e.store.ReadStream(context.Background(), doctor.StreamID(id), from, eventstore.Forward, 0)
	if err != nil {
		t.Fatalf("read %s from %d: %v", id, from, err)
	}
	out := make([]stored, len(recs))
	for i, rec := range recs {
		ev, err := r.e.reg.Decode(rec.Type, rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		var md domain.Metadata
		if err := json.Unmarshal(rec.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		out[i] = stored{ev: ev, req: md.RequestID}
	}
	return out
}

// fold is the doctor folded afresh from the log.
func (r *storeRig) fold(t fataler, id string) *doctor.Doctor {
	t.Helper()
	d := doctor.New(id)
	for _, s := range r.readDoctor(t, id, 0) {
		d.Load(s.ev)
	}
	return d
}

func liveKeys(d *doctor.Doctor) []string {
	var out []string
	for _, a := range d.LiveAppointments() {
		out = append(out, fmt.Sprintf("%s %s %s %s", a.ID, a.PatientID, a.Status, a.Start.Format(time.RFC3339)))
	}
	return out
}

// handlersAgree checks that both handlers, caught up with the stream, see
// the doctor as a fresh fold of the log does.
func (r *storeRig) handlersAgree(t fataler, id string, folded *doctor.Doctor) {
	t.Helper()
	want := liveKeys(folded)
	for i, h := range r.hs {
		var got []string
		if err := h.Doctor(context.Background(), id, func(d *doctor.Doctor) { got = liveKeys(d) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("handler %d sees live appointments\n %q\nthe log folded afresh\n %q", i, got, want)
		}
	}
}

func noOverlap(t fataler, d *doctor.Doctor) {
	t.Helper()
	live := d.LiveAppointments()
	for i := 1; i < len(live); i++ {
		if live[i].Start.Before(live[i-1].End) {
			t.Fatalf("live appointments overlap in the log: %+v and %+v", live[i-1], live[i])
		}
	}
}

// ---- the sequential model ----

type sAppt struct {
	id, patient string
	start       time.Time
	status      doctor.Status
	holdUntil   time.Time
	payable     bool
	pay         doctor.PaymentStatus
	order       string
	atProvider  int64 // paid against the order at the provider: paid in full, it takes no other payment
	mainPay     string
	payments    []string
	left        map[string]int64  // payment id -> refundable rest
	pending     map[string]string // refund id -> payment id, while pending
	refundAmt   map[string]int64  // refund id -> amount
}

func (a *sAppt) live() bool {
	return a.status == doctor.StatusHeld || a.status == doctor.StatusConfirmed
}

type storeModel struct {
	r       *storeRig
	d       commands.DoctorResult
	g       *doctor.Grid
	policy  doctor.PaymentPolicy
	slots   []time.Time
	pats    [2]string
	appts   map[string]*sAppt
	order   []string
	timeOff [][2]time.Time
	rev     uint64 // the doctor stream's next revision
	refunds int
	stats   map[string]int
}

func (m *storeModel) now() time.Time { return m.r.e.clock.Now().UTC() }

func (m *storeModel) handler(t *rapid.T) (int, *commands.Handler) {
	i := rapid.IntRange(0, 1).Draw(t, "handler")
	return i, m.r.hs[i]
}

func patientActor(id string) domain.Actor { return domain.Actor{UserID: id, Role: domain.RolePatient} }

func (m *storeModel) doctorActor() domain.Actor {
	return domain.Actor{UserID: m.d.ID, Role: domain.RoleDoctor}
}

var systemActor = domain.Actor{Role: domain.RoleSystem}

func (m *storeModel) liveByStart() []*sAppt {
	var out []*sAppt
	for _, id := range m.order {
		if a := m.appts[id]; a.live() {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// slotErr is the model's verdict on the slot at start (ignoring except),
// with the lapsed holds in its way.
func (m *storeModel) slotErr(start time.Time, except string) (*domain.Error, []*sAppt) {
	now := m.now()
	if !start.After(now) {
		return doctor.ErrInThePast, nil
	}
	if _, ok := m.g.Fit(start); !ok {
		return doctor.ErrOutsideSchedule, nil
	}
	end := start.Add(30 * time.Minute)
	for _, r := range m.timeOff {
		if start.Before(r[1]) && end.After(r[0]) {
			return doctor.ErrDoctorTimeOff, nil
		}
	}
	var lapsed []*sAppt
	for _, a := range m.liveByStart() {
		if a.id != except && start.Before(a.start.Add(30*time.Minute)) && end.After(a.start) {
			if a.status != doctor.StatusHeld || now.Before(a.holdUntil) {
				return doctor.ErrSlotUnavailable, nil
			}
			lapsed = append(lapsed, a)
		}
	}
	return nil, lapsed
}

func (m *storeModel) drawStart(t *rapid.T) time.Time {
	s := rapid.SampledFrom(m.slots).Draw(t, "slot")
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "collide") {
		s = rapid.SampledFrom(live).Draw(t, "taken").start
	}
	switch rapid.IntRange(0, 9).Draw(t, "offGrid") {
	case 0:
		return s.Add(15 * time.Minute)
	case 1:
		return m.now().Add(-30 * time.Minute).Truncate(30 * time.Minute)
	}
	return s
}

func (m *storeModel) drawAppt(t *rapid.T) string {
	if len(m.order) == 0 || rapid.IntRange(0, 9).Draw(t, "unknown") == 0 {
		return "0190a000-0000-7000-8000-000000000000"
	}
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "pickLive") {
		return rapid.SampledFrom(live).Draw(t, "live").id
	}
	return rapid.SampledFrom(m.order).Draw(t, "appt")
}

// nothingBooked books instead when there is no appointment to act on
// yet (an unknown one is drawn often enough later).
func (m *storeModel) nothingBooked(t *rapid.T) bool {
	if len(m.order) > 0 {
		return false
	}
	m.book(t)
	return true
}

func (m *storeModel) owner(id string) string {
	if a := m.appts[id]; a != nil {
		return a.patient
	}
	return m.pats[0]
}

func (m *storeModel) other(p string) string {
	if p == m.pats[0] {
		return m.pats[1]
	}
	return m.pats[0]
}

// expect compares what a command answered, and what it appended to the
// doctor's stream, with the model: the same sentinel and nothing
// appended, or success and exactly the event types wanted, every one
// carrying the command's request id. It returns the events appended.
func (m *storeModel) expect(t *rapid.T, what string, req commands.Meta, err error, wantErr *domain.Error, want []string) []domain.Event {
	t.Helper()
	got := m.r.readDoctor(t, m.d.ID, m.rev)
	m.rev += uint64(len(got))
	verb, _, _ := strings.Cut(what, " ")
	if wantErr != nil {
		m.stats[verb+": "+wantErr.Code]++
		if !errors.Is(err, wantErr) {
			t.Fatalf("%s: got %v (code %q), the model wants %s", what, err, domain.CodeOf(err), wantErr.Code)
		}
		if len(got) > 0 {
			t.Fatalf("%s: refused (%v) but appended %d event(s), the first %s", what, err, len(got), got[0].ev.EventType())
		}
		return nil
	}
	if err != nil {
		t.Fatalf("%s: unexpected error %v (code %q)", what, err, domain.CodeOf(err))
	}
	types := make([]string, len(got))
	evs := make([]domain.Event, len(got))
	for i, s := range got {
		types[i], evs[i] = s.ev.EventType(), s.ev
		if s.req != req.RequestID {
			t.Fatalf("%s: appended %s with request id %q, want %q", what, types[i], s.req, req.RequestID)
		}
	}
	if !slices.Equal(types, want) {
		t.Fatalf("%s: appended %q, the model wants %q", what, types, want)
	}
	if len(want) == 0 {
		m.stats[verb+": no-op"]++
	}
	for _, ty := range want {
		m.stats[verb+": "+ty]++
	}
	return evs
}

func expiredTypes(lapsed []*sAppt, last string) []string {
	out := make([]string, 0, len(lapsed)+1)
	for range lapsed {
		out = append(out, doctor.TypeHoldExpired)
	}
	return append(out, last)
}

func (m *storeModel) book(t *rapid.T) {
	p := rapid.SampledFrom(m.pats[:]).Draw(t, "patient")
	start := m.drawStart(t)
	_, h := m.handler(t)
	req := m.r.meta(patientActor(p))
	res, err := h.ReserveSlot(context.Background(), req, commands.ReserveSlot{DoctorID: m.d.ID, Start: start, PatientName: "Model Patient"})
	wantErr, lapsed := m.slotErr(start, "")
	if m.expect(t, "book at "+start.Format(time.RFC3339), req, err, wantErr, expiredTypes(lapsed, doctor.TypeSlotReserved)) == nil {
		return
	}
	for _, l := range lapsed {
		l.status = doctor.StatusExpired
	}
	a := &sAppt{
		id: res.Appointment.ID, patient: p, start: start, status: doctor.StatusConfirmed, pay: doctor.PaymentNotRequired,
		left: map[string]int64{}, pending: map[string]string{}, refundAmt: map[string]int64{},
	}
	switch m.policy {
	case doctor.PaymentOptional:
		a.pay, a.payable = doctor.PaymentPending, true
	case doctor.PaymentRequired:
		a.pay, a.payable, a.status = doctor.PaymentPending, true, doctor.StatusHeld
		a.holdUntil = m.now().Add(15 * time.Minute)
	}
	if got := res.Appointment; got.Status != a.status || !got.Start.Equal(start) || got.PatientID != p || !got.HoldExpiresAt.Equal(a.holdUntil) {
		t.Fatalf("book answered %+v, the model has %+v", got, *a)
	}
	m.appts[a.id] = a
	m.order = append(m.order, a.id)
}

// refundOnCancel is what cancelling a by role gives back.
func (m *storeModel) refundOnCancel(a *sAppt, role domain.Role) int64 {
	if a.pay != doctor.PaymentPaid || (role == domain.RolePatient && a.start.Sub(m.now()) < time.Hour) {
		return 0
	}
	return a.left[a.mainPay]
}

func (m *storeModel) cancel(t *rapid.T) {
	if m.nothingBooked(t) {
		return
	}
	id := m.drawAppt(t)
	a := m.appts[id]
	by := rapid.SampledFrom([]domain.Actor{patientActor(m.owner(id)), patientActor(m.other(m.owner(id))), m.doctorActor(), admin.Actor}).Draw(t, "by")
	_, h := m.handler(t)
	req := m.r.meta(by)
	_, err := h.CancelAppointment(context.Background(), req, commands.CancelAppointment{DoctorID: m.d.ID, AppointmentID: id})
	var wantErr *domain.Error
	switch {
	case a == nil || (by.Role == domain.RolePatient && by.UserID != a.patient):
		wantErr = doctor.ErrAppointmentNotFound
	case !a.live():
		wantErr = doctor.ErrInvalidTransition
	case by.Role == domain.RolePatient && !a.start.After(m.now()):
		wantErr = doctor.ErrAppointmentStarted
	}
	evs := m.expect(t, fmt.Sprintf("cancel %s by %s", id, by.Role), req, err, wantErr, []string{doctor.TypeAppointmentCancelled})
	if evs == nil {
		return
	}
	c := evs[0].(doctor.AppointmentCancelled)
	if want := m.refundOnCancel(a, by.Role); c.RefundAmount != want || c.RefundDue != (want > 0) || c.CancelledBy != by.Role {
		t.Fatalf("cancel %s: %+v, the model wants a refund of %d", id, c, want)
	}
	if c.RefundDue {
		m.stats["cancel: refund due"]++
	}
	a.status = doctor.StatusCancelled
}

func (m *storeModel) reschedule(t *rapid.T) {
	if m.nothingBooked(t) {
		return
	}
	id := m.drawAppt(t)
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "moveLive") {
		id = rapid.SampledFrom(live).Draw(t, "moved").id
	}
	a := m.appts[id]
	by := rapid.SampledFrom([]domain.Actor{patientActor(m.owner(id)), patientActor(m.owner(id)), patientActor(m.other(m.owner(id))), admin.Actor}).Draw(t, "by")
	start := m.drawStart(t)
	var others []*sAppt
	for _, o := range m.liveByStart() {
		if o.id != id {
			others = append(others, o)
		}
	}
	if len(others) > 0 && rapid.Bool().Draw(t, "ontoAnother") {
		start = rapid.SampledFrom(others).Draw(t, "another").start
	}
	_, h := m.handler(t)
	req := m.r.meta(by)
	res, err := h.RescheduleAppointment(context.Background(), req, commands.RescheduleAppointment{DoctorID: m.d.ID, AppointmentID: id, Start: start})
	var wantErr *domain.Error
	var lapsed []*sAppt
	switch {
	case a == nil || (by.Role == domain.RolePatient && by.UserID != a.patient):
		wantErr = doctor.ErrAppointmentNotFound
	case !a.live():
		wantErr = doctor.ErrInvalidTransition
	case !a.start.After(m.now()):
		wantErr = doctor.ErrAppointmentStarted
	default:
		wantErr, lapsed = m.slotErr(start, id)
	}
	var want []string
	if a != nil && !start.Equal(a.start) {
		want = expiredTypes(lapsed, doctor.TypeAppointmentRescheduled)
	}
	if m.expect(t, fmt.Sprintf("reschedule %s to %s by %s", id, start.Format(time.RFC3339), by.Role), req, err, wantErr, want) == nil && (wantErr != nil || len(want) > 0) {
		return
	}
	for _, l := range lapsed {
		l.status = doctor.StatusExpired
	}
	a.start = start
	if !res.Appointment.Start.Equal(start) {
		t.Fatalf("reschedule answered %v, want %v", res.Appointment.Start, start)
	}
}

// payableErr is PayAppointment's verdict on a.
func (m *storeModel) payableErr(a *sAppt) *domain.Error {
	now := m.now()
	switch {
	case !a.payable, !a.live(), a.pay != doctor.PaymentPending && a.pay != doctor.PaymentFailedState,
		a.status == doctor.StatusHeld && !now.Before(a.holdUntil), !now.Before(a.start):
		return doctor.ErrPaymentNotNeeded
	}
	return nil
}

// pay is the patient's checkout: PayAppointment through one handler, the
// payment at the provider, VerifyPayment through either. Now and then the
// checkout is tampered with (a smaller amount, which leaves the order
// open). A payment for an order of an appointment that has ended is
// recorded as due back.
func (m *storeModel) pay(t *rapid.T) {
	if m.nothingBooked(t) {
		return
	}
	id := m.drawAppt(t)
	var due []string
	for _, a := range m.liveByStart() {
		if m.payableErr(a) == nil {
			due = append(due, a.id)
		}
	}
	var ended []string // with an order the provider would still take money for
	for _, id := range m.order {
		if a := m.appts[id]; !a.live() && a.order != "" && a.atProvider < modelFee {
			ended = append(ended, id)
		}
	}
	switch {
	case len(ended) > 0 && rapid.IntRange(0, 3).Draw(t, "payEnded") == 0:
		id = rapid.SampledFrom(ended).Draw(t, "ended")
	case len(due) > 0 && rapid.IntRange(0, 3).Draw(t, "payDue") != 0:
		id = rapid.SampledFrom(due).Draw(t, "due")
	}
	a := m.appts[id]
	by := patientActor(m.owner(id))
	if rapid.IntRange(0, 9).Draw(t, "otherPayer") == 0 {
		by = patientActor(m.other(m.owner(id)))
	}
	ctx := context.Background()
	if a == nil || a.order == "" || a.live() || by.UserID != a.patient {
		_, h := m.handler(t)
		req := m.r.meta(by)
		res, err := h.PayAppointment(ctx, req, commands.PayAppointment{DoctorID: m.d.ID, AppointmentID: id})
		var wantErr *domain.Error
		if a == nil || by.UserID != a.patient {
			wantErr = doctor.ErrAppointmentNotFound
		} else {
			wantErr = m.payableErr(a)
		}
		var want []string
		if a != nil && a.order == "" {
			want = []string{doctor.TypePaymentOrderRequested, doctor.TypePaymentOrderCreated}
		}
		if m.expect(t, "order "+id, req, err, wantErr, want) == nil && wantErr != nil {
			return
		}
		if a.order == "" {
			a.order = res.OrderID
		}
		if res.OrderID != a.order || res.Amount != modelFee || res.Currency != "INR" || res.Created != (len(want) > 0) {
			t.Fatalf("PayAppointment %s answered %+v; the model has order %s", id, res, a.order)
		}
	} else {
		m.stats["pay: late, for an ended appointment"]++
	}
	if a.atProvider >= modelFee {
		if _, err := m.r.emu.Pay(a.order); !errors.Is(err, sandbox.ErrOrderPaid) {
			t.Fatalf("paying a paid order at the provider: %v", err)
		}
		return
	}
	var opts []sandbox.PayOption
	short := false
	outcome := rapid.IntRange(0, 9).Draw(t, "checkout")
	if !a.live() && outcome > 0 && outcome < 4 {
		outcome = 9 // late money: paid, not abandoned
	}
	switch outcome {
	case 0: // the checkout was tampered with
		short = true
		opts = append(opts, sandbox.PayAmount(modelFee-1))
	case 1: // the patient closed the checkout
		m.stats["pay: abandoned"]++
		return
	case 2, 3: // the card was declined: the payments worker records it
		pid, err := m.r.emu.Fail(a.order, "card_declined")
		if err != nil {
			t.Fatalf("failing a payment of %s: %v", a.order, err)
		}
		_, h := m.handler(t)
		req := m.r.meta(systemActor)
		_, err = h.FailPayment(context.Background(), req, commands.FailPayment{DoctorID: m.d.ID, AppointmentID: a.id, OrderID: a.order, PaymentID: pid, Reason: "card_declined"})
		var want []string
		if a.pay == doctor.PaymentPending {
			want = []string{doctor.TypePaymentFailed}
			a.pay = doctor.PaymentFailedState
		}
		m.expect(t, "fail "+a.id, req, err, nil, want)
		return
	}
	co, err := m.r.emu.Pay(a.order, opts...)
	if err != nil {
		t.Fatalf("checkout of %s: %v", a.order, err)
	}
	_, h := m.handler(t)
	req := m.r.meta(by)
	res, err := h.VerifyPayment(ctx, req, commands.VerifyPayment{OrderID: co.OrderID, PaymentID: co.PaymentID, Signature: co.Signature})
	if short {
		a.atProvider += modelFee - 1
		m.expect(t, "pay "+id+" short", req, err, doctor.ErrPaymentMismatch, nil)
		return
	}
	a.atProvider += modelFee
	usable := a.live() && (a.pay == doctor.PaymentPending || a.pay == doctor.PaymentFailedState)
	if usable && a.pay == doctor.PaymentFailedState {
		m.stats["pay: paid after a failed attempt"]++
	}
	want := []string{doctor.TypePaymentCaptured}
	if usable && a.status == doctor.StatusHeld {
		want = append(want, doctor.TypeAppointmentConfirmed)
	}
	evs := m.expect(t, "pay "+id, req, err, nil, want)
	if c := evs[0].(doctor.PaymentCaptured); c.RefundDue == usable || c.Amount != modelFee || c.PaymentID != co.PaymentID {
		t.Fatalf("pay %s: %+v; the model says usable=%v", id, c, usable)
	}
	if !usable {
		m.stats["pay: refund due"]++
	}
	if len(want) == 2 {
		a.status = doctor.StatusConfirmed
	}
	if a.mainPay == "" {
		a.mainPay, a.pay = co.PaymentID, doctor.PaymentPaid
	}
	a.payments = append(a.payments, co.PaymentID)
	a.left[co.PaymentID] = modelFee
	if res.Appointment.Status != a.status || res.Appointment.Payment.Status != a.pay {
		t.Fatalf("pay %s answered %+v, the model has %s %s", id, res.Appointment, a.status, a.pay)
	}
}

// refund is the payments worker's part: issue a refund of what is left
// of a payment (or a unit more: refused), or settle a pending one.
func (m *storeModel) refund(t *rapid.T) {
	type ref struct {
		a   *sAppt
		pid string
	}
	var open []ref
	var pending []string
	for _, id := range m.order {
		a := m.appts[id]
		for _, p := range a.payments {
			if a.left[p] > 0 {
				open = append(open, ref{a, p})
			}
		}
		for rid := range a.pending {
			pending = append(pending, id+" "+rid)
		}
	}
	sort.Strings(pending)
	_, h := m.handler(t)
	req := m.r.meta(systemActor)
	ctx := context.Background()
	if len(pending) > 0 && (len(open) == 0 || rapid.Bool().Draw(t, "settle")) {
		id, rid, _ := strings.Cut(rapid.SampledFrom(pending).Draw(t, "pending"), " ")
		a := m.appts[id]
		pid, amount := a.pending[rid], a.refundAmt[rid]
		if rapid.Bool().Draw(t, "refundOK") {
			_, err := h.ProcessRefund(ctx, req, commands.ProcessRefund{DoctorID: m.d.ID, AppointmentID: id, PaymentID: pid, RefundID: rid, Amount: amount})
			m.expect(t, "process-refund "+rid, req, err, nil, []string{doctor.TypeRefundProcessed})
			delete(a.pending, rid)
			if pid == a.mainPay && !slices.Contains(mapValues(a.pending), pid) {
				a.pay = doctor.PaymentRefunded
			}
			return
		}
		_, err := h.FailRefund(ctx, req, commands.FailRefund{DoctorID: m.d.ID, AppointmentID: id, RefundID: rid, Reason: "bank rejected"})
		m.expect(t, "fail-refund "+rid, req, err, nil, []string{doctor.TypeRefundFailed})
		delete(a.pending, rid)
		a.left[pid] += amount
		return
	}
	if len(open) == 0 {
		m.pay(t)
		return
	}
	o := rapid.SampledFrom(open).Draw(t, "refundOf")
	m.refunds++
	rid := fmt.Sprintf("rfnd_%s_%d", m.d.ID[:8], m.refunds)
	amount := rapid.SampledFrom([]int64{o.a.left[o.pid], o.a.left[o.pid], 1000, o.a.left[o.pid] + 1}).Draw(t, "amount")
	if amount > o.a.left[o.pid] && amount == 1000 {
		amount = o.a.left[o.pid]
	}
	_, err := h.IssueRefund(ctx, req, commands.IssueRefund{DoctorID: m.d.ID, AppointmentID: o.a.id, PaymentID: o.pid, RefundID: rid, Amount: amount})
	if amount > o.a.left[o.pid] {
		m.expect(t, "refund "+rid, req, err, domain.Invalid("any"), nil)
		return
	}
	m.expect(t, "refund "+rid, req, err, nil, []string{doctor.TypeRefundIssued})
	o.a.left[o.pid] -= amount
	o.a.pending[rid], o.a.refundAmt[rid] = o.pid, amount
	if o.pid == o.a.mainPay {
		o.a.pay = doctor.PaymentRefundPending
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func (m *storeModel) addTimeOff(t *rapid.T) {
	if len(m.liveByStart()) == 0 && rapid.IntRange(0, 3).Draw(t, "timeOffIdle") != 0 {
		m.book(t) // time off blocks slots: mostly while bookings are in its way
		return
	}
	by := rapid.SampledFrom([]domain.Actor{m.doctorActor(), admin.Actor}).Draw(t, "by")
	from := rapid.SampledFrom(m.slots).Draw(t, "from")
	if live := m.liveByStart(); len(live) > 0 && rapid.Bool().Draw(t, "overLive") {
		from = rapid.SampledFrom(live).Draw(t, "over").start
	}
	to := from.Add(time.Duration(rapid.IntRange(1, 3).Draw(t, "halfHours")) * 30 * time.Minute)
	cancelBookings := rapid.Bool().Draw(t, "cancelBookings")
	_, h := m.handler(t)
	req := m.r.meta(by)
	res, err := h.AddTimeOff(context.Background(), req, commands.AddTimeOff{DoctorID: m.d.ID, From: from, To: to, CancelBookings: cancelBookings})
	var hit []*sAppt
	var want []string
	for _, a := range m.liveByStart() {
		if a.start.Before(to) && a.start.Add(30*time.Minute).After(from) {
			hit = append(hit, a)
			want = append(want, doctor.TypeAppointmentCancelled)
		}
	}
	var wantErr *domain.Error
	switch {
	case !to.After(m.now()):
		wantErr = doctor.ErrInvalidTimeOff
	case len(hit) > 0 && !cancelBookings:
		wantErr = doctor.ErrBookingsInRange
	}
	evs := m.expect(t, fmt.Sprintf("timeoff %s-%s by %s", from.Format(time.RFC3339), to.Format(time.RFC3339), by.Role), req, err, wantErr, append(want, doctor.TypeTimeOffAdded))
	if evs == nil {
		return
	}
	var ids []string
	for i, a := range hit {
		c := evs[i].(doctor.AppointmentCancelled)
		if want := m.refundOnCancel(a, by.Role); c.AppointmentID != a.id || c.RefundAmount != want || c.CancelledBy != by.Role {
			t.Fatalf("time off cancelled %+v; the model wants %s with a refund of %d by %s", c, a.id, want, by.Role)
		}
		if c.RefundDue {
			m.stats["timeoff: refund due"]++
		}
		if by.Role == domain.RoleAdmin {
			m.stats["timeoff: cancelled by an admin"]++
		}
		a.status = doctor.StatusCancelled
		ids = append(ids, a.id)
	}
	if !slices.Equal(res.Cancelled, ids) {
		t.Fatalf("time off answered cancelled %v, the model %v", res.Cancelled, ids)
	}
	m.timeOff = append(m.timeOff, [2]time.Time{from, to})
}

func (m *storeModel) expire(t *rapid.T) {
	if m.nothingBooked(t) {
		return
	}
	id := m.drawAppt(t)
	a := m.appts[id]
	_, h := m.handler(t)
	req := m.r.meta(systemActor)
	_, err := h.ExpireHold(context.Background(), req, commands.ExpireHold{DoctorID: m.d.ID, AppointmentID: id})
	var wantErr *domain.Error
	switch {
	case a == nil:
		wantErr = doctor.ErrAppointmentNotFound
	case a.status != doctor.StatusHeld:
		wantErr = doctor.ErrInvalidTransition
	case m.now().Before(a.holdUntil):
		wantErr = doctor.ErrHoldActive
	}
	if m.expect(t, "expire "+id, req, err, wantErr, []string{doctor.TypeHoldExpired}) != nil {
		a.status = doctor.StatusExpired
	}
}

func (m *storeModel) advance(t *rapid.T) {
	m.r.e.clock.Advance(time.Duration(rapid.SampledFrom([]int{5, 20, 20, 60}).Draw(t, "minutes")) * time.Minute)
}

// check compares the log, folded afresh, and both handlers' cached state
// with the model.
func (m *storeModel) check(t *rapid.T) {
	t.Helper()
	f := m.r.fold(t, m.d.ID)
	noOverlap(t, f)
	var want []string
	for _, a := range m.liveByStart() {
		want = append(want, fmt.Sprintf("%s %s %s %s", a.id, a.patient, a.status, a.start.Format(time.RFC3339)))
	}
	if got := liveKeys(f); !slices.Equal(got, want) {
		t.Fatalf("live appointments folded from the log\n %q\nthe model\n %q", got, want)
	}
	for _, id := range m.order {
		a, ma := mustAppointment(t, f, id), m.appts[id]
		if a.Status != ma.status || a.Payment.Status != ma.pay || a.Payment.PaymentID != ma.mainPay {
			t.Fatalf("appointment %s in the log %+v, the model %+v", id, a, *ma)
		}
		for _, p := range ma.payments {
			if got := f.RefundLeft(id, p); got != ma.left[p] {
				t.Fatalf("RefundLeft(%s, %s) = %d, the model %d", id, p, got, ma.left[p])
			}
		}
	}
	m.r.handlersAgree(t, m.d.ID, f)
}

func mustAppointment(t fataler, d *doctor.Doctor, id string) doctor.Appointment {
	t.Helper()
	a, ok := d.Appointment(id)
	if !ok {
		t.Fatalf("appointment %s is not in the log", id)
	}
	return a
}

func storeModelProperty(r *storeRig, want int, done *int, stats map[string]int) func(*rapid.T) {
	return func(t *rapid.T) {
		if *done >= want {
			return // rapid.Check runs its -rapid.checks; this run needs no more
		}
		policy := rapid.SampledFrom([]doctor.PaymentPolicy{doctor.PaymentRequired, doctor.PaymentRequired, doctor.PaymentOptional, doctor.PaymentOptional, doctor.PaymentNone}).Draw(t, "policy")
		d, g := r.newDoctor(t, policy)
		m := &storeModel{
			r: r, d: d, g: g, policy: policy, appts: map[string]*sAppt{}, stats: stats,
			slots: nextSlots(g, r.e.clock.Now().Add(time.Hour), 8),
			pats:  [2]string{"p1-" + d.ID, "p2-" + d.ID},
		}
		m.rev = uint64(len(r.readDoctor(t, d.ID, 0)))
		t.Repeat(map[string]func(*rapid.T){
			"book":       m.book,
			"book again": m.book,
			"cancel":     m.cancel,
			"reschedule": m.reschedule,
			"pay":        m.pay,
			"pay again":  m.pay, // payments and refunds need a booking first: give them room
			"refund":     m.refund,
			"refund too": m.refund,
			"time off":   m.addTimeOff,
			"expire":     m.expire,
			"advance":    m.advance,
			"":           m.check,
		})
		*done++
	}
}

// ---- the concurrent rounds ----

// A round: concurrentWorkers patients send concurrentOps commands each.
const concurrentWorkers, concurrentOps = 8, 15

// answer is what one command answered.
type answer struct {
	op    string // book, cancel, reschedule, order, pay, refund, timeoff
	req   string
	appt  string
	start time.Time
	err   error

	booked    doctor.Appointment // book
	order     commands.PaymentOrder
	paymentID string // pay
	refundID  string // refund
	timeOff   commands.TimeOffResult
}

// concurrentRound has workers goroutines send ops random commands each,
// through either handler, against one new doctor with few slots, then
// checks the log against every answer.
func concurrentRound(t *testing.T, r *storeRig, seed uint64, workers, ops int, stats *sync.Map) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0))
	policy := []doctor.PaymentPolicy{doctor.PaymentRequired, doctor.PaymentOptional, doctor.PaymentNone}[rng.IntN(3)]
	d, g := r.newDoctor(t, policy)
	slots := nextSlots(g, r.e.clock.Now().Add(time.Hour), 10)
	docActor := domain.Actor{UserID: d.ID, Role: domain.RoleDoctor}

	var mu sync.Mutex
	var booked []string // every appointment id answered booked
	answers := make([][]answer, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)+1))
			me := domain.Actor{UserID: fmt.Sprintf("cp%d-%s", w, d.ID), Role: domain.RolePatient}
			var mine []string
			type paid struct{ appt, payment string }
			var payments []paid
			paidOrders := map[string]bool{}
			<-start
			for range ops {
				h := r.hs[rng.IntN(2)]
				pick := func(ids []string) string {
					if len(ids) == 0 || rng.IntN(10) == 0 {
						return "0190a000-0000-7000-8000-000000000000"
					}
					return ids[rng.IntN(len(ids))]
				}
				var a answer
				switch op := rng.IntN(20); {
				case op < 7:
					a = answer{op: "book", start: slots[rng.IntN(len(slots))]}
					m := r.meta(me)
					a.req = m.RequestID
					res, err := h.ReserveSlot(ctx, m, commands.ReserveSlot{DoctorID: d.ID, Start: a.start, PatientName: "Model Patient"})
					a.err, a.booked, a.appt = err, res.Appointment, res.Appointment.ID
					if err == nil {
						mine = append(mine, a.appt)
						mu.Lock()
						booked = append(booked, a.appt)
						mu.Unlock()
					}
				case op < 10:
					by := me
					a = answer{op: "cancel", appt: pick(mine)}
					if rng.IntN(3) == 0 { // the doctor cancels anyone's
						by = docActor
						mu.Lock()
						a.appt = pick(booked)
						mu.Unlock()
					}
					m := r.meta(by)
					a.req = m.RequestID
					_, a.err = h.CancelAppointment(ctx, m, commands.CancelAppointment{DoctorID: d.ID, AppointmentID: a.appt})
				case op < 13:
					a = answer{op: "reschedule", appt: pick(mine), start: slots[rng.IntN(len(slots))]}
					m := r.meta(me)
					a.req = m.RequestID
					res, err := h.RescheduleAppointment(ctx, m, commands.RescheduleAppointment{DoctorID: d.ID, AppointmentID: a.appt, Start: a.start})
					a.err, a.booked = err, res.Appointment
				case op < 17:
					a = answer{op: "order", appt: pick(mine)}
					m := r.meta(me)
					a.req = m.RequestID
					a.order, a.err = h.PayAppointment(ctx, m, commands.PayAppointment{DoctorID: d.ID, AppointmentID: a.appt})
					if a.err != nil || paidOrders[a.order.OrderID] {
						break
					}
					answers[w] = append(answers[w], a)
					co, err := r.emu.Pay(a.order.OrderID)
					if err != nil {
						t.Errorf("checkout of %s: %v", a.order.OrderID, err)
						continue
					}
					paidOrders[a.order.OrderID] = true
					m = r.meta(me)
					a = answer{op: "pay", appt: a.appt, req: m.RequestID, paymentID: co.PaymentID}
					_, a.err = r.hs[rng.IntN(2)].VerifyPayment(ctx, m, commands.VerifyPayment{OrderID: co.OrderID, PaymentID: co.PaymentID, Signature: co.Signature})
					if a.err == nil {
						payments = append(payments, paid{a.appt, co.PaymentID})
					}
				case op < 19:
					if len(payments) == 0 {
						continue
					}
					p := payments[rng.IntN(len(payments))]
					m := r.meta(systemActor)
					a = answer{op: "refund", appt: p.appt, req: m.RequestID, refundID: "rfnd_" + strings.TrimPrefix(m.RequestID, "req-")}
					amount := []int64{modelFee, 20000, modelFee + 1}[rng.IntN(3)]
					_, a.err = h.IssueRefund(ctx, m, commands.IssueRefund{DoctorID: d.ID, AppointmentID: p.appt, PaymentID: p.payment, RefundID: a.refundID, Amount: amount})
				default:
					by := []domain.Actor{docActor, admin.Actor}[rng.IntN(2)]
					from := slots[rng.IntN(len(slots))]
					m := r.meta(by)
					a = answer{op: "timeoff", req: m.RequestID, start: from}
					a.timeOff, a.err = h.AddTimeOff(ctx, m, commands.AddTimeOff{DoctorID: d.ID, From: from, To: from.Add(30 * time.Minute), CancelBookings: rng.IntN(3) > 0})
				}
				answers[w] = append(answers[w], a)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	checkAnswers(t, r, d.ID, slices.Concat(answers...), stats)
}

// checkAnswers checks the log against the answers: nothing appended for a
// refusal, exactly the events of each success under its request id, no
// event of a request that was not answered with success, one appointment
// booked in the log for each booking answered, and no overlap.
func checkAnswers(t *testing.T, r *storeRig, doctorID string, answers []answer, stats *sync.Map) {
	t.Helper()
	byReq := map[string][]domain.Event{}
	for _, s := range r.readDoctor(t, doctorID, 0) {
		if s.req != "setup" {
			byReq[s.req] = append(byReq[s.req], s.ev)
		}
	}
	count := func(k string) {
		v, _ := stats.LoadOrStore(k, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	types := func(evs []domain.Event) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = e.EventType()
		}
		return out
	}
	answered := map[string]bool{}
	var bookedIDs []string
	cancelled := map[string]bool{}
	for _, a := range answers {
		evs := byReq[a.req]
		if a.err != nil {
			var de *domain.Error
			if !errors.As(a.err, &de) {
				t.Errorf("%s %s: an error that is not a refusal: %v", a.op, a.appt, a.err)
				continue
			}
			count(a.op + ": " + de.Code)
			if len(evs) > 0 {
				t.Errorf("%s %s refused (%v) but appended %q", a.op, a.appt, a.err, types(evs))
			}
			continue
		}
		answered[a.req] = true
		bad := func(why string) {
			t.Errorf("%s %s (%s) answered success, but the log has %q under its request: %s", a.op, a.appt, a.req, types(evs), why)
		}
		last := func(typ string) domain.Event { // evs is HoldExpired... then one typ
			if len(evs) == 0 || evs[len(evs)-1].EventType() != typ {
				return nil
			}
			for _, e := range evs[:len(evs)-1] {
				if e.EventType() != doctor.TypeHoldExpired {
					return nil
				}
			}
			return evs[len(evs)-1]
		}
		switch a.op {
		case "book":
			e, ok := last(doctor.TypeSlotReserved).(doctor.SlotReserved)
			if !ok || e.AppointmentID != a.booked.ID || !e.Start.Equal(a.start) || !a.booked.Start.Equal(a.start) {
				bad("want one SlotReserved of the answered appointment at its start")
			}
			bookedIDs = append(bookedIDs, a.booked.ID)
		case "cancel":
			if e, ok := last(doctor.TypeAppointmentCancelled).(doctor.AppointmentCancelled); !ok || len(evs) != 1 || e.AppointmentID != a.appt {
				bad("want its AppointmentCancelled")
			}
			cancelled[a.appt] = true
		case "reschedule":
			if len(evs) == 0 && a.booked.Start.Equal(a.start) {
				count("reschedule: no-op")
				continue
			}
			if e, ok := last(doctor.TypeAppointmentRescheduled).(doctor.AppointmentRescheduled); !ok || e.AppointmentID != a.appt || !e.Start.Equal(a.start) {
				bad("want its AppointmentRescheduled to the asked start")
			}
		case "order":
			if a.order.Created {
				if ts := types(evs); !slices.Equal(ts, []string{doctor.TypePaymentOrderRequested, doctor.TypePaymentOrderCreated}) ||
					evs[1].(doctor.PaymentOrderCreated).OrderID != a.order.OrderID {
					bad("want the claim and the order it created")
				}
			} else if len(evs) != 0 {
				bad("an existing order appends nothing")
			}
		case "pay":
			if len(evs) == 0 || len(evs) > 2 || evs[0].EventType() != doctor.TypePaymentCaptured || evs[0].(doctor.PaymentCaptured).PaymentID != a.paymentID ||
				(len(evs) == 2 && evs[1].EventType() != doctor.TypeAppointmentConfirmed) {
				bad("want the PaymentCaptured (and AppointmentConfirmed)")
			} else if evs[0].(doctor.PaymentCaptured).RefundDue {
				count("pay: refund due")
			}
		case "refund":
			if len(evs) != 1 || evs[0].EventType() != doctor.TypeRefundIssued || evs[0].(doctor.RefundIssued).RefundID != a.refundID {
				bad("want its RefundIssued")
			}
		case "timeoff":
			n := len(a.timeOff.Cancelled)
			if len(evs) != n+1 || evs[n].EventType() != doctor.TypeTimeOffAdded || evs[n].(doctor.TimeOffAdded).TimeOffID != a.timeOff.TimeOff.ID {
				bad(fmt.Sprintf("want the %d cancellations it answered (%v) and TimeOffAdded", n, a.timeOff.Cancelled))
				continue
			}
			for i, id := range a.timeOff.Cancelled {
				if c, ok := evs[i].(doctor.AppointmentCancelled); !ok || c.AppointmentID != id {
					bad("want the cancellations it answered")
				}
				cancelled[id] = true
			}
		}
		count(a.op + ": ok")
	}
	for req, evs := range byReq {
		if !answered[req] {
			t.Errorf("the log has %q under request %s, which no success answered", types(evs), req)
		}
	}
	f := r.fold(t, doctorID)
	noOverlap(t, f)
	if f.AppointmentCount() != len(bookedIDs) {
		t.Errorf("the log has %d appointments, %d bookings were answered", f.AppointmentCount(), len(bookedIDs))
	}
	for _, id := range bookedIDs {
		a := mustAppointment(t, f, id)
		if cancelled[id] && a.Status != doctor.StatusCancelled {
			t.Errorf("appointment %s was answered cancelled, the log has it %s", id, a.Status)
		}
	}
	r.handlersAgree(t, doctorID, f)
}

// TestStoreModel is the model at the command/store layer (see the top of
// this file). Run it under -race. It is not parallel with the package's
// other tests: its two parts load the machine, and the package's big races
// (1,000 goroutines on one slot) answer within a batch timeout.
func TestStoreModel(t *testing.T) {
	sequences, rounds := storeModelRuns(t)

	t.Run("sequential", func(t *testing.T) {
		t.Parallel()
		r := newStoreRig(t)
		began, done, stats := time.Now(), 0, map[string]int{}
		for done < sequences {
			before := done
			rapid.Check(t, storeModelProperty(r, sequences, &done, stats))
			if done == before {
				t.Fatalf("rapid.Check ran no sequence (is -rapid.checks 0?)")
			}
		}
		t.Logf("store model: %d sequences through two handlers, %v", done, time.Since(began).Round(time.Millisecond))
		logStats(t, stats)
		// The outcomes every run reaches; a long run (make proof) also the
		// rarer ones.
		want := []string{
			"book: " + doctor.TypeSlotReserved, "book: slot_unavailable", "book: outside_schedule", "book: in_the_past",
			"cancel: " + doctor.TypeAppointmentCancelled, "cancel: appointment_not_found", "cancel: invalid_transition",
			"order: " + doctor.TypePaymentOrderCreated, "order: no-op", "order: payment_not_needed", "order: appointment_not_found",
			"pay: " + doctor.TypePaymentCaptured, "pay: payment_mismatch", "pay: late, for an ended appointment",
			"fail: " + doctor.TypePaymentFailed, "refund: " + doctor.TypeRefundIssued, "refund: invalid_input",
			"fail-refund: " + doctor.TypeRefundFailed, "timeoff: " + doctor.TypeTimeOffAdded, "timeoff: bookings_in_range",
		}
		if sequences >= 200 {
			want = append(want,
				"book: "+doctor.TypeHoldExpired, "book: doctor_time_off", "cancel: refund due", "cancel: appointment_started",
				"reschedule: "+doctor.TypeAppointmentRescheduled, "reschedule: slot_unavailable", "reschedule: no-op",
				"pay: "+doctor.TypeAppointmentConfirmed, "pay: refund due", "pay: paid after a failed attempt", "pay: abandoned",
				"process-refund: "+doctor.TypeRefundProcessed, "timeoff: cancelled by an admin", "timeoff: refund due",
				"expire: "+doctor.TypeHoldExpired, "expire: hold_active")
		}
		for _, k := range want {
			if stats[k] == 0 {
				t.Errorf("no sequence reached %q", k)
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		r := newStoreRig(t)
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		var stats sync.Map
		began := time.Now()
		for i := range rounds {
			concurrentRound(t, r, seed+uint64(i), concurrentWorkers, concurrentOps, &stats)
			if t.Failed() {
				t.Fatalf("round %d (seed %d) failed", i, seed+uint64(i))
			}
		}
		t.Logf("store model: %d concurrent rounds of %d goroutines x %d commands through two handlers, %v", rounds, concurrentWorkers, concurrentOps, time.Since(began).Round(time.Millisecond))
		m := map[string]int{}
		stats.Range(func(k, v any) bool { m[k.(string)] = int(v.(*atomic.Int64).Load()); return true })
		logStats(t, m)
		want := []string{"book: ok", "book: slot_unavailable", "cancel: ok", "order: ok", "pay: ok", "timeoff: ok"}
		if rounds >= 100 {
			want = append(want, "reschedule: ok", "refund: ok", "pay: refund due", "refund: invalid_input")
		}
		for _, k := range want {
			if m[k] == 0 {
				t.Errorf("no round reached %q", k)
			}
		}
	})
}

func logStats(t *testing.T, stats map[string]int) {
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
}
