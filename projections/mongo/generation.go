package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/prescripto/prescripto/domain"
)

// Generations: how a read model is rebuilt online, without readers (in this
// process or in others) ever seeing an empty or partial model.
//
// The collections of a read model exist in generations. Generation 0 uses
// the plain names (doctors, free_slots, ...) and the checkpoint document
// named for the projection; generation N > 0 uses "<collection>__g<N>" and
// the checkpoint "<projection>__g<N>". The generation readers use is the
// one named by the projection's document in read_model_generations
// ({_id: projection, generation, position, promotedAt}); without that
// document it is 0.
//
// A rebuild (projections.Live with the Shadower and Promoter hooks):
//
//  1. NewShadow picks a generation S above every one that exists, drops
//     what a crashed rebuild left (generations above the live one, with
//     their checkpoints) and the generations retired more than retireGrace
//     ago, and opens the model over generation S: empty collections, with
//     their indexes, and a checkpoint at 0. Nobody reads S.
//  2. The log is replayed into S while the live generation keeps serving
//     and keeps being applied.
//  3. Under the apply lock the last events are applied to S, then Promote
//     switches the generation document from the live generation to S, in
//     one single-document write guarded by the generation it expects
//     (compare and swap). S carries its own checkpoint, which was written
//     after its data, so the checkpoint readers and the projector see is
//     never ahead of the data of the generation they see. Every collection
//     of a model (appointments has three) switches at once: there is no
//     moment where a reader sees one collection rebuilt and another not.
//  4. The old generation is retired: the writer drops it retireGrace after
//     the switch (readers may hold its name for generationTTL; a long read
//     may still be running on it).
//
// A crash before step 3 leaves the live generation untouched and an unused
// S, which the next rebuild drops. A crash after it leaves S live with its
// own checkpoint: a restarted projector resumes S from there and replays
// any later event as usual (an event seen twice is a no-op). A crash before
// step 4 leaves the retired generation behind until the next rebuild or
// the first event after a restart drops it. If the outcome of the switch
// cannot be learnt (the server went away during it and does not answer
// the question after), Promote fails and the projector keeps writing the
// old generation while readers may already see S, stale as of the switch;
// a restart resumes S from its checkpoint (and further rebuilds refuse,
// saying which generation is live, until then). No step can move a
// checkpoint past data that is not in the generation it belongs to, so no
// event is ever skipped.
//
// One process writes (the projector). The generation document is as much
// part of the data as the collections: without it readers fall back to
// generation 0, which a rebuild may have dropped.
//
// Why not renameCollection: MongoDB renames a collection onto an existing
// one atomically (dropTarget: true), but FerretDB v1.24 answers
// NotImplemented for dropTarget and NamespaceExists without it, and a
// missing collection reads as an empty one, so a drop-then-rename would
// show readers an empty model in between. It would also swap a
// multi-collection model one collection at a time. One document switch
// has neither problem and works on both servers.
//
// Readers in other processes (api) open the same Models and resolve the
// live generation from its document, cached for generationTTL: after a
// switch they keep reading the previous generation (complete, as of the
// switch) for at most that long. Every process must run a version that
// knows generations before the first rebuild: an older one would keep
// reading generation 0.
const CollGenerations = "read_model_generations"

const (
	// generationTTL bounds how long a reader may use a generation after it
	// was replaced.
	generationTTL = time.Second
	// retireGrace is how long a replaced generation is kept for readers
	// that resolved it before the switch.
	retireGrace = time.Minute
)

// collName is the name of collection base in generation g.
func collName(base string, g int64) string {
	if g == 0 {
		return base
	}
	return base + "__g" + strconv.FormatInt(g, 10)
}

// checkpointID is the checkpoint document of projection name in generation g.
func checkpointID(name string, g int64) string { return collName(name, g) }

// generationOf reports the generation of collection name if it is one of
// base's.
func generationOf(name, base string) (int64, bool) {
	if name == base {
		return 0, true
	}
	rest, ok := strings.CutPrefix(name, base+"__g")
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || g <= 0 || strconv.FormatInt(g, 10) != rest {
		return 0, false
	}
	return g, true
}

type generationDoc struct {
	ID         string `bson:"_id"`
	Generation int64  `bson:"generation"`
	Position   int64  `bson:"position"`
	PromotedAt int64  `bson:"promotedAt"` // Unix nanoseconds
}

// generations is one model instance's place among the generations: the
// generation it writes (fixed) and the one it reads (the live one, followed
// through the generation document, or its own for a shadow).
type generations struct {
	db    *mongo.Database
	name  string   // the projection
	bases []string // the model's collections, by generation-0 name
	write int64
	// follow: reads use the live generation (a serving instance); a shadow
	// reads its own.
	follow bool
	// from is the live generation a shadow was made beside (the one its
	// promotion replaces).
	from int64

	mu         sync.Mutex
	live       int64 // the live generation as last read
	fetched    time.Time
	refreshing bool
	// ttl is generationTTL; tests that must see the server on every read
	// set it lower (setTTL) instead of sleeping past the production value.
	ttl time.Duration

	// The writer drops the generations below its own once sweepAfter has
	// passed (only touched by Apply, which is serialised).
	sweepAfter time.Time
	swept      bool
}

func (g *generations) coll(base string, gen int64) *mongo.Collection {
	return g.db.Collection(collName(base, gen))
}

// writes are the model's collections in the generation the instance writes.
func (g *generations) writes() []*mongo.Collection {
	out := make([]*mongo.Collection, len(g.bases))
	for i, b := range g.bases {
		out[i] = g.coll(b, g.write)
	}
	return out
}

// lookupGeneration reads the projection's generation document (generation
// 0 when there is none).
func lookupGeneration(ctx context.Context, db *mongo.Database, name string) (generationDoc, error) {
	var d generationDoc
	err := db.Collection(CollGenerations).FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return generationDoc{ID: name}, nil
	}
	if err != nil {
		return generationDoc{}, fail(ctx, err, "generation of "+name)
	}
	return d, nil
}

// openGenerations places a serving instance of projection name: it writes
// and reads the live generation.
func openGenerations(ctx context.Context, db *mongo.Database, name string, bases ...string) (*generations, error) {
	d, err := lookupGeneration(ctx, db, name)
	if err != nil {
		return nil, err
	}
	g := &generations{db: db, name: name, bases: bases, write: d.Generation, follow: true, live: d.Generation, fetched: time.Now(), ttl: generationTTL}
	if d.Generation > 0 {
		g.sweepAfter = time.Unix(0, d.PromotedAt).Add(retireGrace)
	}
	return g, nil
}

// setTTL changes how long reading trusts its cached live generation.
func (g *generations) setTTL(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ttl = d
}

// reading is the generation reads use: the instance's own for a shadow,
// else the live one, read again when the cached value is older than
// generationTTL (by one reader at a time; the others use the cached value
// meanwhile).
func (g *generations) reading(ctx context.Context) (int64, error) {
	if !g.follow {
		return g.write, nil
	}
	g.mu.Lock()
	if g.refreshing || time.Since(g.fetched) < g.ttl {
		live := g.live
		g.mu.Unlock()
		return live, nil
	}
	g.refreshing = true
	g.mu.Unlock()
	d, err := lookupGeneration(ctx, g.db, g.name)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refreshing = false
	if err != nil {
		return 0, err
	}
	g.fetched = time.Now()
	if d.Generation > g.live { // generations only move forward
		g.live = d.Generation
	}
	return g.live, nil
}

// reads are the model's collections in the generation reads use.
func (g *generations) reads(ctx context.Context) ([]*mongo.Collection, error) {
	gen, err := g.reading(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*mongo.Collection, len(g.bases))
	for i, b := range g.bases {
		out[i] = g.coll(b, gen)
	}
	return out, nil
}

// checkpoint is the checkpoint of the generation reads use: own when that
// is the instance's, else read from the live generation's document.
func (g *generations) checkpoint(ctx context.Context, own *checkpoint) (uint64, error) {
	gen, err := g.reading(ctx)
	if err != nil {
		return 0, err
	}
	if gen == g.write {
		return own.load(ctx)
	}
	other := &checkpoint{coll: own.coll, name: checkpointID(g.name, gen)}
	return other.load(ctx)
}

// existing lists the generations of the model that have a collection.
func (g *generations) existing(ctx context.Context) ([]int64, error) {
	names, err := g.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, n := range names {
		for _, b := range g.bases {
			if gen, ok := generationOf(n, b); ok && !slices.Contains(out, gen) {
				out = append(out, gen)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// drop drops a generation: its collections, then its checkpoint.
func (g *generations) drop(ctx context.Context, gen int64) error {
	for _, b := range g.bases {
		if err := g.coll(b, gen).Drop(ctx); err != nil {
			return err
		}
	}
	_, err := g.db.Collection(CollCheckpoints).DeleteOne(ctx, bson.D{{Key: "_id", Value: checkpointID(g.name, gen)}})
	return err
}

// shadow places a new shadow beside the live generation: a generation
// above every existing one, empty, with no checkpoint. It first drops what
// earlier rebuilds left: generations above the live one (never promoted)
// and, retireGrace after the last switch, those below it.
func (g *generations) shadow(ctx context.Context) (*generations, error) {
	what := "shadow of " + g.name
	d, err := lookupGeneration(ctx, g.db, g.name)
	if err != nil {
		return nil, err
	}
	if d.Generation != g.write {
		return nil, fmt.Errorf("mongo: %s: generation %d is live, this process writes %d: %w",
			what, d.Generation, g.write, domain.ErrConflict)
	}
	gens, err := g.existing(ctx)
	if err != nil {
		return nil, fail(ctx, err, what)
	}
	retiredLongAgo := d.Generation == 0 || time.Since(time.Unix(0, d.PromotedAt)) >= retireGrace
	next := d.Generation + 1
	for _, gen := range gens {
		next = max(next, gen+1)
		if gen > d.Generation || (gen < d.Generation && retiredLongAgo) {
			if err := g.drop(ctx, gen); err != nil {
				return nil, fail(ctx, err, fmt.Sprintf("%s: drop generation %d", what, gen))
			}
		}
	}
	s := &generations{db: g.db, name: g.name, bases: g.bases, write: next, from: d.Generation, ttl: g.ttl}
	// A checkpoint left without collections (a crash between the drops
	// above) must not make the shadow skip events.
	if err := s.drop(ctx, next); err != nil {
		return nil, fail(ctx, err, what)
	}
	return s, nil
}

// promote makes the shadow's generation the live one (it has applied the
// log up to position), replacing the generation it was made beside, and
// places the serving instance that writes and reads it.
func (g *generations) promote(ctx context.Context, position uint64) (*generations, error) {
	what := fmt.Sprintf("promote generation %d of %s", g.write, g.name)
	if g.follow {
		return nil, fmt.Errorf("mongo: %s: not a shadow", what)
	}
	now := time.Now()
	set := bson.D{
		{Key: "generation", Value: g.write}, {Key: "position", Value: pos(position)}, {Key: "promotedAt", Value: now.UnixNano()},
	}
	coll := g.db.Collection(CollGenerations)
	res, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: g.name}, {Key: "generation", Value: g.from}}, bson.D{{Key: "$set", Value: set}})
	if err == nil && res.MatchedCount == 0 {
		if g.from != 0 {
			err = fmt.Errorf("generation %d is no longer live: %w", g.from, domain.ErrConflict)
		} else {
			// Generation 0 has no document until the first switch.
			_, err = coll.InsertOne(ctx, append(bson.D{{Key: "_id", Value: g.name}}, set...))
			if mongo.IsDuplicateKeyError(err) {
				err = fmt.Errorf("another generation was promoted meanwhile: %w", domain.ErrConflict)
			}
		}
	}
	if err != nil && !errors.Is(err, domain.ErrConflict) {
		// The switch may have been written even so: ask before reporting
		// a failure, so that the projector never keeps writing a
		// generation that readers no longer see.
		if d, lerr := lookupGeneration(context.WithoutCancel(ctx), g.db, g.name); lerr == nil && d.Generation == g.write {
			err = nil
		}
	}
	if err != nil {
		return nil, fail(ctx, err, what)
	}
	return &generations{
		db: g.db, name: g.name, bases: g.bases, write: g.write, follow: true,
		live: g.write, fetched: now, sweepAfter: now.Add(retireGrace), ttl: g.ttl,
	}, nil
}

// sweep drops, once retireGrace has passed since the switch, the
// generations below the one the instance writes. Called by Apply; a
// failure is retried a grace later and never fails the event (what is
// left is dropped by the next rebuild at the latest).
func (g *generations) sweep(ctx context.Context) {
	if g.swept || g.sweepAfter.IsZero() || time.Now().Before(g.sweepAfter) {
		return
	}
	gens, err := g.existing(ctx)
	for _, gen := range gens {
		if err == nil && gen < g.write {
			err = g.drop(ctx, gen)
		}
	}
	if err != nil {
		g.sweepAfter = time.Now().Add(retireGrace)
		return
	}
	g.swept = true
}

// dropAll drops every generation of the model and its generation document.
func (g *generations) dropAll(ctx context.Context) error {
	gens, err := g.existing(ctx)
	if err != nil {
		return err
	}
	for _, gen := range gens {
		if err := g.drop(ctx, gen); err != nil {
			return err
		}
	}
	_, err = g.db.Collection(CollGenerations).DeleteOne(ctx, bson.D{{Key: "_id", Value: g.name}})
	return err
}

// ---- errors ----

// fail describes err, returned by an operation on what, and marks it
// domain.ErrUnavailable when it means that the server could not be reached
// or did not answer in time (server selection, network, the driver's own
// timeout), so that the API answers 503 and logs say so. Other errors stay
// plain (a bug, a 500). When the caller's context has ended, that context
// error is what the error says, not unavailability.
func fail(ctx context.Context, err error, what string) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("mongo: %s: %w", what, err)
		}
		return fmt.Errorf("mongo: %s: %w: %w", what, cerr, err)
	}
	if errors.Is(err, domain.ErrUnavailable) || !unreachable(err) {
		return fmt.Errorf("mongo: %s: %w", what, err)
	}
	return fmt.Errorf("mongo: %s: %w: %w", what, domain.ErrUnavailable, err)
}

func unreachable(err error) bool {
	var sel topology.ServerSelectionError
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sel) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mongo.ErrClientDisconnected)
}
