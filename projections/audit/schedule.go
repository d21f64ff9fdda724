package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/snapshot"
	"github.com/prescripto/prescripto/projections"
)

// MaxScheduleDays bounds the days of free slots of one ScheduleAsOf.
const MaxScheduleDays = projections.MaxSlotDays

// Schedule is a doctor's schedule as it stood at an instant: the
// appointments that held a slot then and the slots a patient could have
// booked then, folded from the doctor's events recorded at or before it.
type Schedule struct {
	DoctorID string    `json:"doctorId"`
	AsOf     time.Time `json:"asOf"`
	// Revision and Position are those of the last event folded; Revision
	// is -1 (and Position 0) when the doctor had no event yet at AsOf.
	Revision     int64                  `json:"revision"`
	Position     uint64                 `json:"position"`
	Timezone     string                 `json:"timezone"`
	Appointments []Appointment          `json:"appointments"`
	Days         []projections.DaySlots `json:"days"`
}

// Appointment is one booking as it stood at the instant asked about.
type Appointment struct {
	ID            string         `json:"id"`
	DoctorID      string         `json:"doctorId"`
	DoctorName    string         `json:"doctorName"`
	PatientID     string         `json:"patientId"`
	PatientName   string         `json:"patientName"`
	Start         time.Time      `json:"start"`
	End           time.Time      `json:"end"`
	Timezone      string         `json:"timezone"`
	Status        doctor.Status  `json:"status"`
	Fees          int64          `json:"fees"`
	Currency      string         `json:"currency"`
	Payment       doctor.Payment `json:"payment"`
	HoldExpiresAt *time.Time     `json:"holdExpiresAt,omitempty"`
	CreatedAt     time.Time      `json:"createdAt"`
}

// ScheduleQuery asks for a doctor's schedule as of an instant.
type ScheduleQuery struct {
	DoctorID string
	AsOf     time.Time
	// From is the first day of free slots (in the doctor's zone); zero
	// means the day of AsOf there. Days is how many (1..MaxScheduleDays).
	From doctor.Date
	Days int
}

// ScheduleAsOf replays doctorID's stream up to the last event recorded at
// or before q.AsOf and answers what a patient would have seen then: a
// doctor not registered by then is ErrDoctorNotFound.
func (l *Log) ScheduleAsOf(ctx context.Context, q ScheduleQuery) (Schedule, error) {
	if q.Days < 1 || q.Days > MaxScheduleDays {
		return Schedule{}, fmt.Errorf("audit: days %d out of 1..%d", q.Days, MaxScheduleDays)
	}
	asOf := q.AsOf.UTC()
	d, rev, pos, err := l.doctorAsOf(ctx, q.DoctorID, asOf)
	if err != nil {
		return Schedule{}, err
	}
	if !d.Registered() {
		return Schedule{}, doctor.ErrDoctorNotFound
	}
	out := Schedule{DoctorID: q.DoctorID, AsOf: asOf, Revision: rev, Position: pos, Appointments: []Appointment{}, Days: []projections.DaySlots{}}
	loc := time.UTC
	if g := d.Grid(); g != nil {
		loc = g.Location()
		out.Timezone = g.Schedule().Timezone
	}
	name := d.Profile().Name
	for _, a := range d.LiveAppointments() {
		if a.Status == doctor.StatusHeld && !a.HoldExpiresAt.IsZero() && !a.HoldExpiresAt.After(asOf) {
			continue // its hold had run out: the slot was free again
		}
		ap := Appointment{
			ID: a.ID, DoctorID: q.DoctorID, DoctorName: name, PatientID: a.PatientID, PatientName: a.PatientName,
			Start: a.Start.UTC(), End: a.End.UTC(), Timezone: out.Timezone, Status: a.Status, Fees: a.Fees, Currency: a.Currency,
			Payment: a.Payment, CreatedAt: a.CreatedAt.UTC(),
		}
		if !a.HoldExpiresAt.IsZero() {
			h := a.HoldExpiresAt.UTC()
			ap.HoldExpiresAt = &h
		}
		// Stored sealed: opened for the auditor ("[erased]" once erased,
		// left out when the keys cannot be reached).
		if ap.PatientName, err = l.reg.OpenValue(ap.PatientName); err != nil {
			ap.PatientName = ""
		}
		out.Appointments = append(out.Appointments, ap)
	}
	from := q.From
	if from == (doctor.Date{}) {
		from = doctor.DateOf(asOf.In(loc))
	}
	for i := range q.Days {
		day := from.AddDays(i)
		slots := d.FreeSlots(day, asOf)
		if slots == nil {
			slots = []doctor.Slot{}
		}
		out.Days = append(out.Days, projections.DaySlots{Date: day.String(), Slots: slots})
	}
	return out, nil
}

// AsOfSnapshotEvery: a replay for ScheduleAsOf saves a snapshot at every
// revision r with (r+1) a multiple of it that it folds past, so a later
// replay folds at most that many events after the newest snapshot
// recorded by its instant.
const AsOfSnapshotEvery = 2000

// doctorAsOf folds doctorID's events recorded at or before asOf: the
// aggregate, and the revision (-1 for none) and position of the last event
// folded. The fold stops at the first event recorded after asOf. It starts
// from the newest snapshot all of whose events were recorded by asOf (see
// WithSnapshots), else from the first event. Events of types this release
// does not know (written by a newer release) are skipped.
func (l *Log) doctorAsOf(ctx context.Context, doctorID string, asOf time.Time) (*doctor.Doctor, int64, uint64, error) {
	d := doctor.New(doctorID)
	rev, pos := int64(-1), uint64(0)
	if doctorID == "" {
		return d, rev, pos, nil
	}
	stream := doctor.StreamID(doctorID)
	var latest time.Time // the latest recording time of the events folded
	if restored, s, ok := l.restore(ctx, stream, doctorID, asOf); ok {
		d, rev, pos, latest = restored, int64(s.Revision), s.Position, s.RecordedAt
	}
	start := rev
	err := l.walkStream(ctx, stream, uint64(rev+1), func(r eventstore.RecordedEvent) (bool, error) {
		if r.RecordedAt.After(asOf) {
			return false, nil
		}
		ev, err := l.reg.Decode(r.Type, r.Data)
		if err != nil && !errors.Is(err, domain.ErrUnknownEventType) {
			return false, fmt.Errorf("audit: %s revision %d: %w", r.StreamID, r.Revision, err)
		}
		if err == nil {
			d.Load(ev)
		}
		rev, pos = int64(r.Revision), r.Position
		if r.RecordedAt.After(latest) {
			latest = r.RecordedAt
		}
		if l.snaps != nil && rev > start && (rev+1)%AsOfSnapshotEvery == 0 {
			l.save(ctx, stream, d, rev, pos, latest)
		}
		return true, nil
	})
	return d, rev, pos, err
}

// restore returns the newest usable snapshot of stream whose events were
// all recorded by asOf, restored.
func (l *Log) restore(ctx context.Context, stream, doctorID string, asOf time.Time) (*doctor.Doctor, snapshot.Snapshot, bool) {
	if l.snaps == nil {
		return nil, snapshot.Snapshot{}, false
	}
	s, ok, err := l.snaps.Latest(ctx, stream, doctor.SnapshotVersion, ^uint64(0), asOf)
	if err != nil || !ok {
		return nil, s, false
	}
	// It must name an event of this log: the one at its revision.
	recs, err := l.store.ReadStream(ctx, stream, s.Revision, eventstore.Forward, 1)
	if err != nil || len(recs) != 1 || recs[0].Revision != s.Revision || recs[0].Position != s.Position {
		return nil, s, false
	}
	d, err := doctor.RestoreSnapshot(doctorID, s.Data)
	if err != nil {
		return nil, s, false
	}
	return d, s, true
}

// save stores a snapshot of d after revision rev; recordedAt is the latest
// recording time of the events folded into it. Failures are dropped: a
// snapshot is an optimisation.
func (l *Log) save(ctx context.Context, stream string, d *doctor.Doctor, rev int64, pos uint64, recordedAt time.Time) {
	b, err := d.MarshalSnapshot()
	if err != nil {
		return
	}
	_ = l.snaps.Save(ctx, snapshot.Snapshot{Stream: stream, Revision: uint64(rev), Position: pos, RecordedAt: recordedAt, Shape: doctor.SnapshotVersion, Data: b})
}
