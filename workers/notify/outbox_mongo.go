package notify

import (
	"context"
	"errors"
	"fmt"
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
)

// MongoOutbox is the production wiring's Outbox (MONGODB_URI): one
// document per mail in notifications_outbox (_id the mail's id) and the
// worker's checkpoint in notifications_checkpoint. Several processes share
// it: Due claims each mail by inserting a lease document whose _id is the
// mail's id and lease count (the one atomic check FerretDB v1 offers: its
// conditional updates read, then write), so two deliverers, in one process
// or two, never hold one mail at once. Mails done longer than
// DefaultRetention ago are deleted as Due runs (at most once a minute per
// handle), as FileOutbox leaves them out when it compacts. Its filters and
// updates keep to what MongoDB and FerretDB v1 both do (no transactions,
// no pipeline updates). Errors of a server that cannot be reached wrap
// domain.ErrUnavailable.
type MongoOutbox struct {
	mails  *mongo.Collection
	cp     *mongo.Collection
	leases *mongo.Collection
	pruned atomic.Int64 // unix nanoseconds of the last prune
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
	// LeaseUntil: Due does not hand the mail out again before then.
	LeaseUntil time.Time `bson:"leaseUntil"`
	// Leases counts the leases taken (see Due).
	Leases int64 `bson:"leases"`
}

// mongoLease is a lease taken on a mail (see Due).
type mongoLease struct {
	ID    string    `bson:"_id"` // mail id/lease count
	Mail  string    `bson:"mail"`
	Until time.Time `bson:"until"`
}

// noLease is the lease time of a mail no one holds.
var noLease = time.Unix(0, 0).UTC()

func toDoc(m Mail) mongoMail {
	return mongoMail{ID: m.ID, To: m.To, ToName: m.ToName, Subject: m.Subject, Body: m.Body, HTML: m.HTML, Date: m.Date,
		Calendar: m.Calendar, CalendarMethod: m.CalendarMethod, Kind: m.Kind, Status: m.Status, Attempts: m.Attempts,
		NextAt: m.NextAt, LastError: m.LastError, CreatedAt: m.CreatedAt, About: m.About, DoneAt: m.DoneAt, LeaseUntil: noLease}
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

type mongoCheckpoint struct {
	ID       string `bson:"_id"`
	Position int64  `bson:"position"`
	State    []byte `bson:"state,omitempty"`
}

const checkpointID = "notifications"

// NewMongoOutbox opens the outbox in db, creating its indexes.
func NewMongoOutbox(ctx context.Context, db *mongo.Database) (*MongoOutbox, error) {
	o := &MongoOutbox{mails: db.Collection(MongoOutboxCollection), cp: db.Collection(MongoCheckpointCollection),
		leases: db.Collection(MongoLeaseCollection)}
	if err := ensureIndexes(ctx, o.mails, []bson.D{
		{{Key: "status", Value: 1}, {Key: "nextAt", Value: 1}},
		{{Key: "to", Value: 1}, {Key: "status", Value: 1}, {Key: "doneAt", Value: 1}},
		{{Key: "about", Value: 1}},
		{{Key: "createdAt", Value: 1}},
	}); err != nil {
		return nil, mongoFail(ctx, err, "create the outbox's indexes")
	}
	if err := ensureIndexes(ctx, o.leases, []bson.D{{{Key: "mail", Value: 1}}}); err != nil {
		return nil, mongoFail(ctx, err, "create the outbox's indexes")
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

// Add implements Outbox: an unordered insert whose duplicate ids are
// ignored (the mail is there already, in whatever state).
func (o *MongoOutbox) Add(ctx context.Context, mails ...Mail) error {
	if len(mails) == 0 {
		return nil
	}
	docs := make([]any, len(mails))
	for i, m := range mails {
		if m.Status == "" {
			m.Status = StatusPending
		}
		docs[i] = toDoc(m)
	}
	_, err := o.mails.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return mongoFail(ctx, err, "add mails")
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

// Due implements Outbox. The due mails are read, the oldest first, and
// each is claimed by inserting a lease document whose _id is the mail's id
// and its lease count: of the deliverers that read the mail with that
// count, the one whose insert goes in holds it (the unique _id is the one
// atomic compare-and-set FerretDB v1 has: its findAndModify and its
// conditional updates read and write the document in two steps, so two
// processes could both win them). The winner then moves the count on and
// sets leaseUntil; one that read the mail before that and inserts after
// the lease document is gone (Mark deletes them) finds the count moved and
// lets it go.
func (o *MongoOutbox) Due(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Mail, error) {
	if err := o.prune(ctx, now); err != nil {
		return nil, err
	}
	filter := bson.D{
		{Key: "status", Value: StatusPending},
		{Key: "nextAt", Value: bson.D{{Key: "$lte", Value: now}}},
		{Key: "leaseUntil", Value: bson.D{{Key: "$lte", Value: now}}},
	}
	opts := options.Find().SetSort(bson.D{{Key: "nextAt", Value: 1}, {Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit))
	var out []Mail
	for range 3 { // others may win some: read the next ones
		if len(out) >= limit {
			break
		}
		opts.SetLimit(int64(limit - len(out)))
		cur, err := o.mails.Find(ctx, filter, opts)
		if err != nil {
			return out, mongoFail(ctx, err, "read due mails")
		}
		var docs []mongoMail
		if err := cur.All(ctx, &docs); err != nil {
			return out, mongoFail(ctx, err, "read due mails")
		}
		if len(docs) == 0 {
			break
		}
		for _, d := range docs {
			ok, err := o.lease(ctx, d, now.Add(lease))
			if err != nil {
				return out, err
			}
			if ok {
				out = append(out, d.mail())
			}
		}
	}
	return out, nil
}

// lease claims d, read with its lease count, until until.
func (o *MongoOutbox) lease(ctx context.Context, d mongoMail, until time.Time) (bool, error) {
	_, err := o.leases.InsertOne(ctx, mongoLease{ID: fmt.Sprintf("%s/%d", d.ID, d.Leases), Mail: d.ID, Until: until})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil // another holds it
	}
	if err != nil {
		return false, mongoFail(ctx, err, "lease a mail")
	}
	res, err := o.mails.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: d.ID}, {Key: "status", Value: StatusPending}, {Key: "leases", Value: d.Leases}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "leases", Value: d.Leases + 1}, {Key: "leaseUntil", Value: until}}}})
	if err != nil {
		return false, mongoFail(ctx, err, "lease a mail")
	}
	return res.MatchedCount == 1, nil
}

// prune deletes the mails done (sent, parked or dropped) longer than
// DefaultRetention before now, and the leases of that age, at most once a
// minute per handle.
func (o *MongoOutbox) prune(ctx context.Context, now time.Time) error {
	last := o.pruned.Load()
	if now.UnixNano()-last < int64(time.Minute) || !o.pruned.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	cutoff := now.Add(-DefaultRetention)
	if _, err := o.mails.DeleteMany(ctx, bson.D{
		{Key: "status", Value: bson.D{{Key: "$ne", Value: StatusPending}}},
		{Key: "doneAt", Value: bson.D{{Key: "$gt", Value: time.Time{}}, {Key: "$lt", Value: cutoff}}},
	}); err != nil {
		o.pruned.Store(last)
		return mongoFail(ctx, err, "prune done mails")
	}
	if _, err := o.leases.DeleteMany(ctx, bson.D{{Key: "until", Value: bson.D{{Key: "$lt", Value: cutoff}}}}); err != nil {
		return mongoFail(ctx, err, "prune leases")
	}
	return nil
}

// Mark implements Outbox: the outcome is set and the lease ended.
func (o *MongoOutbox) Mark(ctx context.Context, m Mail) error {
	res, err := o.mails.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: m.Status},
		{Key: "attempts", Value: m.Attempts},
		{Key: "nextAt", Value: m.NextAt},
		{Key: "lastError", Value: m.LastError},
		{Key: "doneAt", Value: m.DoneAt},
		{Key: "leaseUntil", Value: noLease},
	}}})
	if err != nil {
		return mongoFail(ctx, err, "mark a mail")
	}
	if res.MatchedCount == 0 {
		return ErrMailNotFound
	}
	return o.endLeases(ctx, m.ID)
}

// endLeases deletes the lease documents of a mail no one holds (its lease
// count moved on: see Due).
func (o *MongoOutbox) endLeases(ctx context.Context, id string) error {
	_, err := o.leases.DeleteMany(ctx, bson.D{{Key: "mail", Value: id}})
	return mongoFail(ctx, err, "end a mail's leases")
}

// SentSince implements Outbox.
func (o *MongoOutbox) SentSince(ctx context.Context, to string, t time.Time) (int, error) {
	n, err := o.mails.CountDocuments(ctx, bson.D{
		{Key: "to", Value: to},
		{Key: "status", Value: StatusSent},
		{Key: "doneAt", Value: bson.D{{Key: "$gte", Value: t}}},
	})
	if err != nil {
		return 0, mongoFail(ctx, err, "count sent mails")
	}
	return int(n), nil
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

// Retry implements Outbox.
func (o *MongoOutbox) Retry(ctx context.Context, id string, now time.Time) (Mail, error) {
	res, err := o.mails.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusFailed}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: StatusPending},
			{Key: "attempts", Value: 0},
			{Key: "nextAt", Value: now},
			{Key: "doneAt", Value: time.Time{}},
			{Key: "leaseUntil", Value: noLease},
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
	if err := o.endLeases(ctx, id); err != nil {
		return Mail{}, err
	}
	return o.Get(ctx, id)
}

// Pending implements Outbox.
func (o *MongoOutbox) Pending(ctx context.Context) (int, time.Time, error) {
	filter := bson.D{{Key: "status", Value: StatusPending}}
	n, err := o.mails.CountDocuments(ctx, filter)
	if err != nil {
		return 0, time.Time{}, mongoFail(ctx, err, "count pending mails")
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var d mongoMail
	err = o.mails.FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "createdAt", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, mongoFail(ctx, err, "find the oldest pending mail")
	}
	return int(n), d.CreatedAt, nil
}

// Erase implements Outbox: the pending mails to the address or about the
// patient are dropped (each one by one, still pending: a concurrent mark
// wins), then every matching mail's address and contents are replaced
// with "[erased]".
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
		_, err := o.mails.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "status", Value: StatusPending}},
			bson.D{{Key: "$set", Value: bson.D{
				{Key: "status", Value: StatusDropped},
				{Key: "lastError", Value: "the recipient's personal data was erased"},
				{Key: "doneAt", Value: d.NextAt},
				{Key: "leaseUntil", Value: noLease},
			}}})
		if err != nil {
			return mongoFail(ctx, err, "erase mails")
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
	return nil
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
