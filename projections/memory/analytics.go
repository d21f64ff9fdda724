package memory

import (
	"context"
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
// doctor its schedule changes and time off.
type Analytics struct {
	projections.Progress
	mu    sync.RWMutex
	state analytics.State
	days  map[string]map[doctor.Date]map[string]analytics.Counts // doctor -> date -> currency
}

// NewAnalytics returns an empty analytics model.
func NewAnalytics() *Analytics {
	return &Analytics{state: analytics.NewState(), days: map[string]map[doctor.Date]map[string]analytics.Counts{}}
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

// summaries reads the counters of the query's dates, and the doctors.
func (m *Analytics) summaries(q *analytics.Query) (map[string]*analytics.Doctor, []analytics.DaySummary, error) {
	if err := q.Validate(); err != nil {
		return nil, nil, err
	}
	dates := analytics.Dates(q.From, q.To)
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []analytics.DaySummary
	for id, byDate := range m.days {
		// Whichever is fewer: the dates of the range or the doctor's days.
		if len(byDate) < len(dates) {
			for d, byCur := range byDate {
				if !d.Before(q.From) && !q.To.Before(d) {
					out = append(out, analytics.DaySummary{Key: analytics.DayKey{DoctorID: id, Date: d}, Totals: byCur})
				}
			}
			continue
		}
		for _, d := range dates {
			if byCur, ok := byDate[d]; ok {
				out = append(out, analytics.DaySummary{Key: analytics.DayKey{DoctorID: id, Date: d}, Totals: byCur})
			}
		}
	}
	docs := make(map[string]*analytics.Doctor, len(m.state.Doctors))
	for id, d := range m.state.Doctors {
		c := *d // the rows read it after the lock is released
		docs[id] = &c
	}
	// The totals maps are copied too: applies change them in place.
	for i := range out {
		t := make(map[string]analytics.Counts, len(out[i].Totals))
		for k, v := range out[i].Totals {
			t[k] = v
		}
		out[i].Totals = t
	}
	return docs, out, nil
}

// Bookings implements analytics.View.
func (m *Analytics) Bookings(_ context.Context, q analytics.Query) ([]analytics.BookingRow, error) {
	docs, days, err := m.summaries(&q)
	if err != nil {
		return nil, err
	}
	return analytics.BookingRows(q, docs, days), nil
}

// Utilisation implements analytics.View.
func (m *Analytics) Utilisation(_ context.Context, q analytics.Query) ([]analytics.UtilisationRow, error) {
	docs, days, err := m.summaries(&q)
	if err != nil {
		return nil, err
	}
	return analytics.UtilisationRows(q, docs, days), nil
}
