package notify_test

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/smtptest"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

var now = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// log builds events with positions and ids.
type log struct {
	events []projections.Event
	at     func() time.Time
}

func (l *log) add(data ...domain.Event) []projections.Event {
	var out []projections.Event
	for _, d := range data {
		pos := uint64(len(l.events) + 1)
		e := projections.Event{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(pos >> 8), byte(pos)}), Position: pos, Data: d, RecordedAt: l.at()}
		l.events = append(l.events, e)
		out = append(out, e)
	}
	return out
}

const (
	patientEmail = "asha@example.com"
	doctorEmail  = "sarah@clinic.example"
)

// people: a patient, a doctor with a login, in zone.
func people(zone string) []domain.Event {
	return []domain.Event{
		account.Registered{AccountID: "p1", Name: "Asha Rao", Email: patientEmail, Role: domain.RolePatient},
		doctor.DoctorRegistered{DoctorID: "d1", Profile: doctor.Profile{Name: "Dr. Sarah Patel"}},
		account.Registered{AccountID: "u-d1", Name: "Sarah Patel", Email: doctorEmail, Role: domain.RoleDoctor, DoctorID: "d1"},
		doctor.ScheduleSet{DoctorID: "d1", Schedule: doctor.Schedule{Timezone: zone}},
	}
}

func reserve(id string, start time.Time, status doctor.Status) doctor.SlotReserved {
	return doctor.SlotReserved{DoctorID: "d1", AppointmentID: id, PatientID: "p1", Start: start, End: start.Add(30 * time.Minute),
		Status: status, Fees: 50000, Currency: "INR"}
}

// fullSet is every kind of mail: one booking confirmed, moved and
// cancelled by the doctor with a refund; one held, paid and confirmed, its
// refund processed later; one held and expired.
func fullSet(l *log) {
	start := time.Date(2026, 12, 3, 4, 30, 0, 0, time.UTC) // 10:00 IST
	l.add(people("Asia/Kolkata")...)
	l.add(
		reserve("a1", start, doctor.StatusConfirmed),
		doctor.AppointmentRescheduled{DoctorID: "d1", AppointmentID: "a1", PreviousStart: start, PreviousEnd: start.Add(30 * time.Minute),
			Start: start.Add(time.Hour), End: start.Add(90 * time.Minute)},
		doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: "a1", Start: start.Add(time.Hour), End: start.Add(90 * time.Minute),
			Reason: "100% booked; sorry", CancelledBy: domain.RoleDoctor, RefundDue: true, RefundAmount: 50000},
		reserve("a2", start.Add(2*time.Hour), doctor.StatusHeld),
		doctor.PaymentOrderCreated{DoctorID: "d1", AppointmentID: "a2", OrderID: "order_1", Amount: 50000, Currency: "INR"},
		doctor.PaymentCaptured{DoctorID: "d1", AppointmentID: "a2", PaymentID: "pay_1", OrderID: "order_1", Amount: 50000, Currency: "INR"},
		doctor.AppointmentConfirmed{DoctorID: "d1", AppointmentID: "a2", PaymentID: "pay_1"},
		doctor.RefundProcessed{DoctorID: "d1", AppointmentID: "a2", PaymentID: "pay_1", RefundID: "rfnd_1", Amount: 50000},
		reserve("a3", start.Add(3*time.Hour), doctor.StatusHeld),
		doctor.PaymentOrderCreated{DoctorID: "d1", AppointmentID: "a3", OrderID: "order_3", Amount: 50000, Currency: "INR"},
		doctor.HoldExpired{DoctorID: "d1", AppointmentID: "a3", Start: start.Add(3 * time.Hour), End: start.Add(3*time.Hour + 30*time.Minute)},
	)
}

// wantKinds: the kind and recipient of each mail of fullSet.
var wantKinds = map[string]int{
	"booking_confirmed/" + patientEmail:  2, // a1 booked, a2 paid
	"doctor_new_booking/" + doctorEmail:  2,
	"rescheduled/" + patientEmail:        1,
	"cancelled/" + patientEmail:          1,
	"doctor_cancellation/" + doctorEmail: 1,
	"booking_held/" + patientEmail:       2,
	"payment_received/" + patientEmail:   1,
	"refund_processed/" + patientEmail:   1,
	"hold_expired/" + patientEmail:       1,
}

func wantTotal() int {
	n := 0
	for _, c := range wantKinds {
		n += c
	}
	return n
}

type rig struct {
	t      *testing.T
	dir    string
	clock  *clock
	smtp   *smtptest.Server
	mailer *notify.SMTP
	box    *notify.FileOutbox
	w      *notify.Worker
	d      *notify.Deliverer
	cfg    notify.DeliveryConfig
}

func newRig(t *testing.T, dc notify.DeliveryConfig) *rig {
	t.Helper()
	r := &rig{t: t, dir: filepath.Join(t.TempDir(), "outbox"), clock: &clock{t: now}, smtp: smtptest.Start(t)}
	m, err := notify.NewSMTP(notify.SMTPConfig{URL: r.smtp.URL(), From: "Prescripto Clinic <mail@prescripto.example>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	r.mailer = m
	r.cfg = dc
	r.open()
	return r
}

// open opens the outbox and a worker and deliverer on it (a start).
func (r *rig) open() {
	r.t.Helper()
	box, err := notify.OpenFileOutbox(r.dir, 0, r.clock.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	r.box = box
	dc := r.cfg
	dc.Outbox, dc.Mailer, dc.Now = box, r.mailer, r.clock.Now
	r.d = notify.NewDeliverer(dc)
	w, err := notify.New(notify.Config{Outbox: box, Now: r.clock.Now, Wake: r.d.Wake,
		PayLink: func(a, o string) string { return "https://prescripto.example/pay/" + a + "?order=" + o }})
	if err != nil {
		r.t.Fatal(err)
	}
	r.w = w
}

func (r *rig) close() {
	r.t.Helper()
	if err := r.box.Close(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) apply(events []projections.Event) {
	r.t.Helper()
	for _, e := range events {
		if err := r.w.Apply(context.Background(), e); err != nil {
			r.t.Fatal(err)
		}
	}
}

// drain delivers until nothing is due.
func (r *rig) drain() {
	r.t.Helper()
	for {
		n, err := r.d.Deliver(context.Background())
		if err != nil {
			r.t.Logf("deliver: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// parsed is a received message, parsed.
type parsed struct {
	header   mail.Header
	text     string
	html     string
	calendar string
	method   string
}

func parse(t *testing.T, m smtptest.Message) parsed {
	t.Helper()
	p, err := m.Parse()
	if err != nil {
		t.Fatal(err)
	}
	out := parsed{header: p.Header}
	walk(t, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Body, &out)
	return out
}

func walk(t *testing.T, ctype, cte string, body io.Reader, out *parsed) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("content type %q: %v", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			walk(t, part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, out)
		}
	}
	raw, err := io.ReadAll(decoder(cte, body))
	if err != nil {
		t.Fatal(err)
	}
	switch mt {
	case "text/plain":
		out.text = string(raw)
	case "text/html":
		out.html = string(raw)
	case "text/calendar":
		out.calendar, out.method = string(raw), params["method"]
	}
}

func TestEveryMailOverSMTPOncePerFact(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{})
	l := &log{at: r.clock.Now}
	fullSet(l)
	r.apply(l.events)
	r.apply(l.events) // redelivery
	r.drain()
	// A restart: the worker resumes from its checkpoint; the log comes
	// again from before it (redelivery after a crash) and from 0.
	if err := r.w.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.close()
	r.open()
	if got := r.w.Position(); got != uint64(len(l.events)) {
		t.Fatalf("resumed at %d; want the checkpoint %d", got, len(l.events))
	}
	r.apply(l.events)
	r.drain()

	msgs := r.smtp.WaitFor(t, wantTotal(), 10*time.Second)
	time.Sleep(50 * time.Millisecond)
	msgs = r.smtp.Messages()
	if len(msgs) != wantTotal() {
		t.Fatalf("%d mails; want %d", len(msgs), wantTotal())
	}
	got := map[string]int{}
	ids := map[string]bool{}
	for _, m := range msgs {
		id := m.MessageID()
		if ids[id] || !strings.HasSuffix(id, "@prescripto.local>") {
			t.Fatalf("Message-ID %q twice or malformed", id)
		}
		ids[id] = true
		box, err := r.box.Get(context.Background(), strings.TrimSuffix(strings.TrimPrefix(id, "<"), "@prescripto.local>"))
		if err != nil || box.Status != notify.StatusSent {
			t.Fatalf("outbox entry of %s: %+v, %v", id, box, err)
		}
		got[box.Kind+"/"+m.To[0]]++
		p := parse(t, m)
		if from := p.header.Get("From"); from != `"Prescripto Clinic" <mail@prescripto.example>` {
			t.Fatalf("From %q", from)
		}
		if p.text == "" || p.html == "" {
			t.Fatalf("%s: text %q html %q", box.Kind, p.text, p.html)
		}
		if !strings.Contains(p.text, "IST (Asia/Kolkata)") || !strings.Contains(p.html, "IST (Asia/Kolkata)") {
			t.Fatalf("%s: no doctor-local time with its zone:\n%s", box.Kind, p.text)
		}
		checkKind(t, box.Kind, p)
	}
	for k, n := range wantKinds {
		if got[k] != n {
			t.Fatalf("mails by kind %v; want %v", got, wantKinds)
		}
	}
}

// checkKind checks what each kind must say.
func checkKind(t *testing.T, kind string, p parsed) {
	t.Helper()
	contains := func(s ...string) {
		t.Helper()
		for _, x := range s {
			if !strings.Contains(p.text, x) {
				t.Fatalf("%s: text lacks %q:\n%s", kind, x, p.text)
			}
		}
	}
	switch kind {
	case notify.KindBookingConfirmed, notify.KindRescheduled, notify.KindCancelled:
		cal, err := ics.ParseCalendar(strings.NewReader(p.calendar))
		if err != nil {
			t.Fatalf("%s: ics: %v\n%s", kind, err, p.calendar)
		}
		method := ""
		for _, prop := range cal.CalendarProperties {
			if prop.IANAToken == "METHOD" {
				method = prop.Value
			}
		}
		ev := cal.Events()
		if len(ev) != 1 {
			t.Fatalf("%s: %d events", kind, len(ev))
		}
		seq := ev[0].GetProperty(ics.ComponentPropertySequence).Value
		uid := ev[0].GetProperty(ics.ComponentPropertyUniqueId).Value
		start, err := ev[0].GetStartAt()
		if err != nil {
			t.Fatal(err)
		}
		// SEQUENCE is the position of the change (a1: 5, 6, 7 in fullSet).
		want := map[string][2]string{
			notify.KindBookingConfirmed: {"REQUEST", ""}, notify.KindRescheduled: {"REQUEST", "6"}, notify.KindCancelled: {"CANCEL", "7"},
		}[kind]
		if method != want[0] || p.method != want[0] || (want[1] != "" && seq != want[1]) || !strings.HasSuffix(uid, "@prescripto") {
			t.Fatalf("%s: METHOD %s (part %s), SEQUENCE %s, UID %s", kind, method, p.method, seq, uid)
		}
		if kind == notify.KindRescheduled && !start.Equal(time.Date(2026, 12, 3, 5, 30, 0, 0, time.UTC)) {
			t.Fatalf("rescheduled: DTSTART %v", start)
		}
	}
	switch kind {
	case notify.KindBookingHeld:
		contains("https://prescripto.example/pay/", "order=order_")
	case notify.KindCancelled:
		contains("by the doctor", "Reason: 100% booked; sorry", "INR 500.00")
	case notify.KindRescheduled:
		contains("10:00 IST", "11:00 IST")
	case notify.KindDoctorNewBooking, notify.KindDoctorCancellation:
		contains("Asha Rao")
	case notify.KindPaymentReceived, notify.KindRefundProcessed:
		contains("INR 500.00")
	}
}

// decoder undoes a part's transfer encoding.
func decoder(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(cte) {
	case "quoted-printable":
		return qpReader(r)
	case "base64":
		return b64Reader(r)
	}
	return r
}
