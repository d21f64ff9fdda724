package notify_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/workers/notify"
)

// TestOutboxErase: an erasure drops the pending mails to the address or
// about the patient, scrubs the kept ones (their ids stay, as sent
// markers), leaves others' mails alone, and nothing of the scrubbed ones is
// left in the journal on disk, also after a reopen.
func TestOutboxErase(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "outbox")
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	box, err := notify.OpenFileOutbox(dir, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mail := func(id, to, about, body string) notify.Mail {
		return notify.Mail{Message: notify.Message{ID: id, To: to, ToName: "x", Subject: "s", Body: body, Date: now},
			Kind: "k", About: about, Status: notify.StatusPending, NextAt: now, CreatedAt: now}
	}
	if err := box.Add(ctx,
		mail("m1", "asha@example.test", "p1", "Dear Asha Quillfeather"),
		mail("m2", "doctor@example.test", "p1", "New booking by Asha Quillfeather"),
		mail("m3", "ravi@example.test", "p2", "Dear Ravi"),
	); err != nil {
		t.Fatal(err)
	}
	sent := mail("m1", "asha@example.test", "p1", "Dear Asha Quillfeather")
	sent.Status, sent.DoneAt = notify.StatusSent, now
	if err := box.Mark(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := box.SaveCheckpoint(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := box.Erase(ctx, "asha@example.test", "p1"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]notify.Status{"m1": notify.StatusSent, "m2": notify.StatusDropped, "m3": notify.StatusPending} {
		m, err := box.Get(ctx, id)
		if err != nil || m.Status != want {
			t.Errorf("%s: %+v, %v; want %s", id, m.Status, err, want)
		}
		if id != "m3" && (m.To != "[erased]" || m.Body != "[erased]") {
			t.Errorf("%s still reads %q / %q", id, m.To, m.Body)
		}
	}
	if err := box.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Asha", "asha@example.test"} {
		if strings.Contains(string(b), s) {
			t.Errorf("the journal still holds %q", s)
		}
	}
	// Reopened, the scrubbed mails stay scrubbed and the sent one sent.
	box, err = notify.OpenFileOutbox(dir, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	if m, err := box.Get(ctx, "m1"); err != nil || m.Status != notify.StatusSent || m.To != "[erased]" {
		t.Errorf("m1 after a reopen: %+v, %v", m, err)
	}
}
