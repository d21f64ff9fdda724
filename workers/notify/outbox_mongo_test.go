package notify_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// mongoRig is a MongoOutbox with its database, to look at the
// collections behind it.
type mongoRig struct {
	db  *mongo.Database
	box *notify.MongoOutbox
}

func newMongoRig(t *testing.T) mongoRig {
	t.Helper()
	db := mongoDatabase(t, testenv.MongoURI(t), testenv.MongoDatabase(t))
	return mongoRig{db: db, box: openMongoOutbox(t, db)}
}

// queued lists the ids in the queue.
func (r mongoRig) queued(t *testing.T) []string {
	t.Helper()
	cur, err := r.db.Collection(notify.MongoQueueCollection).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range docs {
		out = append(out, d.ID)
	}
	return out
}

// unqueue deletes id's queue entry, as a step cut short leaves it.
func (r mongoRig) unqueue(t *testing.T, id string) {
	t.Helper()
	if _, err := r.db.Collection(notify.MongoQueueCollection).DeleteOne(context.Background(), bson.D{{Key: "_id", Value: id}}); err != nil {
		t.Fatal(err)
	}
}

func (r mongoRig) mark(t *testing.T, id string, s notify.Status, at time.Time) {
	t.Helper()
	m, err := r.box.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	m.Status, m.Attempts, m.DoneAt = s, 1, at
	if err := r.box.Mark(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func samePending(t *testing.T, box notify.Outbox, want int) {
	t.Helper()
	if n, _, err := box.Pending(context.Background()); err != nil || n != want {
		t.Errorf("pending: %d, %v; want %d", n, err, want)
	}
}

// TestMongoOutboxQueue: Due reads the queue alone, and what a step cut
// short leaves there (or fails to put there) is healed.
func TestMongoOutboxQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := now

	t.Run("an entry whose mail is done is dropped", func(t *testing.T) {
		t.Parallel()
		r := newMongoRig(t)
		if err := r.box.Add(ctx, testMail("m1", "x@example.com", "", t0), testMail("m2", "y@example.com", "", t0)); err != nil {
			t.Fatal(err)
		}
		r.mark(t, "m1", notify.StatusSent, t0)
		if q := r.queued(t); fmt.Sprint(q) != "[m2]" {
			t.Fatalf("queue after m1 was sent: %v", q)
		}
		// The worker adds m1 again (a replay after a crash): its entry is
		// made again, and dropped by Due, which reads m1 sent.
		if err := r.box.Add(ctx, testMail("m1", "x@example.com", "", t0)); err != nil {
			t.Fatal(err)
		}
		due, err := r.box.Due(ctx, t0.Add(time.Minute), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "due", due, "m2")
		if q := r.queued(t); fmt.Sprint(q) != "[m2]" {
			t.Errorf("queue after Due: %v; want the stale entry gone", q)
		}
		if m, _ := r.box.Get(ctx, "m1"); m.Status != notify.StatusSent {
			t.Errorf("m1: %s", m.Status)
		}
		samePending(t, r.box, 1)
	})

	t.Run("an add cut short before the queue is healed by the next", func(t *testing.T) {
		t.Parallel()
		r := newMongoRig(t)
		if _, err := r.box.Due(ctx, t0.Add(-30*time.Second), 10, time.Minute); err != nil { // prunes now, not in the next minute
			t.Fatal(err)
		}
		if err := r.box.Add(ctx, testMail("m1", "x@example.com", "", t0)); err != nil {
			t.Fatal(err)
		}
		r.unqueue(t, "m1") // the mail went in, its entry did not
		due, _ := r.box.Due(ctx, t0, 10, time.Minute)
		sameIDs(t, "due without an entry", due)
		samePending(t, r.box, 0)
		if err := r.box.Add(ctx, testMail("m1", "x@example.com", "", t0)); err != nil { // the worker's replay
			t.Fatal(err)
		}
		due, _ = r.box.Due(ctx, t0.Add(10*time.Second), 10, time.Minute)
		sameIDs(t, "due after the add again", due, "m1")
	})

	t.Run("a pending mail without an entry is queued as Due prunes", func(t *testing.T) {
		t.Parallel()
		r := newMongoRig(t)
		if err := r.box.Add(ctx, testMail("m1", "x@example.com", "", t0)); err != nil {
			t.Fatal(err)
		}
		r.unqueue(t, "m1")
		due, _ := r.box.Due(ctx, t0, 10, time.Minute)
		sameIDs(t, "due (the first Due prunes)", due, "m1")
	})

	t.Run("retry queues again, mark drops or moves the entry", func(t *testing.T) {
		t.Parallel()
		r := newMongoRig(t)
		if err := r.box.Add(ctx, testMail("m1", "x@example.com", "", t0), testMail("m2", "x@example.com", "", t0)); err != nil {
			t.Fatal(err)
		}
		due, _ := r.box.Due(ctx, t0, 10, time.Minute)
		sameIDs(t, "due", due, "m1", "m2")
		due[0].Status, due[0].Attempts, due[0].DoneAt, due[0].LastError = notify.StatusFailed, 1, t0, "550"
		if err := r.box.Mark(ctx, due[0]); err != nil {
			t.Fatal(err)
		}
		due[1].Attempts, due[1].NextAt, due[1].LastError = 1, t0.Add(10*time.Second), "421"
		if err := r.box.Mark(ctx, due[1]); err != nil {
			t.Fatal(err)
		}
		if q := r.queued(t); fmt.Sprint(q) != "[m2]" {
			t.Fatalf("queue after m1 failed: %v", q)
		}
		due, _ = r.box.Due(ctx, t0.Add(5*time.Second), 10, time.Minute)
		sameIDs(t, "due before m2's backoff, m2's lease ended by its mark", due)
		if _, err := r.box.Retry(ctx, "m1", t0.Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		due, _ = r.box.Due(ctx, t0.Add(10*time.Second), 10, time.Minute)
		sameIDs(t, "due after the retry", due, "m1", "m2")
	})

	t.Run("a pending mail of a database from before the queue is queued when it opens", func(t *testing.T) {
		t.Parallel()
		db := mongoDatabase(t, testenv.MongoURI(t), testenv.MongoDatabase(t))
		// A mail as the outbox stored it before the queue, leased once.
		old := bson.D{{Key: "_id", Value: "old"}, {Key: "to", Value: "x@example.com"}, {Key: "subject", Value: "s"}, {Key: "body", Value: "b"},
			{Key: "date", Value: t0}, {Key: "kind", Value: "k"}, {Key: "status", Value: "pending"}, {Key: "attempts", Value: 1},
			{Key: "nextAt", Value: t0}, {Key: "createdAt", Value: t0}, {Key: "doneAt", Value: time.Time{}},
			{Key: "leaseUntil", Value: t0.Add(-time.Minute)}, {Key: "leases", Value: int64(1)}}
		if _, err := db.Collection(notify.MongoOutboxCollection).InsertOne(ctx, old); err != nil {
			t.Fatal(err)
		}
		box := openMongoOutbox(t, db)
		if n, oldest, err := box.Pending(ctx); err != nil || n != 1 || !oldest.Equal(t0) {
			t.Fatalf("pending: %d, %v, %v", n, oldest, err)
		}
		due, err := box.Due(ctx, t0, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "due", due, "old")
		if len(due) == 1 && (due[0].Attempts != 1 || due[0].Body != "b") {
			t.Errorf("the old mail: %+v", due[0])
		}
	})
}

// TestMongoOutboxSends: the record of the sends to an address (the daily
// cap) is found by a hash of it, holds no address, and goes with an
// erasure, with the queue entries of the mails dropped.
func TestMongoOutboxSends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newMongoRig(t)
	const addr = "asha@example.test"
	if err := r.box.Add(ctx, testMail("m1", addr, "p1", now), testMail("m2", addr, "p1", now), testMail("m3", "ravi@example.test", "p2", now)); err != nil {
		t.Fatal(err)
	}
	r.mark(t, "m1", notify.StatusSent, now)
	r.mark(t, "m1", notify.StatusSent, now.Add(time.Second)) // marked twice: counted once
	if n, err := r.box.SentSince(ctx, addr, now.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("sent since: %d, %v", n, err)
	}
	cur, err := r.db.Collection(notify.MongoSendsCollection).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || strings.Contains(fmt.Sprint(docs), "asha") {
		t.Fatalf("records of sends: %v; want one, without the address", docs)
	}
	if err := r.box.Erase(ctx, addr, "p1"); err != nil {
		t.Fatal(err)
	}
	if q := r.queued(t); fmt.Sprint(q) != "[m3]" {
		t.Errorf("queue after the erasure: %v; want m2's entry gone", q)
	}
	if n, err := r.db.Collection(notify.MongoSendsCollection).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("records of sends after the erasure: %d, %v", n, err)
	}
	if n, err := r.box.SentSince(ctx, addr, now.Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("sent since after the erasure: %d, %v", n, err)
	}
	samePending(t, r.box, 1)
}

// TestMongoOutboxSendsTwoProcesses: sends to one address marked at once by
// two processes, four senders each, are all counted (FerretDB's updates
// read, then write: the claims keep them apart).
func TestMongoOutboxSendsTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	uri, name := testenv.MongoURI(t), testenv.MongoDatabase(t)
	boxes := []*notify.MongoOutbox{openMongoOutbox(t, mongoDatabase(t, uri, name)), openMongoOutbox(t, mongoDatabase(t, uri, name))}
	const addr, n = "busy@example.test", 64
	var mails []notify.Mail
	for i := range n {
		mails = append(mails, testMail(fmt.Sprintf("s%02d", i), addr, "", now))
	}
	if err := boxes[0].Add(ctx, mails...); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			box := boxes[g%2]
			for i := g; i < n; i += 8 {
				m := mails[i]
				m.Status, m.Attempts, m.DoneAt = notify.StatusSent, 1, now.Add(time.Duration(i)*time.Second)
				if err := box.Mark(ctx, m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, box := range boxes {
		if got, err := box.SentSince(ctx, addr, now.Add(-time.Hour)); err != nil || got != n {
			t.Errorf("process %d: sent since: %d, %v; want %d", i, got, err, n)
		}
	}
}

// TestMongoOutboxSendsClaimLeft: a claim on a record of sends left by a
// process that died between its claim and its write is taken over.
func TestMongoOutboxSendsClaimLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newMongoRig(t)
	const addr = "x@example.test"
	if err := r.box.Add(ctx, testMail("m1", addr, "", now), testMail("m2", addr, "", now)); err != nil {
		t.Fatal(err)
	}
	r.mark(t, "m1", notify.StatusSent, now)
	var rec struct {
		ID string `bson:"_id"`
		V  int64  `bson:"v"`
	}
	if err := r.db.Collection(notify.MongoSendsCollection).FindOne(ctx, bson.D{}).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.Collection(notify.MongoSendsClaimCollection).InsertOne(ctx, bson.D{
		{Key: "_id", Value: fmt.Sprintf("%s/%d", rec.ID, rec.V)}, {Key: "record", Value: rec.ID}, {Key: "at", Value: time.Now().Add(-time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.mark(t, "m2", notify.StatusSent, now.Add(time.Second))
	if n, err := r.box.SentSince(ctx, addr, now.Add(-time.Hour)); err != nil || n != 2 {
		t.Errorf("sent since: %d, %v; want 2", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the mark took %v", d)
	}
}
