package notify_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// outboxes are the Outbox implementations the suite runs on: each opens
// a fresh, empty outbox for t.
var outboxes = map[string]func(t *testing.T) notify.Outbox{
	"file": func(t *testing.T) notify.Outbox {
		box, err := notify.OpenFileOutbox(filepath.Join(t.TempDir(), "outbox"), 0, now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = box.Close() })
		return box
	},
	"memory": func(*testing.T) notify.Outbox { return notify.NewMemoryOutbox() },
	"mongo": func(t *testing.T) notify.Outbox {
		return openMongoOutbox(t, mongoDatabase(t, testenv.MongoURI(t), testenv.MongoDatabase(t)))
	},
}

// mongoDatabase connects a client of its own (another process, as it were)
// to the database name at uri.
func mongoDatabase(t *testing.T, uri, name string) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(name)
}

func openMongoOutbox(t *testing.T, db *mongo.Database) *notify.MongoOutbox {
	t.Helper()
	box, err := notify.NewMongoOutbox(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// TestOutboxPromises checks the promises of the Outbox interface on each
// implementation.
func TestOutboxPromises(t *testing.T) {
	t.Parallel()
	for name, open := range outboxes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			outboxSuite(t, open)
		})
	}
}

func testMail(id, to, about string, at time.Time) notify.Mail {
	return notify.Mail{Message: notify.Message{ID: id, To: to, ToName: "Asha", Subject: "s " + id, Body: "b " + id, Date: at,
		Calendar: []byte("BEGIN:VCALENDAR"), CalendarMethod: "REQUEST"},
		Kind: "k", About: about, Status: notify.StatusPending, NextAt: at, CreatedAt: at}
}

func ids(ms []notify.Mail) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func sameIDs(t *testing.T, what string, got []notify.Mail, want ...string) {
	t.Helper()
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("%s: %v; want %v", what, ids(got), want)
	}
}

// outboxSuite checks an Outbox's promises on the fresh outboxes open
// makes.
func outboxSuite(t *testing.T, open func(t *testing.T) notify.Outbox) {
	ctx := context.Background()
	t0 := now

	t.Run("add is idempotent and due leases the oldest first", func(t *testing.T) {
		box := open(t)
		if err := box.Add(ctx, testMail("b", "x@example.com", "p1", t0.Add(2*time.Second)), testMail("a", "x@example.com", "p1", t0.Add(time.Second))); err != nil {
			t.Fatal(err)
		}
		later := testMail("c", "y@example.com", "p2", t0.Add(time.Hour))
		if err := box.Add(ctx, later); err != nil {
			t.Fatal(err)
		}
		// Again, with one new: no duplicate, no error.
		if err := box.Add(ctx, testMail("a", "x@example.com", "p1", t0), testMail("d", "z@example.com", "p3", t0.Add(3*time.Second))); err != nil {
			t.Fatal(err)
		}
		if m, err := box.Get(ctx, "a"); err != nil || !m.NextAt.Equal(t0.Add(time.Second)) || m.Subject != "s a" || string(m.Calendar) != "BEGIN:VCALENDAR" || m.About != "p1" {
			t.Fatalf("a after a second add: %+v, %v", m, err)
		}
		if _, err := box.Get(ctx, "nope"); !errors.Is(err, notify.ErrMailNotFound) {
			t.Fatalf("Get of no mail: %v", err)
		}
		at := t0.Add(time.Minute)
		due, err := box.Due(ctx, at, 2, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "due", due, "a", "b")
		due, err = box.Due(ctx, at, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "due while a and b are leased", due, "d")
		if n, oldest, err := box.Pending(ctx); err != nil || n != 4 || !oldest.Equal(t0.Add(time.Second)) {
			t.Fatalf("pending: %d, %v, %v", n, oldest, err)
		}
		// Marked pending again (a failed attempt): due after its NextAt,
		// leased or not.
		a, _ := box.Get(ctx, "a")
		a.Attempts, a.NextAt, a.LastError = 1, at.Add(10*time.Second), "421 try later"
		if err := box.Mark(ctx, a); err != nil {
			t.Fatal(err)
		}
		due, _ = box.Due(ctx, at.Add(5*time.Second), 10, time.Minute)
		sameIDs(t, "before a's backoff", due)
		due, _ = box.Due(ctx, at.Add(10*time.Second), 10, time.Minute)
		sameIDs(t, "after a's backoff", due, "a")
		// b's lease runs out.
		due, _ = box.Due(ctx, at.Add(time.Minute), 10, time.Minute)
		sameIDs(t, "after b's lease", due, "b", "d")
		due, _ = box.Due(ctx, t0.Add(2*time.Hour), 10, time.Minute)
		sameIDs(t, "later, every lease over", due, "b", "d", "a", "c")
	})

	t.Run("mark, sent since, list, retry", func(t *testing.T) {
		box := open(t)
		for i := range 4 {
			if err := box.Add(ctx, testMail(fmt.Sprintf("m%d", i), "x@example.com", "p1", t0.Add(time.Duration(i)*time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		mark := func(id string, s notify.Status, done time.Time) {
			t.Helper()
			m, err := box.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			m.Status, m.Attempts, m.DoneAt, m.LastError = s, 1, done, ""
			if s == notify.StatusFailed {
				m.LastError = "550 no such user"
			}
			if err := box.Mark(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		mark("m0", notify.StatusSent, t0.Add(-2*time.Hour))
		mark("m1", notify.StatusSent, t0)
		mark("m2", notify.StatusFailed, t0)
		if err := box.Mark(ctx, testMail("nope", "x@example.com", "", t0)); !errors.Is(err, notify.ErrMailNotFound) {
			t.Fatalf("Mark of no mail: %v", err)
		}
		if n, err := box.SentSince(ctx, "x@example.com", t0.Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("sent since an hour ago: %d, %v", n, err)
		}
		if n, err := box.SentSince(ctx, "y@example.com", t0.Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("sent to another: %d, %v", n, err)
		}
		all, err := box.List(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "all, newest first", all, "m3", "m2", "m1", "m0")
		sent, _ := box.List(ctx, notify.StatusSent, 1)
		sameIDs(t, "sent, limit 1", sent, "m1")
		if m, _ := box.Get(ctx, "m1"); m.Status != notify.StatusSent || !m.DoneAt.Equal(t0) || m.Attempts != 1 {
			t.Fatalf("m1: %+v", m)
		}
		if m, _ := box.Get(ctx, "m3"); !m.DoneAt.IsZero() {
			t.Fatalf("m3 pending with a DoneAt: %v", m.DoneAt)
		}
		if _, err := box.Retry(ctx, "m1", t0); !errors.Is(err, notify.ErrNotFailed) {
			t.Fatalf("retry of a sent mail: %v", err)
		}
		if _, err := box.Retry(ctx, "nope", t0); !errors.Is(err, notify.ErrMailNotFound) {
			t.Fatalf("retry of no mail: %v", err)
		}
		later := t0.Add(time.Hour)
		m, err := box.Retry(ctx, "m2", later)
		if err != nil || m.Status != notify.StatusPending || m.Attempts != 0 || !m.NextAt.Equal(later) || !m.DoneAt.IsZero() {
			t.Fatalf("retried: %+v, %v", m, err)
		}
		due, _ := box.Due(ctx, later, 10, time.Minute)
		sameIDs(t, "due after the retry", due, "m3", "m2")
		if n, oldest, err := box.Pending(ctx); err != nil || n != 2 || !oldest.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("pending: %d, %v, %v", n, oldest, err)
		}
	})

	t.Run("erase", func(t *testing.T) {
		box := open(t)
		if err := box.Add(ctx,
			testMail("m1", "asha@example.test", "p1", t0),
			testMail("m2", "doctor@example.test", "p1", t0.Add(time.Second)),
			testMail("m3", "ravi@example.test", "p2", t0.Add(2*time.Second)),
		); err != nil {
			t.Fatal(err)
		}
		m1, _ := box.Get(ctx, "m1")
		m1.Status, m1.DoneAt, m1.Attempts = notify.StatusSent, t0, 1
		if err := box.Mark(ctx, m1); err != nil {
			t.Fatal(err)
		}
		if err := box.Erase(ctx, "asha@example.test", "p1"); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]notify.Status{"m1": notify.StatusSent, "m2": notify.StatusDropped, "m3": notify.StatusPending} {
			m, err := box.Get(ctx, id)
			if err != nil || m.Status != want {
				t.Errorf("%s: %v, %v; want %s", id, m.Status, err, want)
			}
			if id == "m3" {
				if m.To != "ravi@example.test" || m.Body != "b m3" || m.Calendar == nil {
					t.Errorf("another's mail was touched: %+v", m)
				}
				continue
			}
			if m.To != "[erased]" || m.ToName != "[erased]" || m.Subject != "[erased]" || m.Body != "[erased]" || m.Calendar != nil || m.CalendarMethod != "" || !m.Date.Equal(m.CreatedAt) {
				t.Errorf("%s is not scrubbed: %+v", id, m)
			}
		}
		if m, _ := box.Get(ctx, "m2"); m.LastError == "" || !m.DoneAt.Equal(t0.Add(time.Second)) {
			t.Errorf("the dropped mail: %q at %v", m.LastError, m.DoneAt)
		}
		if n, err := box.SentSince(ctx, "asha@example.test", t0.Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("sent to the erased address: %d, %v", n, err)
		}
		// Added again (the event seen again): still the sent marker.
		if err := box.Add(ctx, testMail("m1", "asha@example.test", "p1", t0)); err != nil {
			t.Fatal(err)
		}
		if m, _ := box.Get(ctx, "m1"); m.Status != notify.StatusSent || m.To != "[erased]" {
			t.Errorf("m1 after a second add: %+v", m)
		}
		due, _ := box.Due(ctx, t0.Add(time.Hour), 10, time.Minute)
		sameIDs(t, "due after the erasure", due, "m3")
	})

	t.Run("checkpoint", func(t *testing.T) {
		box := open(t)
		if pos, state, err := box.Checkpoint(ctx); err != nil || pos != 0 || state != nil {
			t.Fatalf("a fresh checkpoint: %d, %q, %v", pos, state, err)
		}
		for _, pos := range []uint64{7, 1 << 40} {
			if err := box.SaveCheckpoint(ctx, pos, []byte(fmt.Sprint("state ", pos))); err != nil {
				t.Fatal(err)
			}
			if got, state, err := box.Checkpoint(ctx); err != nil || got != pos || string(state) != fmt.Sprint("state ", pos) {
				t.Fatalf("checkpoint: %d, %q, %v; want %d", got, state, err, pos)
			}
		}
	})

	t.Run("two deliverers send each mail once", func(t *testing.T) {
		box := open(t)
		raceDeliverers(t, box, box)
	})
}

// countingMailer counts the sends of each id.
type countingMailer struct {
	mu   sync.Mutex
	sent map[string]int
}

func (c *countingMailer) Send(_ context.Context, m notify.Message) error {
	time.Sleep(200 * time.Microsecond) // a send takes a while
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[m.ID]++
	return nil
}

// raceDeliverers queues 200 mails in a and delivers them with a deliverer
// on a and another on b at once: each is sent exactly once.
func raceDeliverers(t *testing.T, a, b notify.Outbox) {
	t.Helper()
	ctx := context.Background()
	var all []notify.Mail
	for i := range 200 {
		all = append(all, testMail(fmt.Sprintf("r%03d", i), eachTo(i), "", now))
	}
	if err := a.Add(ctx, all...); err != nil {
		t.Fatal(err)
	}
	mailer := &countingMailer{sent: map[string]int{}}
	clock := func() time.Time { return now.Add(time.Minute) }
	var wg sync.WaitGroup
	for _, box := range []notify.Outbox{a, b} {
		d := notify.NewDeliverer(notify.DeliveryConfig{Outbox: box, Mailer: mailer, Now: clock, Parallel: 4})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n, err := d.Deliver(ctx)
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
	}
	wg.Wait()
	for _, m := range all {
		if n := mailer.sent[m.ID]; n != 1 {
			t.Errorf("%s sent %d times", m.ID, n)
		}
		got, err := a.Get(ctx, m.ID)
		if err != nil || got.Status != notify.StatusSent {
			t.Errorf("%s: %v, %v", m.ID, got.Status, err)
		}
	}
}

// TestMongoOutboxTwoProcesses: two MongoOutbox handles on one database,
// each on its own client (two worker processes), deliver 200 mails at
// once: each is sent exactly once (the leases).
func TestMongoOutboxTwoProcesses(t *testing.T) {
	t.Parallel()
	uri, name := testenv.MongoURI(t), testenv.MongoDatabase(t)
	a := openMongoOutbox(t, mongoDatabase(t, uri, name))
	b := openMongoOutbox(t, mongoDatabase(t, uri, name))
	raceDeliverers(t, a, b)
	samePending(t, a, 0) // no queue entry left
}

// TestMongoOutboxUnavailable: with the server gone, the outbox's errors
// wrap domain.ErrUnavailable.
func TestMongoOutboxUnavailable(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFerretDB(t)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).
		SetTimeout(time.Second).SetServerSelectionTimeout(500 * time.Millisecond).SetConnectTimeout(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	box := openMongoOutbox(t, client.Database(testenv.MongoDatabase(t)))
	srv.Stop()
	ctx := context.Background()
	if _, err := box.Due(ctx, now, 4, time.Minute); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Due with the server gone: %v", err)
	}
	if err := box.Add(ctx, testMail("m", "x@example.com", "", now)); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Add with the server gone: %v", err)
	}
}

// TestMongoOutboxPrunesOldMails: mails done longer than the retention ago
// go as Due runs, as the file outbox drops them when it compacts; pending
// and recent ones stay.
func TestMongoOutboxPrunesOldMails(t *testing.T) {
	t.Parallel()
	box := openMongoOutbox(t, mongoDatabase(t, testenv.MongoURI(t), testenv.MongoDatabase(t)))
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	mk := func(id string) notify.Mail {
		return notify.Mail{Message: notify.Message{ID: id, To: "a@example.test", Subject: "s", Body: "b", Date: now},
			Kind: "k", Status: notify.StatusPending, NextAt: now.Add(time.Hour), CreatedAt: now}
	}
	if err := box.Add(ctx, mk("old"), mk("recent"), mk("pending")); err != nil {
		t.Fatal(err)
	}
	for id, done := range map[string]time.Time{"old": now.Add(-notify.DefaultRetention - time.Hour), "recent": now.Add(-time.Hour)} {
		m := mk(id)
		m.Status, m.DoneAt = notify.StatusSent, done
		if err := box.Mark(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := box.Due(ctx, now, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := box.Get(ctx, "old"); !errors.Is(err, notify.ErrMailNotFound) {
		t.Errorf("a mail done 8 days ago: %v, want it gone", err)
	}
	for _, id := range []string{"recent", "pending"} {
		if _, err := box.Get(ctx, id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
}
