package notify_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

var now = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func events() []projections.Event { return eventsFor("a1") }

// eventsFor: a patient books appointment id, then moves and cancels it.
func eventsFor(id string) []projections.Event {
	start := time.Date(2026, 12, 2, 4, 30, 0, 0, time.UTC)
	data := []domain.Event{
		account.Registered{AccountID: "p1", Name: "Asha Rao", Email: "asha@example.com", Role: domain.RolePatient},
		doctor.DoctorRegistered{DoctorID: "d1", Profile: doctor.Profile{Name: "Dr. Sarah Patel"}},
		doctor.ScheduleSet{DoctorID: "d1", Schedule: doctor.Schedule{Timezone: "Asia/Kolkata"}},
		doctor.SlotReserved{DoctorID: "d1", AppointmentID: id, PatientID: "p1", Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed},
		doctor.AppointmentRescheduled{DoctorID: "d1", AppointmentID: id, Start: start.Add(time.Hour), End: start.Add(90 * time.Minute)},
		doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: id, Reason: "100% better", Start: start.Add(time.Hour)},
	}
	out := make([]projections.Event, len(data))
	for i, d := range data {
		out[i] = projections.Event{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)}), Position: uint64(i + 1), Data: d, RecordedAt: now}
	}
	return out
}

type recorder struct {
	mu   sync.Mutex
	sent []notify.Message
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

func TestMailsOncePerFactAcrossReplays(t *testing.T) {
	t.Parallel()
	// Appointment ids are UUIDs in the application (kept as 16 bytes) but
	// need not be.
	for _, id := range []string{"a1", "0190c1a4-7b2e-7c3d-8e4f-5a6b7c8d9e0f"} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			mailsOncePerFact(t, id)
		})
	}
}

func mailsOncePerFact(t *testing.T, id string) {
	path := filepath.Join(t.TempDir(), "mail", "outbox.mbox")
	for range 3 { // three "restarts": a fresh worker replays the whole log
		box, err := notify.OpenMbox(path, "")
		if err != nil {
			t.Fatal(err)
		}
		w := notify.New(box, func() time.Time { return now })
		for _, e := range eventsFor(id) {
			if err := w.Apply(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if err := w.Apply(context.Background(), e); err != nil { // redelivery
				t.Fatal(err)
			}
		}
		if err := box.Close(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := notify.ReadMboxFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d mails; want 3 (confirmed, rescheduled, cancelled)", len(msgs))
	}
	subjects := map[string]bool{}
	for _, m := range msgs {
		if m.Header.Get("To") != `"Asha Rao" <asha@example.com>` {
			t.Fatalf("To = %q", m.Header.Get("To"))
		}
		subjects[m.Header.Get("Subject")] = true
		body, _ := io.ReadAll(m.Body)
		if !strings.Contains(string(body), "Dr. Sarah Patel") || !strings.Contains(string(body), "IST") || !strings.Contains(string(body), id) {
			t.Fatalf("body lacks doctor or local time:\n%s", body)
		}
	}
	for _, s := range []string{"Appointment confirmed", "Appointment rescheduled", "Appointment cancelled"} {
		if !subjects[s] {
			t.Fatalf("no mail with subject %q in %v", s, subjects)
		}
	}
}

// A body line that starts with "From " survives the mbox round trip.
func TestMboxQuotesFromLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.mbox")
	box, err := notify.OpenMbox(path, "")
	if err != nil {
		t.Fatal(err)
	}
	body := "From the clinic:\n>From before\nbye\n"
	if err := box.Send(context.Background(), notify.Message{ID: "m1", To: "a@b.co", Subject: "s", Body: body, Date: now}); err != nil {
		t.Fatal(err)
	}
	_ = box.Close()
	msgs, err := notify.ReadMboxFile(path)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	got, _ := io.ReadAll(msgs[0].Body)
	if want := strings.ReplaceAll(body, "\n", "\n"); strings.TrimRight(string(got), "\n") != strings.TrimRight(want, "\n") {
		t.Fatalf("body %q; want %q", got, want)
	}
}

func TestOldEventsAreNotMailed(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	w := notify.New(r, func() time.Time { return now.Add(notify.MaxAge + time.Minute) })
	for _, e := range events() {
		if err := w.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.sent) != 0 {
		t.Fatalf("mailed %d messages about old history", len(r.sent))
	}
	if w.Position() != uint64(len(events())) {
		t.Fatalf("checkpoint %d", w.Position())
	}
}

// The outbox sends each Message-ID once, across a reopen, whatever the id
// looks like: a UUID (kept as 16 bytes), the same letters in upper case (a
// different id), or any other text.
func TestMboxSendsEachIDOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.mbox")
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("x")).String()
	ids := []string{id, strings.ToUpper(id), "m1", "0000000000000000000000000000000000z1"}
	for round := range 2 {
		box, err := notify.OpenMbox(path, "")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			for _, id := range ids {
				if err := box.Send(context.Background(), notify.Message{ID: id, To: "a@b.co", Subject: "s", Body: "b", Date: now}); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		}
		if err := box.Close(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := notify.ReadMboxFile(path)
	if err != nil || len(msgs) != len(ids) {
		t.Fatalf("%d messages (%v); want %d, one per id", len(msgs), err, len(ids))
	}
}
