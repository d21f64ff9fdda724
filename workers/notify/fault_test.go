package notify_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/workers/notify"
)

// queue puts n mails to distinct recipients into the rig's outbox.
func queue(t *testing.T, r *rig, n int, to func(i int) string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("m%04d", i)
		m := notify.Mail{Message: notify.Message{ID: id, To: to(i), Subject: "s", Body: "b", Date: now}, Kind: "test",
			NextAt: r.clock.Now(), CreatedAt: r.clock.Now()}
		if err := r.box.Add(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func eachTo(i int) string { return fmt.Sprintf("p%d@example.com", i) }

// received counts the messages the server kept, by Message-ID.
func received(r *rig) map[string]int {
	out := map[string]int{}
	for _, m := range r.smtp.Messages() {
		out[m.MessageID()]++
	}
	return out
}

// deliverUntil delivers, moving the clock past each backoff, until every
// id is sent (or fails t).
func deliverUntil(t *testing.T, r *rig, ids []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.drain()
		done := 0
		for _, id := range ids {
			m, err := r.box.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status == notify.StatusSent {
				done++
			}
		}
		if done == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sent", done, len(ids))
		}
		r.clock.Set(r.clock.Now().Add(time.Minute))
	}
}

// SMTP down, slow, answering 4xx then 2xx, dropping the connection after
// DATA before accepting: every mail arrives once. Dropping it after
// accepting (the 250 lost on the way) is the one case SMTP itself cannot
// tell apart: the client sends again and the server holds two copies with
// the same Message-ID.
func TestDeliveryFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault func(r *rig)
		heal  func(t *testing.T, r *rig)
		dupes int
	}{
		{"down", func(r *rig) { r.smtp.Stop() }, func(t *testing.T, r *rig) {
			r.drain() // fails: nothing to connect to
			if len(r.smtp.Messages()) != 0 {
				t.Fatal("mail while down")
			}
			r.smtp.Restart(t)
		}, 0},
		{"slow", func(r *rig) { r.smtp.Delay(300 * time.Millisecond) }, nil, 0},
		{"4xx then 2xx", func(r *rig) { r.smtp.TempFail(7) }, nil, 0},
		{"drop before accepting", func(r *rig) { r.smtp.DropBeforeAccept(3) }, nil, 0},
		{"drop after accepting", func(r *rig) { r.smtp.DropAfterAccept(3) }, nil, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, notify.DeliveryConfig{Backoff: time.Second, Parallel: 4})
			ids := queue(t, r, 10, eachTo)
			c.fault(r)
			if c.heal != nil {
				c.heal(t, r)
			}
			deliverUntil(t, r, ids)
			got := received(r)
			dupes := 0
			for _, id := range ids {
				n := got[notify.MessageID(id)]
				if n == 0 {
					t.Fatalf("%s lost", id)
				}
				dupes += n - 1
			}
			if dupes != c.dupes {
				t.Fatalf("%d duplicates; want %d", dupes, c.dupes)
			}
		})
	}
}

// A mail that keeps failing is parked as failed after MaxAttempts, listed,
// and sent once retried.
func TestFailingMailIsParkedAndRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{Backoff: time.Second, MaxAttempts: 3})
	ids := queue(t, r, 1, eachTo)
	r.smtp.TempFail(100)
	for range 5 {
		r.drain()
		r.clock.Set(r.clock.Now().Add(time.Hour))
	}
	failed, err := r.box.List(context.Background(), notify.StatusFailed, 10)
	if err != nil || len(failed) != 1 || failed[0].Attempts != 3 || !strings.Contains(failed[0].LastError, "451") {
		t.Fatalf("failed: %+v, %v", failed, err)
	}
	r.smtp.TempFail(0)
	if _, err := r.box.Retry(context.Background(), ids[0], r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.box.Retry(context.Background(), ids[0], r.clock.Now()); err != notify.ErrNotFailed {
		t.Fatalf("retry of a pending mail: %v", err)
	}
	deliverUntil(t, r, ids)
	// A parked mail survives a restart as failed (its marker is durable).
	r.close()
	r.open()
	m, err := r.box.Get(context.Background(), ids[0])
	if err != nil || m.Status != notify.StatusSent {
		t.Fatalf("after a restart: %+v, %v", m, err)
	}
}

// At most DailyCap mails go to one recipient in 24 h; the rest are dropped
// and counted, not queued.
func TestDailyCapDrops(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{DailyCap: 3})
	queue(t, r, 5, func(int) string { return "busy@example.com" })
	r.drain()
	if n := len(r.smtp.Messages()); n != 3 {
		t.Fatalf("%d sent; want 3", n)
	}
	dropped, _ := r.box.List(context.Background(), notify.StatusDropped, 10)
	pending, _ := r.box.List(context.Background(), notify.StatusPending, 10)
	if len(dropped) != 2 || len(pending) != 0 {
		t.Fatalf("%d dropped, %d pending; want 2 and 0", len(dropped), len(pending))
	}
}

// Two deliverers on one outbox (goroutines sending at once): each mail
// goes out once (the lease).
func TestTwoDeliverersSendEachMailOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{Parallel: 4})
	ids := queue(t, r, 200, eachTo)
	other := notify.NewDeliverer(notify.DeliveryConfig{Outbox: r.box, Mailer: r.mailer, Now: r.clock.Now, Parallel: 4})
	var wg sync.WaitGroup
	for _, d := range []*notify.Deliverer{r.d, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := d.Deliver(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	got := received(r)
	for _, id := range ids {
		if got[notify.MessageID(id)] != 1 {
			t.Fatalf("%s received %d times", id, got[notify.MessageID(id)])
		}
	}
}

// Names with CR/LF, NUL, ANSI escapes, RTL overrides and HTML, as old data
// may hold them: no header is added, the subject and To stay one line, the
// HTML is escaped and the controls are gone.
func TestHostileNamesAreEscaped(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{})
	l := &log{at: r.clock.Now}
	evil := "Eve\r\nBcc: victim@example.com\x00\x1b[31m\u202egnp.exe<script>alert(1)</script>"
	ev := people("Europe/London")
	ev[0] = account.Registered{AccountID: "p1", Name: evil, Email: patientEmail, Role: domain.RolePatient}
	l.add(ev...)
	l.add(reserve("a1", time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), "confirmed"))
	r.apply(l.events)
	r.drain()
	msgs := r.smtp.WaitFor(t, 2, 5*time.Second)
	for _, m := range msgs {
		raw := string(m.Raw)
		head, _, _ := strings.Cut(raw, "\r\n\r\n")
		if strings.Contains(head, "\nBcc:") || strings.Contains(raw, "\x1b") || strings.Contains(raw, "\x00") || strings.Contains(raw, "\u202e") {
			t.Fatalf("header injection or control characters:\n%q", head)
		}
		if len(m.To) != 1 {
			t.Fatalf("recipients %v", m.To)
		}
		p := parse(t, m)
		if strings.Contains(p.html, "<script>") || !strings.Contains(p.html, "&lt;script&gt;") {
			t.Fatalf("HTML not escaped:\n%s", p.html)
		}
		if strings.ContainsAny(p.text, "\x00\x1b\u202e") {
			t.Fatalf("controls in the text:\n%q", p.text)
		}
	}
}
