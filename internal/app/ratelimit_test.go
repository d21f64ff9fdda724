package app_test

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

// TestAuthRateLimit: with AUTH_RATE_LIMIT 5, the sixth /auth request from
// one client within a minute is refused with 429 rate_limited and a
// Retry-After; other clients and other routes are not affected.
func TestAuthRateLimit(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{AuthRateLimit: 5, NoAdminLogin: true})
	login := testenv.Req{Method: http.MethodPost, Path: "/auth/login", Body: map[string]string{"email": testenv.AdminEmail, "password": testenv.AdminPassword}}

	var token string
	for i := 1; i <= 5; i++ {
		r := e.Do(t, login).Must(t, http.StatusOK)
		token = r.Map(t)["token"].(string)
	}
	r := e.Do(t, login)
	r.CheckProblem(t, http.StatusTooManyRequests, "rate_limited")
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", r.Header.Get("Retry-After"))
	}
	// Wrong passwords and registrations count against the same budget:
	// the limit guards password guessing.
	e.Post(t, "/auth/login", "", map[string]string{"email": testenv.AdminEmail, "password": "guess-0001"}).CheckProblem(t, http.StatusTooManyRequests, "rate_limited")
	e.Post(t, "/auth/register", "", map[string]string{"name": "X", "email": "x@example.test", "password": testenv.Password}).CheckProblem(t, http.StatusTooManyRequests, "rate_limited")

	// A client cannot buy a new budget with a forged X-Forwarded-For (the
	// server does not trust proxy headers by default).
	for i := range 3 {
		q := login
		q.Header = http.Header{"X-Forwarded-For": {"203.0.113." + strconv.Itoa(i+1)}, "X-Real-IP": {"198.51.100.7"}}
		e.Do(t, q).CheckProblem(t, http.StatusTooManyRequests, "rate_limited")
	}

	// Other routes are not limited.
	for range 10 {
		e.Get(t, "/doctors", "").Must(t, http.StatusOK)
		e.Get(t, "/me", token).Must(t, http.StatusOK)
	}

	// Another client (another loopback address) has its own budget.
	other := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
	}).DialContext}}
	defer other.CloseIdleConnections()
	q := login
	q.Client = other
	e.Do(t, q).Must(t, http.StatusOK)
}
