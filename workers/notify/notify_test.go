package notify_test

import (
	"context"
	"net/mail"
	"os"
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

func events() []projections.Event {
	start := time.Date(2026, 12, 2, 4, 30, 0, 0, time.UTC)
	data := []domain.Event{
		account.Registered{AccountID: "p1", Name: "Asha Rao", Email: "asha@example.com", Role: domain.RolePatient},
		doctor.DoctorRegistered{DoctorID: "d1", Profile: doctor.Profile{Name: "Dr. Sarah Patel"}},
		doctor.ScheduleSet{DoctorID: "d1", Schedule: doctor.Schedule{Timezone: "Asia/Kolkata"}},
		doctor.SlotReserved{DoctorID: "d1", AppointmentID: "a1", PatientID: "p1", Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed},
		doctor.AppointmentRescheduled{DoctorID: "d1", AppointmentID: "a1", Start: start.Add(time.Hour), End: start.Add(90 * time.Minute)},
		doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: "a1", Reason: "100% better", Start: start.Add(time.Hour)},
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
	dir := t.TempDir()
	for range 3 { // three "restarts": a fresh worker replays the whole log
		w := notify.New(notify.DirMailer{Dir: dir}, func() time.Time { return now })
		for _, e := range events() {
			if err := w.Apply(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if err := w.Apply(context.Background(), e); err != nil { // redelivery
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 3 {
		t.Fatalf("%d mails; want 3 (confirmed, rescheduled, cancelled)", len(files))
	}
	subjects := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("%s is not a mail: %v", f, err)
		}
		if m.Header.Get("To") != `"Asha Rao" <asha@example.com>` {
			t.Fatalf("To = %q", m.Header.Get("To"))
		}
		subjects[m.Header.Get("Subject")] = true
		body := string(raw)
		if !strings.Contains(body, "Dr. Sarah Patel") || !strings.Contains(body, "IST") {
			t.Fatalf("body lacks doctor or local time:\n%s", body)
		}
	}
	for _, s := range []string{"Appointment confirmed", "Appointment rescheduled", "Appointment cancelled"} {
		if !subjects[s] {
			t.Fatalf("no mail with subject %q in %v", s, subjects)
		}
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
