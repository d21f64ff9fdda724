package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/analytics"
	"github.com/prescripto/prescripto/projections/audit"
)

// Projection names the API waits on for X-Min-Position.
const (
	projDoctors      = "doctors"
	projSlots        = "free_slots"
	projAppointments = "appointments"
)

// Operations is what the API needs of the projection runner.
type Operations interface {
	WaitFor(ctx context.Context, projection string, pos uint64) error
	Statuses(ctx context.Context) ([]projections.Status, error)
	StartRebuild(ctx context.Context, name string) error
}

// Check is one readiness check of a dependency.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config wires a Server.
type Config struct {
	Commands     *commands.Handler
	Directory    projections.Directory
	Slots        projections.Slots
	Appointments projections.Appointments
	Dashboards   projections.Dashboards
	Payments     projections.Payments
	// Audit answers the auditors' routes from the event log.
	Audit *audit.Log
	// Analytics answers the analysts' routes.
	Analytics  analytics.View
	Operations Operations
	// HeadPosition is the event log's head, for reads that miss a fresh write.
	HeadPosition func(ctx context.Context) (uint64, error)
	Tokens       *Tokens
	Metrics      *Metrics
	Registry     *prometheus.Registry
	Logger       zerolog.Logger
	Ready        []Check
	Now          func() time.Time
	// AuthRateLimit is requests per minute per client IP on /auth/*.
	AuthRateLimit int
	// BookingRateLimit is bookings, cancellations and reschedules per
	// minute per user (default 30).
	BookingRateLimit int
	// BookingRateLimitOptions plug a shared counter store (Redis) into
	// that limiter; it must be a counter of its own.
	BookingRateLimitOptions []RateLimitOption
	// RateLimitOptions plug another counter store (Redis) into the limiter.
	RateLimitOptions []RateLimitOption
	// LoginFailures counts failed logins per account for the login
	// back-off (see loginbackoff.go); nil counts in process memory. It
	// must be a counter of its own (its window is 15 minutes).
	LoginFailures httprate.LimitCounter
	TrustProxy    bool
	// MaxWait bounds X-Min-Position waits (default 2 s).
	MaxWait time.Duration
	// RequestTimeout bounds each request's work: past it the request
	// answers 503 "timeout" (default: DefaultRequestTimeout, or MaxWait
	// plus 5 s if that is longer; see requestTimeout).
	RequestTimeout time.Duration
	// SessionTTL is how long this process trusts an account's session
	// state (token version, active, logouts) before reading it again: the
	// bound on how late another api process honours a revocation (default
	// DefaultSessionTTL; see sessions.go).
	SessionTTL time.Duration
	// AccountMail sends verification and password-reset mails (nil: none).
	AccountMail AccountMailer
	// Notifications answers the admin notification routes (nil: the
	// outbox is in another process; they answer 503).
	Notifications NotificationAdmin
	// CalendarFeedKey signs the private calendar-feed URLs (empty: no
	// feeds); PublicURL, when set, is where the URLs point.
	CalendarFeedKey []byte
	PublicURL       string
	// VerifyEmail (PRESCRIPTO_VERIFY_EMAIL): registration mails a
	// verification token, and a patient whose email is not verified cannot
	// book (403 email_unverified).
	VerifyEmail bool
	// MetricsAccess says who may read /metrics on this port (see
	// MetricsAccess): off when an ops listener serves it.
	MetricsAccess MetricsAccess
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Commands == nil:
		return errors.New("api: Commands is required")
	case c.Directory == nil || c.Slots == nil || c.Appointments == nil || c.Dashboards == nil || c.Payments == nil:
		return errors.New("api: every read model is required")
	case c.Audit == nil:
		return errors.New("api: Audit is required")
	case c.Analytics == nil:
		return errors.New("api: Analytics is required")
	case c.Operations == nil || c.HeadPosition == nil:
		return errors.New("api: Operations and HeadPosition are required")
	case c.Tokens == nil:
		return errors.New("api: Tokens is required")
	case c.Metrics == nil || c.Registry == nil:
		return errors.New("api: Metrics and Registry are required")
	case c.AuthRateLimit < 0 || c.BookingRateLimit < 0:
		return errors.New("api: rate limits must not be negative")
	case c.SessionTTL < 0:
		return errors.New("api: SessionTTL must not be negative")
	}
	return nil
}

// Server serves the REST API.
type Server struct {
	cfg      Config
	handler  http.Handler
	logins   *loginBackoff
	sessions *sessionCache
	// background holds a slot per forgot-password request worked on after
	// its answer.
	background chan struct{}
}

// NewServer builds the router.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Second
	}
	if cfg.AuthRateLimit == 0 {
		cfg.AuthRateLimit = 20
	}
	if cfg.BookingRateLimit == 0 {
		cfg.BookingRateLimit = 30
	}
	s := &Server{
		cfg: cfg, logins: newLoginBackoff(cfg.LoginFailures, cfg.Now, cfg.Logger),
		sessions: newSessionCache(cfg.Commands, cfg.SessionTTL), background: make(chan struct{}, maxBackground),
	}
	h, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() (http.Handler, error) {
	clientIP := ClientIP(s.cfg.TrustProxy)
	limit, err := NewRateLimit(s.cfg.AuthRateLimit, clientIP, s.cfg.RateLimitOptions...)
	if err != nil {
		return nil, err
	}
	// A patient's writes to appointments: a slower path for a user who
	// books, cancels or reschedules in a loop (slot hoarding).
	bookingLimit, err := NewRateLimit(s.cfg.BookingRateLimit, clientIP, append([]RateLimitOption{WithKeyPrefix("booking"), PerUser()}, append(s.cfg.BookingRateLimitOptions, FailOpen(s.cfg.Logger))...)...)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Use(RequestID, Logger(s.cfg.Logger), AccessLog(clientIP), Recoverer, requestTimeout(s.cfg.RequestTimeout, s.cfg.MaxWait), SecurityHeaders, s.cfg.Metrics.Middleware, s.cfg.MetricsAccess.scrapeToken, s.cfg.Tokens.Authenticate, s.checkSession)

	ops := func(r chi.Router) {
		r.Get("/healthz", s.healthz)
		r.Get("/readyz", s.readyz)
		s.cfg.MetricsAccess.mountMetrics(r, s.cfg.Registry)
	}
	ops(r)
	r.Route("/api/v1", func(r chi.Router) {
		ops(r)
		r.Handle("/openapi.yaml", OpenAPIHandler())

		r.Group(func(r chi.Router) {
			r.Use(limit)
			r.Post("/auth/register", handle(s.register))
			r.Post("/auth/login", handle(s.login))
			r.Post("/auth/forgot-password", handle(s.forgotPassword))
			r.Post("/auth/reset-password", handle(s.resetPassword))
			r.Post("/auth/verify-email", handle(s.verifyEmail))
			r.With(RequireRole(allRoles...)).Post("/auth/resend-verification", handle(s.resendVerification))
			r.With(RequireRole(allRoles...)).Post("/auth/logout", handle(s.logout))
		})
		r.With(RequireRole(allRoles...)).Get("/me", handle(s.me))
		r.With(RequireRole(allRoles...)).Patch("/me", handle(s.patchMe))
		r.With(RequireRole(allRoles...)).Post("/me/password", handle(s.changePassword))
		r.With(RequireRole(domain.RolePatient)).Get("/me/export", handle(s.exportMe))
		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/patients/{id}/erase", handle(s.erasePatient))
		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/users", handle(s.createStaff))
		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/users/{id}/deactivate", handle(s.deactivateUser))
		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/users/{id}/activate", handle(s.activateUser))

		r.Get("/doctors", handle(s.listDoctors))
		r.Get("/doctors/{id}", handle(s.getDoctor))
		r.Get("/doctors/{id}/slots", handle(s.freeSlots))
		r.Get("/specialities", handle(s.specialities))

		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/doctors", handle(s.createDoctor))
		r.With(RequireRole(domain.RoleAdmin)).Patch("/admin/doctors/{id}", handle(s.adminPatchDoctor))
		r.With(RequireRole(domain.RoleAdmin, domain.RoleDoctor)).Put("/doctors/{id}/schedule", handle(s.setSchedule))
		r.With(RequireRole(domain.RoleAdmin, domain.RoleDoctor)).Post("/doctors/{id}/time-off", handle(s.addTimeOff))
		r.With(RequireRole(domain.RoleDoctor)).Patch("/doctor/profile", handle(s.patchOwnProfile))
		r.With(RequireRole(domain.RoleDoctor)).Get("/doctor/dashboard", handle(s.doctorDashboard))
		r.With(RequireRole(domain.RoleAdmin)).Get("/admin/dashboard", handle(s.adminDashboard))

		r.With(RequireRole(domain.RolePatient), s.requireVerifiedEmail, bookingLimit).Post("/appointments", handle(s.book))
		r.With(RequireRole(domain.RolePatient, domain.RoleDoctor, domain.RoleAdmin)).Get("/appointments", handle(s.listAppointments))
		r.With(RequireRole(domain.RolePatient, domain.RoleDoctor, domain.RoleAdmin)).Get("/appointments/{id}", handle(s.getAppointment))
		r.With(RequireRole(domain.RolePatient, domain.RoleDoctor)).Get("/appointments/{id}/calendar.ics", handle(s.appointmentCalendar))
		r.With(RequireRole(domain.RolePatient, domain.RoleDoctor, domain.RoleAdmin), bookingLimit).Post("/appointments/{id}/cancel", handle(s.cancel))
		r.With(RequireRole(domain.RolePatient, domain.RoleAdmin), bookingLimit).Post("/appointments/{id}/reschedule", handle(s.reschedule))
		r.With(RequireRole(domain.RoleDoctor, domain.RoleAdmin)).Post("/appointments/{id}/complete", handle(s.complete))
		r.With(RequireRole(domain.RoleDoctor, domain.RoleAdmin)).Post("/appointments/{id}/no-show", handle(s.noShow))
		r.With(RequireRole(domain.RolePatient)).Post("/appointments/{id}/payment", handle(s.createPaymentOrder))
		r.With(RequireRole(domain.RolePatient)).Post("/payments/razorpay/verify", handle(s.verifyPayment))
		r.Post("/webhooks/razorpay", handle(s.razorpayWebhook))
		r.With(RequireRole(domain.RoleAdmin)).Get("/admin/payments", handle(s.listPayments))
		r.With(RequireRole(domain.RolePatient, domain.RoleDoctor)).Get("/me/calendar-feed", handle(s.calendarFeed))
		r.With(RequireRole(domain.RolePatient, domain.RoleDoctor)).Delete("/me/calendar-feed", handle(s.revokeCalendarFeed))
		r.Get("/calendar/{token}.ics", handle(s.feedCalendar))
		r.With(RequireRole(domain.RoleAdmin)).Get("/admin/notifications", handle(s.listNotifications))
		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/notifications/{id}/retry", handle(s.retryNotification))

		r.With(RequireRole(domain.RoleAuditor, domain.RoleAdmin)).Get("/audit/streams/{stream}/events", handle(s.auditStreamEvents))
		r.With(RequireRole(domain.RoleAuditor, domain.RoleAdmin)).Get("/audit/doctors/{id}/schedule", handle(s.auditScheduleAsOf))
		r.With(RequireRole(domain.RoleAuditor, domain.RoleAdmin)).Get("/audit/appointments/{id}/history", handle(s.auditAppointmentHistory))
		r.With(RequireRole(domain.RoleAuditor, domain.RoleAdmin)).Get("/audit/verify", handle(s.auditVerify))
		r.With(RequireRole(domain.RoleAnalyst, domain.RoleAdmin)).Get("/analytics/bookings", handle(s.analyticsBookings))
		r.With(RequireRole(domain.RoleAnalyst, domain.RoleAdmin)).Get("/analytics/utilisation", handle(s.analyticsUtilisation))

		r.With(RequireRole(domain.RoleAdmin)).Get("/admin/projections", handle(s.listProjections))
		r.With(RequireRole(domain.RoleAdmin)).Post("/admin/projections/{name}/rebuild", handle(s.rebuildProjection))
	})
	return r, nil
}

var allRoles = []domain.Role{domain.RolePatient, domain.RoleDoctor, domain.RoleAdmin, domain.RoleAuditor, domain.RoleAnalyst}

// ErrNotImplemented answers routes of the contract that a later release serves.
var ErrNotImplemented = &HTTPError{Status: http.StatusNotImplemented, Code: "not_implemented", Detail: "This route is not available in this release."}

// ErrPositionBeyondHead: X-Min-Position names a position the log has not
// reached.
var ErrPositionBeyondHead = &HTTPError{Status: http.StatusBadRequest, Code: "invalid_position", Kind: domain.ErrInvalid, Detail: "X-Min-Position is beyond the log's head."}

// ErrBadMinPosition: X-Min-Position is not a non-negative integer.
var ErrBadMinPosition = &HTTPError{Status: http.StatusBadRequest, Code: "invalid_header", Kind: domain.ErrInvalid, Detail: "X-Min-Position must be a non-negative integer."}

// await honours X-Min-Position: it waits, bounded, until the named
// projections have applied that position. Without the header it still asks
// Operations (position 0), which may hold reads back on its own (the
// application's start: no read sees a read model that has not reached the
// log's head as of the start).
func (s *Server) await(r *http.Request, names ...string) error {
	var pos uint64
	if h := r.Header.Get("X-Min-Position"); h != "" {
		var err error
		if pos, err = strconv.ParseUint(h, 10, 64); err != nil {
			return ErrBadMinPosition
		}
		// A position the log has not reached was never answered to anyone:
		// refuse it at once instead of waiting for it.
		head, err := s.cfg.HeadPosition(r.Context())
		if err != nil {
			return err
		}
		if pos > head {
			return ErrPositionBeyondHead.WithDetail("X-Min-Position %d is beyond the log's head (%d)", pos, head)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MaxWait)
	defer cancel()
	for _, n := range names {
		if err := s.cfg.Operations.WaitFor(ctx, n, pos); err != nil {
			return err
		}
	}
	return nil
}

// catchUpAfterMiss is called when a read model answered "not found" for
// something that may just have been written (a doctor onboarded, an
// appointment booked a moment ago): it waits, at most MaxWait, until the
// named projections have applied the log's head, so the caller can ask
// once more. A read model still behind by then is a 503 not_caught_up
// (retry), never a 404 for something that exists.
func (s *Server) catchUpAfterMiss(ctx context.Context, names ...string) error {
	head, err := s.cfg.HeadPosition(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.MaxWait)
	defer cancel()
	for _, n := range names {
		if err := s.cfg.Operations.WaitFor(wctx, n, head); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	return nil
}

// meta builds command metadata from the request.
func (s *Server) meta(r *http.Request) (commands.Meta, error) {
	p, _ := PrincipalFrom(r.Context())
	m := commands.Meta{
		Actor:           p.Actor(),
		CorrelationID:   CorrelationIDFrom(r.Context()),
		CausationID:     RequestIDFrom(r.Context()),
		RequestID:       RequestIDFrom(r.Context()),
		ClientRequestID: ClientRequestIDFrom(r.Context()),
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 200 || !printable(key) {
			return m, ErrBadIdempotencyKey
		}
		m.IdempotencyKey = key
	}
	return m, nil
}

// ErrBadIdempotencyKey: the Idempotency-Key header is too long or not text.
var ErrBadIdempotencyKey = &HTTPError{Status: http.StatusBadRequest, Code: "invalid_header", Kind: domain.ErrInvalid, Detail: "Idempotency-Key must be 1 to 200 printable ASCII characters."}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) { healthz(w, r) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) { readyz(s.cfg.Ready)(w, r) }

// healthz answers that the process is alive.
func healthz(w http.ResponseWriter, _ *http.Request) {
	_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers whether every dependency in checks answers (200), or 503
// with what each check said. The checks run concurrently, each bounded by
// its own 2 s, so one dependency that hangs does not fail the others.
func readyz(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		results := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
				defer cancel()
				results[i] = c.Check(ctx)
			})
		}
		wg.Wait()
		out := map[string]string{}
		ready := true
		for i, c := range checks {
			if err := results[i]; err != nil {
				out[c.Name] = err.Error()
				ready = false
			} else {
				out[c.Name] = "ok"
			}
		}
		status, code := "ready", http.StatusOK
		if !ready {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
		_ = WriteJSON(w, code, map[string]any{"status": status, "checks": out})
	}
}

func (s *Server) listProjections(w http.ResponseWriter, r *http.Request) error {
	st, err := s.cfg.Operations.Statuses(r.Context())
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"projections": st})
}

func (s *Server) rebuildProjection(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if err := s.cfg.Operations.StartRebuild(r.Context(), name); err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, map[string]string{"name": name, "status": "rebuilding"})
}
