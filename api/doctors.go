package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// MaxSlotDays bounds GET /doctors/{id}/slots?days=.
const MaxSlotDays = projections.MaxSlotDays

type doctorJSON struct {
	projections.Doctor
	Schedule *doctor.Schedule `json:"schedule,omitempty"`
	Position uint64           `json:"position,omitempty"`
}

func toDoctor(d commands.DoctorResult) doctorJSON {
	p := d.Profile
	out := doctorJSON{Doctor: projections.Doctor{
		ID: d.ID, Name: p.Name, Speciality: p.Speciality, Degree: p.Degree, ExperienceYears: p.ExperienceYears,
		About: p.About, Fees: p.Fees, Currency: p.Currency, Address: p.Address, Available: p.Available, ImageURL: p.ImageURL,
	}, Schedule: d.Schedule, Position: d.Position}
	if d.Schedule != nil {
		out.Timezone = d.Schedule.Timezone
	}
	return out
}

func (s *Server) listDoctors(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projDoctors); err != nil {
		return err
	}
	q := r.URL.Query()
	f := projections.DoctorFilter{Speciality: q.Get("speciality"), Query: q.Get("q")}
	if len(f.Speciality) > 100 || len(f.Query) > 100 {
		return ErrInvalidQuery.WithDetail("speciality and q must be at most 100 characters")
	}
	if v := q.Get("available"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return ErrInvalidQuery.WithDetail("available must be true or false")
		}
		f.Available = &b
	}
	docs, err := s.cfg.Directory.Doctors(r.Context(), f)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"doctors": docs})
}

func (s *Server) getDoctor(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projDoctors); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	d, err := s.cfg.Directory.Doctor(r.Context(), id)
	if projections.IsNotFound(err) {
		if err = s.catchUpAfterMiss(r.Context(), projDoctors); err == nil {
			d, err = s.cfg.Directory.Doctor(r.Context(), id)
		}
	}
	if err != nil {
		return notFound(err, "doctor")
	}
	return reply(w, http.StatusOK, d)
}

// notFound names what was not found in a read-model miss.
func notFound(err error, what string) error {
	if projections.IsNotFound(err) {
		return domain.NewError(domain.ErrNotFound, what+"_not_found", what+" not found")
	}
	return err
}

func (s *Server) freeSlots(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projSlots, projDoctors); err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	q := r.URL.Query()
	days, err := queryInt(q, "days", 7, 1, MaxSlotDays)
	if err != nil {
		return err
	}
	doc, err := s.cfg.Directory.Doctor(r.Context(), id)
	if projections.IsNotFound(err) {
		if err = s.catchUpAfterMiss(r.Context(), projDoctors, projSlots); err == nil {
			doc, err = s.cfg.Directory.Doctor(r.Context(), id)
		}
	}
	if err != nil {
		return notFound(err, "doctor")
	}
	now := s.cfg.Now().UTC()
	var from doctor.Date
	if v := q.Get("from"); v != "" {
		if from, err = doctor.ParseDate(v); err != nil {
			return ErrInvalidQuery.WithDetail("from must be a date YYYY-MM-DD")
		}
		if from.Year < 2000 || from.Year > 2200 {
			return ErrInvalidQuery.WithDetail("from is out of range")
		}
	} else {
		loc := time.UTC
		if z, err := doctor.LoadZone(doc.Timezone); err == nil {
			loc = z
		}
		from = doctor.DateOf(now.In(loc))
	}
	body, err := s.freeSlotsJSON(r.Context(), id, from, days, now)
	if projections.IsNotFound(err) {
		// The directory knows the doctor, the free slots not yet.
		if err = s.catchUpAfterMiss(r.Context(), projSlots); err == nil {
			body, err = s.freeSlotsJSON(r.Context(), id, from, days, now)
		}
	}
	if err != nil {
		return notFound(err, "doctor")
	}
	writeJSONBytes(w, http.StatusOK, body)
	return nil
}

// writeJSONBytes answers status with the encoded JSON body and a newline,
// as WriteJSON does, in one Write with a Content-Length. A week of slots is
// about 9 kB: written in two parts (body, then newline) without a length,
// net/http chunks it and sends it in three write(2) calls, the last one for
// the newline and the final chunk; with the length and one Write it takes
// two (its connection buffer holds 4 kB), and no chunk framing. body is
// not modified (it may be a read model's shared bytes).
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	bp := bodyPool.Get().(*[]byte)
	b := append(append((*bp)[:0], body...), '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= maxPooledBody {
		*bp = b
		bodyPool.Put(bp)
	}
}

// maxPooledBody bounds the buffers bodyPool keeps (a year of half-hour
// slots is about 450 kB; a week, 9 kB).
const maxPooledBody = 64 << 10

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (s *Server) freeSlotsJSON(ctx context.Context, id string, from doctor.Date, days int, now time.Time) ([]byte, error) {
	if fast, ok := s.cfg.Slots.(projections.SlotsJSON); ok {
		return fast.FreeSlotsJSON(ctx, id, from, days, now)
	}
	fs, err := s.cfg.Slots.FreeSlots(ctx, id, from, days, now)
	if err != nil {
		return nil, err
	}
	return fs.AppendJSON(make([]byte, 0, 8192)), nil
}

func (s *Server) specialities(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projDoctors); err != nil {
		return err
	}
	sp, err := s.cfg.Directory.Specialities(r.Context())
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"specialities": sp})
}

type createDoctorRequest struct {
	Name            string           `json:"name"`
	Email           string           `json:"email"`
	Password        string           `json:"password"`
	Speciality      string           `json:"speciality"`
	Degree          string           `json:"degree"`
	ExperienceYears int              `json:"experienceYears"`
	About           string           `json:"about"`
	Fees            int64            `json:"fees"`
	Currency        string           `json:"currency"`
	Address         string           `json:"address"`
	ImageURL        string           `json:"imageUrl"`
	Timezone        string           `json:"timezone"`
	Available       *bool            `json:"available"`
	Schedule        *scheduleRequest `json:"schedule"`
}

// DefaultSchedule is what a doctor onboarded with only a time zone gets:
// every day 10:00-21:00 in 30-minute slots, bookable 30 days ahead with 30
// minutes' notice, no online payment.
func DefaultSchedule(tz string) doctor.Schedule {
	s := doctor.Schedule{Timezone: tz, SlotMinutes: 30, BookingWindowDays: 30, MinNoticeMinutes: 30, PaymentPolicy: doctor.PaymentNone}
	for wd := 1; wd <= 7; wd++ {
		s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "10:00", End: "21:00"})
	}
	return s
}

func (s *Server) createDoctor(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusCreated, bodyRequired, func(r *http.Request, m commands.Meta, req *createDoctorRequest) (any, error) {
		available := true
		if req.Available != nil {
			available = *req.Available
		}
		var sched doctor.Schedule
		switch {
		case req.Schedule != nil:
			sched = req.Schedule.schedule()
			if sched.Timezone == "" {
				sched.Timezone = req.Timezone
			}
		case strings.TrimSpace(req.Timezone) != "":
			sched = DefaultSchedule(strings.TrimSpace(req.Timezone))
		default:
			return nil, domain.Invalid("timezone is required (an IANA zone such as Asia/Kolkata)")
		}
		res, err := s.cfg.Commands.RegisterDoctor(r.Context(), m, commands.RegisterDoctor{
			Profile: doctor.Profile{
				Name: req.Name, Speciality: req.Speciality, Degree: req.Degree, ExperienceYears: req.ExperienceYears,
				About: req.About, Fees: req.Fees, Currency: req.Currency, Address: req.Address, ImageURL: req.ImageURL, Available: available,
			},
			Email: req.Email, Password: req.Password, Schedule: &sched,
		})
		return toDoctor(res), err
	})
}

type adminPatchDoctorRequest struct {
	Name            *string `json:"name"`
	Speciality      *string `json:"speciality"`
	Degree          *string `json:"degree"`
	ExperienceYears *int    `json:"experienceYears"`
	About           *string `json:"about"`
	Fees            *int64  `json:"fees"`
	Currency        *string `json:"currency"`
	Address         *string `json:"address"`
	ImageURL        *string `json:"imageUrl"`
	Available       *bool   `json:"available"`
}

func (s *Server) adminPatchDoctor(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *adminPatchDoctorRequest) (any, error) {
		return s.patchDoctor(r, m, chi.URLParam(r, "id"), commands.ProfilePatch{
			Name: req.Name, Speciality: req.Speciality, Degree: req.Degree, ExperienceYears: req.ExperienceYears, About: req.About,
			Fees: req.Fees, Currency: req.Currency, Address: req.Address, ImageURL: req.ImageURL, Available: req.Available,
		})
	})
}

// ownProfileRequest is what a doctor may change of their own profile.
type ownProfileRequest struct {
	Fees      *int64  `json:"fees"`
	Address   *string `json:"address"`
	About     *string `json:"about"`
	Available *bool   `json:"available"`
}

func (s *Server) patchOwnProfile(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *ownProfileRequest) (any, error) {
		return s.patchDoctor(r, m, m.Actor.UserID, commands.ProfilePatch{Fees: req.Fees, Address: req.Address, About: req.About, Available: req.Available})
	})
}

func (s *Server) patchDoctor(r *http.Request, m commands.Meta, id string, patch commands.ProfilePatch) (any, error) {
	res, err := s.cfg.Commands.UpdateDoctorProfile(r.Context(), m, commands.UpdateDoctorProfile{DoctorID: id, Patch: patch})
	return toDoctor(res), err
}

type scheduleRequest struct {
	Timezone          string               `json:"timezone"`
	SlotMinutes       int                  `json:"slotMinutes"`
	BookingWindowDays int                  `json:"bookingWindowDays"`
	MinNoticeMinutes  int                  `json:"minNoticeMinutes"`
	PaymentPolicy     doctor.PaymentPolicy `json:"paymentPolicy"`
	HoldMinutes       int                  `json:"holdMinutes"`
	// RefundCutoffHours is a pointer so that leaving it out (the default,
	// 24) differs from 0 (refund a patient's cancellation up to the start).
	RefundCutoffHours *int                 `json:"refundCutoffHours"`
	Weekly            []doctor.WeeklyHours `json:"weekly"`
}

func (q scheduleRequest) schedule() doctor.Schedule {
	cutoff := doctor.DefaultRefundCutoffHours
	if q.RefundCutoffHours != nil {
		cutoff = *q.RefundCutoffHours
	}
	return doctor.Schedule{Timezone: q.Timezone, SlotMinutes: q.SlotMinutes, BookingWindowDays: q.BookingWindowDays,
		MinNoticeMinutes: q.MinNoticeMinutes, PaymentPolicy: q.PaymentPolicy, HoldMinutes: q.HoldMinutes,
		RefundCutoffHours: cutoff, Weekly: q.Weekly}
}

type scheduleJSON struct {
	DoctorID string `json:"doctorId"`
	doctor.Schedule
	Position uint64 `json:"position"`
}

func (s *Server) setSchedule(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusOK, bodyRequired, func(r *http.Request, m commands.Meta, req *scheduleRequest) (any, error) {
		if req.PaymentPolicy == "" {
			req.PaymentPolicy = doctor.PaymentNone
		}
		res, err := s.cfg.Commands.SetSchedule(r.Context(), m, commands.SetSchedule{DoctorID: chi.URLParam(r, "id"), Schedule: req.schedule()})
		out := scheduleJSON{DoctorID: res.ID, Position: res.Position}
		if res.Schedule != nil {
			out.Schedule = *res.Schedule
		}
		return out, err
	})
}

type timeOffRequest struct {
	From           string `json:"from"`
	To             string `json:"to"`
	Reason         string `json:"reason"`
	CancelBookings bool   `json:"cancelBookings"`
}

type timeOffJSON struct {
	ID                    string    `json:"id"`
	DoctorID              string    `json:"doctorId"`
	From                  time.Time `json:"from"`
	To                    time.Time `json:"to"`
	Reason                string    `json:"reason"`
	CancelledAppointments []string  `json:"cancelledAppointments"`
	Position              uint64    `json:"position"`
}

func (s *Server) addTimeOff(w http.ResponseWriter, r *http.Request) error {
	return runCommand(s, w, r, http.StatusCreated, bodyRequired, func(r *http.Request, m commands.Meta, req *timeOffRequest) (any, error) {
		from, err1 := parseInstant("from", req.From)
		to, err2 := parseInstant("to", req.To)
		if err := firstErr(err1, err2); err != nil {
			return nil, err
		}
		id := chi.URLParam(r, "id")
		res, err := s.cfg.Commands.AddTimeOff(r.Context(), m, commands.AddTimeOff{DoctorID: id, From: from, To: to, Reason: req.Reason, CancelBookings: req.CancelBookings})
		cancelled := res.Cancelled
		if cancelled == nil {
			cancelled = []string{}
		}
		return timeOffJSON{ID: res.TimeOff.ID, DoctorID: id, From: res.TimeOff.From, To: res.TimeOff.To,
			Reason: res.TimeOff.Reason, CancelledAppointments: cancelled, Position: res.Position}, err
	})
}

// parseInstant parses an RFC 3339 instant field of a body.
func parseInstant(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, domain.Invalid("%s is required (an RFC 3339 instant such as 2026-11-25T04:30:00Z)", field)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, domain.Invalid("%s must be an RFC 3339 instant such as 2026-11-25T04:30:00Z", field)
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, domain.Invalid("%s is out of range", field)
	}
	return t.UTC(), nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (s *Server) doctorDashboard(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	d, err := s.cfg.Dashboards.DoctorDashboard(r.Context(), p.UserID)
	if err != nil {
		return notFound(err, "doctor")
	}
	return reply(w, http.StatusOK, d)
}

func (s *Server) adminDashboard(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	d, err := s.cfg.Dashboards.AdminDashboard(r.Context())
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, d)
}
