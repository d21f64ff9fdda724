// Package notify mails patients and doctors about appointments: booking
// confirmed, held awaiting payment (with the pay link), payment received,
// hold expired, rescheduled, cancelled (by whom, refund if any), refund
// processed; to the doctor: new booking and cancellation; and reminders
// before the start. It is a projector of the event log (Worker) that keeps
// the contacts and appointments it needs and puts each mail into a durable
// Outbox under an id derived from the fact and the recipient; a Deliverer
// sends the outbox's mails through a Mailer (SMTP, or the mbox of the
// embedded default) and marks each sent, so redelivery, restarts and
// replays send nothing twice. The worker's state and position are saved
// with the outbox (Save): a restart resumes from there, not from the start
// of the log.
package notify

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/ical"
	"github.com/prescripto/prescripto/projections"
)

// Message is one mail.
type Message struct {
	// ID identifies the mail (its Message-ID is <ID@prescripto.local>); a
	// Mailer sends an id at most once where it can tell.
	ID      string    `json:"id"`
	To      string    `json:"to"`
	ToName  string    `json:"toName,omitempty"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	HTML    string    `json:"html,omitempty"`
	Date    time.Time `json:"date"`
	// Calendar, when set, is attached as invite.ics (text/calendar with
	// CalendarMethod).
	Calendar       []byte `json:"calendar,omitempty"`
	CalendarMethod string `json:"calendarMethod,omitempty"`
}

// Mailer delivers messages.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// MaxAge: events older than this when seen are not mailed (a replay of old
// history must not mail people about the past).
const MaxAge = 24 * time.Hour

// Config of a Worker.
type Config struct {
	Outbox Outbox
	Now    func() time.Time
	// Reminders are the leads before an appointment's start at which its
	// patient is reminded (REMINDERS, default 24h and 1h).
	Reminders []time.Duration
	// PayLink makes the link a patient pays an order at (nil: no link).
	PayLink func(appointmentID, orderID string) string
	// Wake is called after mails were added (the Deliverer's Wake).
	Wake func()
	// Metrics (nil: not counted).
	Metrics *Metrics
}

// DefaultReminders are the reminder leads without REMINDERS.
var DefaultReminders = []time.Duration{24 * time.Hour, time.Hour}

// Worker is the notifications projector ("notifications").
type Worker struct {
	projections.Progress
	cfg Config

	mu    sync.Mutex
	st    state
	due   reminderHeap
	saved uint64 // position of the last saved checkpoint
	// savedAt and saveTook pace the checkpoints: the next comes no sooner
	// than 20 times the last one's duration after it (a large state is
	// saved less often; a crash replays a little more of the log).
	savedAt  time.Time
	saveTook time.Duration
	// mailing: the event being observed is recent enough to be mailed
	// (MaxAge); an older one only updates the state.
	mailing bool
	// saveMu orders the checkpoint writes (Save's, and an erasure's in
	// ApplyBatch): an older state written after a newer one would bring
	// back what an erasure removed. Taken before mu.
	saveMu sync.Mutex
	strs   domain.Strings
}

// state is what the worker remembers, saved with each checkpoint (gob:
// several times faster than JSON for half a million appointments).
type state struct {
	Contacts map[string]contact `json:"contacts"` // account id ->
	// DoctorAccounts: doctor id -> account id of the doctor's login.
	DoctorAccounts map[string]string      `json:"doctorAccounts"`
	Doctors        map[string]*doctorInfo `json:"doctors"`
	Appts          map[string]*appt       `json:"appts"`
}

type contact struct {
	Name  string `json:"n"`
	Email string `json:"e"`
}

type doctorInfo struct {
	Name string `json:"n"`
	Zone string `json:"z,omitempty"`
	loc  *time.Location
}

type appt struct {
	PatientID string        `json:"p"`
	DoctorID  string        `json:"d"`
	Start     time.Time     `json:"s"`
	End       time.Time     `json:"e"`
	Status    doctor.Status `json:"st"`
	// Sequence is the log position of the last change of its time or
	// status (the calendar entry's SEQUENCE).
	Sequence uint64 `json:"q,omitempty"`
	Currency string `json:"c,omitempty"`
}

// New returns a Worker, resuming from the outbox's checkpoint.
func New(cfg Config) (*Worker, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Reminders == nil {
		cfg.Reminders = DefaultReminders
	}
	leads := append([]time.Duration(nil), cfg.Reminders...)
	sort.Slice(leads, func(i, j int) bool { return leads[i] > leads[j] })
	cfg.Reminders = leads
	w := &Worker{cfg: cfg, strs: domain.Strings{Max: 1 << 17}, st: state{
		Contacts: map[string]contact{}, DoctorAccounts: map[string]string{}, Doctors: map[string]*doctorInfo{}, Appts: map[string]*appt{},
	}}
	pos, raw, err := cfg.Outbox.Checkpoint(context.Background())
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 {
		if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&w.st); err != nil {
			return nil, fmt.Errorf("notify: checkpoint state: %w", err)
		}
		for _, d := range w.st.Doctors {
			d.loc = loadZone(d.Zone)
		}
		now := cfg.Now()
		for id, a := range w.st.Appts {
			a.PatientID, a.DoctorID = w.strs.Share(a.PatientID), w.strs.Share(a.DoctorID)
			w.schedule(id, a, now)
		}
	}
	w.Advance(pos)
	w.saved = pos
	return w, nil
}

func loadZone(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := doctor.LoadZone(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Name implements projections.Projection.
func (*Worker) Name() string { return "notifications" }

// Checkpoint implements projections.Projection.
func (w *Worker) Checkpoint(context.Context) (uint64, error) { return w.Position(), nil }

// Apply implements projections.Projection: a batch of one (see
// ApplyBatch). The mails the event calls for go into the outbox before the
// position moves; an error leaves the position where it was (the event
// comes again; the outbox dedupes).
func (w *Worker) Apply(ctx context.Context, e projections.Event) error {
	return w.ApplyBatch(ctx, []projections.Event{e})
}

// ApplyBatch implements projections.BatchProjection: each event's fold,
// with the mails of the whole batch put into the outbox by one Add (a
// write or two, where one Add per event kept the worker at about 60 facts
// a second on FerretDB, each waiting for its own transactions). An
// erasure first adds the mails gathered before it, so that it scrubs them
// too, then drops what the outbox holds to the address or about the
// patient. The position moves once the mails of the events it covers are
// in the outbox; on an error it stays where it was and the events come
// again (the outbox dedupes). Names and addresses are opened before the
// lock; under it, from the fold to the new position, so that a checkpoint
// (Save) never holds a state ahead of its position.
//
// The checkpoint saved before an erasure still knows the contact: the
// batch replaces it before its position passes the erasure, so that once
// the worker reports that position (what an operator, or a test, waits
// for) no stored state names the patient.
func (w *Worker) ApplyBatch(ctx context.Context, events []projections.Event) error {
	erasing := false
	for i := range events {
		if events[i].Position <= w.Position() {
			continue
		}
		if err := events[i].Open(); err != nil { // names and addresses
			return err
		}
		_, ok := events[i].Data.(account.PersonalDataErased)
		erasing = erasing || ok
	}
	if erasing {
		w.saveMu.Lock()
		defer w.saveMu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var mails []Mail
	var through uint64
	erased := false
	flush := func() error {
		if len(mails) > 0 {
			if err := w.cfg.Outbox.Add(ctx, mails...); err != nil {
				return fmt.Errorf("notify: outbox: %w", err)
			}
			mails = nil
			if w.cfg.Wake != nil {
				w.cfg.Wake()
			}
		}
		if erased {
			if err := w.saveLocked(ctx, through); err != nil {
				return fmt.Errorf("notify: checkpoint after an erasure: %w", err)
			}
			erased = false
		}
		if through > 0 {
			w.Advance(through)
		}
		return nil
	}
	for _, e := range events {
		if e.Position <= max(w.Position(), through) {
			continue
		}
		if er, ok := e.Data.(account.PersonalDataErased); ok {
			if err := flush(); err != nil {
				return err
			}
			if err := w.cfg.Outbox.Erase(ctx, w.st.Contacts[er.AccountID].Email, er.AccountID); err != nil {
				return fmt.Errorf("notify: outbox: %w", err)
			}
			erased = true
		}
		w.mailing = w.cfg.Now().Sub(e.RecordedAt) <= MaxAge
		mails = append(mails, w.observe(e)...)
		through = e.Position
	}
	return flush()
}

// Save saves the position and the state with the outbox (after making the
// mails added so far durable), when the position moved since the last
// save.
func (w *Worker) Save(ctx context.Context) error {
	w.saveMu.Lock()
	defer w.saveMu.Unlock()
	begin := time.Now()
	w.mu.Lock()
	pos := w.Position()
	if pos == w.saved || begin.Sub(w.savedAt) < 20*w.saveTook {
		w.mu.Unlock()
		return nil
	}
	raw, err := w.encodeLocked()
	w.mu.Unlock() // the events go on while the state is written
	if err != nil {
		return err
	}
	if err := w.cfg.Outbox.SaveCheckpoint(ctx, pos, raw); err != nil {
		return err
	}
	w.mu.Lock()
	w.saved, w.savedAt, w.saveTook = pos, time.Now(), time.Since(begin)
	w.mu.Unlock()
	return nil
}

// saveLocked saves the state as the checkpoint at pos, whatever the pace
// (w.saveMu and w.mu held; the state holds exactly the events up to pos).
func (w *Worker) saveLocked(ctx context.Context, pos uint64) error {
	begin := time.Now()
	raw, err := w.encodeLocked()
	if err != nil {
		return err
	}
	if err := w.cfg.Outbox.SaveCheckpoint(ctx, pos, raw); err != nil {
		return err
	}
	w.saved, w.savedAt, w.saveTook = pos, time.Now(), time.Since(begin)
	return nil
}

// encodeLocked forgets appointments that ended long ago and encodes the
// state (w.mu held).
func (w *Worker) encodeLocked() ([]byte, error) {
	w.prune(w.cfg.Now())
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&w.st); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// keepEnded is how long an ended appointment is remembered (a refund can
// be processed days after a cancellation).
const keepEnded = 60 * 24 * time.Hour

// prune forgets appointments that ended long ago (its lock held).
func (w *Worker) prune(now time.Time) {
	for id, a := range w.st.Appts {
		if now.Sub(a.End) > keepEnded {
			delete(w.st.Appts, id)
		}
	}
}

// mailID is the id of the mail about the fact of event id to recipient.
func mailID(factID, recipient string) string {
	return uuid.NewSHA1(mailNamespace, []byte(factID+"/"+recipient)).String()
}

var mailNamespace = uuid.MustParse("6f1c1a52-9a8e-4f0e-9a43-6c1e2b7d9f10")

// observe updates the state and returns the mails the event calls for
// (its lock held).
func (w *Worker) observe(e projections.Event) []Mail {
	switch ev := e.Data.(type) {
	case account.Registered:
		w.st.Contacts[ev.AccountID] = contact{Name: ev.Name, Email: ev.Email}
		if ev.Role == domain.RoleDoctor && ev.DoctorID != "" {
			w.st.DoctorAccounts[ev.DoctorID] = ev.AccountID
		}
	case account.PersonalDataErased:
		delete(w.st.Contacts, ev.AccountID) // no address: no more mail
	case account.ProfileUpdated:
		if c, ok := w.st.Contacts[ev.AccountID]; ok {
			c.Name = ev.Profile.Name
			w.st.Contacts[ev.AccountID] = c
		}
	case doctor.DoctorRegistered:
		w.doctor(ev.DoctorID).Name = ev.Profile.Name
	case doctor.ProfileUpdated:
		w.doctor(ev.DoctorID).Name = ev.Profile.Name
	case doctor.ScheduleSet:
		d := w.doctor(ev.DoctorID)
		d.Zone, d.loc = ev.Schedule.Timezone, loadZone(ev.Schedule.Timezone)
	case doctor.SlotReserved:
		a := &appt{PatientID: w.strs.Share(ev.PatientID), DoctorID: w.strs.Share(ev.DoctorID), Start: ev.Start, End: ev.End,
			Status: ev.Status, Currency: ev.Currency, Sequence: e.Position}
		w.st.Appts[ev.AppointmentID] = a
		if ev.Status == doctor.StatusConfirmed {
			w.schedule(ev.AppointmentID, a, w.cfg.Now())
			return w.confirmed(e, ev.AppointmentID, a)
		}
	case doctor.PaymentOrderCreated:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok || a.Status != doctor.StatusHeld {
			return nil
		}
		d := w.data(ev.AppointmentID, a)
		if w.cfg.PayLink != nil {
			d.PayLink = w.cfg.PayLink(ev.AppointmentID, ev.OrderID)
		}
		return w.mails(e, KindBookingHeld, a, d, nil)
	case doctor.AppointmentConfirmed:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok {
			return nil
		}
		a.Status, a.Sequence = doctor.StatusConfirmed, e.Position
		w.schedule(ev.AppointmentID, a, w.cfg.Now())
		return w.confirmed(e, ev.AppointmentID, a)
	case doctor.PaymentCaptured:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok || ev.RefundDue {
			return nil
		}
		d := w.data(ev.AppointmentID, a)
		d.Amount = money(ev.Amount, ev.Currency)
		return w.mails(e, KindPaymentReceived, a, d, nil)
	case doctor.HoldExpired:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok {
			return nil
		}
		a.Status = doctor.StatusExpired
		return w.mails(e, KindHoldExpired, a, w.data(ev.AppointmentID, a), nil)
	case doctor.AppointmentRescheduled:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok {
			return nil
		}
		prev := w.when(a, ev.PreviousStart)
		a.Start, a.End, a.Sequence = ev.Start, ev.End, e.Position
		w.schedule(ev.AppointmentID, a, w.cfg.Now())
		d := w.data(ev.AppointmentID, a)
		d.PreviousWhen = prev
		return w.mails(e, KindRescheduled, a, d, w.invite(ev.AppointmentID, a, false))
	case doctor.AppointmentCancelled:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok {
			return nil
		}
		wasHeld := a.Status == doctor.StatusHeld
		a.Status, a.Sequence = doctor.StatusCancelled, e.Position
		d := w.data(ev.AppointmentID, a)
		d.CancelledBy, d.Reason = cancelledBy(ev.CancelledBy), Clean(ev.Reason)
		if ev.RefundDue && ev.RefundAmount > 0 {
			d.Refund = money(ev.RefundAmount, a.Currency)
		} else if ev.RefundDue {
			d.Refund = "your payment"
		}
		out := w.mails(e, KindCancelled, a, d, w.invite(ev.AppointmentID, a, true))
		if !wasHeld {
			out = append(out, w.doctorMail(e, KindDoctorCancellation, ev.AppointmentID, a, func(d *mailData) {
				d.CancelledBy, d.Reason = cancelledBy(ev.CancelledBy), Clean(ev.Reason)
			})...)
		}
		return out
	case doctor.AppointmentCompleted:
		if a, ok := w.st.Appts[ev.AppointmentID]; ok {
			a.Status = doctor.StatusCompleted
		}
	case doctor.AppointmentMarkedNoShow:
		if a, ok := w.st.Appts[ev.AppointmentID]; ok {
			a.Status = doctor.StatusNoShow
		}
	case doctor.RefundProcessed:
		a, ok := w.st.Appts[ev.AppointmentID]
		if !ok {
			return nil
		}
		d := w.data(ev.AppointmentID, a)
		d.Amount = money(ev.Amount, a.Currency)
		return w.mails(e, KindRefundProcessed, a, d, nil)
	}
	return nil
}

func (w *Worker) doctor(id string) *doctorInfo {
	d, ok := w.st.Doctors[id]
	if !ok {
		d = &doctorInfo{loc: time.UTC}
		w.st.Doctors[id] = d
	}
	return d
}

// confirmed: the patient's confirmation (with the invite) and the doctor's
// new booking.
func (w *Worker) confirmed(e projections.Event, id string, a *appt) []Mail {
	out := w.mails(e, KindBookingConfirmed, a, w.data(id, a), w.invite(id, a, false))
	return append(out, w.doctorMail(e, KindDoctorNewBooking, id, a, nil)...)
}

func (w *Worker) doctorMail(e projections.Event, kind, id string, a *appt, fill func(*mailData)) []Mail {
	acc, ok := w.st.DoctorAccounts[a.DoctorID]
	if !ok {
		return nil
	}
	d := w.data(id, a)
	if fill != nil {
		fill(&d)
	}
	m, ok := w.build(mailID(e.ID.String(), "doctor"), kind, acc, d, nil, e.RecordedAt, a.PatientID)
	if !ok {
		return nil
	}
	return []Mail{m}
}

// mails is the patient's mail of kind about the fact e.
func (w *Worker) mails(e projections.Event, kind string, a *appt, d mailData, inv *invite) []Mail {
	m, ok := w.build(mailID(e.ID.String(), "patient"), kind, a.PatientID, d, inv, e.RecordedAt, a.PatientID)
	if !ok {
		return nil
	}
	return []Mail{m}
}

type invite struct {
	method string
	ics    []byte
}

// invite is the calendar entry of the appointment (cancelled: its
// cancellation).
func (w *Worker) invite(id string, a *appt, cancel bool) *invite {
	if !w.mailing {
		return nil
	}
	method := "REQUEST"
	if cancel {
		method = "CANCEL"
	}
	return &invite{method: method, ics: ical.Write(method, w.calendarEvent(id, a, cancel))}
}

func (w *Worker) calendarEvent(id string, a *appt, cancel bool) ical.Event {
	d := w.st.Doctors[a.DoctorID]
	name := ""
	if d != nil {
		name = Clean(d.Name)
	}
	return ical.Event{UID: id, Sequence: ical.Sequence(a.Sequence), Start: a.Start, End: a.End, Summary: "Appointment with " + name,
		Description: "Prescripto appointment " + id, Cancelled: cancel, Stamp: w.cfg.Now()}
}

// build renders a mail to the account to (false: no address known).
// The mail is about the patient of d's appointment (see Mail.About).
func (w *Worker) build(id, kind, to string, d mailData, inv *invite, at time.Time, about string) (Mail, bool) {
	if !w.mailing {
		return Mail{}, false
	}
	c, ok := w.st.Contacts[to]
	if !ok || c.Email == "" {
		return Mail{}, false
	}
	d.Name = Clean(c.Name)
	subject, text, html, err := render(kind, d)
	if err != nil {
		return Mail{}, false
	}
	m := Mail{Message: Message{ID: id, To: c.Email, ToName: d.Name, Subject: subject, Body: text, HTML: html, Date: at},
		Kind: kind, About: about, Status: StatusPending, NextAt: at, CreatedAt: w.cfg.Now()}
	if inv != nil {
		m.Calendar, m.CalendarMethod = inv.ics, inv.method
	}
	return m, true
}

// data is the template data of appointment id.
func (w *Worker) data(id string, a *appt) mailData {
	d := mailData{AppointmentID: id, When: w.when(a, a.Start)}
	if doc := w.st.Doctors[a.DoctorID]; doc != nil {
		d.DoctorName = Clean(doc.Name)
	}
	if p, ok := w.st.Contacts[a.PatientID]; ok {
		d.PatientName = Clean(p.Name)
	}
	return d
}

// when is t in the doctor's zone, with the zone's abbreviation and name.
func (w *Worker) when(a *appt, t time.Time) string {
	loc, zone := time.UTC, "UTC"
	if d := w.st.Doctors[a.DoctorID]; d != nil && d.loc != nil {
		loc, zone = d.loc, d.loc.String()
	}
	return t.In(loc).Format("Mon 2 Jan 2006, 15:04 MST") + " (" + zone + ")"
}

func cancelledBy(r domain.Role) string {
	switch r {
	case domain.RolePatient:
		return "you"
	case domain.RoleDoctor:
		return "the doctor"
	case domain.RoleAdmin:
		return "the clinic"
	case domain.RoleSystem, "":
		return "Prescripto"
	}
	return Clean(string(r))
}

// money formats minor units: 50000 INR is "INR 500.00".
func money(minor int64, currency string) string {
	cur := Clean(strings.ToUpper(currency))
	if cur == "" {
		cur = "INR"
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s %s%d.%02d", cur, sign, minor/100, minor%100)
}

// errUnknownKind: no template of that kind (a programming error).
var errUnknownKind = errors.New("notify: unknown mail kind")

// ErrNoEventID: a message without a usable id cannot be deduplicated.
var ErrNoEventID = errors.New("notify: message has no usable id")

// --- reminders ---

// reminder is a due reminder: the appointment's start it was scheduled
// for tells a stale one (the appointment moved) from a live one.
type reminder struct {
	at    time.Time
	id    string
	start time.Time
	lead  time.Duration
}

type reminderHeap []reminder

func (h reminderHeap) Len() int           { return len(h) }
func (h reminderHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h reminderHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *reminderHeap) Push(x any)        { *h = append(*h, x.(reminder)) }
func (h *reminderHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

// schedule queues the reminders of a confirmed appointment that has not
// started (its lock held). A reminder whose time has passed is queued
// too: Tick sends it late or drops it.
func (w *Worker) schedule(id string, a *appt, now time.Time) {
	if a.Status != doctor.StatusConfirmed || !now.Before(a.Start) {
		return
	}
	for _, lead := range w.cfg.Reminders {
		heap.Push(&w.due, reminder{at: a.Start.Add(-lead), id: id, start: a.Start, lead: lead})
	}
}

// Reminders says how many reminders are queued (some may be stale).
func (w *Worker) Reminders() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.due.Len()
}

// Tick puts the reminders due by now into the outbox and says how many.
// A reminder is sent only for an appointment still confirmed at the start
// it was scheduled for; one whose appointment has started is dropped (and
// counted), as is one overtaken by a shorter lead that is also due (only
// the latest reminder goes out late).
func (w *Worker) Tick(ctx context.Context) (int, error) {
	now := w.cfg.Now()
	w.mu.Lock()
	w.mailing = true
	var mails []Mail
	var popped []reminder
	for w.due.Len() > 0 && !w.due[0].at.After(now) {
		r := heap.Pop(&w.due).(reminder)
		popped = append(popped, r)
		a, ok := w.st.Appts[r.id]
		if !ok || a.Status != doctor.StatusConfirmed || !a.Start.Equal(r.start) {
			continue // withdrawn or moved
		}
		if !now.Before(a.Start) {
			w.cfg.Metrics.inc("reminder_late_dropped")
			continue
		}
		if w.overtaken(r, now) {
			w.cfg.Metrics.inc("reminder_late_dropped")
			continue
		}
		d := w.data(r.id, a)
		d.Lead = leadText(r.lead)
		id := mailID(fmt.Sprintf("reminder/%s/%d/%d", r.id, r.start.Unix(), int64(r.lead/time.Second)), "patient")
		if m, ok := w.build(id, KindReminder, a.PatientID, d, nil, r.at, a.PatientID); ok {
			m.Date = now
			mails = append(mails, m)
		}
	}
	w.mu.Unlock()
	if len(mails) == 0 {
		return 0, nil
	}
	if err := w.cfg.Outbox.Add(ctx, mails...); err != nil {
		// Put them back: the next tick tries again.
		w.mu.Lock()
		for _, r := range popped {
			heap.Push(&w.due, r)
		}
		w.mu.Unlock()
		return 0, err
	}
	if w.cfg.Wake != nil {
		w.cfg.Wake()
	}
	return len(mails), nil
}

// overtaken: a shorter lead than r's is due as well.
func (w *Worker) overtaken(r reminder, now time.Time) bool {
	for _, lead := range w.cfg.Reminders {
		if lead < r.lead && !now.Before(r.start.Add(-lead)) {
			return true
		}
	}
	return false
}

func leadText(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		if d == 24*time.Hour {
			return "24 hours"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}
