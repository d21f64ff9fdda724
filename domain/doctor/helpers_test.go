package doctor_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// The fixture: one doctor in Asia/Kolkata (+05:30, no DST) working Monday to
// Friday 09:00-12:00 in 30-minute slots. June 2026 starts on a Monday.

const (
	docID   = "doc-1"
	otherID = "doc-2"
	fees    = int64(50000)
)

var (
	ist  = mustZone("Asia/Kolkata")
	now0 = at(1, 8, 0) // Monday 2026-06-01 08:00 IST

	theDoctor   = domain.Actor{UserID: docID, Role: domain.RoleDoctor}
	otherDoctor = domain.Actor{UserID: otherID, Role: domain.RoleDoctor}
	admin       = domain.Actor{UserID: "adm-1", Role: domain.RoleAdmin}
	system      = domain.Actor{Role: domain.RoleSystem}
	auditor     = domain.Actor{UserID: "aud-1", Role: domain.RoleAuditor}
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is wall-clock h:m on 2026-06-<day> in the doctor's zone, as a UTC instant.
func at(day, h, m int) time.Time {
	return time.Date(2026, time.June, day, h, m, 0, 0, ist).UTC()
}

func patient(id string) domain.Actor { return domain.Actor{UserID: id, Role: domain.RolePatient} }

func nameOf(patientID string) string { return "Name of " + patientID }

func profile() doctor.Profile {
	return doctor.Profile{
		Name: "Dr. Asha Rao", Speciality: "Cardiology", Degree: "MD", ExperienceYears: 12,
		About: "Heart specialist.", Fees: fees, Currency: "INR", Address: "12 MG Road, Bengaluru",
		ImageURL: "https://img.example.com/asha.png", Available: true,
	}
}

func weekdays(start, end string) []doctor.WeeklyHours {
	var w []doctor.WeeklyHours
	for wd := 1; wd <= 5; wd++ {
		w = append(w, doctor.WeeklyHours{Weekday: wd, Start: start, End: end})
	}
	return w
}

func schedule(p doctor.PaymentPolicy) doctor.Schedule {
	return doctor.Schedule{
		Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 14, MinNoticeMinutes: 60,
		PaymentPolicy: p, HoldMinutes: 15, RefundCutoffHours: 24, Weekly: weekdays("09:00", "12:00"),
	}
}

// ---- events for "given" ----

func registered() domain.Event {
	return doctor.DoctorRegistered{DoctorID: docID, Profile: profile(), RegisteredAt: at(1, 7, 0)}
}

func scheduled(p doctor.PaymentPolicy) domain.Event {
	return doctor.ScheduleSet{DoctorID: docID, Schedule: schedule(p)}
}

// setup is a registered doctor with a schedule of policy p.
func setup(p doctor.PaymentPolicy, more ...domain.Event) []domain.Event {
	return with([]domain.Event{registered(), scheduled(p)}, more...)
}

// with is a new history: h followed by more (never sharing h's array, so
// that scenarios built from one base cannot clobber each other).
func with(h []domain.Event, more ...domain.Event) []domain.Event {
	out := make([]domain.Event, 0, len(h)+len(more))
	return append(append(out, h...), more...)
}

// confirmed is a reservation under policy none.
func confirmed(id, patientID string, start time.Time) doctor.SlotReserved {
	return doctor.SlotReserved{
		DoctorID: docID, AppointmentID: id, PatientID: patientID, PatientName: nameOf(patientID),
		Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed,
		Fees: fees, Currency: "INR", PaymentStatus: doctor.PaymentNotRequired, ReservedAt: now0,
	}
}

// held is a reservation under policy required, made at now0 (expires now0+15m).
func held(id, patientID string, start time.Time) doctor.SlotReserved {
	e := confirmed(id, patientID, start)
	until := now0.Add(15 * time.Minute)
	e.Status, e.PaymentStatus, e.HoldExpiresAt = doctor.StatusHeld, doctor.PaymentPending, &until
	return e
}

// pending is a reservation under policy optional.
func pending(id, patientID string, start time.Time) doctor.SlotReserved {
	e := confirmed(id, patientID, start)
	e.PaymentStatus = doctor.PaymentPending
	return e
}

func captured(id, paymentID string, refundDue bool, when time.Time) doctor.PaymentCaptured {
	return doctor.PaymentCaptured{
		DoctorID: docID, AppointmentID: id, PaymentID: paymentID, OrderID: "order-" + id, Amount: fees,
		Currency: "INR", RefundDue: refundDue, CapturedAt: when,
	}
}

func confirmedBy(id, paymentID string, when time.Time) doctor.AppointmentConfirmed {
	return doctor.AppointmentConfirmed{DoctorID: docID, AppointmentID: id, PaymentID: paymentID, ConfirmedAt: when}
}

func cancelled(r doctor.SlotReserved, by domain.Role, reason string, refundDue bool, when time.Time) doctor.AppointmentCancelled {
	c := doctor.AppointmentCancelled{
		DoctorID: docID, AppointmentID: r.AppointmentID, PatientID: r.PatientID, Start: r.Start, End: r.End, Reason: reason,
		CancelledBy: by, RefundDue: refundDue, CancelledAt: when,
	}
	if refundDue {
		c.RefundAmount = fees
	}
	return c
}

func expired(r doctor.SlotReserved, when time.Time) doctor.HoldExpired {
	return doctor.HoldExpired{DoctorID: docID, AppointmentID: r.AppointmentID, Start: r.Start, End: r.End, ExpiredAt: when}
}

func timeOff(id string, from, to time.Time, reason string) doctor.TimeOffAdded {
	return doctor.TimeOffAdded{DoctorID: docID, TimeOffID: id, From: from, To: to, Reason: reason}
}

// ---- "when" helpers ----

type when = func(d *doctor.Doctor) error

func reserve(id, patientID string, start, now time.Time) when {
	return func(d *doctor.Doctor) error {
		return d.Reserve(doctor.Reservation{AppointmentID: id, PatientID: patientID, PatientName: nameOf(patientID), Start: start}, now)
	}
}

// ---- given / then ----

// given is a doctor folded from stored events.
func given(events ...domain.Event) *doctor.Doctor {
	d := doctor.New(docID)
	d.Load(events...)
	return d
}

type scenario struct {
	name  string
	given []domain.Event
	when  when
	then  []domain.Event // expected events when the command succeeds
	err   *domain.Error  // expected sentinel, or nil
	kind  error          // expected kind of err (domain.ErrConflict ...)
	msg   string         // optional substring of the error message
	// after runs extra checks; h is the whole history (given + recorded).
	after func(t *testing.T, d *doctor.Doctor, h []domain.Event)
}

// run executes scenarios as parallel subtests. Every scenario also checks
// that a refused command records nothing and that folding the recorded
// events onto the given ones rebuilds the same aggregate.
func run(t *testing.T, scenarios []scenario) {
	t.Helper()
	seen := map[string]bool{}
	for _, sc := range scenarios {
		if seen[sc.name] {
			t.Fatalf("duplicate scenario name %q", sc.name)
		}
		seen[sc.name] = true
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			d := given(sc.given...)
			err := sc.when(d)
			got := d.Changes()
			if sc.err != nil {
				if sc.kind == nil {
					t.Fatal("scenario with an error needs its kind")
				}
				expectErr(t, err, sc.err, sc.kind)
				if sc.msg != "" && (err == nil || !strings.Contains(err.Error(), sc.msg)) {
					t.Errorf("error %v: want message containing %q", err, sc.msg)
				}
				if len(got) != 0 {
					t.Errorf("a refused command recorded events:\n%s", dumpEvents(got))
				}
			} else {
				if err != nil {
					t.Fatalf("unexpected error: %v (code %q)", err, domain.CodeOf(err))
				}
				if !eventsEqual(got, sc.then) {
					t.Errorf("events differ:\n%s", diffEvents(got, sc.then))
				}
			}
			checkFold(t, sc.given, d)
			if sc.after != nil {
				sc.after(t, d, append(slices.Clone(sc.given), d.Changes()...))
			}
		})
	}
}

func expectErr(t testing.TB, err error, want *domain.Error, kind error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("want error %s (%v), got none", want.Code, kind)
	case !errors.Is(err, want):
		t.Errorf("error %q (code %q): want errors.Is %s", err, domain.CodeOf(err), want.Code)
	case !errors.Is(err, kind):
		t.Errorf("error %q: want kind %v", err, kind)
	case domain.CodeOf(err) != want.Code:
		t.Errorf("error %q: code %q, want %q", err, domain.CodeOf(err), want.Code)
	}
}

func eventsEqual(got, want []domain.Event) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

func fmtEvent(e any) string {
	ev, ok := e.(domain.Event)
	if !ok {
		return fmt.Sprint(e)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Sprintf("%#v", ev)
	}
	return ev.EventType() + " " + string(b)
}

func dumpEvents(es []domain.Event) string {
	var b strings.Builder
	for i, e := range es {
		fmt.Fprintf(&b, "  %d: %s\n", i, fmtEvent(e))
	}
	return b.String()
}

func diffEvents(got, want []domain.Event) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w any = "<none>", "<none>"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "event %d:\n  got:  %s\n  want: %s\n", i, fmtEvent(g), fmtEvent(w))
			if fmtEvent(g) == fmtEvent(w) {
				fmt.Fprintf(&b, "  (same JSON) got %#v\n  want %#v\n", g, w)
			}
		}
	}
	return b.String()
}

// appointmentIDs lists the appointment ids mentioned by events, in order.
func appointmentIDs(events []domain.Event) []string {
	var ids []string
	for _, e := range events {
		if a, ok := e.(doctor.AppointmentEvent); ok && !slices.Contains(ids, a.AppointmentRef()) {
			ids = append(ids, a.AppointmentRef())
		}
	}
	return ids
}

// checkFold folds given plus the recorded changes into a fresh aggregate
// and compares it with d.
func checkFold(t testing.TB, givenEvents []domain.Event, d *doctor.Doctor) {
	t.Helper()
	all := append(slices.Clone(givenEvents), d.Changes()...)
	f := doctor.New(d.ID())
	f.Load(all...)
	if msg := compareAggregates(d, f, appointmentIDs(all)); msg != "" {
		t.Errorf("refolded aggregate differs from the incremental one: %s", msg)
	}
}

// compareAggregates returns "" when a and b agree on everything observable.
func compareAggregates(a, b *doctor.Doctor, ids []string) string {
	switch {
	case a.ID() != b.ID():
		return fmt.Sprintf("id %q vs %q", a.ID(), b.ID())
	case a.Registered() != b.Registered():
		return "registered differs"
	case a.Profile() != b.Profile():
		return fmt.Sprintf("profile %+v vs %+v", a.Profile(), b.Profile())
	case a.AvailabilityLockedByAdmin() != b.AvailabilityLockedByAdmin():
		return "availability lock differs"
	case (a.Grid() == nil) != (b.Grid() == nil):
		return "grid presence differs"
	case a.Grid() != nil && !reflect.DeepEqual(a.Grid().Schedule(), b.Grid().Schedule()):
		return fmt.Sprintf("schedule %+v vs %+v", a.Grid().Schedule(), b.Grid().Schedule())
	case !reflect.DeepEqual(a.TimeOffs(), b.TimeOffs()):
		return fmt.Sprintf("time off %+v vs %+v", a.TimeOffs(), b.TimeOffs())
	case a.AppointmentCount() != b.AppointmentCount():
		return fmt.Sprintf("appointment count %d vs %d", a.AppointmentCount(), b.AppointmentCount())
	case !reflect.DeepEqual(a.LiveAppointments(), b.LiveAppointments()):
		return fmt.Sprintf("live appointments\n %+v\nvs\n %+v", a.LiveAppointments(), b.LiveAppointments())
	}
	for _, id := range ids {
		x, ok1 := a.Appointment(id)
		y, ok2 := b.Appointment(id)
		if ok1 != ok2 || !reflect.DeepEqual(x, y) {
			return fmt.Sprintf("appointment %s\n %+v\nvs\n %+v", id, x, y)
		}
	}
	return ""
}

func mustAppointment(t *testing.T, d *doctor.Doctor, id string) doctor.Appointment {
	t.Helper()
	a, ok := d.Appointment(id)
	if !ok {
		t.Fatalf("appointment %s not found", id)
	}
	return a
}

// expectReserve asserts that a new reservation of start at now, on a doctor
// folded from history, fails with want, or succeeds when want is nil.
func expectReserve(t *testing.T, history []domain.Event, start, now time.Time, want *domain.Error) {
	t.Helper()
	c := given(history...)
	err := c.Reserve(doctor.Reservation{AppointmentID: "probe", PatientID: "p-probe", Start: start}, now)
	if want == nil {
		if err != nil {
			t.Errorf("reserving %v: unexpected %v", start, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("reserving %v: got %v, want %s", start, err, want.Code)
	}
}
