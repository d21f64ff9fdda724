package app_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

// TestPatientRulesAcrossAPIProcesses: one patient fires 50 bookings of
// distinct times at 50 doctors at once, through two api processes: exactly
// MAX_LIVE_BOOKINGS (5) succeed; 20 bookings of one instant at 20 doctors:
// exactly one.
func TestPatientRulesAcrossAPIProcesses(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true, MaxLiveBookings: 5})
	replica := e.StartAPIReplica(t)
	envs := []*testenv.Env{e, replica}
	var docs []testenv.DoctorLogin
	for i := range 50 {
		docs = append(docs, e.NewDoctor(t, fmt.Sprintf("Dr. Limit %02d", i), "Cardiology"))
	}
	e.CaughtUp(t)
	race := func(token string, n int, start func(i int) time.Time) map[string]int {
		codes := make([]string, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				r := envs[i%2].Book(t, token, docs[i].ID, start(i))
				switch r.Status {
				case http.StatusCreated:
					codes[i] = "created"
				case http.StatusConflict:
					codes[i] = r.CheckProblem(t, http.StatusConflict, "").Code
				default:
					codes[i] = fmt.Sprintf("status %d", r.Status)
				}
			})
		}
		close(gate)
		wg.Wait()
		out := map[string]int{}
		for _, c := range codes {
			out[c]++
		}
		return out
	}
	hoarder := e.Register(t, "Hoarding Harry")
	got := race(hoarder.Token, 50, func(i int) time.Time { return testenv.At(1+i/22, 10, 0).Add(time.Duration(i%22) * 30 * time.Minute) })
	if got["created"] != 5 || got["booking_limit_reached"] != 45 {
		t.Errorf("50 bookings at 50 doctors: %v; want 5 created, 45 booking_limit_reached", got)
	}
	l := e.Appointments(t, hoarder.Token, "", e.Head(t))
	if len(l.Appointments) != 5 {
		t.Errorf("the patient holds %d appointments, want 5", len(l.Appointments))
	}
	twin := e.Register(t, "Twin Timed")
	got = race(twin.Token, 20, func(int) time.Time { return testenv.At(2, 15, 0) })
	if got["created"] != 1 || got["overlapping_appointment"] != 19 {
		t.Errorf("20 bookings of one instant: %v; want 1 created, 19 overlapping_appointment", got)
	}
	// Cancelling frees a place.
	r := e.Post(t, "/appointments/"+l.Appointments[0].ID+"/cancel", hoarder.Token, map[string]string{"reason": "too many"}).Must(t, http.StatusOK)
	_ = r
	e.MustBook(t, hoarder.Token, docs[49].ID, testenv.At(5, 18, 0))
	e.Book(t, hoarder.Token, docs[48].ID, testenv.At(5, 19, 0)).CheckProblem(t, http.StatusConflict, "booking_limit_reached")
}

// TestBookingRateLimit: past BOOKING_RATE_LIMIT writes a minute, a user is
// told to wait (429 with Retry-After); another user is not.
func TestBookingRateLimit(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{BookingRateLimit: 3})
	d := e.NewDoctor(t, "Dr. Rate", "Cardiology")
	p, q := e.Register(t, "Rapid Rita"), e.Register(t, "Quiet Quinn")
	a := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 0))
	e.Post(t, "/appointments/"+a.ID+"/cancel", p.Token, map[string]string{}).Must(t, http.StatusOK)
	e.MustBook(t, p.Token, d.ID, testenv.At(1, 11, 0))
	r := e.Book(t, p.Token, d.ID, testenv.At(1, 12, 0))
	r.CheckProblem(t, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	e.MustBook(t, q.Token, d.ID, testenv.At(1, 12, 0))
}
