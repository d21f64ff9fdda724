package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	pmongo "github.com/prescripto/prescripto/projections/mongo"
)

// zoned is a log of doctors in zones far from UTC (+14, -11, +5:30, and
// one with DST), with slots of 4 and 8 hours around the clock, and
// bookings, confirmations, moves and cancellations spread over three weeks
// (appointments near every UTC midnight).
func zoned(seed uint64) (*log, []string) {
	r := rand.New(rand.NewPCG(seed, 7))
	l := &log{clock: time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), revs: map[string]uint64{}}
	zones := []string{"Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "America/St_Johns"}
	var docs []string
	type appt struct {
		doc, id string
		start   time.Time
		slot    time.Duration
		live    bool
	}
	var appts []*appt
	for i, z := range zones {
		for k, minutes := range []int{240, 480} {
			id := fmt.Sprintf("z%d%d", i, k)
			docs = append(docs, id)
			sched := doctor.Schedule{Timezone: z, SlotMinutes: minutes, BookingWindowDays: 60, MinNoticeMinutes: 0, PaymentPolicy: doctor.PaymentOptional, HoldMinutes: 30}
			for wd := 1; wd <= 7; wd++ {
				sched.Weekly = append(sched.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "00:00", End: "23:59"})
			}
			l.add(doctor.StreamID(id), doctor.DoctorRegistered{DoctorID: id, Profile: doctor.Profile{Name: "Dr. " + id, Speciality: "ENT", Available: true}})
			l.add(doctor.StreamID(id), doctor.ScheduleSet{DoctorID: id, Schedule: sched})
		}
	}
	slotStart := func(doc string, slot time.Duration) time.Time {
		i := int(doc[1] - '0')
		loc, _ := time.LoadLocation(zones[i])
		day := time.Date(2030, time.January, 3+r.IntN(21), 0, 0, 0, 0, loc)
		return day.Add(time.Duration(r.IntN(int(24*time.Hour/slot))) * slot)
	}
	for n := range 400 {
		switch k := r.IntN(10); {
		case k < 5 || len(appts) == 0:
			doc := docs[r.IntN(len(docs))]
			slot := 4 * time.Hour
			if doc[2] == '1' {
				slot = 8 * time.Hour
			}
			a := &appt{doc: doc, id: fmt.Sprintf("za%03d", n), start: slotStart(doc, slot), slot: slot, live: true}
			appts = append(appts, a)
			e := doctor.SlotReserved{DoctorID: doc, AppointmentID: a.id, PatientID: "p", Start: a.start, End: a.start.Add(slot), Status: doctor.StatusConfirmed, ReservedAt: l.clock}
			if r.IntN(2) == 0 {
				until := l.clock.Add(time.Duration(r.IntN(600)) * time.Minute)
				e.Status, e.HoldExpiresAt = doctor.StatusHeld, &until
			}
			l.add(doctor.StreamID(doc), e)
		default:
			a := appts[r.IntN(len(appts))]
			if !a.live {
				continue
			}
			s := doctor.StreamID(a.doc)
			switch k {
			case 5, 6:
				l.add(s, doctor.AppointmentConfirmed{DoctorID: a.doc, AppointmentID: a.id})
			case 7:
				to := slotStart(a.doc, a.slot)
				l.add(s, doctor.AppointmentRescheduled{DoctorID: a.doc, AppointmentID: a.id, PreviousStart: a.start, PreviousEnd: a.start.Add(a.slot), Start: to, End: to.Add(a.slot)})
				a.start = to
			case 8:
				a.live = false
				l.add(s, doctor.AppointmentCancelled{DoctorID: a.doc, AppointmentID: a.id, Start: a.start, End: a.start.Add(a.slot), CancelledBy: domain.RolePatient})
			default:
				a.live = false
				if r.IntN(2) == 0 {
					l.add(s, doctor.AppointmentCompleted{DoctorID: a.doc, AppointmentID: a.id})
				} else {
					l.add(s, doctor.AppointmentMarkedNoShow{DoctorID: a.doc, AppointmentID: a.id})
				}
			}
		}
	}
	return l, docs
}

// sameFreeSlots asks both models every doctor's free slots for every
// window of 1, 2 and 7 days starting on each of the log's dates, at a now
// before every appointment and at one among them (holds run out).
func sameFreeSlots(t *testing.T, got, want projections.Slots, docs []string) {
	t.Helper()
	ctx := context.Background()
	for _, now := range []time.Time{time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, time.January, 1, 11, 0, 0, 0, time.UTC)} {
		for _, doc := range docs {
			for day := 1; day <= 26; day++ {
				for _, days := range []int{1, 2, 7} {
					from := doctor.Date{Year: 2030, Month: time.January, Day: day}
					g, gerr := got.FreeSlots(ctx, doc, from, days, now)
					w, werr := want.FreeSlots(ctx, doc, from, days, now)
					if (gerr == nil) != (werr == nil) {
						t.Fatalf("%s from %s, %d days: error %v, want %v", doc, from, days, gerr, werr)
					}
					if gs, ws := string(g.AppendJSON(nil)), string(w.AppendJSON(nil)); gs != ws {
						t.Fatalf("%s from %s, %d days at %s:\n got %s\nwant %s", doc, from, days, now, gs, ws)
					}
				}
			}
		}
	}
}

// The free slots of doctors in zones up to 14 h from UTC, with 8-hour
// appointments near every UTC midnight, read from day documents, are the
// in-memory model's for every window; applied in batches of every size.
func TestSlotsDaysInEveryZone(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	ctx := context.Background()
	l, docs := zoned(1)
	ref := memorySlots(t, l.events)
	for _, batch := range []int{1, 7, 500} {
		s, err := pmongo.NewSlots(ctx, newDB(t))
		if err != nil {
			t.Fatal(err)
		}
		applyInBatches(t, s, l.events, batch)
		sameFreeSlots(t, s, ref, docs)
	}
}

// memorySlots is the in-memory free-slots model of events: the reference.
func memorySlots(t *testing.T, events []projections.Event) *memory.Slots {
	t.Helper()
	ref := memory.NewSlots()
	for _, e := range events {
		if err := ref.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return ref
}

// applyInBatches applies events to s in batches of n.
func applyInBatches(t *testing.T, s *pmongo.Slots, events []projections.Event, n int) {
	t.Helper()
	for i := 0; i < len(events); i += n {
		if err := s.ApplyBatch(context.Background(), events[i:min(i+n, len(events))]); err != nil {
			t.Fatal(err)
		}
	}
}

var errStopped = errors.New("stopped half-way")

// A batch that fails after writing its days, or its days and doctors,
// applied again (as the runner does) leaves the model as if it had not
// failed: every batch fails once at each step before it goes through.
func TestSlotsBatchFailingHalfWay(t *testing.T) {
	t.Parallel()
	newDB := server(t)
	ctx := context.Background()
	l, docs := zoned(2)
	ref := memorySlots(t, l.events)
	s, err := pmongo.NewSlots(ctx, newDB(t))
	if err != nil {
		t.Fatal(err)
	}
	var failAt string
	pmongo.StopSlotsAfter(s, func(step string) error {
		if step == failAt {
			return errStopped
		}
		return nil
	})
	const batch = 9
	for i := 0; i < len(l.events); i += batch {
		events := l.events[i:min(i+batch, len(l.events))]
		for _, step := range []string{"days", "heads", ""} {
			failAt = step
			err := s.ApplyBatch(ctx, events)
			if step != "" && !errors.Is(err, errStopped) {
				t.Fatalf("batch at %d, stopped after %s: %v", i, step, err)
			}
			if step == "" && err != nil {
				t.Fatalf("batch at %d: %v", i, err)
			}
		}
	}
	sameFreeSlots(t, s, ref, docs)
}

// A doctor's bookings do not make any document of the model grow: 1,500
// live appointments of one doctor over 30 days leave no document above a
// day's share (before day documents, the doctor's held all 1,500).
func TestSlotsDocumentsStayADaysSize(t *testing.T) {
	t.Parallel()
	db := server(t)(t)
	ctx := context.Background()
	l := &log{clock: time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), revs: map[string]uint64{}}
	sched := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 15, BookingWindowDays: 60, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		sched.Weekly = append(sched.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "09:00", End: "21:30"})
	}
	l.add(doctor.StreamID("big"), doctor.DoctorRegistered{DoctorID: "big", Profile: doctor.Profile{Name: "Dr. Big", Available: true}})
	l.add(doctor.StreamID("big"), doctor.ScheduleSet{DoctorID: "big", Schedule: sched})
	for i := range 1500 {
		start := at(2+i/50, 9, 0).Add(time.Duration(i%50) * 15 * time.Minute)
		l.add(doctor.StreamID("big"), doctor.SlotReserved{DoctorID: "big", AppointmentID: fmt.Sprintf("b%04d", i), Start: start, End: start.Add(15 * time.Minute), Status: doctor.StatusConfirmed})
	}
	s, err := pmongo.NewSlots(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	applyInBatches(t, s, l.events, 256)
	cur, err := db.Collection(pmongo.CollFreeSlots).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	largest, days := 0, 0
	for _, d := range docs {
		largest = max(largest, len(d))
		if strings.Contains(d.Lookup("_id").StringValue(), "/d/") {
			days++
		}
	}
	// A day holds 50 appointments of about 60 bytes each.
	if largest > 5000 || days != 30 {
		t.Fatalf("%d documents, %d of them days; the largest is %d bytes, want at most 5,000", len(docs), days, largest)
	}
	fs, err := s.FreeSlots(ctx, "big", doctor.Date{Year: 2030, Month: time.January, Day: 10}, 1, l.clock)
	if err != nil || len(fs.Days) != 1 || len(fs.Days[0].Slots) != 0 {
		t.Fatalf("a full day: %+v, %v", fs, err)
	}
}

// A model written before day documents (each doctor's live appointments
// in the doctor's document) answers as before, and the batches that touch
// its doctors move them into day documents, with the same answers.
func TestSlotsOldLayoutConverted(t *testing.T) {
	t.Parallel()
	db := server(t)(t)
	ctx := context.Background()
	l, docs := zoned(3)
	half := len(l.events) / 2
	ref := memorySlots(t, l.events[:half])
	s, err := pmongo.NewSlots(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyBatch(ctx, l.events[:half]); err != nil {
		t.Fatal(err)
	}
	toOldLayout(t, db.Collection(pmongo.CollFreeSlots))
	old, err := pmongo.NewSlots(ctx, db) // a new writer: it knows nothing converted
	if err != nil {
		t.Fatal(err)
	}
	sameFreeSlots(t, old, ref, docs)

	ref = memorySlots(t, l.events)
	applyInBatches(t, old, l.events[half:], 5)
	sameFreeSlots(t, old, ref, docs)
	n, err := db.Collection(pmongo.CollFreeSlots).CountDocuments(ctx, bson.D{{Key: "live", Value: bson.D{{Key: "$exists", Value: true}}}, {Key: "registered", Value: true}})
	if err != nil || n != 0 {
		t.Fatalf("%d doctors still in the old layout (%v)", n, err)
	}
}

// Days written before their appointments were packed (an array of
// subdocuments) answer as before, and the batches that touch them write
// them packed.
func TestSlotsDayArraysRead(t *testing.T) {
	t.Parallel()
	db := server(t)(t)
	ctx := context.Background()
	coll := db.Collection(pmongo.CollFreeSlots)
	l, docs := zoned(3)
	half := len(l.events) / 2
	s, err := pmongo.NewSlots(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	applyInBatches(t, s, l.events[:half], 7)
	days := func() []bson.M {
		cur, err := coll.Find(ctx, bson.D{{Key: "live", Value: bson.D{{Key: "$exists", Value: true}}}})
		if err != nil {
			t.Fatal(err)
		}
		var all []bson.M
		if err := cur.All(ctx, &all); err != nil {
			t.Fatal(err)
		}
		return all
	}
	arrays := 0
	for _, d := range days() {
		a, err := pmongo.LiveArray(d["live"])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: d["_id"]}}, bson.D{{Key: "$set", Value: bson.D{{Key: "live", Value: a}}}}); err != nil {
			t.Fatal(err)
		}
		arrays++
	}
	if arrays == 0 {
		t.Fatal("no day documents to rewrite")
	}
	old, err := pmongo.NewSlots(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	sameFreeSlots(t, old, memorySlots(t, l.events[:half]), docs)
	applyInBatches(t, old, l.events[half:], 5)
	sameFreeSlots(t, old, memorySlots(t, l.events), docs)
	packed := 0
	for _, d := range days() {
		if _, ok := d["live"].(bson.Binary); ok {
			packed++
		}
	}
	if packed == 0 {
		t.Fatal("no day document written packed after the batches")
	}
}

// toOldLayout rewrites the free-slots collection as the model wrote it
// before day documents: every doctor's live appointments in its document,
// at the position of the doctor's last event, and nothing else.
func toOldLayout(t *testing.T, coll *mongo.Collection) {
	t.Helper()
	ctx := context.Background()
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var all []bson.M
	if err := cur.All(ctx, &all); err != nil {
		t.Fatal(err)
	}
	heads := map[string]bson.M{}
	live := map[string]bson.A{}
	for _, d := range all {
		if id := d["_id"].(string); !strings.Contains(id, "/") {
			heads[id] = d
		}
	}
	for _, d := range all {
		id := d["_id"].(string)
		doc, rest, ok := strings.Cut(id, "/")
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, "d/") {
			a, err := pmongo.LiveArray(d["live"])
			if err != nil {
				t.Fatal(err)
			}
			live[doc] = append(live[doc], a...)
		}
		if h := heads[doc]; h != nil && d["position"].(int64) > h["position"].(int64) {
			h["position"] = d["position"]
		}
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}
	for id, h := range heads {
		h["live"] = append(bson.A{}, live[id]...)
		if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, h); err != nil {
			t.Fatal(err)
		}
	}
}
