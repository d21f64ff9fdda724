package memory

import (
	"context"
	"iter"
	"sync"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
)

// Analytics is the analysts' read model ("analytics", see
// projections/analytics): counters per doctor, local date and currency,
// moved as appointments change, and each doctor's schedule history for
// the offered slots. It keeps a few dozen bytes per appointment (no
// patient data), one counter set per doctor-day with bookings, and per
// doctor its schedule changes and time off. It is Persistent (see
// state.go).
type Analytics struct {
	projections.Progress
	mu    sync.RWMutex
	state analytics.State
	// all is every appointment of state, in booking order (what a save
	// walks a chunk at a time).
	all  []*analytics.Appointment
	days map[string]map[doctor.Date]map[string]analytics.Counts // doctor -> date -> currency
	// offered caches the offered slots per doctor and date.
	offered *analytics.Offered
}

// NewAnalytics returns an empty analytics model.
func NewAnalytics() *Analytics {
	return &Analytics{state: analytics.NewState(), days: map[string]map[doctor.Date]map[string]analytics.Counts{}, offered: analytics.NewOffered()}
}

// Name implements projections.Projection.
func (*Analytics) Name() string { return analytics.Name }

// Checkpoint implements projections.Projection.
func (m *Analytics) Checkpoint(context.Context) (uint64, error) { return m.Position(), nil }

// Apply implements projections.Projection.
func (m *Analytics) Apply(_ context.Context, e projections.Event) error {
	if e.Position <= m.Position() {
		return nil
	}
	m.mu.Lock()
	if c, ok := m.state.Apply(e); ok {
		if c.Existed {
			m.add(c.WasDay, c.Appointment.Currency, c.Was, -1)
		} else {
			m.all = append(m.all, c.Appointment)
		}
		m.add(c.Appointment.Day(), c.Appointment.Currency, c.Appointment.Counts(), 1)
	}
	m.mu.Unlock()
	m.Advance(e.Position)
	return nil
}

// add adds counts to a day's counters in currency (sign -1: takes them
// away), dropping counters that fall to zero.
func (m *Analytics) add(k analytics.DayKey, currency string, c analytics.Counts, sign int64) {
	byDate := m.days[k.DoctorID]
	if byDate == nil {
		byDate = map[doctor.Date]map[string]analytics.Counts{}
		m.days[k.DoctorID] = byDate
	}
	byCur := byDate[k.Date]
	if byCur == nil {
		byCur = map[string]analytics.Counts{}
		byDate[k.Date] = byCur
	}
	t := byCur[currency]
	t.Add(c, sign)
	switch {
	case !t.IsZero():
		byCur[currency] = t
	default:
		delete(byCur, currency)
		if len(byCur) == 0 {
			delete(byDate, k.Date)
		}
	}
}

// days yields the counters of the query's dates (the lock held).
func (m *Analytics) daysIn(q analytics.Query) iter.Seq[analytics.DaySummary] {
	return func(yield func(analytics.DaySummary) bool) {
		span := analytics.Dates(q.From, q.To)
		for id, byDate := range m.days {
			// Whichever is fewer: the dates of the range or the doctor's days.
			if len(byDate) < len(span) {
				for d, byCur := range byDate {
					if !d.Before(q.From) && !q.To.Before(d) && !yield(analytics.DaySummary{Key: analytics.DayKey{DoctorID: id, Date: d}, Totals: byCur}) {
						return
					}
				}
				continue
			}
			for _, d := range span {
				if byCur, ok := byDate[d]; ok && !yield(analytics.DaySummary{Key: analytics.DayKey{DoctorID: id, Date: d}, Totals: byCur}) {
					return
				}
			}
		}
	}
}

// Bookings implements analytics.View.
func (m *Analytics) Bookings(_ context.Context, q analytics.Query) ([]analytics.BookingRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return analytics.BookingRows(q, m.state.Doctors, m.daysIn(q)), nil
}

// Utilisation implements analytics.View.
func (m *Analytics) Utilisation(_ context.Context, q analytics.Query) ([]analytics.UtilisationRow, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return analytics.UtilisationRows(q, m.state.Doctors, m.daysIn(q), m.offered), nil
}
