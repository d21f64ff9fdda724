package memory

import (
	"context"
	"sort"
	"sync"

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
}

type entry struct {
	r      projections.AppointmentRecord
	booked uint64 // position of the SlotReserved event: the cursor key
}

// doctorInfo is what appointments join of their doctor at read time.
type doctorInfo struct {
	name, currency, timezone string
}

// NewAppointments returns an empty appointments model.
func NewAppointments() *Appointments {
	return &Appointments{
		byID: map[string]*entry{}, byPat: map[string][]*entry{}, byDoc: map[string][]*entry{},
		doctors: map[string]doctorInfo{}, patients: map[string]bool{}, strs: domain.Strings{Max: maxShared},
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
	if err := e.Open(); err != nil { // the patient's name and reasons
		return err
	}
	m.mu.Lock()
	m.apply(e)
	m.mu.Unlock()
	m.Advance(e.Position)
	return nil
}

func (m *Appointments) apply(e projections.Event) {
	switch ev := e.Data.(type) {
	case account.Registered:
		if ev.Role == domain.RolePatient {
			m.patients[ev.AccountID] = true
		}
	case account.PersonalDataErased:
		for _, en := range m.byPat[ev.AccountID] {
			en.r.PatientName = domain.Erased
			if en.r.CancelReason != "" {
				en.r.CancelReason = domain.Erased
			}
		}
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
		en := &entry{booked: e.Position, r: projections.NewAppointmentRecord(ev, e)}
		a := &en.r.Appointment
		a.DoctorID, a.PatientID, a.PatientName = m.share(a.DoctorID), m.share(a.PatientID), m.share(a.PatientName)
		a.Status, a.Currency, a.Payment.Status = m.share(a.Status), m.share(a.Currency), m.share(a.Payment.Status)
		m.byID[ev.AppointmentID] = en
		m.all = append(m.all, en)
		m.byPat[ev.PatientID] = append(m.byPat[ev.PatientID], en)
		m.byDoc[ev.DoctorID] = append(m.byDoc[ev.DoctorID], en)
		m.markPaid(en)
	case doctor.AppointmentEvent:
		en := m.byID[ev.AppointmentRef()]
		if en == nil || e.Position <= en.r.Position {
			return
		}
		changed := en.r.PaymentPos
		en.r.Fold(e)
		if en.r.PaymentPos != changed {
			m.markPaid(en)
		}
	}
}

// maxShared bounds the strings shared (see domain.Strings).
const maxShared = 1 << 17

// share returns s, or an equal string already held (see domain.Strings;
// its lock held).
func (m *Appointments) share(s string) string { return m.strs.Share(s) }

// view returns a copy with the doctor's current name and zone joined in.
func (m *Appointments) view(en *entry) projections.Appointment {
	a := en.r.Appointment
	info := m.doctors[a.DoctorID]
	a.DoctorName, a.Timezone = info.name, info.timezone
	return a
}

// Appointment implements projections.Appointments.
func (m *Appointments) Appointment(_ context.Context, id string) (projections.Appointment, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	en, ok := m.byID[id]
	if !ok {
		return projections.Appointment{}, projections.ErrNotFound
	}
	return m.view(en), nil
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
		a := &en.r.Appointment
		if (q.DoctorID != "" && a.DoctorID != q.DoctorID) || (q.Status != "" && a.Status != q.Status) ||
			(!q.From.IsZero() && a.Start.Before(q.From)) || (!q.To.IsZero() && !a.Start.Before(q.To)) {
			continue
		}
		if len(page.Appointments) == q.Limit {
			page.NextCursor = projections.EncodeCursor(last)
			break
		}
		page.Appointments = append(page.Appointments, m.view(en))
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
		patients[en.r.PatientID] = true
		if en.r.Status == string(doctor.StatusCompleted) || en.r.Payment.Status == string(doctor.PaymentPaid) {
			out.Earnings += en.r.Fees
		}
	}
	out.Patients = len(patients)
	for i := len(list) - 1; i >= 0 && len(out.Latest) < projections.LatestN; i-- {
		out.Latest = append(out.Latest, m.view(list[i]))
	}
	return out, nil
}

// AdminDashboard implements projections.Dashboards.
func (m *Appointments) AdminDashboard(context.Context) (projections.AdminDashboard, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := projections.AdminDashboard{Doctors: len(m.doctors), Patients: len(m.patients), Appointments: len(m.all), Latest: []projections.Appointment{}}
	for i := len(m.all) - 1; i >= 0 && len(out.Latest) < projections.LatestN; i-- {
		out.Latest = append(out.Latest, m.view(m.all[i]))
	}
	return out, nil
}
