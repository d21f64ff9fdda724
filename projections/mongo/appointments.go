package mongo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Appointments is the appointments read model ("appointments"): by id, by
// patient, by doctor and in all, newest booking first; it also answers the
// dashboards. Its collections: appointments, appointment_doctors (the
// doctors' current names, currencies and zones, joined at read time; see
// projections.Appointment for why the zone is the current one) and patients
// (patient accounts), all three of the live generation.
type Appointments struct {
	gen *generations
	apptColls
	cp *checkpoint
}

// apptColls are the collections of the model in one generation: the
// instance's own for writes, the live one's for reads (resolved once per
// question, so that an answer never mixes generations).
type apptColls struct {
	appts    *mongo.Collection
	doctors  *mongo.Collection
	patients *mongo.Collection
}

func apptCollsOf(colls []*mongo.Collection) apptColls {
	return apptColls{appts: colls[0], doctors: colls[1], patients: colls[2]}
}

// NewAppointments opens the appointments model of db.
func NewAppointments(ctx context.Context, db *mongo.Database) (*Appointments, error) {
	g, err := openGenerations(ctx, db, "appointments", CollAppointments, CollAppointmentDoctors, CollPatients)
	if err != nil {
		return nil, err
	}
	return openAppointments(ctx, g)
}

func openAppointments(ctx context.Context, g *generations) (*Appointments, error) {
	m := &Appointments{gen: g, apptColls: apptCollsOf(g.writes())}
	desc := func(fields ...string) bson.D {
		d := asc(fields...)
		d[len(d)-1].Value = -1
		return d
	}
	if err := createIndexes(ctx, m.appts,
		desc("booked"),                       // all, newest booking first; the admin dashboard
		desc("patientId", "booked"),          // a patient's
		desc("doctorId", "booked"),           // a doctor's; the doctor dashboard
		desc("status", "booked"),             // by status
		asc("doctorId", "start"),             // a doctor's by date
		asc("patientId", "start"),            // a patient's by date
		desc("paymentPos"),                   // payments, newest change first
		desc("payment.status", "paymentPos"), // payments by status
	); err != nil {
		return nil, err
	}
	cp, err := newCheckpoint(ctx, g.db, checkpointID(m.Name(), g.write))
	if err != nil {
		return nil, err
	}
	m.cp = cp
	return m, nil
}

// Name implements projections.Projection.
func (*Appointments) Name() string { return "appointments" }

// Checkpoint implements projections.Projection: the position of the
// generation readers see.
func (m *Appointments) Checkpoint(ctx context.Context) (uint64, error) {
	return m.gen.checkpoint(ctx, m.cp)
}

// NewShadow implements projections.Shadower: an empty model in a new
// generation that nobody reads, to rebuild into.
func (m *Appointments) NewShadow(ctx context.Context) (*Appointments, error) {
	g, err := m.gen.shadow(ctx)
	if err != nil {
		return nil, err
	}
	return openAppointments(ctx, g)
}

// Promote implements projections.Promoter: the shadow's generation (its
// three collections at once) becomes the one every reader uses; the
// instance returned serves it.
func (m *Appointments) Promote(ctx context.Context) (*Appointments, error) {
	g, err := m.gen.promote(ctx, m.cp.last.Load())
	if err != nil {
		return nil, err
	}
	return &Appointments{gen: g, apptColls: m.apptColls, cp: m.cp}, nil
}

// read is the model's collections in the generation readers use.
func (m *Appointments) read(ctx context.Context) (apptColls, error) {
	colls, err := m.gen.reads(ctx)
	if err != nil {
		return apptColls{}, err
	}
	return apptCollsOf(colls), nil
}

// Reset empties the model and its checkpoint.
func (m *Appointments) Reset(ctx context.Context) error {
	for _, c := range []*mongo.Collection{m.appts, m.doctors, m.patients} {
		if _, err := c.DeleteMany(ctx, bson.D{}); err != nil {
			return err
		}
	}
	return m.cp.reset(ctx)
}

type paymentDoc struct {
	Status         string `bson:"status"`
	OrderID        string `bson:"orderId"`
	PaymentID      string `bson:"paymentId"`
	Amount         int64  `bson:"amount"`
	RefundedAmount int64  `bson:"refundedAmount"`
}

type refundDoc struct {
	ID     string `bson:"id"`
	Amount int64  `bson:"amount"`
	State  string `bson:"state"`
}

// apptDoc is an appointment's document: projections.AppointmentRecord,
// instants as nanoseconds.
type apptDoc struct {
	ID            string     `bson:"_id"`
	DoctorID      string     `bson:"doctorId"`
	PatientID     string     `bson:"patientId"`
	PatientName   string     `bson:"patientName"`
	Start         int64      `bson:"start"`
	End           int64      `bson:"end"`
	Status        string     `bson:"status"`
	Fees          int64      `bson:"fees"`
	Currency      string     `bson:"currency"`
	Payment       paymentDoc `bson:"payment"`
	HoldExpiresAt *int64     `bson:"holdExpiresAt,omitempty"`
	CreatedAt     int64      `bson:"createdAt"`
	CancelReason  string     `bson:"cancelReason"`
	Booked        int64      `bson:"booked"` // position of the SlotReserved: the cursor key
	Position      int64      `bson:"position"`
	// The payment's last change (the payments list's order and cursor key)
	// and the refunds of the current payment.
	PaymentAt  int64       `bson:"paymentAt"`
	PaymentPos int64       `bson:"paymentPos"`
	Refunds    []refundDoc `bson:"refunds,omitempty"`
}

// apptDocOf is the document of a record of the appointment booked at
// position booked.
func apptDocOf(r *projections.AppointmentRecord, booked int64) apptDoc {
	p := r.Payment
	d := apptDoc{
		ID: r.ID, DoctorID: r.DoctorID, PatientID: r.PatientID, PatientName: r.PatientName,
		Start: projections.Nanos(r.Start), End: projections.Nanos(r.End), Status: r.Status, Fees: r.Fees, Currency: r.Currency,
		Payment:   paymentDoc{Status: p.Status, OrderID: p.OrderID, PaymentID: p.PaymentID, Amount: p.Amount, RefundedAmount: p.RefundedAmount},
		CreatedAt: projections.Nanos(r.CreatedAt), CancelReason: r.CancelReason, Booked: booked, Position: pos(r.Position),
		PaymentAt: projections.Nanos(r.PaymentAt), PaymentPos: pos(r.PaymentPos),
	}
	if r.HoldExpiresAt != nil {
		n := projections.Nanos(*r.HoldExpiresAt)
		d.HoldExpiresAt = &n
	}
	for _, f := range r.Refunds {
		d.Refunds = append(d.Refunds, refundDoc{ID: f.ID, Amount: f.Amount, State: string(f.State)})
	}
	return d
}

// record is the record the document keeps.
func (a *apptDoc) record() projections.AppointmentRecord {
	p := a.Payment
	r := projections.AppointmentRecord{
		Appointment: projections.Appointment{
			ID: a.ID, DoctorID: a.DoctorID, PatientID: a.PatientID, PatientName: a.PatientName,
			Start: projections.FromNanos(a.Start), End: projections.FromNanos(a.End), Status: a.Status, Fees: a.Fees, Currency: a.Currency,
			Payment:   projections.Payment{Status: p.Status, OrderID: p.OrderID, PaymentID: p.PaymentID, Amount: p.Amount, RefundedAmount: p.RefundedAmount},
			CreatedAt: projections.FromNanos(a.CreatedAt), CancelReason: a.CancelReason, Position: uint64(a.Position),
		},
		PaymentAt: projections.FromNanos(a.PaymentAt), PaymentPos: uint64(a.PaymentPos),
	}
	if a.HoldExpiresAt != nil {
		t := projections.FromNanos(*a.HoldExpiresAt)
		r.HoldExpiresAt = &t
	}
	for _, f := range a.Refunds {
		r.Refunds = append(r.Refunds, projections.Refund{ID: f.ID, Amount: f.Amount, State: projections.RefundState(f.State)})
	}
	return r
}

// fold applies an event about the appointment by the rules every read
// model shares (projections.AppointmentRecord.Fold).
func (a *apptDoc) fold(e projections.Event) {
	r := a.record()
	r.Fold(e)
	*a = apptDocOf(&r, a.Booked)
}

func (a apptDoc) view(doc doctorInfoDoc) projections.Appointment {
	v := a.record().Appointment
	v.DoctorName, v.Timezone = doc.Name, doc.Timezone
	return v
}

type doctorInfoDoc struct {
	ID       string `bson:"_id"`
	Name     string `bson:"name"`
	Currency string `bson:"currency"`
	Timezone string `bson:"timezone,omitempty"` // absent until the doctor's first schedule
	Position int64  `bson:"position"`
}

// Apply implements projections.Projection.
func (m *Appointments) Apply(ctx context.Context, e projections.Event) error {
	if m.cp.applied(e.Position) {
		return nil
	}
	m.gen.sweep(ctx)
	if err := e.Open(); err != nil { // the patient's name and reasons
		return fail(ctx, err, fmt.Sprintf("appointments: %s at %d", e.Type, e.Position))
	}
	if err := m.apply(ctx, e); err != nil {
		return fail(ctx, err, fmt.Sprintf("appointments: %s at %d", e.Type, e.Position))
	}
	return m.cp.advance(ctx, e.Position)
}

func (m *Appointments) apply(ctx context.Context, e projections.Event) error {
	p := e.Position
	switch ev := e.Data.(type) {
	case account.Registered:
		if ev.Role == domain.RolePatient {
			return upsertGuarded(ctx, m.patients, ev.AccountID, p, bson.D{{Key: "name", Value: ev.Name}})
		}
	case account.PersonalDataErased:
		return m.erase(ctx, ev.AccountID, p)
	case doctor.DoctorRegistered:
		return upsertGuarded(ctx, m.doctors, ev.DoctorID, p, bson.D{{Key: "name", Value: ev.Profile.Name}, {Key: "currency", Value: ev.Profile.Currency}})
	case doctor.ProfileUpdated:
		return upsertGuarded(ctx, m.doctors, ev.DoctorID, p, bson.D{{Key: "name", Value: ev.Profile.Name}, {Key: "currency", Value: ev.Profile.Currency}})
	case doctor.ScheduleSet:
		// A schedule follows the registration: no upsert, so that the
		// doctors counted by the admin dashboard are registered ones.
		_, err := updateGuarded(ctx, m.doctors, ev.DoctorID, p, bson.D{{Key: "timezone", Value: ev.Schedule.Timezone}})
		return err
	case doctor.SlotReserved:
		// The first reservation of an id stands; a replay collides on _id.
		r := projections.NewAppointmentRecord(ev, e)
		_, err := m.appts.InsertOne(ctx, apptDocOf(&r, pos(p)))
		if mongo.IsDuplicateKeyError(err) {
			return nil
		}
		return err
	case doctor.AppointmentEvent:
		return m.applyToAppointment(ctx, ev.AppointmentRef(), e)
	}
	return nil
}

// applyToAppointment applies an event about an appointment: its document
// is read, folded (projections.AppointmentRecord.Fold) and written back
// only if it still stands where it was read (position equal to the one
// read, which is below the event's), retrying otherwise; a document at or
// beyond the event's position is left alone, and an event about an
// appointment without a document does nothing.
func (m *Appointments) applyToAppointment(ctx context.Context, id string, e projections.Event) error {
	p := pos(e.Position)
	for attempt := 0; attempt < 100; attempt++ {
		var doc apptDoc
		err := m.appts.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return err
		case doc.Position >= p:
			return nil // applied already, or a newer event was
		}
		prev := doc.Position
		doc.fold(e)
		res, err := m.appts.ReplaceOne(ctx, bson.D{
			{Key: "_id", Value: id},
			{Key: "position", Value: bson.D{{Key: "$eq", Value: prev}, {Key: "$lt", Value: p}}},
		}, doc)
		if err != nil || res.MatchedCount == 1 {
			return err
		}
	}
	return errors.New("too many concurrent updates")
}

// erase writes "[erased]" over what the model keeps of a patient: the
// name, and the name and cancel reasons of the patient's appointments (an
// erasure is final, so no position guards these writes).
func (m *Appointments) erase(ctx context.Context, patientID string, p uint64) error {
	if err := upsertGuarded(ctx, m.patients, patientID, p, bson.D{{Key: "name", Value: domain.Erased}}); err != nil {
		return err
	}
	if _, err := m.appts.UpdateMany(ctx, bson.D{{Key: "patientId", Value: patientID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "patientName", Value: domain.Erased}}}}); err != nil {
		return err
	}
	_, err := m.appts.UpdateMany(ctx, bson.D{{Key: "patientId", Value: patientID}, {Key: "cancelReason", Value: bson.D{{Key: "$ne", Value: ""}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "cancelReason", Value: domain.Erased}}}})
	return err
}

type patientDoc struct {
	ID       string `bson:"_id"`
	Name     string `bson:"name"`
	Position int64  `bson:"position"`
}

// ApplyBatch implements projections.BatchProjection (see batch.go): the
// documents of the three collections the batch touches are read once,
// folded and written back with one BulkWrite per collection.
func (m *Appointments) ApplyBatch(ctx context.Context, events []projections.Event) error {
	if events = pending(m.cp, events); len(events) == 0 {
		return nil
	}
	m.gen.sweep(ctx)
	first, last := events[0].Position, events[len(events)-1].Position
	what := fmt.Sprintf("appointments: batch %d..%d", first, last)
	events = slices.Clone(events) // opened below: the caller's stay as they are
	for i := range events {
		if err := events[i].Open(); err != nil { // the patients' names and reasons
			return fail(ctx, err, what)
		}
	}
	var patientIDs, doctorIDs, apptIDs []string
	for _, e := range events {
		switch ev := e.Data.(type) {
		case account.Registered:
			if ev.Role == domain.RolePatient {
				patientIDs = append(patientIDs, ev.AccountID)
			}
		case doctor.SlotReserved:
			apptIDs = append(apptIDs, ev.AppointmentID)
		case doctor.AppointmentEvent:
			apptIDs = append(apptIDs, ev.AppointmentRef())
		default:
			if id, ok := profileDoctor(ev); ok {
				doctorIDs = append(doctorIDs, id)
			}
		}
	}
	var (
		patients map[string]*patientDoc
		doctors  map[string]*doctorInfoDoc
		appts    map[string]*apptDoc
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { patients, err = loadByID[patientDoc](gctx, m.patients, patientIDs); return err })
	g.Go(func() (err error) { doctors, err = loadByID[doctorInfoDoc](gctx, m.doctors, doctorIDs); return err })
	g.Go(func() (err error) { appts, err = loadByID[apptDoc](gctx, m.appts, apptIDs); return err })
	if err := g.Wait(); err != nil {
		return fail(ctx, err, what)
	}
	var chP changes[patientDoc]
	var chD changes[doctorInfoDoc]
	var chA changes[apptDoc]
	var erased []projections.Event // erasures: applied after the batch's writes
	created := map[string]bool{}   // by collection initial and id: documents the batch makes
	// setDoctor upserts a doctor's name and currency.
	setDoctor := func(id string, prof doctor.Profile, p int64) {
		doc := doctors[id]
		if doc == nil {
			doc = &doctorInfoDoc{ID: id, Position: math.MinInt64}
			doctors[id] = doc
			created["d/"+id] = true
		}
		if doc.Position < p {
			doc.Name, doc.Currency, doc.Position = prof.Name, prof.Currency, p
			chD.add(id, doc, created["d/"+id])
		}
	}
	for _, e := range events {
		p := pos(e.Position)
		switch ev := e.Data.(type) {
		case account.Registered:
			if ev.Role != domain.RolePatient {
				continue
			}
			doc := patients[ev.AccountID]
			if doc == nil {
				doc = &patientDoc{ID: ev.AccountID, Position: math.MinInt64}
				patients[ev.AccountID] = doc
				created["p/"+doc.ID] = true
			}
			if doc.Position < p {
				doc.Name, doc.Position = ev.Name, p
				chP.add(doc.ID, doc, created["p/"+doc.ID])
			}
		case doctor.DoctorRegistered:
			setDoctor(ev.DoctorID, ev.Profile, p)
		case doctor.ProfileUpdated:
			setDoctor(ev.DoctorID, ev.Profile, p)
		case doctor.ScheduleSet:
			// A schedule follows the registration: no upsert (see apply).
			if doc := doctors[ev.DoctorID]; doc != nil && doc.Position < p {
				doc.Timezone, doc.Position = ev.Schedule.Timezone, p
				chD.add(doc.ID, doc, created["d/"+doc.ID])
			}
		case doctor.SlotReserved:
			// The first reservation of an id stands.
			if appts[ev.AppointmentID] == nil {
				r := projections.NewAppointmentRecord(ev, e)
				doc := new(apptDocOf(&r, p))
				appts[doc.ID] = doc
				created["a/"+doc.ID] = true
				chA.add(doc.ID, doc, true)
			}
		case doctor.AppointmentEvent:
			if doc := appts[ev.AppointmentRef()]; doc != nil && doc.Position < p {
				doc.fold(e)
				chA.add(doc.ID, doc, created["a/"+doc.ID])
			}
		case account.PersonalDataErased:
			// What the batch writes of the patient is erased here, the
			// rest by erase after the writes.
			if doc := patients[ev.AccountID]; doc != nil {
				doc.Name = domain.Erased
				chP.add(doc.ID, doc, created["p/"+doc.ID])
			}
			for _, doc := range appts {
				if doc.PatientID == ev.AccountID {
					doc.PatientName = domain.Erased
					if doc.CancelReason != "" {
						doc.CancelReason = domain.Erased
					}
					chA.add(doc.ID, doc, created["a/"+doc.ID])
				}
			}
			erased = append(erased, e)
		}
	}
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() error { return chP.write(gctx, m.patients) })
	g.Go(func() error { return chD.write(gctx, m.doctors) })
	g.Go(func() error { return chA.write(gctx, m.appts) })
	if err := g.Wait(); err != nil {
		return fail(ctx, err, what)
	}
	for _, e := range erased {
		if err := m.erase(ctx, e.Data.(account.PersonalDataErased).AccountID, e.Position); err != nil {
			return fail(ctx, err, what)
		}
	}
	return m.cp.advance(ctx, last)
}

// doctorInfos returns what appointments join of their doctors (current
// name and zone), by doctor id.
func (m apptColls) doctorInfos(ctx context.Context, ids ...string) (map[string]doctorInfoDoc, error) {
	out := map[string]doctorInfoDoc{}
	if len(ids) == 0 {
		return out, nil
	}
	seen := map[string]bool{}
	var in bson.A
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			in = append(in, id)
		}
	}
	cur, err := m.doctors.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}})
	if err != nil {
		return nil, err
	}
	var docs []doctorInfoDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.ID] = d
	}
	return out, nil
}

// views turns documents into appointments with the doctors' names and
// zones joined.
func (m apptColls) views(ctx context.Context, docs []apptDoc) ([]projections.Appointment, error) {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.DoctorID
	}
	infos, err := m.doctorInfos(ctx, ids...)
	if err != nil {
		return nil, err
	}
	out := make([]projections.Appointment, len(docs))
	for i, d := range docs {
		out[i] = d.view(infos[d.DoctorID])
	}
	return out, nil
}

// Appointment implements projections.Appointments.
func (m *Appointments) Appointment(ctx context.Context, id string) (projections.Appointment, error) {
	r, err := m.read(ctx)
	if err != nil {
		return projections.Appointment{}, err
	}
	var doc apptDoc
	err = r.appts.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return projections.Appointment{}, projections.ErrNotFound
	}
	if err != nil {
		return projections.Appointment{}, fail(ctx, err, "appointment "+id)
	}
	v, err := r.views(ctx, []apptDoc{doc})
	if err != nil {
		return projections.Appointment{}, fail(ctx, err, "appointment "+id)
	}
	return v[0], nil
}

// Appointments implements projections.Appointments.
func (m *Appointments) Appointments(ctx context.Context, q projections.AppointmentQuery) (projections.AppointmentPage, error) {
	if err := q.Validate(); err != nil {
		return projections.AppointmentPage{}, err
	}
	filter := bson.D{}
	if q.Cursor != "" {
		c, err := projections.DecodeCursor(q.Cursor)
		if err != nil {
			return projections.AppointmentPage{}, err
		}
		filter = append(filter, bson.E{Key: "booked", Value: bson.D{{Key: "$lt", Value: pos(c)}}})
	}
	if q.PatientID != "" {
		filter = append(filter, bson.E{Key: "patientId", Value: q.PatientID})
	}
	if q.DoctorID != "" {
		filter = append(filter, bson.E{Key: "doctorId", Value: q.DoctorID})
	}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		rng := bson.D{}
		if !q.From.IsZero() {
			rng = append(rng, bson.E{Key: "$gte", Value: projections.Nanos(q.From)})
		}
		if !q.To.IsZero() {
			rng = append(rng, bson.E{Key: "$lt", Value: projections.Nanos(q.To)})
		}
		filter = append(filter, bson.E{Key: "start", Value: rng})
	}
	r, err := m.read(ctx)
	if err != nil {
		return projections.AppointmentPage{}, err
	}
	docs, err := r.find(ctx, filter, int64(q.Limit)+1)
	if err != nil {
		return projections.AppointmentPage{}, fail(ctx, err, "appointments")
	}
	page := projections.AppointmentPage{}
	if len(docs) > q.Limit {
		docs = docs[:q.Limit]
		page.NextCursor = projections.EncodeCursor(uint64(docs[len(docs)-1].Booked))
	}
	if page.Appointments, err = r.views(ctx, docs); err != nil {
		return projections.AppointmentPage{}, fail(ctx, err, "appointments")
	}
	return page, nil
}

// find lists appointments newest booking first.
func (m apptColls) find(ctx context.Context, filter bson.D, limit int64) ([]apptDoc, error) {
	o := options.Find().SetSort(bson.D{{Key: "booked", Value: -1}})
	if limit > 0 {
		o.SetLimit(limit)
	}
	cur, err := m.appts.Find(ctx, filter, o)
	if err != nil {
		return nil, err
	}
	docs := []apptDoc{}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// DoctorDashboard implements projections.Dashboards.
func (m *Appointments) DoctorDashboard(ctx context.Context, doctorID string) (projections.DoctorDashboard, error) {
	r, err := m.read(ctx)
	if err != nil {
		return projections.DoctorDashboard{}, err
	}
	what := "doctor dashboard " + doctorID
	var info doctorInfoDoc
	err = r.doctors.FindOne(ctx, bson.D{{Key: "_id", Value: doctorID}}).Decode(&info)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return projections.DoctorDashboard{}, projections.ErrNotFound
	}
	if err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	out := projections.DoctorDashboard{Currency: info.Currency}
	of := bson.D{{Key: "doctorId", Value: doctorID}}
	n, err := r.appts.CountDocuments(ctx, of)
	if err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	out.Appointments = int(n)
	// Distinct patients. (FerretDB v1's distinct reply does not decode with
	// this driver: a $group instead.)
	pc, err := r.appts.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: of}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$patientId"}}}},
	})
	if err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	var patients []bson.Raw
	if err := pc.All(ctx, &patients); err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	out.Patients = len(patients)
	// Earnings: fees of the completed appointments and of those whose
	// payment stands as paid.
	cur, err := r.appts.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{
			{Key: "doctorId", Value: doctorID},
			{Key: "$or", Value: bson.A{
				bson.D{{Key: "status", Value: string(doctor.StatusCompleted)}},
				bson.D{{Key: "payment.status", Value: string(doctor.PaymentPaid)}},
			}},
		}}},
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: nil}, {Key: "earnings", Value: bson.D{{Key: "$sum", Value: "$fees"}}}}}},
	})
	if err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	var sums []struct {
		Earnings int64 `bson:"earnings"`
	}
	if err := cur.All(ctx, &sums); err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	if len(sums) > 0 {
		out.Earnings = sums[0].Earnings
	}
	latest, err := r.find(ctx, of, projections.LatestN)
	if err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	if out.Latest, err = r.views(ctx, latest); err != nil {
		return projections.DoctorDashboard{}, fail(ctx, err, what)
	}
	return out, nil
}

// AdminDashboard implements projections.Dashboards.
func (m *Appointments) AdminDashboard(ctx context.Context) (projections.AdminDashboard, error) {
	r, err := m.read(ctx)
	if err != nil {
		return projections.AdminDashboard{}, err
	}
	var out projections.AdminDashboard
	for _, c := range []struct {
		coll *mongo.Collection
		n    *int
	}{{r.doctors, &out.Doctors}, {r.patients, &out.Patients}, {r.appts, &out.Appointments}} {
		n, err := c.coll.CountDocuments(ctx, bson.D{})
		if err != nil {
			return projections.AdminDashboard{}, fail(ctx, err, "admin dashboard")
		}
		*c.n = int(n)
	}
	latest, err := r.find(ctx, bson.D{}, projections.LatestN)
	if err != nil {
		return projections.AdminDashboard{}, fail(ctx, err, "admin dashboard")
	}
	if out.Latest, err = r.views(ctx, latest); err != nil {
		return projections.AdminDashboard{}, fail(ctx, err, "admin dashboard")
	}
	return out, nil
}
