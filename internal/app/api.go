package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net/http"

	"github.com/go-chi/httprate"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/audit"
	"github.com/prescripto/prescripto/projections/rediscache"
)

// auditLog is the auditors' reader of the log, replaying from the
// process's snapshots when it keeps any.
func auditLog(sh *shared) (*audit.Log, error) {
	var opts []audit.Option
	if sh.snaps != nil {
		opts = append(opts, audit.WithSnapshots(sh.snaps))
	}
	return audit.New(sh.store, sh.reg, opts...)
}

// newAPI builds the API part: the command handler and the HTTP server over
// the read models (behind the Redis cache with REDIS_URL), waiting on and
// reporting the projections through ops.
func newAPI(sh *shared, ops projectionOps, head func(context.Context) (uint64, error)) (*commands.Handler, http.Handler, error) {
	o := sh.opts
	cmds, err := sh.commands()
	if err != nil {
		return nil, nil, err
	}
	m := sh.models
	var (
		directory projections.Directory = m.directoryView
		slots     projections.Slots     = m.slotsView
		rateLimit []api.RateLimitOption
		bookLimit []api.RateLimitOption
		logins    httprate.LimitCounter // failed logins per account (nil: in memory)
	)
	if sh.redis != nil {
		cache, err := rediscache.New(rediscache.Config{
			Client: sh.redis.Client(), Prefix: redisCachePrefix, Directory: directory,
			Slots: m.slotsView, SlotsPosition: m.slots.Checkpoint, Logger: o.Logger,
		})
		if err != nil {
			return nil, nil, err
		}
		directory, slots = cache, cache
		counter, err := api.NewRedisLimitCounter(sh.redis.Client(), redisRateLimitPrefix, 0)
		if err != nil {
			return nil, nil, err
		}
		rateLimit = append(rateLimit, api.WithLimitCounter(counter))
		bookings, err := api.NewRedisLimitCounter(sh.redis.Client(), redisBookingLimitPrefix, 0)
		if err != nil {
			return nil, nil, err
		}
		bookLimit = append(bookLimit, api.WithLimitCounter(bookings))
		failures, err := api.NewRedisLimitCounter(sh.redis.Client(), redisLoginFailurePrefix, 0)
		if err != nil {
			return nil, nil, err
		}
		logins = failures
	}
	mailer, err := sh.mailer()
	if err != nil {
		return nil, nil, err
	}
	tokens, err := api.NewTokens(o.JWTSecret, "prescripto", "prescripto-api", o.TokenTTL, o.Now)
	if err != nil {
		return nil, nil, err
	}
	auditLog, err := auditLog(sh)
	if err != nil {
		return nil, nil, err
	}
	srv, err := api.NewServer(api.Config{
		Audit: auditLog, Analytics: m.analyticsView,
		Commands: cmds, Directory: directory, Slots: slots,
		Appointments: m.appointmentsView, Dashboards: m.appointmentsView, Payments: m.appointmentsView,
		Operations: ops, HeadPosition: head, Tokens: tokens, Metrics: sh.metrics, Registry: sh.prom,
		Logger: o.Logger, Now: o.Now, AuthRateLimit: o.AuthRateLimit, TrustProxy: o.TrustProxy,
		RateLimitOptions: rateLimit, LoginFailures: logins, BookingRateLimit: o.BookingRateLimit, BookingRateLimitOptions: bookLimit, Ready: sh.checks, MaxWait: o.MaxWait,
		RequestTimeout: o.RequestTimeout,
		SessionTTL:     o.SessionTTL, AccountMail: accountMailer{mailer}, VerifyEmail: o.VerifyEmail,
		MetricsAccess: o.apiPortMetrics(), Notifications: sh.notifyAdmin,
		CalendarFeedKey: feedKey(o.JWTSecret), PublicURL: o.Mail.PublicURL,
	})
	if err != nil {
		return nil, nil, err
	}
	return cmds, srv, nil
}

// feedKey is the key of the calendar-feed URLs, derived from the JWT
// secret (so every api process makes the same URLs).
func feedKey(secret []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("prescripto calendar feed v1"))
	return mac.Sum(nil)
}
