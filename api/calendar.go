package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/ical"
	"github.com/prescripto/prescripto/projections"
)

// calendarEvent is an appointment as a calendar entry: the same UID and
// SEQUENCE (the position of its last change) as the invitations mailed
// about it, so a calendar that has one takes the other as its update.
func calendarEvent(a projections.Appointment, stamp time.Time) ical.Event {
	e := ical.Event{UID: a.ID, Sequence: ical.Sequence(a.Position), Start: a.Start, End: a.End, Stamp: stamp}
	e.Summary = "Appointment with " + a.DoctorName
	if a.PatientName != "" {
		e.Description = "Prescripto appointment " + a.ID + " of " + a.PatientName
	} else {
		e.Description = "Prescripto appointment " + a.ID
	}
	switch a.Status {
	case "cancelled", "expired":
		e.Cancelled = true
	}
	return e
}

func writeCalendar(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// appointmentCalendar serves GET /appointments/{id}/calendar.ics to its
// patient or its doctor (someone else's is not found).
func (s *Server) appointmentCalendar(w http.ResponseWriter, r *http.Request) error {
	if err := s.await(r, projAppointments); err != nil {
		return err
	}
	a, err := s.findAppointment(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeCalendar(w, ical.Write("", calendarEvent(a, s.cfg.Now())))
	return nil
}

// maxFeedEvents bounds the appointments of one calendar feed.
const maxFeedEvents = 1000

// feedToken is the token of the calendar-feed URL of account (role, id)
// at generation: the role's initial, the id and an HMAC of the three under
// the server's feed key. Revoking the feed bumps the generation, so every
// older URL stops working; nothing but the generation is stored.
func (s *Server) feedToken(role domain.Role, id string, generation int) string {
	mac := hmac.New(sha256.New, s.cfg.CalendarFeedKey)
	fmt.Fprintf(mac, "%s/%s/%d", role, id, generation)
	return string(role[0]) + "_" + id + "_" + hex.EncodeToString(mac.Sum(nil))
}

var feedRoles = map[byte]domain.Role{'p': domain.RolePatient, 'd': domain.RoleDoctor}

// errFeedNotFound: a feed token that is malformed, unknown or revoked.
var errFeedNotFound = &HTTPError{Status: http.StatusNotFound, Code: "calendar_feed_not_found", Kind: domain.ErrNotFound,
	Detail: "No calendar feed has this address (it may have been revoked)."}

// feedURL is the URL of the caller's calendar feed (see publicBase).
func (s *Server) feedURL(r *http.Request, token string) string {
	return s.publicBase(r) + "/api/v1/calendar/" + token + ".ics"
}

// publicBase is where links the server hands out point: Config.PublicURL
// or, without it, the host the request came to.
func (s *Server) publicBase(r *http.Request) string {
	base := strings.TrimRight(s.cfg.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil || (s.cfg.TrustProxy && r.Header.Get("X-Forwarded-Proto") == "https") {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base
}

// calendarFeed answers GET /me/calendar-feed: {url} of the caller's
// private feed (the same URL until it is revoked).
func (s *Server) calendarFeed(w http.ResponseWriter, r *http.Request) error {
	if len(s.cfg.CalendarFeedKey) == 0 {
		return ErrNotImplemented
	}
	p, _ := PrincipalFrom(r.Context())
	a, err := s.cfg.Commands.Account(r.Context(), p.Role, p.UserID)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]string{"url": s.feedURL(r, s.feedToken(p.Role, p.UserID, a.CalendarFeed))})
}

// revokeCalendarFeed answers DELETE /me/calendar-feed: the feed's URL
// stops working; GET /me/calendar-feed gives a new one.
func (s *Server) revokeCalendarFeed(w http.ResponseWriter, r *http.Request) error {
	m, err := s.meta(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Commands.RevokeCalendarFeed(r.Context(), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// feedCalendar answers GET /calendar/{token}.ics, without a bearer token:
// the appointments of the feed's owner from 30 days ago on, the cancelled
// ones marked so.
func (s *Server) feedCalendar(w http.ResponseWriter, r *http.Request) error {
	if len(s.cfg.CalendarFeedKey) == 0 {
		return errFeedNotFound
	}
	token := chi.URLParam(r, "token")
	initial, rest, ok := strings.Cut(token, "_")
	id, _, ok2 := strings.Cut(rest, "_")
	role, ok3 := feedRoles[firstByte(initial)]
	if !ok || !ok2 || !ok3 || len(initial) != 1 || len(token) > 200 {
		return errFeedNotFound
	}
	a, err := s.cfg.Commands.Account(r.Context(), role, id)
	if err != nil || !a.Active {
		return errFeedNotFound
	}
	if !hmac.Equal([]byte(token), []byte(s.feedToken(role, id, a.CalendarFeed))) {
		return errFeedNotFound
	}
	q := projections.AppointmentQuery{From: s.cfg.Now().Add(-30 * 24 * time.Hour), Limit: projections.MaxPageSize}
	if role == domain.RolePatient {
		q.PatientID = id
	} else {
		q.DoctorID = id
	}
	var events []ical.Event
	for len(events) < maxFeedEvents {
		page, err := s.cfg.Appointments.Appointments(r.Context(), q)
		if err != nil {
			return err
		}
		for _, ap := range page.Appointments {
			events = append(events, calendarEvent(ap, s.cfg.Now()))
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	writeCalendar(w, ical.Write("", events...))
	return nil
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}
