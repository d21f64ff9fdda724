package analytics

import (
	"cmp"
	"iter"
	"math"
	"slices"

	"github.com/prescripto/prescripto/domain/doctor"
)

// DaySummary is the counters of one doctor on one date, by currency.
type DaySummary struct {
	Key    DayKey
	Totals map[string]Counts
}

// BookingRows groups the days of the query's range into its rows: one per
// key and currency, for the keys with at least one appointment. Days are
// sorted by date; doctors and specialities by label, then key.
func BookingRows(q Query, doctors map[string]*Doctor, days iter.Seq[DaySummary]) []BookingRow {
	// Days are keyed by date until the end (formatting a date per day
	// summary would cost more than the sums).
	type rowKey struct {
		date          doctor.Date
		key, currency string
	}
	rows := map[rowKey]*BookingRow{}
	for d := range days {
		if d.Key.Date.Before(q.From) || q.To.Before(d.Key.Date) {
			continue
		}
		var k rowKey
		var label string
		switch q.GroupBy {
		case ByDoctor:
			k.key = d.Key.DoctorID
			if doc := doctors[k.key]; doc != nil {
				label = doc.Name
			}
		case BySpeciality:
			if doc := doctors[d.Key.DoctorID]; doc != nil {
				k.key = doc.Speciality
			}
			label = k.key
		default:
			k.date = d.Key.Date
		}
		for cur, c := range d.Totals {
			if c.Booked == 0 && c.Revenue == 0 && c.Refunded == 0 {
				continue
			}
			k.currency = cur
			r := rows[k]
			if r == nil {
				r = &BookingRow{Key: k.key, Label: label, Currency: cur}
				if k.date != (doctor.Date{}) {
					r.Key = k.date.String()
					r.Label = r.Key
				}
				rows[k] = r
			}
			r.Booked += c.Booked
			r.Cancelled += c.Cancelled
			r.Completed += c.Completed
			r.NoShow += c.NoShow
			r.Expired += c.Expired
			r.Revenue += c.Revenue
			r.Refunded += c.Refunded
		}
	}
	out := make([]BookingRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b BookingRow) int {
		if q.GroupBy != ByDay && q.GroupBy != "" {
			if c := cmp.Compare(a.Label, b.Label); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Currency, b.Currency))
	})
	return out
}

// UtilisationRows is one row per registered doctor, by name then id:
// offered slots from the doctor's schedule history (through offered, which
// may cache: see Offered), booked slots from the days of the range.
func UtilisationRows(q Query, doctors map[string]*Doctor, days iter.Seq[DaySummary], offered *Offered) []UtilisationRow {
	booked := map[string]int64{}
	for d := range days {
		if d.Key.Date.Before(q.From) || q.To.Before(d.Key.Date) {
			continue
		}
		for _, c := range d.Totals {
			booked[d.Key.DoctorID] += c.BookedSlots
		}
	}
	out := []UtilisationRow{}
	for _, doc := range doctors {
		if !doc.Registered {
			continue
		}
		r := UtilisationRow{DoctorID: doc.ID, DoctorName: doc.Name, OfferedSlots: offered.Slots(doc, q.From, q.To), BookedSlots: booked[doc.ID]}
		r.Ratio = Ratio(r.BookedSlots, r.OfferedSlots)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b UtilisationRow) int {
		return cmp.Or(cmp.Compare(a.DoctorName, b.DoctorName), cmp.Compare(a.DoctorID, b.DoctorID))
	})
	return out
}

// Ratio is booked/offered to four decimals, 0 when nothing was offered. It
// can exceed 1: a booking made before a schedule change took a slot the new
// grid no longer offers, or one inside time off added later.
func Ratio(booked, offered int64) float64 {
	if offered == 0 {
		return 0
	}
	return math.Round(float64(booked)/float64(offered)*1e4) / 1e4
}

// Dates lists the dates [from, to].
func Dates(from, to doctor.Date) []doctor.Date {
	var out []doctor.Date
	for d := from; !to.Before(d); d = d.AddDays(1) {
		out = append(out, d)
	}
	return out
}

// Slice yields the summaries of a slice.
func Slice(days []DaySummary) iter.Seq[DaySummary] { return slices.Values(days) }
