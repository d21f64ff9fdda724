package mongo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Directory is the doctors directory ("doctors"), in the doctors
// collection (of the live generation).
type Directory struct {
	gen  *generations
	coll *mongo.Collection // in the generation the instance writes
	cp   *checkpoint
}

// NewDirectory opens the directory of db.
func NewDirectory(ctx context.Context, db *mongo.Database) (*Directory, error) {
	g, err := openGenerations(ctx, db, "doctors", CollDoctors)
	if err != nil {
		return nil, err
	}
	return openDirectory(ctx, g)
}

func openDirectory(ctx context.Context, g *generations) (*Directory, error) {
	d := &Directory{gen: g, coll: g.writes()[0]}
	if err := createIndexes(ctx, d.coll,
		asc("specialityLower", "name"), // speciality filter
		asc("speciality"),              // the specialities
		asc("available", "name"),       // availability filter
		asc("name", "_id"),             // the listing order
	); err != nil {
		return nil, err
	}
	cp, err := newCheckpoint(ctx, g.db, checkpointID(d.Name(), g.write))
	if err != nil {
		return nil, err
	}
	d.cp = cp
	return d, nil
}

// Name implements projections.Projection.
func (*Directory) Name() string { return "doctors" }

// Checkpoint implements projections.Projection: the position of the
// generation readers see.
func (d *Directory) Checkpoint(ctx context.Context) (uint64, error) {
	return d.gen.checkpoint(ctx, d.cp)
}

// NewShadow implements projections.Shadower: an empty directory in a new
// generation that nobody reads, to rebuild into.
func (d *Directory) NewShadow(ctx context.Context) (*Directory, error) {
	g, err := d.gen.shadow(ctx)
	if err != nil {
		return nil, err
	}
	return openDirectory(ctx, g)
}

// Promote implements projections.Promoter: the shadow's generation becomes
// the one every reader uses; the instance returned serves it.
func (d *Directory) Promote(ctx context.Context) (*Directory, error) {
	g, err := d.gen.promote(ctx, d.cp.last.Load())
	if err != nil {
		return nil, err
	}
	return &Directory{gen: g, coll: d.coll, cp: d.cp}, nil
}

// Reset empties the directory and its checkpoint.
func (d *Directory) Reset(ctx context.Context) error {
	if _, err := d.coll.DeleteMany(ctx, bson.D{}); err != nil {
		return err
	}
	return d.cp.reset(ctx)
}

type doctorDoc struct {
	ID              string `bson:"_id"`
	Name            string `bson:"name"`
	NameLower       string `bson:"nameLower"`
	Speciality      string `bson:"speciality"`
	SpecialityLower string `bson:"specialityLower"`
	Degree          string `bson:"degree"`
	DegreeLower     string `bson:"degreeLower"`
	ExperienceYears int    `bson:"experienceYears"`
	About           string `bson:"about"`
	Fees            int64  `bson:"fees"`
	Currency        string `bson:"currency"`
	Address         string `bson:"address"`
	Available       bool   `bson:"available"`
	ImageURL        string `bson:"imageUrl"`
	Timezone        string `bson:"timezone"`
	Position        int64  `bson:"position"`
}

func (d doctorDoc) view() projections.Doctor {
	return projections.Doctor{
		ID: d.ID, Name: d.Name, Speciality: d.Speciality, Degree: d.Degree, ExperienceYears: d.ExperienceYears,
		About: d.About, Fees: d.Fees, Currency: d.Currency, Address: d.Address, Available: d.Available,
		ImageURL: d.ImageURL, Timezone: d.Timezone, Position: uint64(d.Position),
	}
}

func profileFields(p doctor.Profile) bson.D {
	return bson.D{
		{Key: "name", Value: p.Name}, {Key: "nameLower", Value: strings.ToLower(p.Name)},
		{Key: "speciality", Value: p.Speciality}, {Key: "specialityLower", Value: strings.ToLower(p.Speciality)},
		{Key: "degree", Value: p.Degree}, {Key: "degreeLower", Value: strings.ToLower(p.Degree)},
		{Key: "experienceYears", Value: p.ExperienceYears}, {Key: "about", Value: p.About},
		{Key: "fees", Value: p.Fees}, {Key: "currency", Value: p.Currency}, {Key: "address", Value: p.Address},
		{Key: "available", Value: p.Available}, {Key: "imageUrl", Value: p.ImageURL},
	}
}

// Apply implements projections.Projection.
func (d *Directory) Apply(ctx context.Context, e projections.Event) error {
	if d.cp.applied(e.Position) {
		return nil
	}
	d.gen.sweep(ctx)
	var err error
	switch ev := e.Data.(type) {
	case doctor.DoctorRegistered:
		// Creates the entry; the timezone of an earlier entry is kept.
		err = upsertGuarded(ctx, d.coll, ev.DoctorID, e.Position, profileFields(ev.Profile))
	case doctor.ProfileUpdated:
		_, err = updateGuarded(ctx, d.coll, ev.DoctorID, e.Position, profileFields(ev.Profile))
	case doctor.ScheduleSet:
		_, err = updateGuarded(ctx, d.coll, ev.DoctorID, e.Position, bson.D{{Key: "timezone", Value: ev.Schedule.Timezone}})
	}
	if err != nil {
		return fail(ctx, err, fmt.Sprintf("doctors: %s at %d", e.Type, e.Position))
	}
	return d.cp.advance(ctx, e.Position)
}

// ApplyBatch implements projections.BatchProjection (see batch.go).
func (d *Directory) ApplyBatch(ctx context.Context, events []projections.Event) error {
	if events = pending(d.cp, events); len(events) == 0 {
		return nil
	}
	d.gen.sweep(ctx)
	first, last := events[0].Position, events[len(events)-1].Position
	var ids []string
	for _, e := range events {
		if id, ok := profileDoctor(e.Data); ok {
			ids = append(ids, id)
		}
	}
	docs, err := loadByID[doctorDoc](ctx, d.coll, ids)
	if err != nil {
		return fail(ctx, err, fmt.Sprintf("doctors: batch %d..%d", first, last))
	}
	var ch changes[doctorDoc]
	created := map[string]bool{}
	// newer is the document of id if e is newer than it (nil otherwise).
	newer := func(id string, e projections.Event) *doctorDoc {
		if doc := docs[id]; doc != nil && doc.Position < pos(e.Position) {
			doc.Position = pos(e.Position)
			ch.add(id, doc, created[id])
			return doc
		}
		return nil
	}
	for _, e := range events {
		switch ev := e.Data.(type) {
		case doctor.DoctorRegistered:
			// Creates the entry; the timezone of an earlier entry is kept.
			if docs[ev.DoctorID] == nil {
				docs[ev.DoctorID] = &doctorDoc{ID: ev.DoctorID, Position: math.MinInt64}
				created[ev.DoctorID] = true
			}
			if doc := newer(ev.DoctorID, e); doc != nil {
				doc.setProfile(ev.Profile)
			}
		case doctor.ProfileUpdated:
			if doc := newer(ev.DoctorID, e); doc != nil {
				doc.setProfile(ev.Profile)
			}
		case doctor.ScheduleSet:
			if doc := newer(ev.DoctorID, e); doc != nil {
				doc.Timezone = ev.Schedule.Timezone
			}
		}
	}
	if err := ch.write(ctx, d.coll); err != nil {
		return fail(ctx, err, fmt.Sprintf("doctors: batch %d..%d", first, last))
	}
	return d.cp.advance(ctx, last)
}

// setProfile sets what profileFields sets.
func (d *doctorDoc) setProfile(p doctor.Profile) {
	d.Name, d.NameLower = p.Name, strings.ToLower(p.Name)
	d.Speciality, d.SpecialityLower = p.Speciality, strings.ToLower(p.Speciality)
	d.Degree, d.DegreeLower = p.Degree, strings.ToLower(p.Degree)
	d.ExperienceYears, d.About = p.ExperienceYears, p.About
	d.Fees, d.Currency, d.Address = p.Fees, p.Currency, p.Address
	d.Available, d.ImageURL = p.Available, p.ImageURL
}

// read is the collection of the generation readers use.
func (d *Directory) read(ctx context.Context) (*mongo.Collection, error) {
	colls, err := d.gen.reads(ctx)
	if err != nil {
		return nil, err
	}
	return colls[0], nil
}

// Doctors implements projections.Directory: sorted by name, then id.
func (d *Directory) Doctors(ctx context.Context, f projections.DoctorFilter) ([]projections.Doctor, error) {
	filter := bson.D{}
	if s := strings.TrimSpace(f.Speciality); s != "" {
		filter = append(filter, bson.E{Key: "specialityLower", Value: strings.ToLower(s)})
	}
	if f.Available != nil {
		filter = append(filter, bson.E{Key: "available", Value: *f.Available})
	}
	if q := strings.ToLower(strings.TrimSpace(f.Query)); q != "" {
		re := bson.Regex{Pattern: regexp.QuoteMeta(q)}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "nameLower", Value: re}},
			bson.D{{Key: "specialityLower", Value: re}},
			bson.D{{Key: "degreeLower", Value: re}},
		}})
	}
	coll, err := d.read(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(asc("name", "_id")))
	if err != nil {
		return nil, fail(ctx, err, "doctors")
	}
	var docs []doctorDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fail(ctx, err, "doctors")
	}
	out := make([]projections.Doctor, len(docs))
	for i, doc := range docs {
		out[i] = doc.view()
	}
	// Byte order, whatever the server's string order.
	slices.SortStableFunc(out, func(a, b projections.Doctor) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Doctor implements projections.Directory.
func (d *Directory) Doctor(ctx context.Context, id string) (projections.Doctor, error) {
	coll, err := d.read(ctx)
	if err != nil {
		return projections.Doctor{}, err
	}
	var doc doctorDoc
	err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return projections.Doctor{}, projections.ErrNotFound
	}
	if err != nil {
		return projections.Doctor{}, fail(ctx, err, "doctor "+id)
	}
	return doc.view(), nil
}

// Specialities implements projections.Directory: every speciality with its
// number of doctors, by name; specialities differing in case only are one,
// spelt the smallest way.
func (d *Directory) Specialities(ctx context.Context) ([]projections.Speciality, error) {
	// Grouped by spelling; spellings differing in case only are merged here
	// (FerretDB v1 lacks the $min accumulator).
	coll, err := d.read(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{
			{Key: "_id", Value: "$speciality"},
			{Key: "doctors", Value: bson.D{{Key: "$sum", Value: 1}}},
		}}},
	})
	if err != nil {
		return nil, fail(ctx, err, "specialities")
	}
	var rows []struct {
		Name    string `bson:"_id"`
		Doctors int    `bson:"doctors"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, fail(ctx, err, "specialities")
	}
	byLower := map[string]*projections.Speciality{}
	for _, r := range rows {
		k := strings.ToLower(r.Name)
		sp := byLower[k]
		if sp == nil {
			sp = &projections.Speciality{Name: r.Name}
			byLower[k] = sp
		}
		if r.Name < sp.Name {
			sp.Name = r.Name
		}
		sp.Doctors += r.Doctors
	}
	out := make([]projections.Speciality, 0, len(byLower))
	for _, sp := range byLower {
		out = append(out, *sp)
	}
	slices.SortFunc(out, func(a, b projections.Speciality) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}
