package app_test

import (
	"errors"
	"io/fs"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// A booking and its cancellation each leave one mail to the patient and one
// to the doctor in the data dir's mbox (no SMTP_URL); a restart resumes
// and sends nothing twice.
func TestNotificationsAreWrittenOncePerFact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := testenv.Start(t, testenv.Options{DataDir: dir})
	doc := e.NewDoctor(t, "Dr. Mail", "Dermatologist")
	p := e.Register(t, "Mira Mail")
	slot := e.FreeSlots(t, doc.ID, testenv.Date(1), 1, 0).All()[0]
	a := e.MustBook(t, p.Token, doc.ID, slot)
	e.Post(t, "/appointments/"+a.ID+"/cancel", p.Token, map[string]string{"reason": "travel"}).Must(t, 200)
	e.CaughtUp(t)
	outbox := filepath.Join(dir, "mail", "outbox.mbox")
	check := func() {
		t.Helper()
		var msgs []*mail.Message
		// The deliverer writes the mbox after the worker caught up.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var err error
			if msgs, err = notify.ReadMboxFile(outbox); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if len(msgs) >= 4 || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		msgs, err := notify.ReadMboxFile(outbox)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 4 {
			t.Fatalf("%d mails in the outbox; want 4 (confirmed and cancelled to the patient, new booking and cancellation to the doctor)", len(msgs))
		}
		subjects := map[string]bool{}
		toDoctor := 0
		for _, m := range msgs {
			if !strings.Contains(m.Header.Get("To"), p.User.Email) {
				toDoctor++
				continue
			}
			subject, _, _ := strings.Cut(m.Header.Get("Subject"), ":")
			subjects[subject] = true
		}
		if toDoctor != 2 || !subjects["Appointment confirmed"] || !subjects["Appointment cancelled"] {
			t.Fatalf("subjects %v", subjects)
		}
	}
	check()
	e.Stop()
	e2 := testenv.Start(t, testenv.Options{DataDir: dir, Clock: e.Clock})
	e2.CaughtUp(t)
	check()
}
