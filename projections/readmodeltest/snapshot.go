package readmodeltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Probe says which questions Snapshot asks.
type Probe struct {
	DoctorIDs      []string
	PatientIDs     []string
	AppointmentIDs []string
	// Free slots of every doctor for Days days from From, seen at Now.
	From doctor.Date
	Days int
	Now  time.Time
	// PageSize is the limit used to walk appointment lists (default 7, so
	// that cursors are exercised).
	PageSize int
}

// Snapshot asks the read models every question of p (the directory with
// several filters, every doctor, the specialities, every doctor's free
// slots, every appointment, every appointment list walked page by page,
// every dashboard, and a few misses) and returns the answers as indented
// JSON, times in UTC and read-model positions included, so that two read
// models can be compared with ==. An error answer is recorded by its code.
func Snapshot(ctx context.Context, t testing.TB, m Models, p Probe) string {
	t.Helper()
	if p.PageSize == 0 {
		p.PageSize = 7
	}
	var out []answer
	ask := func(q string, a any, err error) {
		if err != nil {
			out = append(out, answer{Q: q, Err: errCode(err)})
			return
		}
		out = append(out, answer{Q: q, A: a})
	}
	yes, no := true, false
	filters := []projections.DoctorFilter{{}, {Available: &yes}, {Available: &no}, {Query: "a"}, {Query: "DR"}}
	specs, err := m.Directory.Specialities(ctx)
	ask("specialities", specs, err)
	for _, s := range specs {
		filters = append(filters, projections.DoctorFilter{Speciality: strings.ToLower(s.Name)}, projections.DoctorFilter{Speciality: s.Name, Available: &yes})
	}
	for _, f := range filters {
		docs, err := m.Directory.Doctors(ctx, f)
		ask(fmt.Sprintf("doctors %s", filterString(f)), doctorViews(docs), err)
	}
	for _, id := range append(slices.Clone(p.DoctorIDs), "no-such-doctor") {
		d, err := m.Directory.Doctor(ctx, id)
		ask("doctor "+id, doctorView(d), err)
		fs, err := m.Slots.FreeSlots(ctx, id, p.From, p.Days, p.Now)
		ask("free slots "+id, normSlots(fs), err)
		dd, err := m.Dashboards.DoctorDashboard(ctx, id)
		ask("doctor dashboard "+id, doctorDashboardView{dd, appointmentViews(dd.Latest)}, err)
	}
	for _, id := range append(slices.Clone(p.AppointmentIDs), "no-such-appointment") {
		a, err := m.Appointments.Appointment(ctx, id)
		ask("appointment "+id, appointmentView(a), err)
	}
	queries := []projections.AppointmentQuery{{}}
	for _, id := range p.PatientIDs {
		queries = append(queries, projections.AppointmentQuery{PatientID: id})
	}
	for _, id := range p.DoctorIDs {
		queries = append(queries, projections.AppointmentQuery{DoctorID: id})
	}
	for _, s := range []doctor.Status{doctor.StatusHeld, doctor.StatusConfirmed, doctor.StatusCancelled, doctor.StatusExpired, doctor.StatusCompleted, doctor.StatusNoShow} {
		queries = append(queries, projections.AppointmentQuery{Status: string(s)})
	}
	for _, q := range queries {
		q.Limit = p.PageSize
		list, err := walk(ctx, m.Appointments, q)
		ask(fmt.Sprintf("appointments %+v", q), appointmentViews(list), err)
	}
	ad, err := m.Dashboards.AdminDashboard(ctx)
	ask("admin dashboard", adminDashboardView{ad, appointmentViews(ad.Latest)}, err)
	if m.Payments != nil {
		for _, st := range []string{"", "pending", "paid", "refund_pending", "refunded", "failed"} {
			rows, err := walkPayments(ctx, m.Payments, projections.PaymentQuery{Status: st, Limit: p.PageSize})
			ask(fmt.Sprintf("payments status=%q", st), paymentViews(rows), err)
		}
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return string(b)
}

type answer struct {
	Q   string `json:"q"`
	A   any    `json:"a,omitempty"`
	Err string `json:"err,omitempty"`
}

// SameSnapshot fails t when two snapshots differ, showing where.
func SameSnapshot(t testing.TB, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	lo := max(0, i-15)
	hiG, hiW := min(len(g), i+10), min(len(w), i+10)
	t.Fatalf("%s: read models differ at line %d\n--- got:\n%s\n--- want:\n%s", what, i+1,
		strings.Join(g[lo:hiG], "\n"), strings.Join(w[lo:hiW], "\n"))
}

// walk follows the cursors of q to the end, failing on a repeated cursor.
func walk(ctx context.Context, a projections.Appointments, q projections.AppointmentQuery) ([]projections.Appointment, error) {
	return follow(func(cursor string) ([]projections.Appointment, string, error) {
		q.Cursor = cursor
		page, err := a.Appointments(ctx, q)
		return page.Appointments, page.NextCursor, err
	})
}

// follow reads the pages that next gives from the first (cursor "") to
// the last, failing on a repeated cursor or a nil page.
func follow[R any](next func(cursor string) ([]R, string, error)) ([]R, error) {
	var all []R
	seen := map[string]bool{}
	cursor := ""
	for {
		rows, nextCursor, err := next(cursor)
		if err != nil {
			return nil, err
		}
		if rows == nil {
			return nil, errors.New("a nil page, want a list")
		}
		all = append(all, rows...)
		if nextCursor == "" {
			return all, nil
		}
		if seen[nextCursor] || len(rows) == 0 {
			return nil, fmt.Errorf("pagination does not advance: cursor %q after %d rows", nextCursor, len(all))
		}
		seen[nextCursor] = true
		cursor = nextCursor
	}
}

// walkPayments follows the cursors of q to the end, failing on a repeated
// cursor.
func walkPayments(ctx context.Context, p projections.Payments, q projections.PaymentQuery) ([]projections.PaymentRow, error) {
	return follow(func(cursor string) ([]projections.PaymentRow, string, error) {
		q.Cursor = cursor
		page, err := p.Payments(ctx, q)
		return page.Payments, page.NextCursor, err
	})
}

func paymentViews(rows []projections.PaymentRow) []projections.PaymentRow {
	out := make([]projections.PaymentRow, len(rows))
	for i, r := range rows {
		r.UpdatedAt = r.UpdatedAt.UTC()
		out[i] = r
	}
	return out
}

func errCode(err error) string {
	if c := domain.CodeOf(err); c != "" {
		return c
	}
	if errors.Is(err, projections.ErrNotFound) {
		return "not_found"
	}
	return err.Error()
}

func filterString(f projections.DoctorFilter) string {
	av := "any"
	if f.Available != nil {
		av = fmt.Sprint(*f.Available)
	}
	return fmt.Sprintf("speciality=%q q=%q available=%s", f.Speciality, f.Query, av)
}

type docView struct {
	projections.Doctor
	Position uint64 `json:"position"`
}

func doctorView(d projections.Doctor) docView { return docView{d, d.Position} }

func doctorViews(ds []projections.Doctor) []docView {
	out := make([]docView, len(ds))
	for i, d := range ds {
		out[i] = doctorView(d)
	}
	return out
}

type apptView struct {
	projections.Appointment
	Position uint64 `json:"position"`
}

func appointmentView(a projections.Appointment) apptView {
	a.Start, a.End, a.CreatedAt = a.Start.UTC(), a.End.UTC(), a.CreatedAt.UTC()
	if a.HoldExpiresAt != nil {
		a.HoldExpiresAt = new(a.HoldExpiresAt.UTC())
	}
	return apptView{a, a.Position}
}

func appointmentViews(as []projections.Appointment) []apptView {
	out := make([]apptView, len(as))
	for i, a := range as {
		out[i] = appointmentView(a)
	}
	return out
}

type doctorDashboardView struct {
	projections.DoctorDashboard
	Latest []apptView `json:"latest"`
}

type adminDashboardView struct {
	projections.AdminDashboard
	Latest []apptView `json:"latest"`
}

func normSlots(fs projections.FreeSlots) projections.FreeSlots {
	days := make([]projections.DaySlots, len(fs.Days))
	for i, d := range fs.Days {
		slots := make([]doctor.Slot, len(d.Slots))
		for j, s := range d.Slots {
			slots[j] = doctor.Slot{Start: s.Start.UTC(), End: s.End.UTC()}
		}
		days[i] = projections.DaySlots{Date: d.Date, Slots: slots}
	}
	fs.Days = days
	return fs
}
