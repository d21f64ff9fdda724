package notify_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/workers/notify"
)

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
	got, _ := io.ReadAll(decoder(msgs[0].Header.Get("Content-Transfer-Encoding"), msgs[0].Body))
	norm := func(s string) string { return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n") }
	if norm(string(got)) != norm(body) {
		t.Fatalf("body %q; want %q", got, body)
	}
}

// The mbox writes each Message-ID once, across a reopen, whatever the id
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
