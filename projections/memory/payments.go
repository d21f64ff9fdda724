package memory

import (
	"context"
	"sort"

	"github.com/prescripto/prescripto/projections"
)

// The payments list, newest change first: paid is a log of payment changes
// in position order, one mark per change of an appointment's payment
// (AppointmentRecord.PaymentPos); a mark is current while the appointment's
// payment last changed at its position, older marks of the appointment are
// skipped and compacted away once they are most of the log.

type payMark struct {
	pos uint64
	en  *entry
}

// markPaid records that en's payment changed at en.paymentPos (the
// lock held).
func (m *Appointments) markPaid(en *entry) {
	m.paid = append(m.paid, payMark{pos: en.paymentPos, en: en})
	if len(m.paid) > 1024 && len(m.paid) > 2*len(m.byID) {
		live := m.paid[:0]
		for _, pm := range m.paid {
			if pm.pos == pm.en.paymentPos {
				live = append(live, pm)
			}
		}
		clear(m.paid[len(live):])
		m.paid = live
	}
}

// Payments implements projections.Payments.
func (m *Appointments) Payments(_ context.Context, q projections.PaymentQuery) (projections.PaymentPage, error) {
	if err := q.Validate(); err != nil {
		return projections.PaymentPage{}, err
	}
	before := uint64(1<<63 - 1)
	if q.Cursor != "" {
		c, err := projections.DecodePaymentCursor(q.Cursor)
		if err != nil {
			return projections.PaymentPage{}, err
		}
		before = c
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	page := projections.PaymentPage{Payments: []projections.PaymentRow{}}
	var last uint64
	for i := sort.Search(len(m.paid), func(i int) bool { return m.paid[i].pos >= before }) - 1; i >= 0; i-- {
		pm := m.paid[i]
		if pm.pos != pm.en.paymentPos {
			continue
		}
		r := pm.en.record()
		if !r.Listed(q) {
			continue
		}
		if len(page.Payments) == q.Limit {
			page.NextCursor = projections.EncodePaymentCursor(last)
			break
		}
		page.Payments = append(page.Payments, r.Row())
		last = pm.pos
	}
	return page, nil
}
