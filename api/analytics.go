package api

import (
	"bytes"
	"encoding/csv"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections/analytics"
)

// The analysts' routes answer from the analytics read model: counts and
// sums per doctor and local date, never a patient. Both answer JSON, or
// CSV (RFC 4180, a header row) when the client prefers text/csv.

// projAnalytics is the analytics model's projection name.
const projAnalytics = analytics.Name

// analyticsQuery reads from, to (YYYY-MM-DD, both inclusive) and, for
// bookings, groupBy. A value that does not parse is 400 invalid_query;
// the model refuses a missing date, to before from, a range over
// analytics.MaxDays or an unknown grouping with 400 invalid_input.
func analyticsQuery(r *http.Request, grouped bool) (analytics.Query, error) {
	var q analytics.Query
	for _, p := range []struct {
		name string
		to   *doctor.Date
	}{{"from", &q.From}, {"to", &q.To}} {
		t, ok, err := QueryDate(r, p.name)
		if err != nil {
			return q, err
		}
		if ok {
			*p.to = doctor.DateOf(t)
		}
	}
	if grouped {
		q.GroupBy = analytics.GroupBy(r.URL.Query().Get("groupBy"))
	} else if r.URL.Query().Has("groupBy") {
		return q, queryError("groupBy", "unknown", "Query parameter %q is not one of this route's.", "groupBy")
	}
	return q, nil
}

// analyticsBookings answers GET /analytics/bookings?from=&to=&groupBy=.
func (s *Server) analyticsBookings(w http.ResponseWriter, r *http.Request) error {
	q, err := analyticsQuery(r, true)
	if err != nil {
		return err
	}
	if err := s.await(r, projAnalytics); err != nil {
		return err
	}
	rows, err := s.cfg.Analytics.Bookings(r.Context(), q)
	if err != nil {
		return err
	}
	if wantsCSV(r) {
		group := q.GroupBy
		if group == "" {
			group = analytics.ByDay
		}
		recs := [][]string{{"key", "label", "booked", "cancelled", "completed", "noShow", "expired", "revenue", "refunded", "currency"}}
		for _, x := range rows {
			recs = append(recs, []string{x.Key, x.Label, itoa(x.Booked), itoa(x.Cancelled), itoa(x.Completed), itoa(x.NoShow),
				itoa(x.Expired), itoa(x.Revenue), itoa(x.Refunded), x.Currency})
		}
		return writeCSV(w, "bookings-by-"+string(group)+"-"+q.From.String()+"-"+q.To.String()+".csv", recs)
	}
	return reply(w, http.StatusOK, map[string]any{"from": q.From.String(), "to": q.To.String(), "groupBy": q.GroupBy, "rows": rows})
}

// analyticsUtilisation answers GET /analytics/utilisation?from=&to=.
func (s *Server) analyticsUtilisation(w http.ResponseWriter, r *http.Request) error {
	q, err := analyticsQuery(r, false)
	if err != nil {
		return err
	}
	if err := s.await(r, projAnalytics); err != nil {
		return err
	}
	rows, err := s.cfg.Analytics.Utilisation(r.Context(), q)
	if err != nil {
		return err
	}
	if wantsCSV(r) {
		recs := [][]string{{"doctorId", "doctorName", "offeredSlots", "bookedSlots", "ratio"}}
		for _, x := range rows {
			recs = append(recs, []string{x.DoctorID, x.DoctorName, itoa(x.OfferedSlots), itoa(x.BookedSlots), strconv.FormatFloat(x.Ratio, 'f', -1, 64)})
		}
		return writeCSV(w, "utilisation-"+q.From.String()+"-"+q.To.String()+".csv", recs)
	}
	return reply(w, http.StatusOK, map[string]any{"from": q.From.String(), "to": q.To.String(), "rows": rows})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// wantsCSV reports whether the Accept header prefers text/csv to JSON:
// text/csv is listed with a weight above 0 and above any JSON's (a tie
// goes to the first listed).
func wantsCSV(r *http.Request) bool {
	csvQ, jsonQ := -1.0, -1.0
	csvAt, jsonAt := 0, 0
	for i, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		w := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				w = f
			}
		}
		switch mt {
		case "text/csv":
			if w > csvQ {
				csvQ, csvAt = w, i
			}
		case "application/json", "application/*", "*/*":
			if w > jsonQ {
				jsonQ, jsonAt = w, i
			}
		}
	}
	return csvQ > 0 && (csvQ > jsonQ || (csvQ == jsonQ && csvAt < jsonAt))
}

// writeCSV writes records as an RFC 4180 attachment named file. A cell
// that a spreadsheet would read as a formula (=, +, -, @ first: doctor
// names and specialities are typed by people) is prefixed with a quote.
func writeCSV(w http.ResponseWriter, file string, records [][]string) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.UseCRLF = true // RFC 4180
	for i, rec := range records {
		if i > 0 {
			for j, c := range rec {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) && !isNumber(c) {
					rec[j] = "'" + c
				}
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": file}))
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
