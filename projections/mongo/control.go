package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/projections"
)

// Collections of the operations channel between processes.
const (
	// CollProjectionStatus holds one document per projection: its state as
	// last reported by the process that runs it.
	CollProjectionStatus = "projection_status"
	// CollRebuildRequests holds the rebuilds asked for through an api
	// process and not yet taken by the process that runs the projection.
	CollRebuildRequests = "projection_rebuild_requests"
)

// Control is how processes that run projections (projector, worker) and
// processes that only read (api) talk about them through the read models'
// database: runners report their projections' status, and an api process
// files rebuild requests that the runner takes. Documents are small and
// written with plain upserts; nothing needs a transaction.
type Control struct {
	status   *mongo.Collection
	requests *mongo.Collection
}

// NewControl returns the operations channel of db.
func NewControl(db *mongo.Database) *Control {
	return &Control{status: db.Collection(CollProjectionStatus), requests: db.Collection(CollRebuildRequests)}
}

// ReportedStatus is a projection's status as its runner reported it.
type ReportedStatus struct {
	projections.Status
	// Owner identifies the reporting process (role@host/pid).
	Owner string
	// At is when it was reported.
	At time.Time
}

type statusDoc struct {
	ID       string `bson:"_id"`
	Position int64  `bson:"position"`
	State    string `bson:"state"`
	Error    string `bson:"error"`
	Owner    string `bson:"owner"`
	At       int64  `bson:"at"` // Unix nanoseconds
	// Rebuilt and RebuildRate: see projections.Status.
	Rebuilt     int64   `bson:"rebuilt"`
	RebuildRate float64 `bson:"rebuildRate"`
}

// Report records the statuses of the projections the calling process
// runs, in one round trip.
func (c *Control) Report(ctx context.Context, owner string, at time.Time, st []projections.Status) error {
	if len(st) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(st))
	for i, s := range st {
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: s.Name}}).SetUpsert(true).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{
				{Key: "position", Value: pos(s.Position)}, {Key: "state", Value: s.Status}, {Key: "error", Value: s.Error},
				{Key: "owner", Value: owner}, {Key: "at", Value: at.UnixNano()},
				{Key: "rebuilt", Value: pos(s.Rebuilt)}, {Key: "rebuildRate", Value: s.RebuildRate},
			}}})
	}
	_, err := c.status.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return fail(ctx, err, "report projection statuses")
}

// Statuses are the last reported statuses, by projection name.
func (c *Control) Statuses(ctx context.Context) (map[string]ReportedStatus, error) {
	cur, err := c.status.Find(ctx, bson.D{})
	if err != nil {
		return nil, fail(ctx, err, "projection statuses")
	}
	var docs []statusDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fail(ctx, err, "projection statuses")
	}
	out := make(map[string]ReportedStatus, len(docs))
	for _, d := range docs {
		out[d.ID] = ReportedStatus{
			Status: projections.Status{Name: d.ID, Position: uint64(max(d.Position, 0)), Status: d.State, Error: d.Error,
				Rebuilt: uint64(max(d.Rebuilt, 0)), RebuildRate: d.RebuildRate},
			Owner: d.Owner, At: time.Unix(0, d.At).UTC(),
		}
	}
	return out, nil
}

// RequestRebuild files a rebuild request for projection name; a request
// already filed and not yet taken stands (the call is idempotent).
func (c *Control) RequestRebuild(ctx context.Context, name string, at time.Time) error {
	_, err := c.requests.UpdateOne(ctx, bson.D{{Key: "_id", Value: name}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "at", Value: at.UnixNano()}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fail(ctx, err, "request rebuild of "+name)
	}
	return nil
}

// PendingRebuilds lists the projections whose rebuild was requested and
// not yet taken.
func (c *Control) PendingRebuilds(ctx context.Context) ([]string, error) {
	cur, err := c.requests.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fail(ctx, err, "rebuild requests")
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fail(ctx, err, "rebuild requests")
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out, nil
}

// TakeRebuildRequest removes and reports the pending request for
// projection name: exactly one caller takes a request.
func (c *Control) TakeRebuildRequest(ctx context.Context, name string) (bool, error) {
	res, err := c.requests.DeleteOne(ctx, bson.D{{Key: "_id", Value: name}})
	if err != nil {
		return false, fail(ctx, err, "take rebuild request of "+name)
	}
	return res.DeletedCount == 1, nil
}

// PendingRebuild reports whether a rebuild of name was requested and not
// yet taken.
func (c *Control) PendingRebuild(ctx context.Context, name string) (bool, error) {
	n, err := c.requests.CountDocuments(ctx, bson.D{{Key: "_id", Value: name}})
	if err != nil {
		return false, fail(ctx, err, "rebuild request of "+name)
	}
	return n > 0, nil
}
