package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/prescripto/prescripto/domain"
)

// Collections of a MongoOutbox.
const (
	MongoOutboxCollection     = "notifications_outbox"
	MongoCheckpointCollection = "notifications_checkpoint"
	MongoLeaseCollection      = "notifications_outbox_leases"
	MongoQueueCollection      = "notifications_queue"
	MongoSendsCollection      = "notifications_sends"
	MongoSendsClaimCollection = "notifications_sends_claims"
)

// MongoOutbox is the production wiring's Outbox (MONGODB_URI). Several
// processes share it. Its collections:
//
//   - notifications_outbox: one document per mail (_id the mail's id), the
//     truth of its contents and status; List, Get, Retry and Erase read it.
//   - notifications_queue: one small entry per pending mail (_id the
//     mail's id, its nextAt and createdAt, and its lease), all that Due
//     and Pending read. Its size follows the mails waiting, not the
//     history of those done: a test server such as FerretDB v1 narrows a
//     query in SQL only by a top-level _id equality and reads every
//     document of the collection for any other filter, so every other
//     operation here finds its documents by _id.
//   - notifications_outbox_leases: Due claims a mail by inserting a lease
//     document whose _id is the mail's id, its entry's generation and its
//     lease count (the one atomic check FerretDB v1 offers: its
//     conditional updates read, then write), so two deliverers, in one
//     process or two, never hold one mail at once. A lease document
//     outlives its lease (the entry's count has moved on, so no one
//     claims it again); Due prunes those that ended a while ago.
//   - notifications_sends and notifications_sends_claims: per recipient
//     (_id a hash of the address), the sends of the last day, for the
//     daily cap (see SentSince).
//   - notifications_checkpoint: the worker's checkpoint.
//
// A mail is added, then queued; a step cut short (a crash between two
// writes) is healed: Add again (the worker adds again what it had not
// checkpointed), Due drops an entry whose mail is no longer pending, and
// the entries of pending mails that lack one are made when the outbox is
// opened and as Due prunes (at most once a minute per handle), which
// also deletes the mails done longer than DefaultRetention ago, as
// FileOutbox leaves them out when it compacts. Its filters and updates
// keep to what MongoDB and FerretDB v1 both do (no transactions, no
// pipeline updates, no $push with $slice or $pull with a condition, which
// FerretDB v1 ignores or compares as a value). Every worker process must
// run this version: an older one neither queues the mails it adds nor
// sees the leases here. Errors of a server that cannot be reached wrap
// domain.ErrUnavailable.
type MongoOutbox struct {
	mails  *mongo.Collection
	cp     *mongo.Collection
	leases *mongo.Collection
	queue  *mongo.Collection
	sends  *mongo.Collection
	claims *mongo.Collection
	pruned atomic.Int64 // unix nanoseconds of the last prune
	// sendLocks keep this handle's changes of one recipient's sends in
	// turn (the claims keep other processes' apart), by the key's first
	// byte.
	sendLocks [64]sync.Mutex
}

// mongoMail is a mail's document.
type mongoMail struct {
	ID             string    `bson:"_id"`
	To             string    `bson:"to"`
	ToName         string    `bson:"toName,omitempty"`
	Subject        string    `bson:"subject"`
	Body           string    `bson:"body"`
	HTML           string    `bson:"html,omitempty"`
	Date           time.Time `bson:"date"`
	Calendar       []byte    `bson:"calendar,omitempty"`
	CalendarMethod string    `bson:"calendarMethod,omitempty"`
	Kind           string    `bson:"kind"`
	Status         Status    `bson:"status"`
	Attempts       int       `bson:"attempts"`
	NextAt         time.Time `bson:"nextAt"`
	LastError      string    `bson:"lastError,omitempty"`
	CreatedAt      time.Time `bson:"createdAt"`
	About          string    `bson:"about,omitempty"`
	DoneAt         time.Time `bson:"doneAt"`
}

// mongoQueued is a pending mail's entry in the queue.
type mongoQueued struct {
	ID        string    `bson:"_id"` // the mail's id
	NextAt    time.Time `bson:"nextAt"`
	CreatedAt time.Time `bson:"createdAt"`
	// LeaseUntil: Due does not hand the mail out again before then.
	LeaseUntil time.Time `bson:"leaseUntil"`
	// Gen is new each time the entry is made, and part of its leases'
	// ids: an entry made again never meets the lease documents of one
	// before it.
	Gen string `bson:"gen"`
	// Leases counts the leases taken (see Due).
	Leases int64 `bson:"leases"`
}

// mongoLease is a lease taken on a mail (see Due).
type mongoLease struct {
	ID    string    `bson:"_id"` // mail id/entry generation/lease count
	Mail  string    `bson:"mail"`
	Until time.Time `bson:"until"`
}

// mongoSends is a recipient's record of sends (see SentSince).
type mongoSends struct {
	ID string `bson:"_id"` // sendsKey of the address
	// V is the record's version: the one that claimed V writes V+1. A new
	// record starts at the wall clock's nanoseconds, so that it never
	// meets the claims of one erased or pruned before it.
	V int64 `bson:"v"`
	// Last is the newest send (prune deletes the records older than
	// sendsWindow).
	Last time.Time   `bson:"last"`
	Sent []mongoSend `bson:"sent"`
}

type mongoSend struct {
	Mail string    `bson:"m"`
	At   time.Time `bson:"at"`
}

// mongoSendsClaim claims the change of a recipient's record from version
// V (_id key/V): its holder alone writes V+1. It stays (V is not written
// again) until prune deletes it.
type mongoSendsClaim struct {
	ID     string    `bson:"_id"`
	Record string    `bson:"record"`
	At     time.Time `bson:"at"` // wall clock: a claim older than sendsClaimStale is taken over
}

const (
	// sendsWindow is how far back a recipient's record keeps sends (the
	// daily cap looks 24 h back).
	sendsWindow = 25 * time.Hour
	// sendsKept bounds the sends a record keeps (the newest): SentSince
	// counts up to that many, so no daily cap above it can be enforced.
	sendsKept = MaxDailyCap
	// sendsClaimStale: a claim on a record that is still at its version
	// after that long was left by a process that died between its claim
	// and its write; it is taken over. Prune deletes the claims older than
	// sendsClaimGone.
	sendsClaimStale = 10 * time.Second
	sendsClaimGone  = time.Minute
	// leaseGrace: a lease document that ended longer ago is deleted as Due
	// prunes (the lease count has moved on, or its holder died before
	// moving it).
	leaseGrace = time.Minute
)

// noLease is the lease time of a mail no one holds.
var noLease = time.Unix(0, 0).UTC()

func toDoc(m Mail) mongoMail {
	return mongoMail{ID: m.ID, To: m.To, ToName: m.ToName, Subject: m.Subject, Body: m.Body, HTML: m.HTML, Date: m.Date,
		Calendar: m.Calendar, CalendarMethod: m.CalendarMethod, Kind: m.Kind, Status: m.Status, Attempts: m.Attempts,
		NextAt: m.NextAt, LastError: m.LastError, CreatedAt: m.CreatedAt, About: m.About, DoneAt: m.DoneAt}
}

func (d mongoMail) mail() Mail {
	m := Mail{Message: Message{ID: d.ID, To: d.To, ToName: d.ToName, Subject: d.Subject, Body: d.Body, HTML: d.HTML, Date: d.Date,
		Calendar: d.Calendar, CalendarMethod: d.CalendarMethod}, Kind: d.Kind, Status: d.Status, Attempts: d.Attempts,
		NextAt: d.NextAt, LastError: d.LastError, CreatedAt: d.CreatedAt, About: d.About, DoneAt: d.DoneAt}
	if m.DoneAt.Equal(time.Time{}) {
		m.DoneAt = time.Time{}
	}
	return m
}

// queued is a new queue entry, due at next, of the mail id created at
// created.
func queued(id string, next, created time.Time) mongoQueued {
	var g [8]byte
	_, _ = rand.Read(g[:])
	return mongoQueued{ID: id, NextAt: next, CreatedAt: created, LeaseUntil: noLease, Gen: hex.EncodeToString(g[:])}
}

// sendsKey is the _id of the record of the sends to the address to: a
// hash, so that the record does not hold the address.
func sendsKey(to string) string {
	sum := sha256.Sum256([]byte("prescripto notify sends\x00" + to))
	return hex.EncodeToString(sum[:])
}

type mongoCheckpoint struct {
	ID       string `bson:"_id"`
	Position int64  `bson:"position"`
	State    []byte `bson:"state,omitempty"`
}

const checkpointID = "notifications"

// NewMongoOutbox opens the outbox in db, creating its indexes and the
// queue entries that pending mails lack (a database of a version before
// the queue: one scan of the mails).
func NewMongoOutbox(ctx context.Context, db *mongo.Database) (*MongoOutbox, error) {
	o := &MongoOutbox{mails: db.Collection(MongoOutboxCollection), cp: db.Collection(MongoCheckpointCollection),
		leases: db.Collection(MongoLeaseCollection), queue: db.Collection(MongoQueueCollection),
		sends: db.Collection(MongoSendsCollection), claims: db.Collection(MongoSendsClaimCollection)}
	for _, c := range []struct {
		c    *mongo.Collection
		keys []bson.D
	}{
		{o.mails, []bson.D{
			{{Key: "status", Value: 1}, {Key: "nextAt", Value: 1}},
			{{Key: "to", Value: 1}, {Key: "status", Value: 1}, {Key: "doneAt", Value: 1}},
			{{Key: "about", Value: 1}},
			{{Key: "createdAt", Value: 1}},
		}},
		{o.queue, []bson.D{{{Key: "nextAt", Value: 1}}}},
	} {
		if err := ensureIndexes(ctx, c.c, c.keys); err != nil {
			return nil, mongoFail(ctx, err, "create the outbox's indexes")
		}
	}
	if err := o.requeue(ctx); err != nil {
		return nil, err
	}
	return o, nil
}

// ensureIndexes creates the indexes on keys that c lacks, one at a time
// (FerretDB v1 fails a createIndexes that names an index it has beside one
// it has not).
func ensureIndexes(ctx context.Context, c *mongo.Collection, keys []bson.D) error {
	specs, err := c.Indexes().ListSpecifications(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, s := range specs {
		have[s.Name] = true
	}
	for _, k := range keys {
		name := ""
		for i, e := range k {
			if i > 0 {
				name += "_"
			}
			name += fmt.Sprintf("%s_%v", e.Key, e.Value)
		}
		if have[name] {
			continue
		}
		if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: k, Options: options.Index().SetName(name)}); err != nil {
			return err
		}
	}
	return nil
}

// Add implements Outbox: an unordered insert of the mails whose duplicate
// ids are ignored (the mail is there already, in whatever state), then
// one of the pending ones' queue entries, likewise. An Add cut short
// between the two is healed by the next (the entry of a mail that is no
// longer pending is dropped by Due).
func (o *MongoOutbox) Add(ctx context.Context, mails ...Mail) error {
	if len(mails) == 0 {
		return nil
	}
	docs := make([]any, 0, len(mails))
	var entries []any
	for _, m := range mails {
		if m.Status == "" {
			m.Status = StatusPending
		}
		docs = append(docs, toDoc(m))
		if m.Status == StatusPending {
			entries = append(entries, queued(m.ID, m.NextAt, m.CreatedAt))
		}
	}
	if err := insertNew(ctx, o.mails, docs); err != nil {
		return mongoFail(ctx, err, "add mails")
	}
	return mongoFail(ctx, insertNew(ctx, o.queue, entries), "queue mails")
}

// insertNew inserts docs, unordered, ignoring those whose _id is taken.
func insertNew(ctx context.Context, c *mongo.Collection, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return err
}

// onlyDuplicates reports whether every error of a bulk write is a
// duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		var we mongo.WriteException
		if errors.As(err, &we) && we.WriteConcernError == nil && len(we.WriteErrors) > 0 {
			for _, e := range we.WriteErrors {
				if e.Code != 11000 {
					return false
				}
			}
			return true
		}
		return false
	}
	for _, e := range bwe.WriteErrors {
		if e.Code != 11000 {
			return false
		}
	}
	return true
}

// Due implements Outbox. The due queue entries are read, the oldest
// first; each one's mail is read by _id (an entry whose mail is no longer
// pending is dropped), then claimed by inserting a lease document whose
// _id is the mail's id, the entry's generation and its lease count: of
// the deliverers that read the entry with that count, the one whose
// insert goes in holds it (the unique _id is the one atomic
// compare-and-set FerretDB v1 has: its findAndModify and its conditional
// updates read and write the document in two steps, so two processes
// could both win them). The winner then moves the count on and sets
// leaseUntil; one that read the entry before that and inserts after the
// lease document is gone (prune deletes it a while after the lease ended)
// finds the count moved and lets it go.
func (o *MongoOutbox) Due(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Mail, error) {
	if err := o.prune(ctx, now); err != nil {
		return nil, err
	}
	filter := bson.D{
		{Key: "nextAt", Value: bson.D{{Key: "$lte", Value: now}}},
		{Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}},
	}
	opts := options.Find().SetSort(bson.D{{Key: "nextAt", Value: 1}, {Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}})
	var out []Mail
	for range 3 { // others may win some, some may be stale: read the next ones
		if len(out) >= limit {
			break
		}
		opts.SetLimit(int64(limit - len(out)))
		cur, err := o.queue.Find(ctx, filter, opts)
		if err != nil {
			return out, mongoFail(ctx, err, "read due mails")
		}
		var entries []mongoQueued
		if err := cur.All(ctx, &entries); err != nil {
			return out, mongoFail(ctx, err, "read due mails")
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			m, ok, err := o.claim(ctx, e, now, now.Add(lease))
			if err != nil {
				return out, err
			}
			if ok {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// claim reads the mail of the due entry e and leases it until until (see
// Due); false when it is not to be sent now.
func (o *MongoOutbox) claim(ctx context.Context, e mongoQueued, now, until time.Time) (Mail, bool, error) {
	var d mongoMail
	err := o.mails.FindOne(ctx, bson.D{{Key: "_id", Value: e.ID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && d.Status != StatusPending) {
		// Done (or pruned, or never added) since the entry was made.
		_, err := o.queue.DeleteOne(ctx, bson.D{{Key: "_id", Value: e.ID}, {Key: "gen", Value: e.Gen}})
		return Mail{}, false, mongoFail(ctx, err, "drop a stale queue entry")
	}
	if err != nil {
		return Mail{}, false, mongoFail(ctx, err, "read a due mail")
	}
	if d.NextAt.After(now) {
		// Marked pending again by a Mark cut short before the entry.
		_, err := o.queue.UpdateOne(ctx, bson.D{{Key: "_id", Value: e.ID}, {Key: "gen", Value: e.Gen}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "nextAt", Value: d.NextAt}}}})
		return Mail{}, false, mongoFail(ctx, err, "mend a queue entry")
	}
	id := fmt.Sprintf("%s/%s/%d", e.ID, e.Gen, e.Leases)
	_, err = o.leases.InsertOne(ctx, mongoLease{ID: id, Mail: e.ID, Until: until})
	if mongo.IsDuplicateKeyError(err) {
		return Mail{}, false, nil // another holds it
	}
	if err != nil {
		return Mail{}, false, mongoFail(ctx, err, "lease a mail")
	}
	res, err := o.queue.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: e.ID}, {Key: "gen", Value: e.Gen}, {Key: "leases", Value: e.Leases}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "leases", Value: e.Leases + 1}, {Key: "leaseUntil", Value: until}}}})
	if err != nil {
		return Mail{}, false, mongoFail(ctx, err, "lease a mail")
	}
	if res.MatchedCount == 0 { // another held it and let it go since the entry was read
		_, err := o.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return Mail{}, false, mongoFail(ctx, err, "end a lease")
	}
	return d.mail(), true, nil
}

// prune deletes, at most once a minute per handle, the mails done (sent,
// parked or dropped) longer than DefaultRetention before now, the leases
// that ended longer than leaseGrace ago, the records of sends older than
// sendsWindow and the claims on them older than sendsClaimGone, then
// queues the pending mails that lack an entry. It scans the collections:
// the mails once for each of the two, the others (leases and claims of
// the last minutes, a record per recipient of the last day) once.
func (o *MongoOutbox) prune(ctx context.Context, now time.Time) error {
	last := o.pruned.Load()
	if now.UnixNano()-last < int64(time.Minute) || !o.pruned.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	cutoff := now.Add(-DefaultRetention)
	for _, p := range []struct {
		c      *mongo.Collection
		filter bson.D
		what   string
	}{
		{o.mails, bson.D{
			{Key: "status", Value: bson.D{{Key: "$ne", Value: StatusPending}}},
			{Key: "doneAt", Value: bson.D{{Key: "$gt", Value: time.Time{}}, {Key: "$lt", Value: cutoff}}},
		}, "prune done mails"},
		{o.leases, bson.D{{Key: "until", Value: bson.D{{Key: "$lt", Value: now.Add(-leaseGrace)}}}}, "prune leases"},
		{o.sends, bson.D{{Key: "last", Value: bson.D{{Key: "$lt", Value: now.Add(-sendsWindow)}}}}, "prune sends"},
		{o.claims, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: time.Now().Add(-sendsClaimGone)}}}}, "prune claims"},
	} {
		if _, err := p.c.DeleteMany(ctx, p.filter); err != nil {
			o.pruned.Store(last)
			return mongoFail(ctx, err, p.what)
		}
	}
	return o.requeue(ctx)
}

// requeue makes the queue entries that pending mails lack (one scan of
// the mails and one of the queue): those of a database of a version
// before the queue, of a Retry cut short between the mail and the entry,
// or whose entry Due dropped as stale just as a Retry made the mail
// pending again.
func (o *MongoOutbox) requeue(ctx context.Context) error {
	cur, err := o.mails.Find(ctx, bson.D{{Key: "status", Value: StatusPending}},
		options.Find().SetProjection(bson.D{{Key: "nextAt", Value: 1}, {Key: "createdAt", Value: 1}}))
	if err != nil {
		return mongoFail(ctx, err, "find the pending mails")
	}
	var pending []mongoQueued
	if err := cur.All(ctx, &pending); err != nil {
		return mongoFail(ctx, err, "find the pending mails")
	}
	if len(pending) == 0 {
		return nil
	}
	cur, err = o.queue.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return mongoFail(ctx, err, "read the queue")
	}
	var entries []mongoQueued
	if err := cur.All(ctx, &entries); err != nil {
		return mongoFail(ctx, err, "read the queue")
	}
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.ID] = true
	}
	var missing []any
	for _, p := range pending {
		if !have[p.ID] {
			missing = append(missing, queued(p.ID, p.NextAt, p.CreatedAt))
		}
	}
	return mongoFail(ctx, insertNew(ctx, o.queue, missing), "queue pending mails")
}

// Mark implements Outbox: a send is added to the recipient's record (see
// SentSince), then the outcome is set on the mail and its queue entry is
// moved to its NextAt (pending again, the lease over) or dropped. Each
// step is by _id; a Mark cut short is healed by the next, or by Due. The
// lease document stays (see Due).
func (o *MongoOutbox) Mark(ctx context.Context, m Mail) error {
	if m.Status == StatusSent {
		if err := o.recordSend(ctx, m.To, m.ID, m.DoneAt); err != nil {
			return err
		}
	}
	res, err := o.mails.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: m.Status},
		{Key: "attempts", Value: m.Attempts},
		{Key: "nextAt", Value: m.NextAt},
		{Key: "lastError", Value: m.LastError},
		{Key: "doneAt", Value: m.DoneAt},
	}}})
	if err != nil {
		return mongoFail(ctx, err, "mark a mail")
	}
	if res.MatchedCount == 0 {
		return ErrMailNotFound
	}
	if m.Status == StatusPending {
		e := queued(m.ID, m.NextAt, m.CreatedAt)
		_, err = o.queue.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "nextAt", Value: e.NextAt}, {Key: "leaseUntil", Value: e.LeaseUntil}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "createdAt", Value: e.CreatedAt}, {Key: "gen", Value: e.Gen}, {Key: "leases", Value: e.Leases}}},
		}, options.UpdateOne().SetUpsert(true))
		if mongo.IsDuplicateKeyError(err) {
			err = nil // made at once by another: Due mends its time
		}
	} else {
		_, err = o.queue.DeleteOne(ctx, bson.D{{Key: "_id", Value: m.ID}})
	}
	return mongoFail(ctx, err, "requeue a mail")
}

// SentSince implements Outbox from the record of the sends to to, found
// by _id: the sends of the last sendsWindow (at most sendsKept, the
// newest), each added by Mark before it marks the mail sent, once per
// mail. The record never misses a sent mail: a Mark cut short after the
// record leaves the mail pending, to be sent and marked again (counted
// once). Every change of the record is claimed first (the claim document
// key/version, see recordSend), so sends marked at once, in one process
// or several, are all kept, on FerretDB v1 too, whose updates read, then
// write (a claim left by a process that died is taken over after
// sendsClaimStale; a holder that stalls that long between its claim and
// its write could lose one send).
//
// So the daily cap is as exact as it was when the mails were counted: a
// Deliverer counts, then sends, one batch at a time, so one process keeps
// it exactly; deliverers in several processes that count for one
// recipient at once may each send up to what was left of it.
func (o *MongoOutbox) SentSince(ctx context.Context, to string, t time.Time) (int, error) {
	var r mongoSends
	err := o.sends.FindOne(ctx, bson.D{{Key: "_id", Value: sendsKey(to)}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, mongoFail(ctx, err, "count sent mails")
	}
	t = t.Truncate(time.Millisecond) // as stored
	n := 0
	for _, s := range r.Sent {
		if !s.At.Before(t) {
			n++
		}
	}
	return n, nil
}

// recordSend adds the send of the mail id to to at at to the record of
// the sends to to, once: the record is read at version v, the change
// claimed by inserting the claim key/v, and written as v+1 by its holder.
// One who finds the claim taken reads the record again, and waits when it
// has not moved on since.
func (o *MongoOutbox) recordSend(ctx context.Context, to, id string, at time.Time) error {
	key := sendsKey(to)
	b, _ := hex.DecodeString(key[:2])
	mu := &o.sendLocks[int(b[0])%len(o.sendLocks)]
	mu.Lock()
	defer mu.Unlock()
	wait, contended := time.Millisecond, int64(-1)
	for {
		var r mongoSends
		err := o.sends.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&r)
		if errors.Is(err, mongo.ErrNoDocuments) {
			_, err = o.sends.InsertOne(ctx, mongoSends{ID: key, V: time.Now().UnixNano(), Last: at, Sent: []mongoSend{{Mail: id, At: at}}})
			if mongo.IsDuplicateKeyError(err) {
				continue // another made it first
			}
			return mongoFail(ctx, err, "record a send")
		}
		if err != nil {
			return mongoFail(ctx, err, "read a recipient's sends")
		}
		if slices.ContainsFunc(r.Sent, func(s mongoSend) bool { return s.Mail == id }) {
			return nil
		}
		claim := fmt.Sprintf("%s/%d", key, r.V)
		_, err = o.claims.InsertOne(ctx, mongoSendsClaim{ID: claim, Record: key, At: time.Now()})
		if mongo.IsDuplicateKeyError(err) {
			if r.V == contended {
				if err := o.awaitClaim(ctx, claim, &wait); err != nil {
					return err
				}
			}
			contended = r.V
			continue
		}
		if err != nil {
			return mongoFail(ctx, err, "claim a recipient's sends")
		}
		res, err := o.sends.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "v", Value: r.V}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: r.V + 1}, {Key: "last", Value: maxTime(r.Last, at)}, {Key: "sent", Value: r.with(id, at)}}}})
		if err != nil {
			return mongoFail(ctx, err, "record a send")
		}
		if res.MatchedCount == 1 {
			return nil
		}
		// Pruned or erased meanwhile, or a stalled claim taken over: again.
	}
}

// awaitClaim waits a little (longer each time) for the holder of the
// claim on a record to write it, or deletes the claim when it is older
// than sendsClaimStale.
func (o *MongoOutbox) awaitClaim(ctx context.Context, claim string, wait *time.Duration) error {
	var c mongoSendsClaim
	err := o.claims.FindOne(ctx, bson.D{{Key: "_id", Value: claim}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return mongoFail(ctx, err, "read a claim on a recipient's sends")
	}
	if time.Since(c.At) > sendsClaimStale {
		_, err := o.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: claim}, {Key: "at", Value: c.At}})
		return mongoFail(ctx, err, "take over a claim on a recipient's sends")
	}
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("notify: mongo: await a claim on a recipient's sends: %w", ctx.Err())
	case <-t.C:
	}
	*wait = min(2**wait, 100*time.Millisecond)
	return nil
}

// with is r's sends with the mail id's at at: those of the sendsWindow
// before the newest, at most sendsKept, the oldest first.
func (r mongoSends) with(id string, at time.Time) []mongoSend {
	sent := append(slices.Clone(r.Sent), mongoSend{Mail: id, At: at})
	from := maxTime(r.Last, at).Add(-sendsWindow)
	sent = slices.DeleteFunc(sent, func(s mongoSend) bool { return s.At.Before(from) })
	slices.SortStableFunc(sent, func(a, b mongoSend) int { return a.At.Compare(b.At) })
	return sent[max(0, len(sent)-sendsKept):]
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// List implements Outbox: the newest first.
func (o *MongoOutbox) List(ctx context.Context, status Status, limit int) ([]Mail, error) {
	filter := bson.D{}
	if status != "" {
		filter = bson.D{{Key: "status", Value: status}}
	}
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := o.mails.Find(ctx, filter, opts)
	if err != nil {
		return nil, mongoFail(ctx, err, "list mails")
	}
	var docs []mongoMail
	if err := cur.All(ctx, &docs); err != nil {
		return nil, mongoFail(ctx, err, "list mails")
	}
	var out []Mail
	for _, d := range docs {
		out = append(out, d.mail())
	}
	return out, nil
}

// Get implements Outbox.
func (o *MongoOutbox) Get(ctx context.Context, id string) (Mail, error) {
	var d mongoMail
	err := o.mails.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Mail{}, ErrMailNotFound
	}
	if err != nil {
		return Mail{}, mongoFail(ctx, err, "read a mail")
	}
	return d.mail(), nil
}

// Retry implements Outbox: the mail is made pending, then queued anew.
func (o *MongoOutbox) Retry(ctx context.Context, id string, now time.Time) (Mail, error) {
	res, err := o.mails.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusFailed}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: StatusPending},
			{Key: "attempts", Value: 0},
			{Key: "nextAt", Value: now},
			{Key: "doneAt", Value: time.Time{}},
		}}})
	if err != nil {
		return Mail{}, mongoFail(ctx, err, "retry a mail")
	}
	if res.MatchedCount == 0 {
		if _, err := o.Get(ctx, id); err != nil {
			return Mail{}, err
		}
		return Mail{}, ErrNotFailed
	}
	m, err := o.Get(ctx, id)
	if err != nil {
		return Mail{}, err
	}
	// A new generation: a Due that read the mail still failed and drops
	// the old entry drops nothing.
	_, err = o.queue.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, queued(id, m.NextAt, m.CreatedAt), options.Replace().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return Mail{}, mongoFail(ctx, err, "queue a retried mail")
	}
	return m, nil
}

// Pending implements Outbox from the queue (an entry whose mail is done
// counts until Due drops it).
func (o *MongoOutbox) Pending(ctx context.Context) (int, time.Time, error) {
	n, err := o.queue.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, time.Time{}, mongoFail(ctx, err, "count pending mails")
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var e mongoQueued
	err = o.queue.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "createdAt", Value: 1}})).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, mongoFail(ctx, err, "find the oldest pending mail")
	}
	return int(n), e.CreatedAt, nil
}

// Erase implements Outbox: the pending mails to the address or about the
// patient are dropped (each one by one, still pending: a concurrent mark
// wins) with their queue entries, then every matching mail's address and
// contents are replaced with "[erased]", and the record of the sends to
// the address is deleted (a send marked after that makes a new one, which
// prune deletes a day later).
func (o *MongoOutbox) Erase(ctx context.Context, to, about string) error {
	var or bson.A
	if to != "" {
		or = append(or, bson.D{{Key: "to", Value: to}})
	}
	if about != "" {
		or = append(or, bson.D{{Key: "about", Value: about}})
	}
	if len(or) == 0 {
		return nil
	}
	match := bson.D{{Key: "$or", Value: or}}
	cur, err := o.mails.Find(ctx, bson.D{{Key: "status", Value: StatusPending}, {Key: "$or", Value: or}})
	if err != nil {
		return mongoFail(ctx, err, "erase mails")
	}
	var pending []mongoMail
	if err := cur.All(ctx, &pending); err != nil {
		return mongoFail(ctx, err, "erase mails")
	}
	for _, d := range pending {
		res, err := o.mails.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "status", Value: StatusPending}},
			bson.D{{Key: "$set", Value: bson.D{
				{Key: "status", Value: StatusDropped},
				{Key: "lastError", Value: "the recipient's personal data was erased"},
				{Key: "doneAt", Value: d.NextAt},
			}}})
		if err != nil {
			return mongoFail(ctx, err, "erase mails")
		}
		if res.MatchedCount == 1 {
			if _, err := o.queue.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
				return mongoFail(ctx, err, "erase mails")
			}
		}
	}
	_, err = o.mails.UpdateMany(ctx, match, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "to", Value: domain.Erased},
			{Key: "toName", Value: domain.Erased},
			{Key: "subject", Value: domain.Erased},
			{Key: "body", Value: domain.Erased},
		}},
		{Key: "$unset", Value: bson.D{
			{Key: "html", Value: ""},
			{Key: "calendar", Value: ""},
			{Key: "calendarMethod", Value: ""},
		}},
	})
	if err != nil {
		return mongoFail(ctx, err, "erase mails")
	}
	if to == "" {
		return nil
	}
	key := sendsKey(to)
	if _, err := o.sends.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return mongoFail(ctx, err, "erase the sends to an address")
	}
	_, err = o.claims.DeleteMany(ctx, bson.D{{Key: "record", Value: key}})
	return mongoFail(ctx, err, "erase the sends to an address")
}

// Checkpoint implements Outbox.
func (o *MongoOutbox) Checkpoint(ctx context.Context) (uint64, []byte, error) {
	var c mongoCheckpoint
	err := o.cp.FindOne(ctx, bson.D{{Key: "_id", Value: checkpointID}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, mongoFail(ctx, err, "read the checkpoint")
	}
	return uint64(c.Position), c.State, nil
}

// SaveCheckpoint implements Outbox (every Add is durable when it returns).
func (o *MongoOutbox) SaveCheckpoint(ctx context.Context, pos uint64, state []byte) error {
	_, err := o.cp.ReplaceOne(ctx, bson.D{{Key: "_id", Value: checkpointID}},
		mongoCheckpoint{ID: checkpointID, Position: int64(pos), State: state}, options.Replace().SetUpsert(true))
	return mongoFail(ctx, err, "save the checkpoint")
}

// Close implements Outbox: the connection is its owner's to close.
func (o *MongoOutbox) Close() error { return nil }

// mongoFail wraps a driver error, making it domain.ErrUnavailable when
// the server could not be reached or did not answer in time (as the read
// models do); the caller's ended context is what it says then.
func mongoFail(ctx context.Context, err error, what string) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("notify: mongo: %s: %w", what, err)
		}
		return fmt.Errorf("notify: mongo: %s: %w: %w", what, cerr, err)
	}
	var sel topology.ServerSelectionError
	if errors.Is(err, domain.ErrUnavailable) || !(mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sel) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mongo.ErrClientDisconnected)) {
		return fmt.Errorf("notify: mongo: %s: %w", what, err)
	}
	return fmt.Errorf("notify: mongo: %s: %w: %w", what, domain.ErrUnavailable, err)
}
