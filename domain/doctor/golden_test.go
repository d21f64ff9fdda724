package doctor_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/goldentest"
)

// go test ./domain/doctor -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenSamples is one representative instance of every doctor event type,
// every field set, so that its golden file pins every stored field.
func goldenSamples() []domain.Event {
	t0 := time.Date(2026, 6, 2, 3, 30, 0, 0, time.UTC)
	hold := t0.Add(-23 * time.Hour)
	return []domain.Event{
		doctor.DoctorRegistered{DoctorID: docID, Profile: profile(), RegisteredAt: t0.Add(-48 * time.Hour)},
		doctor.ProfileUpdated{DoctorID: docID, Profile: profile()},
		doctor.AvailabilityLocked{DoctorID: docID},
		doctor.AvailabilityUnlocked{DoctorID: docID},
		doctor.ScheduleSet{DoctorID: docID, Schedule: doctor.Schedule{
			Timezone: "Asia/Kolkata", SlotMinutes: 30, BookingWindowDays: 14, MinNoticeMinutes: 60,
			PaymentPolicy: doctor.PaymentRequired, HoldMinutes: 15, RefundCutoffHours: 24,
			Weekly: []doctor.WeeklyHours{{Weekday: 1, Start: "09:00", End: "12:00"}, {Weekday: 5, Start: "14:00", End: "24:00"}},
		}},
		doctor.TimeOffAdded{DoctorID: docID, TimeOffID: "t-1", From: t0, To: t0.Add(8 * time.Hour), Reason: "conference"},
		doctor.SlotReserved{
			DoctorID: docID, AppointmentID: "a-1", PatientID: "p-1", PatientName: "Ravi Kumar",
			Start: t0, End: t0.Add(30 * time.Minute), Status: doctor.StatusHeld, Fees: 50000, Currency: "INR",
			PaymentStatus: doctor.PaymentPending, HoldExpiresAt: &hold, ReservedAt: hold.Add(-15 * time.Minute),
		},
		doctor.AppointmentConfirmed{DoctorID: docID, AppointmentID: "a-1", PaymentID: "pay_1", ConfirmedAt: hold.Add(-time.Minute)},
		doctor.HoldExpired{DoctorID: docID, AppointmentID: "a-1", Start: t0, End: t0.Add(30 * time.Minute), ExpiredAt: hold},
		doctor.AppointmentCancelled{
			DoctorID: docID, AppointmentID: "a-1", PatientID: "p-1", Start: t0, End: t0.Add(30 * time.Minute), Reason: "feeling better",
			CancelledBy: domain.RolePatient, RefundDue: true, RefundAmount: 50000, CancelledAt: hold,
		},
		doctor.AppointmentRescheduled{
			DoctorID: docID, AppointmentID: "a-1", PreviousStart: t0, PreviousEnd: t0.Add(30 * time.Minute),
			Start: t0.Add(24 * time.Hour), End: t0.Add(24*time.Hour + 30*time.Minute), RescheduledAt: hold,
		},
		doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a-1", CompletedAt: t0.Add(20 * time.Minute)},
		doctor.AppointmentMarkedNoShow{DoctorID: docID, AppointmentID: "a-1", MarkedAt: t0.Add(20 * time.Minute)},
		doctor.PaymentOrderCreated{DoctorID: docID, AppointmentID: "a-1", OrderID: "order_1", Amount: 50000, Currency: "INR"},
		doctor.PaymentCaptured{
			DoctorID: docID, AppointmentID: "a-1", PaymentID: "pay_1", OrderID: "order_1", Amount: 50000,
			Currency: "INR", RefundDue: true, CapturedAt: hold.Add(-time.Minute),
		},
		doctor.PaymentFailed{DoctorID: docID, AppointmentID: "a-1", OrderID: "order_1", PaymentID: "pay_0", Reason: "card declined"},
		doctor.RefundIssued{DoctorID: docID, AppointmentID: "a-1", PaymentID: "pay_1", RefundID: "rfnd_1", Amount: 25000, IssuedAt: t0},
		doctor.PaymentOrderRequested{DoctorID: docID, AppointmentID: "a-1", RequestedAt: hold.Add(-10 * time.Minute)},
		doctor.RefundProcessed{DoctorID: docID, AppointmentID: "a-1", PaymentID: "pay_1", RefundID: "rfnd_1", Amount: 25000, ProcessedAt: t0.Add(time.Hour)},
		doctor.RefundFailed{DoctorID: docID, AppointmentID: "a-1", PaymentID: "pay_1", RefundID: "rfnd_2", Amount: 25000, Reason: "bank rejected", FailedAt: t0.Add(time.Hour)},
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Run(t, reg, doctor.Events(), goldenSamples(), *update)
}

func TestCatalogRegistry(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	got := reg.Types()
	sort.Strings(got)
	var want []string
	for _, e := range goldenSamples() {
		want = append(want, e.EventType())
	}
	for _, name := range got {
		if strings.HasPrefix(name, "account.") || strings.HasPrefix(name, "idempotency.") || strings.HasPrefix(name, "payment.") || strings.HasPrefix(name, "ledger.") {
			want = append(want, name)
		}
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("catalog types\n got %v\nwant %v", got, want)
	}
	for _, name := range got {
		if !reg.Known(name) {
			t.Errorf("Known(%s) = false", name)
		}
		if !strings.HasSuffix(name, ".v1") {
			t.Errorf("type %s is not versioned", name)
		}
	}
	if reg.Known("doctor.Nope.v1") {
		t.Error("Known of an unregistered type")
	}
	if _, err := reg.Decode("doctor.Nope.v1", []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEventType) || !strings.Contains(err.Error(), "doctor.Nope.v1") {
		t.Errorf("Decode of an unknown type: %v", err)
	}
	if _, err := reg.Decode(doctor.TypeSlotReserved, []byte(`{"start": 12}`)); err == nil {
		t.Error("Decode of malformed data succeeded")
	}
}

// TestEventRefs: every doctor event names its doctor, and every event
// about an appointment names it.
func TestEventRefs(t *testing.T) {
	t.Parallel()
	notAboutAppointments := []string{doctor.TypeDoctorRegistered, doctor.TypeProfileUpdated, doctor.TypeScheduleSet, doctor.TypeTimeOffAdded,
		doctor.TypeAvailabilityLocked, doctor.TypeAvailabilityUnlocked}
	for _, e := range goldenSamples() {
		de, ok := e.(doctor.DoctorEvent)
		if !ok || de.DoctorRef() != docID {
			t.Errorf("%s: DoctorEvent %v, ref %q", e.EventType(), ok, refOf(de))
		}
		ae, ok := e.(doctor.AppointmentEvent)
		if ok != !slices.Contains(notAboutAppointments, e.EventType()) {
			t.Errorf("%s: AppointmentEvent = %v", e.EventType(), ok)
		}
		if ok && ae.AppointmentRef() != "a-1" {
			t.Errorf("%s: AppointmentRef = %q", e.EventType(), ae.AppointmentRef())
		}
		if !strings.HasPrefix(e.EventType(), doctor.Category+".") {
			t.Errorf("%s is not in the %s category", e.EventType(), doctor.Category)
		}
	}
}

func refOf(e doctor.DoctorEvent) string {
	if e == nil {
		return ""
	}
	return e.DoctorRef()
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	err = reg.Register(domain.Type[doctor.SlotReserved]())
	if err == nil || !strings.Contains(err.Error(), doctor.TypeSlotReserved) {
		t.Errorf("registering %s twice: %v", doctor.TypeSlotReserved, err)
	}

	r := domain.NewEmptyRegistry()
	if err := r.Register(domain.Type[doctor.HoldExpired](), domain.Type[doctor.HoldExpired]()); err == nil {
		t.Error("a duplicate within one Register call was accepted")
	}
	r = domain.NewEmptyRegistry()
	if err := r.Register(doctor.Events()...); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(doctor.Events()...); err == nil {
		t.Error("registering doctor.Events() twice was accepted")
	}
}

// TestUpcaster shows how an old stored shape is read: an upcaster turns
// a fake "doctor.Old.v0" (short field names, a unix time) into today's
// AppointmentCompleted, and an even older "doctor.Older.v-1" upcasts into
// v0 first.
func TestUpcaster(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	reg.RegisterUpcaster("doctor.Old.v0", func(data []byte) (string, []byte, error) {
		var old struct {
			Doctor      string `json:"doc"`
			Appointment string `json:"appt"`
			At          int64  `json:"at"`
		}
		if err := json.Unmarshal(data, &old); err != nil {
			return "", nil, err
		}
		if old.Appointment == "" {
			return "", nil, errors.New("no appointment")
		}
		b, err := json.Marshal(doctor.AppointmentCompleted{
			DoctorID: old.Doctor, AppointmentID: old.Appointment, CompletedAt: time.Unix(old.At, 0).UTC(),
		})
		return doctor.TypeAppointmentCompleted, b, err
	})
	reg.RegisterUpcaster("doctor.Older.v-1", func(data []byte) (string, []byte, error) {
		return "doctor.Old.v0", bytes.ReplaceAll(data, []byte(`"appointment"`), []byte(`"appt"`)), nil
	})

	want := doctor.AppointmentCompleted{DoctorID: docID, AppointmentID: "a-1", CompletedAt: time.Date(2026, 6, 2, 4, 0, 0, 0, time.UTC)}
	for typ, data := range map[string]string{
		"doctor.Old.v0":    `{"doc":"doc-1","appt":"a-1","at":1780372800}`,
		"doctor.Older.v-1": `{"doc":"doc-1","appointment":"a-1","at":1780372800}`,
	} {
		if !reg.Known(typ) {
			t.Errorf("Known(%s) = false", typ)
		}
		got, err := reg.Decode(typ, []byte(data))
		if err != nil {
			t.Fatalf("Decode(%s): %v", typ, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s) = %#v, want %#v", typ, got, want)
		}
		// an upcast event folds like a current one
		d := given(setup(doctor.PaymentNone, confirmed("a-1", "p1", at(2, 9, 0)), got)...)
		if a := mustAppointment(t, d, "a-1"); a.Status != doctor.StatusCompleted {
			t.Errorf("after an upcast completion: %+v", a)
		}
	}

	if _, err := reg.Decode("doctor.Old.v0", []byte(`{"doc":"doc-1"}`)); err == nil || !strings.Contains(err.Error(), "upcast doctor.Old.v0") {
		t.Errorf("a failing upcaster: %v", err)
	}
	reg.RegisterUpcaster("doctor.Loop.v0", func(data []byte) (string, []byte, error) { return "doctor.Loop.v0", data, nil })
	if _, err := reg.Decode("doctor.Loop.v0", []byte(`{}`)); err == nil {
		t.Error("an upcaster loop decoded")
	}
}
