// Package notify mails patients about their appointments: confirmation,
// cancellation and reschedule. It is a projector of the event log that keeps
// the contacts it needs (account emails, doctor names) and hands each mail
// to a Mailer under the id of the event that caused it, so that redelivery
// and replays after a restart send nothing twice.
package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Message is one mail.
type Message struct {
	// ID is the id of the event the mail is about; a Mailer sends each id
	// at most once.
	ID      string
	To      string
	ToName  string
	Subject string
	Body    string
	Date    time.Time
}

// Mailer delivers messages, at most once per Message.ID.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// MaxAge: events older than this when seen are not mailed (a replay of old
// history after the mail log was lost must not mail patients about the past).
const MaxAge = 24 * time.Hour

// Worker is the notifications projector ("notifications").
type Worker struct {
	projections.Progress
	mailer Mailer
	now    func() time.Time

	mu       sync.Mutex
	patients map[string]contact
	doctors  map[string]doctorInfo
	appts    appts
	strs     domain.Strings // see share
}

// appts is what the worker remembers of every appointment, for the mails of
// its later events. It grows by one per booking for the process's life, so
// an appointment id that is a UUID is kept as 16 bytes (not as the decoded
// string), and the patient and doctor ids are shared strings (share), not
// one copy per appointment.
type appts struct {
	uuids map[[16]byte]apptInfo
	other map[string]apptInfo
}

func (m appts) get(id string) (apptInfo, bool) {
	if u, ok := canonicalUUID(id); ok {
		a, found := m.uuids[u]
		return a, found
	}
	a, found := m.other[id]
	return a, found
}

func (m appts) put(id string, a apptInfo) {
	if u, ok := canonicalUUID(id); ok {
		m.uuids[u] = a
		return
	}
	m.other[id] = a
}

// maxShared bounds the strings shared (see domain.Strings).
const maxShared = 1 << 17

// share returns s, or an equal string already held (see domain.Strings;
// its lock held).
func (w *Worker) share(s string) string { return w.strs.Share(s) }

type contact struct{ name, email string }

type doctorInfo struct {
	name string
	loc  *time.Location
}

type apptInfo struct {
	patientID, doctorID string
	start               time.Time
}

// New returns a Worker sending through mailer.
func New(mailer Mailer, now func() time.Time) *Worker {
	if now == nil {
		now = time.Now
	}
	return &Worker{mailer: mailer, now: now, patients: map[string]contact{}, doctors: map[string]doctorInfo{},
		appts: appts{uuids: map[[16]byte]apptInfo{}, other: map[string]apptInfo{}}, strs: domain.Strings{Max: maxShared}}
}

// Name implements projections.Projection.
func (*Worker) Name() string { return "notifications" }

// Checkpoint implements projections.Projection.
func (w *Worker) Checkpoint(context.Context) (uint64, error) { return w.Position(), nil }

// Apply implements projections.Projection. A failed send returns the error
// so that the event is redelivered (the mailer dedupes by id).
func (w *Worker) Apply(ctx context.Context, e projections.Event) error {
	if e.Position <= w.Position() {
		return nil
	}
	if err := e.Open(); err != nil { // names and addresses
		return err
	}
	msg, ok := w.observe(e)
	if ok && w.now().Sub(e.RecordedAt) <= MaxAge {
		if err := w.mailer.Send(ctx, msg); err != nil {
			return fmt.Errorf("notify: send %s: %w", msg.ID, err)
		}
	}
	w.Advance(e.Position)
	return nil
}

// observe updates the contacts and returns the mail an event calls for.
func (w *Worker) observe(e projections.Event) (Message, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev := e.Data.(type) {
	case account.Registered:
		w.patients[ev.AccountID] = contact{ev.Name, ev.Email}
	case account.PersonalDataErased:
		delete(w.patients, ev.AccountID) // no address: no more mail
	case account.ProfileUpdated:
		if c, ok := w.patients[ev.AccountID]; ok {
			c.name = ev.Profile.Name
			w.patients[ev.AccountID] = c
		}
	case doctor.DoctorRegistered:
		w.doctors[ev.DoctorID] = doctorInfo{name: ev.Profile.Name, loc: w.doctors[ev.DoctorID].loc}
	case doctor.ProfileUpdated:
		w.doctors[ev.DoctorID] = doctorInfo{name: ev.Profile.Name, loc: w.doctors[ev.DoctorID].loc}
	case doctor.ScheduleSet:
		d := w.doctors[ev.DoctorID]
		if loc, err := doctor.LoadZone(ev.Schedule.Timezone); err == nil {
			d.loc = loc
		}
		w.doctors[ev.DoctorID] = d
	case doctor.SlotReserved:
		w.appts.put(ev.AppointmentID, apptInfo{w.share(ev.PatientID), w.share(ev.DoctorID), ev.Start})
		if ev.Status == doctor.StatusConfirmed {
			return w.mail(e, ev.AppointmentID, "Appointment confirmed", "your appointment with %s on %s is confirmed.", ev.Start)
		}
		return w.mail(e, ev.AppointmentID, "Appointment reserved: payment pending", "your appointment with %s on %s is reserved until your payment arrives.", ev.Start)
	case doctor.AppointmentConfirmed:
		return w.mail(e, ev.AppointmentID, "Appointment confirmed", "your payment arrived: your appointment with %s on %s is confirmed.", time.Time{})
	case doctor.AppointmentCancelled:
		reason := ""
		if ev.Reason != "" {
			reason = " Reason: " + ev.Reason + "."
		}
		return w.mail(e, ev.AppointmentID, "Appointment cancelled", "your appointment with %s on %s is cancelled."+escapePercent(reason), ev.Start)
	case doctor.AppointmentRescheduled:
		if a, ok := w.appts.get(ev.AppointmentID); ok {
			a.start = ev.Start
			w.appts.put(ev.AppointmentID, a)
		}
		return w.mail(e, ev.AppointmentID, "Appointment rescheduled", "your appointment with %s is moved to %s.", ev.Start)
	case doctor.HoldExpired:
		return w.mail(e, ev.AppointmentID, "Reservation expired", "no payment arrived in time, so your reservation with %s on %s has lapsed.", ev.Start)
	}
	return Message{}, false
}

func escapePercent(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// mail builds the message about appointment id for the event e; format has
// two %s verbs: the doctor's name and the local start time.
func (w *Worker) mail(e projections.Event, id, subject, format string, start time.Time) (Message, bool) {
	a, ok := w.appts.get(id)
	if !ok {
		return Message{}, false
	}
	p, ok := w.patients[a.patientID]
	if !ok || p.email == "" || p.email == domain.Erased {
		return Message{}, false
	}
	if start.IsZero() {
		start = a.start
	}
	d := w.doctors[a.doctorID]
	loc := d.loc
	if loc == nil {
		loc = time.UTC
	}
	when := start.In(loc).Format("Mon 2 Jan 2006 15:04 MST")
	body := fmt.Sprintf("Dear %s,\n\n"+format+"\n\nAppointment id: %s\n\nPrescripto\n", p.name, d.name, when, id)
	return Message{ID: e.ID.String(), To: p.email, ToName: p.name, Subject: subject, Body: body, Date: e.RecordedAt}, true
}

// ErrNoEventID: a message without an id cannot be deduplicated.
var ErrNoEventID = errors.New("notify: message has no id")
