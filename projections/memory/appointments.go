package memory

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Appointments is the appointments read model ("appointments"): by id, by
// patient, by doctor and in all, newest booking first; it also answers the
// dashboards and the payments list.
type Appointments struct {
	projections.Progress
	mu       sync.RWMutex
	byID     map[string]*entry
	all      []*entry            // in booking (position) order
	byPat    map[string][]*entry // patient id -> booking order
	byDoc    map[string][]*entry
	paid     []payMark // see payments.go
	doctors  map[string]doctorInfo
	patients map[string]bool
	strs     domain.Strings // see share
	// names is each patient's last name cell (see personal), shared by
	// their bookings under that name.
	names map[string]*personal
	// open opens a sealed personal field (nil: fields are as applied).
	open func(sealed string) (string, error)
}

// entry is one appointment, kept compactly: the fold works on the
// projections.AppointmentRecord that record expands it to (set folds it
// back), and the view's joined fields (doctor name, zone, patient name,
// cancel reason) are not kept at all. Instants are Unix nanoseconds
// (projections.NoNanos: none), 8 bytes where a time.Time takes 24.
type entry struct {
	id, doctorID, patientID     string
	status, currency, payStatus string // shared (see share)
	orderID, paymentID          string
	start, end, created         int64
	paymentAt, holdUntil        int64
	fees, amount, refunded      int64
	position, paymentPos        uint64
	booked                      uint64 // position of the SlotReserved event: the cursor key
	refunds                     []projections.Refund
	// name and reason hold the personal fields (reason nil: none).
	name, reason *personal
}

var (
	nanos   = projections.Nanos
	instant = projections.FromNanos
)

// record is the entry as a record, without its personal fields.
func (en *entry) record() projections.AppointmentRecord {
	r := projections.AppointmentRecord{
		Appointment: projections.Appointment{
			ID: en.id, DoctorID: en.doctorID, PatientID: en.patientID, Start: instant(en.start), End: instant(en.end),
			Status: en.status, Fees: en.fees, Currency: en.currency,
			Payment: projections.Payment{
				Status: en.payStatus, OrderID: en.orderID, PaymentID: en.paymentID, Amount: en.amount, RefundedAmount: en.refunded,
			},
			CreatedAt: instant(en.created), Position: en.position,
		},
		PaymentAt: instant(en.paymentAt), PaymentPos: en.paymentPos, Refunds: en.refunds,
	}
	if en.holdUntil != projections.NoNanos {
		t := instant(en.holdUntil)
		r.HoldExpiresAt = &t
	}
	return r
}

// set makes the entry hold r (but for its personal fields), sharing the
// strings that repeat with m's (its lock held).
func (en *entry) set(m *Appointments, r *projections.AppointmentRecord) {
	en.id, en.doctorID, en.patientID = r.ID, m.share(r.DoctorID), m.share(r.PatientID)
	en.status, en.currency, en.payStatus = m.share(r.Status), m.share(r.Currency), m.share(r.Payment.Status)
	en.orderID, en.paymentID = r.Payment.OrderID, r.Payment.PaymentID
	en.start, en.end, en.created, en.paymentAt = nanos(r.Start), nanos(r.End), nanos(r.CreatedAt), nanos(r.PaymentAt)
	en.holdUntil = projections.NoNanos
	if r.HoldExpiresAt != nil {
		en.holdUntil = nanos(*r.HoldExpiresAt)
	}
	en.fees, en.amount, en.refunded = r.Fees, r.Payment.Amount, r.Payment.RefundedAmount
	en.position, en.paymentPos, en.refunds = r.Position, r.PaymentPos, r.Refunds
}

// personal is a personal field (the patient's name, a cancellation's
// reason) as the log holds it, sealed with the person's key, and its text
// once opened. The model keeps the sealed form so that its saved state
// (SaveState) holds nothing readable: an erasure shreds the key, and a
// cell loaded from a saved state opens to "[erased]". Cells loaded from a
// saved state are opened on their first read.
type personal struct {
	sealed string
	text   atomic.Pointer[string]
}

func newPersonal(sealed, text string) *personal {
	p := &personal{sealed: sealed}
	p.text.Store(&text)
	return p
}

// erasedField is every erased person's field.
var erasedField = newPersonal(domain.Erased, domain.Erased)

// doctorInfo is what appointments join of their doctor at read time.
type doctorInfo struct {
	name, currency, timezone string
}

// NewAppointments returns an empty appointments model.
func NewAppointments() *Appointments { return NewAppointmentsOpening(nil) }

// NewAppointmentsOpening returns an empty appointments model that opens
// the sealed personal fields of a saved state with open (the registry's
// OpenValue) when they are first read.
func NewAppointmentsOpening(open func(sealed string) (string, error)) *Appointments {
	return &Appointments{
		byID: map[string]*entry{}, byPat: map[string][]*entry{}, byDoc: map[string][]*entry{},
		doctors: map[string]doctorInfo{}, patients: map[string]bool{}, strs: domain.Strings{Max: maxShared},
		names: map[string]*personal{}, open: open,
	}
}

// Name implements projections.Projection.
func (*Appointments) Name() string { return "appointments" }

// Checkpoint implements projections.Projection.
func (m *Appointments) Checkpoint(context.Context) (uint64, error) { return m.Position(), nil }

// Apply implements projections.Projection.
func (m *Appointments) Apply(_ context.Context, e projections.Event) error {
	if e.Position <= m.Position() {
		return nil
	}
	sealed := e.Data
	if err := e.Open(); err != nil { // the patient's name and reasons
		return err
	}
	m.mu.Lock()
	m.apply(e, sealed)
	m.mu.Unlock()
	m.Advance(e.Position)
	return nil
}

// apply applies e, opened; sealed is its data as the log holds it.
func (m *Appointments) apply(e projections.Event, sealed domain.Event) {
	switch ev := e.Data.(type) {
	case account.Registered:
		if ev.Role == domain.RolePatient {
			m.patients[ev.AccountID] = true
		}
	case account.PersonalDataErased:
		for _, en := range m.byPat[ev.AccountID] {
			en.name = erasedField
			if en.reason != nil {
				en.reason = erasedField
			}
		}
		delete(m.names, ev.AccountID)
	case doctor.DoctorRegistered:
		info := m.doctors[ev.DoctorID]
		info.name, info.currency = ev.Profile.Name, ev.Profile.Currency
		m.doctors[ev.DoctorID] = info
	case doctor.ProfileUpdated:
		info := m.doctors[ev.DoctorID]
		info.name, info.currency = ev.Profile.Name, ev.Profile.Currency
		m.doctors[ev.DoctorID] = info
	case doctor.ScheduleSet:
		if info, ok := m.doctors[ev.DoctorID]; ok { // a schedule follows the registration
			info.timezone = ev.Schedule.Timezone
			m.doctors[ev.DoctorID] = info
		}
	case doctor.SlotReserved:
		if _, dup := m.byID[ev.AppointmentID]; dup {
			return
		}
		r := projections.NewAppointmentRecord(ev, e)
		en := &entry{booked: e.Position}
		en.set(m, &r)
		sev, _ := sealed.(doctor.SlotReserved)
		en.name = m.nameCell(ev.PatientID, sev.PatientName, r.PatientName)
		m.byID[ev.AppointmentID] = en
		m.all = append(m.all, en)
		m.byPat[ev.PatientID] = append(m.byPat[ev.PatientID], en)
		m.byDoc[ev.DoctorID] = append(m.byDoc[ev.DoctorID], en)
		m.markPaid(en)
	case doctor.AppointmentEvent:
		en := m.byID[ev.AppointmentRef()]
		if en == nil || e.Position <= en.position {
			return
		}
		changed := en.paymentPos
		r := en.record()
		r.Fold(e)
		if r.CancelReason != "" {
			sev, _ := sealed.(doctor.AppointmentCancelled)
			en.reason = newPersonal(sev.Reason, r.CancelReason)
		}
		en.set(m, &r)
		if en.paymentPos != changed {
			m.markPaid(en)
		}
	}
}

// nameCell is the cell of a booking's patient name: the patient's last
// one when it reads the same (a patient's bookings share one), else a new
// one.
func (m *Appointments) nameCell(patient, sealed, text string) *personal {
	if sealed == "" && text == "" {
		return nil
	}
	if sealed == "" { // an event made by hand (no registry)
		sealed = text
	}
	if c := m.names[patient]; c != nil {
		if t := c.text.Load(); t != nil && *t == text {
			return c
		}
	}
	c := newPersonal(sealed, text)
	m.names[patient] = c
	return c
}

// text is a personal field's text, opened on its first read.
func (m *Appointments) text(p *personal) (string, error) {
	if p == nil {
		return "", nil
	}
	if t := p.text.Load(); t != nil {
		return *t, nil
	}
	t := p.sealed
	if m.open != nil {
		var err error
		if t, err = m.open(p.sealed); err != nil {
			return "", err
		}
	}
	p.text.Store(&t)
	return t, nil
}

// maxShared bounds the strings shared (see domain.Strings).
const maxShared = 1 << 17

// share returns s, or an equal string already held (see domain.Strings;
// its lock held).
func (m *Appointments) share(s string) string { return m.strs.Share(s) }

// view returns a copy with the doctor's current name and zone and the
// patient's personal fields joined in (an error when a sealed field
// cannot be opened now: the key store is out of reach).
func (m *Appointments) view(en *entry) (projections.Appointment, error) {
	a := en.record().Appointment
	info := m.doctors[a.DoctorID]
	a.DoctorName, a.Timezone = info.name, info.timezone
	var err1, err2 error
	a.PatientName, err1 = m.text(en.name)
	a.CancelReason, err2 = m.text(en.reason)
	return a, errors.Join(err1, err2)
}

// Appointment implements projections.Appointments.
func (m *Appointments) Appointment(_ context.Context, id string) (projections.Appointment, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	en, ok := m.byID[id]
	if !ok {
		return projections.Appointment{}, projections.ErrNotFound
	}
	return m.view(en)
}

// Appointments implements projections.Appointments.
func (m *Appointments) Appointments(_ context.Context, q projections.AppointmentQuery) (projections.AppointmentPage, error) {
	if err := q.Validate(); err != nil {
		return projections.AppointmentPage{}, err
	}
	before := uint64(1<<63 - 1)
	if q.Cursor != "" {
		c, err := projections.DecodeCursor(q.Cursor)
		if err != nil {
			return projections.AppointmentPage{}, err
		}
		before = c
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.all
	switch {
	case q.PatientID != "":
		list = m.byPat[q.PatientID]
	case q.DoctorID != "":
		list = m.byDoc[q.DoctorID]
	}
	// Lists are in booking order: start at the newest booked before the cursor.
	i := sort.Search(len(list), func(i int) bool { return list[i].booked >= before }) - 1
	page := projections.AppointmentPage{Appointments: []projections.Appointment{}}
	var last uint64
	for ; i >= 0; i-- {
		en := list[i]
		start := instant(en.start)
		if (q.DoctorID != "" && en.doctorID != q.DoctorID) || (q.Status != "" && en.status != q.Status) ||
			(!q.From.IsZero() && start.Before(q.From)) || (!q.To.IsZero() && !start.Before(q.To)) {
			continue
		}
		if len(page.Appointments) == q.Limit {
			page.NextCursor = projections.EncodeCursor(last)
			break
		}
		v, err := m.view(en)
		if err != nil {
			return projections.AppointmentPage{}, err
		}
		page.Appointments = append(page.Appointments, v)
		last = en.booked
	}
	return page, nil
}

// DoctorDashboard implements projections.Dashboards.
func (m *Appointments) DoctorDashboard(_ context.Context, doctorID string) (projections.DoctorDashboard, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	info, ok := m.doctors[doctorID]
	if !ok {
		return projections.DoctorDashboard{}, projections.ErrNotFound
	}
	list := m.byDoc[doctorID]
	out := projections.DoctorDashboard{Currency: info.currency, Appointments: len(list), Latest: []projections.Appointment{}}
	patients := map[string]bool{}
	for _, en := range list {
		patients[en.patientID] = true
		if en.status == string(doctor.StatusCompleted) || en.payStatus == string(doctor.PaymentPaid) {
			out.Earnings += en.fees
		}
	}
	out.Patients = len(patients)
	var err error
	out.Latest, err = m.latest(out.Latest, list)
	return out, err
}

// AdminDashboard implements projections.Dashboards.
func (m *Appointments) AdminDashboard(context.Context) (projections.AdminDashboard, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := projections.AdminDashboard{Doctors: len(m.doctors), Patients: len(m.patients), Appointments: len(m.all), Latest: []projections.Appointment{}}
	var err error
	out.Latest, err = m.latest(out.Latest, m.all)
	return out, err
}

// latest appends the views of the LatestN last entries of list, newest
// first.
func (m *Appointments) latest(out []projections.Appointment, list []*entry) ([]projections.Appointment, error) {
	for i := len(list) - 1; i >= 0 && len(out) < projections.LatestN; i-- {
		v, err := m.view(list[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
