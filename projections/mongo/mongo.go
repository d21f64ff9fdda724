// Package mongo keeps the read models in MongoDB (go.mongodb.org/mongo-driver/v2),
// with the behaviour of the in-memory ones (projections/memory), which are
// the reference: both pass projections/readmodeltest.
//
// One collection per question:
//
//	doctors              the directory ("doctors" projection)
//	free_slots           per-doctor state needed to answer free slots: registered,
//	                     available, schedule, time off, live intervals ("free_slots")
//	appointments         appointments with patient and doctor ids and booking
//	                     position, for newest-first cursor pagination ("appointments")
//	appointment_doctors  doctor names and currencies the appointments join ("appointments")
//	patients             patient accounts, for counts and names ("appointments")
//	analytics_*          counters per doctor and day for the analysts ("analytics",
//	                     see analytics.go)
//	checkpoints          one document per projection (and generation): the last
//	                     applied position
//	read_model_generations  which generation of each model readers use (see
//	                     generation.go: online rebuilds into a shadow generation)
//
// Every write is an idempotent upsert or update guarded by position: a
// document remembers the position of the last event applied to it, and an
// update matches only documents whose position is below the event's, so a
// replayed or late event is a no-op (an upsert that finds a newer document
// fails with a duplicate key, which is ignored). Checkpoints live in the same
// database and move only forward; they are written after the data, so a crash
// in between replays events that are then no-ops. No transactions are used
// (FerretDB v1 has none).
//
// The projections' Apply calls are expected to be serialised per projection
// (projections.Live does); reads may run concurrently with them.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/projections"
)

// Collection names.
const (
	CollDoctors            = "doctors"
	CollFreeSlots          = "free_slots"
	CollAppointments       = "appointments"
	CollAppointmentDoctors = "appointment_doctors"
	CollPatients           = "patients"
	CollCheckpoints        = "checkpoints"
)

// Models is the set of MongoDB read models of one database.
type Models struct {
	Directory    *Directory
	Slots        *Slots
	Appointments *Appointments
	Analytics    *Analytics
	db           *mongo.Database
}

// New opens the read models kept in db, creating their indexes (an
// idempotent operation) and reading their checkpoints.
func New(ctx context.Context, db *mongo.Database) (*Models, error) {
	dir, err := NewDirectory(ctx, db)
	if err != nil {
		return nil, err
	}
	slots, err := NewSlots(ctx, db)
	if err != nil {
		return nil, err
	}
	apps, err := NewAppointments(ctx, db)
	if err != nil {
		return nil, err
	}
	an, err := NewAnalytics(ctx, db)
	if err != nil {
		return nil, err
	}
	return &Models{Directory: dir, Slots: slots, Appointments: apps, Analytics: an, db: db}, nil
}

// Projections are the write sides, to be fed with every event.
func (m *Models) Projections() []projections.Projection {
	return []projections.Projection{m.Directory, m.Slots, m.Appointments, m.Analytics}
}

// Reset empties every read model and checkpoint of the database (for a
// rebuild from the start of the log); indexes are kept.
func (m *Models) Reset(ctx context.Context) error {
	return errors.Join(m.Directory.Reset(ctx), m.Slots.Reset(ctx), m.Appointments.Reset(ctx), m.Analytics.Reset(ctx))
}

// Drop drops every collection of the read models, in every generation. The
// Models must not be used afterwards (New recreates them).
func (m *Models) Drop(ctx context.Context) error {
	errs := []error{m.Directory.gen.dropAll(ctx), m.Slots.gen.dropAll(ctx), m.Appointments.gen.dropAll(ctx), m.Analytics.gen.dropAll(ctx)}
	for _, c := range []string{CollCheckpoints, CollGenerations} {
		errs = append(errs, m.db.Collection(c).Drop(ctx))
	}
	return errors.Join(errs...)
}

// ---- checkpoints ----

// checkpoint is one projection's document in checkpoints (of one
// generation: see checkpointID). The last known
// value is cached so that events already applied are skipped without a
// round trip; the document guards decide in the end.
type checkpoint struct {
	coll *mongo.Collection
	name string
	last atomic.Uint64
}

func newCheckpoint(ctx context.Context, db *mongo.Database, id string) (*checkpoint, error) {
	c := &checkpoint{coll: db.Collection(CollCheckpoints), name: id}
	if _, err := c.load(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

type checkpointDoc struct {
	ID       string `bson:"_id"`
	Position int64  `bson:"position"`
}

// load reads the stored checkpoint (0 when none).
func (c *checkpoint) load(ctx context.Context) (uint64, error) {
	var d checkpointDoc
	err := c.coll.FindOne(ctx, bson.D{{Key: "_id", Value: c.name}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		c.last.Store(0)
		return 0, nil
	case err != nil:
		return 0, fail(ctx, err, "checkpoint "+c.name)
	}
	p := uint64(d.Position)
	c.last.Store(p)
	return p, nil
}

// applied reports whether pos is known to be at or below the checkpoint.
func (c *checkpoint) applied(pos uint64) bool { return pos <= c.last.Load() }

// advance moves the checkpoint to pos unless it is already there or beyond.
func (c *checkpoint) advance(ctx context.Context, pos uint64) error {
	if err := upsertGuarded(ctx, c.coll, c.name, pos, bson.D{}); err != nil {
		return fail(ctx, err, "checkpoint "+c.name)
	}
	for {
		cur := c.last.Load()
		if pos <= cur || c.last.CompareAndSwap(cur, pos) {
			return nil
		}
	}
}

func (c *checkpoint) reset(ctx context.Context) error {
	_, err := c.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: c.name}})
	if err == nil {
		c.last.Store(0)
	}
	return err
}

// ---- guarded writes ----

// pos converts an event position for storage (BSON has no unsigned type).
func pos(p uint64) int64 {
	if p > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(p)
}

// guard is the filter of a document by id whose position is below p.
func guard(id string, p uint64, extra ...bson.E) bson.D {
	f := bson.D{{Key: "_id", Value: id}, {Key: "position", Value: bson.D{{Key: "$lt", Value: pos(p)}}}}
	return append(f, extra...)
}

// upsertGuarded sets fields (and position p) on document id, creating it
// if needed, unless it already stands at p or beyond: then the upsert
// collides with the existing document's _id, and that duplicate key is the
// no-op.
func upsertGuarded(ctx context.Context, coll *mongo.Collection, id string, p uint64, set bson.D) error {
	set = append(set, bson.E{Key: "position", Value: pos(p)})
	_, err := coll.UpdateOne(ctx, guard(id, p), bson.D{{Key: "$set", Value: set}}, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return err
}

// updateGuarded sets fields (and position p) on an existing document id
// whose position is below p and which matches extra; it reports whether one
// matched.
func updateGuarded(ctx context.Context, coll *mongo.Collection, id string, p uint64, set bson.D, extra ...bson.E) (bool, error) {
	set = append(set, bson.E{Key: "position", Value: pos(p)})
	res, err := coll.UpdateOne(ctx, guard(id, p, extra...), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return false, err
	}
	return res.MatchedCount > 0, nil
}

// ---- times ----

// Instants are stored as Unix nanoseconds (projections.Nanos): exact,
// unlike BSON dates (milliseconds), and ordered for range queries.

// createCollections creates the collections that do not exist yet.
func createCollections(ctx context.Context, colls ...*mongo.Collection) error {
	for _, c := range colls {
		names, err := c.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: c.Name()}})
		if err != nil {
			return fail(ctx, err, "collections of "+c.Database().Name())
		}
		if len(names) > 0 {
			continue
		}
		err = c.Database().CreateCollection(ctx, c.Name())
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // 48: NamespaceExists (created meanwhile)
			return fail(ctx, err, "create "+c.Name())
		}
	}
	return nil
}

// createIndexes creates the indexes of a collection that it lacks. (It asks
// first: FerretDB v1 panics on a createIndexes of indexes that exist.)
func createIndexes(ctx context.Context, coll *mongo.Collection, keys ...bson.D) error {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return fail(ctx, err, "indexes of "+coll.Name())
	}
	var existing []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &existing); err != nil {
		return fail(ctx, err, "indexes of "+coll.Name())
	}
	have := map[string]bool{}
	for _, ix := range existing {
		have[ix.Name] = true
	}
	var models []mongo.IndexModel
	for _, k := range keys {
		name := indexName(k)
		if !have[name] {
			models = append(models, mongo.IndexModel{Keys: k, Options: options.Index().SetName(name)})
		}
	}
	if len(models) == 0 {
		return nil
	}
	if _, err := coll.Indexes().CreateMany(ctx, models); err != nil {
		return fail(ctx, err, "indexes of "+coll.Name())
	}
	return nil
}

// indexName is MongoDB's default name of an index: field_order_...
func indexName(keys bson.D) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('_')
		}
		fmt.Fprintf(&b, "%s_%v", k.Key, k.Value)
	}
	return b.String()
}

func asc(fields ...string) bson.D {
	d := make(bson.D, len(fields))
	for i, f := range fields {
		d[i] = bson.E{Key: f, Value: 1}
	}
	return d
}
