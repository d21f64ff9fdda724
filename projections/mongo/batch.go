package mongo

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Batches (projections.BatchProjection). Apply writes once per event, and
// its writes are guarded by position in the filter ({_id: id, position:
// {$lt: p}}). MongoDB answers such a filter from the _id index, but
// FerretDB v1 on SQLite pushes a filter down to SQL only when it is a bare
// {_id: <string>} (nor does it for {_id: {$in: [...]}}): every guarded
// write scans its collection, and the cost of an event grows with the
// model.
//
// ApplyBatch works per document instead:
//
//  1. the documents the batch touches are read, one find by bare _id each
//     (a few at a time), which both servers answer from the _id index;
//  2. each document's events are folded into it in Go, in log order, with
//     the rules of Apply: an event at or below the document's position is
//     a no-op, an update of a missing document does nothing, an upsert
//     creates it, a reservation whose appointment exists stands as it is;
//  3. every changed document is written back, once: the documents the
//     batch created with one unordered InsertMany per collection, the
//     others with one unordered BulkWrite of replacements by bare _id, so
//     order across documents does not matter;
//  4. the checkpoint moves to the batch's last event.
//
// The guard has moved from the filter to step 2: a document is written
// only with what its stored position says it lacks, so a replayed batch,
// or one that failed half-way and is applied again, is a no-op where it
// was applied. What the filter guard also covered, and this does not, is
// two processes writing the same generation at once (one could write back
// a document read before the other's write): the design excludes it (one
// projector per projection, see generation.go and redisstream), and a
// writer of another generation writes other collections. A rebuild's
// shadow is written only by the rebuild and the live generation only by
// the live instance (projections.Live serialises them and swaps under its
// lock), so neither can overwrite the other's documents.

// loadParallel is how many finds by _id a batch has in flight at once.
const loadParallel = 8

// pending drops the events at or below the checkpoint.
func pending(cp *checkpoint, events []projections.Event) []projections.Event {
	for i, e := range events {
		if !cp.applied(e.Position) {
			return events[i:]
		}
	}
	return nil
}

// loadByID reads the documents of ids (duplicates allowed) from coll, one
// find by bare _id each; ids without a document are absent from the map.
func loadByID[D any](ctx context.Context, coll *mongo.Collection, ids []string) (map[string]*D, error) {
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	found := make([]*D, len(uniq))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadParallel)
	for i, id := range uniq {
		g.Go(func() error {
			var d D
			err := coll.FindOne(gctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
			switch {
			case err == nil:
				found[i] = &d
			case !errors.Is(err, mongo.ErrNoDocuments):
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]*D, len(uniq))
	for i, id := range uniq {
		if found[i] != nil {
			out[id] = found[i]
		}
	}
	return out, nil
}

// changes collects the documents a batch changed, in the order they were
// first changed, and which of them the batch created.
type changes[D any] struct {
	ids   []string
	docs  map[string]*D
	fresh map[string]bool
}

// add records that d (of id) changed; created says the batch made it.
func (c *changes[D]) add(id string, d *D, created bool) {
	if c.docs == nil {
		c.docs, c.fresh = map[string]*D{}, map[string]bool{}
	}
	if _, ok := c.docs[id]; !ok {
		c.ids = append(c.ids, id)
		c.fresh[id] = created
	}
	c.docs[id] = d
}

// write inserts the documents the batch created, with one unordered
// InsertMany (FerretDB writes them in one SQLite transaction, where it
// runs every update statement in its own), and replaces the others by
// bare _id with one unordered BulkWrite. A document created meanwhile by
// someone else fails the insert (a duplicate key): the batch fails and is
// applied again, reading it.
func (c *changes[D]) write(ctx context.Context, coll *mongo.Collection) error {
	var inserts []any
	var replaces []mongo.WriteModel
	for _, id := range c.ids {
		if c.fresh[id] {
			inserts = append(inserts, c.docs[id])
			continue
		}
		replaces = append(replaces, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(c.docs[id]).SetUpsert(true))
	}
	if len(inserts) > 0 {
		if _, err := coll.InsertMany(ctx, inserts, options.InsertMany().SetOrdered(false)); err != nil {
			return err
		}
	}
	if len(replaces) > 0 {
		if _, err := coll.BulkWrite(ctx, replaces, options.BulkWrite().SetOrdered(false)); err != nil {
			return err
		}
	}
	return nil
}

// profileDoctor names the doctor of an event that changes what the
// directory and the appointments keep of a doctor (profile, schedule).
func profileDoctor(e domain.Event) (string, bool) {
	switch ev := e.(type) {
	case doctor.DoctorRegistered:
		return ev.DoctorID, true
	case doctor.ProfileUpdated:
		return ev.DoctorID, true
	case doctor.ScheduleSet:
		return ev.DoctorID, true
	}
	return "", false
}
