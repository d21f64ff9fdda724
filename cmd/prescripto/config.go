package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/internal/app"
)

// Config is every setting, read from the environment (12-factor); flags
// override.
type Config struct {
	Addr          string
	DataDir       string
	JWTSecret     string
	AdminEmail    string
	AdminPassword string
	LogLevel      string
	// LogBuffer (LOG_BUFFER) is how long info and debug lines may wait to
	// be written in a batch (obs.BufferedWriter); 0 writes each at once.
	LogBuffer     time.Duration
	AuthRateLimit int
	// BookingRateLimit (BOOKING_RATE_LIMIT): a user's bookings,
	// cancellations and reschedules a minute.
	BookingRateLimit int
	// MaxLiveBookings (MAX_LIVE_BOOKINGS): a patient's held or confirmed
	// future appointments at once.
	MaxLiveBookings int
	BcryptCost      int
	TrustProxy      bool
	ESDBURL         string
	MongoURI        string
	RedisURL        string
	SentryDSN       string
	// SentryEnvironment (SENTRY_ENVIRONMENT) tags Sentry reports.
	SentryEnvironment string
	SMTPURL           string
	// MailFrom (MAIL_FROM) is the sender of every mail.
	MailFrom string
	// Reminders (REMINDERS): the leads of the appointment reminders.
	Reminders []time.Duration
	// MailDailyCap (MAIL_DAILY_CAP): mails to one recipient in 24 h.
	MailDailyCap int
	// PublicURL (PRESCRIPTO_PUBLIC_URL): where users reach the server
	// (links in mails).
	PublicURL string
	// VerifyEmail (PRESCRIPTO_VERIFY_EMAIL): patients verify their email
	// before booking; default on when SMTP_URL is set.
	VerifyEmail    bool
	RazorpayKeyID  string
	RazorpaySecret string
	// RazorpayWebhookSecret (RAZORPAY_WEBHOOK_SECRET) verifies webhooks.
	RazorpayWebhookSecret string
	// RazorpayBaseURL (RAZORPAY_BASE_URL) is another Razorpay-compatible
	// endpoint (default Razorpay's API).
	RazorpayBaseURL string
	// RazorpaySandbox (RAZORPAY_SANDBOX): "" unset (on with --demo unless
	// real keys are set), else a boolean.
	RazorpaySandbox string
	Demo            bool
	PprofAddr       string
	// OpsAddr (PRESCRIPTO_OPS_ADDR) is the ops listener: /metrics,
	// /healthz and /readyz (and pprof when PRESCRIPTO_PPROF_ADDR is the
	// same address); the API port then serves no /metrics.
	OpsAddr string
	// MetricsToken (METRICS_TOKEN) is the bearer token /metrics needs.
	MetricsToken string
	// Role is the role being started (set by the command, not the env).
	Role app.Role
}

// envVars are the variables the binary reads, as its help lists them.
var envVars = []struct{ name, about string }{
	{"PRESCRIPTO_ADDR", "listen address (default :8080)"},
	{"PRESCRIPTO_DATA", "data directory: embedded event store, JWT secret, mail outbox (default ./data)"},
	{"JWT_SECRET", "token signing secret, at least 32 bytes (required with servers; generated in the data dir otherwise)"},
	{"ADMIN_EMAIL", "with ADMIN_PASSWORD: an admin created at start-up unless the email has an account"},
	{"ADMIN_PASSWORD", "the password of ADMIN_EMAIL (8 to 72 bytes)"},
	{"ESDB_URL", "EventStoreDB/KurrentDB connection string (esdb://user:pass@host:2113?tls=true)"},
	{"MONGODB_URI", "MongoDB URI of the read models (mongodb://host/prescripto)"},
	{"REDIS_URL", "Redis URL: projection transport, cache, rate limits (redis://host:6379/0)"},
	{"AUTH_RATE_LIMIT", "requests a minute per client IP on /auth/* (default 20)"},
	{"BOOKING_RATE_LIMIT", "bookings, cancellations and reschedules a minute per user (default 30; 429 beyond)"},
	{"MAX_LIVE_BOOKINGS", "held or confirmed future appointments one patient may hold at once (default 5; 0: no bound, for load tests)"},
	{"PRESCRIPTO_BCRYPT_COST", "bcrypt cost of password hashes, 4 to 16 (default 11)"},
	{"PRESCRIPTO_TRUST_PROXY", "true: take the client IP from X-Forwarded-For (behind a proxy you run)"},
	{"PRESCRIPTO_PPROF_ADDR", "address of an opt-in pprof listener (keep it on loopback; the same as PRESCRIPTO_OPS_ADDR: served there)"},
	{"PRESCRIPTO_OPS_ADDR", "ops listener: /metrics, /healthz, /readyz (keep it private); set, the API port serves no /metrics"},
	{"METRICS_TOKEN", "bearer token /metrics needs (at least 16 bytes); without it and PRESCRIPTO_OPS_ADDR, /metrics is public"},
	{"LOG_LEVEL", "debug, info, warn or error (default info)"},
	{"LOG_BUFFER", "info and debug log lines are written in batches at most this old (default 100ms; 0: each at once; warn and above always at once)"},
	{"SENTRY_DSN", "report error-level logs to Sentry"},
	{"SENTRY_ENVIRONMENT", "the environment tag of Sentry reports (default production)"},
	{"SMTP_URL", "mail server: smtp://user:pass@host:587 (STARTTLS required; plain text only to loopback), smtps://user:pass@host:465 (implicit TLS); unset: mail goes to the mbox data/mail/outbox.mbox"},
	{"MAIL_FROM", "sender of every mail (default Prescripto <no-reply@prescripto.local>)"},
	{"REMINDERS", "reminder leads before a confirmed appointment, comma-separated (default 24h,1h; none: no reminders)"},
	{"MAIL_DAILY_CAP", "mails to one recipient in 24 h, at most 1000; beyond, they are dropped and counted (default 20; 0: no bound)"},
	{"PRESCRIPTO_PUBLIC_URL", "where users reach this server, for links in mails (https://book.example.com)"},
	{"PRESCRIPTO_VERIFY_EMAIL", "true: registration mails a verification token and unverified patients cannot book (default true when SMTP_URL is set)"},
	{"RAZORPAY_KEY_ID", "Razorpay key id: online payment (with RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET)"},
	{"RAZORPAY_KEY_SECRET", "Razorpay key secret (signs checkouts)"},
	{"RAZORPAY_WEBHOOK_SECRET", "the secret Razorpay signs webhooks with (POST /api/v1/webhooks/razorpay)"},
	{"RAZORPAY_BASE_URL", "a Razorpay-compatible API endpoint (default https://api.razorpay.com)"},
	{"RAZORPAY_SANDBOX", "1: the built-in Razorpay sandbox (no money moves; serve only; on with --demo unless real keys are set)"},
}

// ConfigFromEnv reads the environment.
func ConfigFromEnv() (Config, error) {
	c := Config{
		Addr:                  env("PRESCRIPTO_ADDR", ":8080"),
		DataDir:               env("PRESCRIPTO_DATA", "./data"),
		JWTSecret:             os.Getenv("JWT_SECRET"),
		AdminEmail:            os.Getenv("ADMIN_EMAIL"),
		AdminPassword:         os.Getenv("ADMIN_PASSWORD"),
		LogLevel:              env("LOG_LEVEL", "info"),
		ESDBURL:               os.Getenv("ESDB_URL"),
		MongoURI:              os.Getenv("MONGODB_URI"),
		RedisURL:              os.Getenv("REDIS_URL"),
		SentryDSN:             os.Getenv("SENTRY_DSN"),
		SentryEnvironment:     env("SENTRY_ENVIRONMENT", "production"),
		SMTPURL:               os.Getenv("SMTP_URL"),
		MailFrom:              os.Getenv("MAIL_FROM"),
		PublicURL:             os.Getenv("PRESCRIPTO_PUBLIC_URL"),
		RazorpayKeyID:         os.Getenv("RAZORPAY_KEY_ID"),
		RazorpaySecret:        os.Getenv("RAZORPAY_KEY_SECRET"),
		RazorpayWebhookSecret: os.Getenv("RAZORPAY_WEBHOOK_SECRET"),
		RazorpayBaseURL:       os.Getenv("RAZORPAY_BASE_URL"),
		RazorpaySandbox:       os.Getenv("RAZORPAY_SANDBOX"),
		PprofAddr:             os.Getenv("PRESCRIPTO_PPROF_ADDR"),
		OpsAddr:               os.Getenv("PRESCRIPTO_OPS_ADDR"),
		MetricsToken:          os.Getenv("METRICS_TOKEN"),
	}
	var err error
	if c.LogBuffer, err = time.ParseDuration(env("LOG_BUFFER", "100ms")); err != nil {
		return c, fmt.Errorf("LOG_BUFFER: %w", err)
	}
	if c.AuthRateLimit, err = envInt("AUTH_RATE_LIMIT", 20); err != nil {
		return c, err
	}
	if c.BcryptCost, err = envInt("PRESCRIPTO_BCRYPT_COST", 11); err != nil {
		return c, err
	}
	if c.BookingRateLimit, err = envInt("BOOKING_RATE_LIMIT", 30); err != nil {
		return c, err
	}
	if c.MaxLiveBookings, err = envInt("MAX_LIVE_BOOKINGS", 5); err != nil {
		return c, err
	}
	if c.MailDailyCap, err = envInt("MAIL_DAILY_CAP", 20); err != nil {
		return c, err
	}
	if c.Reminders, err = parseReminders(env("REMINDERS", "24h,1h")); err != nil {
		return c, err
	}
	c.VerifyEmail = c.SMTPURL != ""
	if v := os.Getenv("PRESCRIPTO_VERIFY_EMAIL"); v != "" {
		if c.VerifyEmail, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("PRESCRIPTO_VERIFY_EMAIL: %w", err)
		}
	}
	if v := os.Getenv("PRESCRIPTO_TRUST_PROXY"); v != "" {
		if c.TrustProxy, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("PRESCRIPTO_TRUST_PROXY: %w", err)
		}
	}
	return c, nil
}

// Embedded reports whether this is the embedded default (no servers).
func (c Config) Embedded() bool { return c.ESDBURL == "" && c.MongoURI == "" && c.RedisURL == "" }

// Validate checks the configuration. A configured server that does not
// answer is a start-up error of app.New naming its variable, never a silent
// fall-back to the embedded stores.
func (c Config) Validate() error {
	var errs []error
	if c.ESDBURL != "" && !strings.HasPrefix(c.ESDBURL, "esdb://") && !strings.HasPrefix(c.ESDBURL, "esdb+discover://") && !strings.HasPrefix(c.ESDBURL, "kurrentdb://") {
		errs = append(errs, errors.New("ESDB_URL must be an esdb:// connection string"))
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		errs = append(errs, errors.New("MONGODB_URI must be a mongodb:// URI"))
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		errs = append(errs, errors.New("REDIS_URL must be a redis:// URL"))
	}
	role := c.Role
	if role == "" {
		role = app.RoleAll
	}
	if err := role.Validate(c.ESDBURL, c.MongoURI); err != nil {
		errs = append(errs, err)
	}
	if !c.Embedded() && c.JWTSecret == "" && role.ServesAPI() {
		errs = append(errs, errors.New("JWT_SECRET is required outside the embedded default"))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JWT_SECRET must be at least 32 bytes"))
	}
	if c.LogBuffer < 0 || c.LogBuffer > time.Minute {
		errs = append(errs, errors.New("LOG_BUFFER must be between 0 and 1m"))
	}
	if c.AuthRateLimit < 1 {
		errs = append(errs, errors.New("AUTH_RATE_LIMIT must be at least 1"))
	}
	if c.BookingRateLimit < 1 {
		errs = append(errs, errors.New("BOOKING_RATE_LIMIT must be at least 1"))
	}
	if c.MaxLiveBookings < 0 || c.MaxLiveBookings > 1000 {
		errs = append(errs, errors.New("MAX_LIVE_BOOKINGS must be between 0 (no bound) and 1000"))
	}
	if c.BcryptCost < 4 || c.BcryptCost > 16 {
		errs = append(errs, errors.New("PRESCRIPTO_BCRYPT_COST must be between 4 and 16"))
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("ADMIN_EMAIL and ADMIN_PASSWORD go together"))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	if c.OpsAddr != "" && c.OpsAddr == c.Addr {
		errs = append(errs, errors.New("PRESCRIPTO_OPS_ADDR must differ from PRESCRIPTO_ADDR"))
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		errs = append(errs, errors.New("METRICS_TOKEN must be at least 16 bytes"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("PRESCRIPTO_DATA must not be empty"))
	}
	if c.RazorpaySandbox != "" {
		if _, err := strconv.ParseBool(c.RazorpaySandbox); err != nil {
			errs = append(errs, fmt.Errorf("RAZORPAY_SANDBOX: %q is not a boolean", c.RazorpaySandbox))
		}
	}
	if err := c.payments().Validate(role); err != nil {
		errs = append(errs, err)
	}
	if c.MailDailyCap < 0 {
		errs = append(errs, errors.New("MAIL_DAILY_CAP must be 0 (no bound) or more"))
	}
	if err := c.mail().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			errs = append(errs, fmt.Errorf("MAIL_FROM: %w", err))
		}
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "https://") && !strings.HasPrefix(c.PublicURL, "http://") {
		errs = append(errs, errors.New("PRESCRIPTO_PUBLIC_URL must be an http:// or https:// URL"))
	}
	return errors.Join(errs...)
}

// parseReminders reads REMINDERS: durations separated by commas, or none.
func parseReminders(v string) ([]time.Duration, error) {
	v = strings.TrimSpace(v)
	out := []time.Duration{}
	if v == "" || v == "none" {
		return out, nil
	}
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			return nil, fmt.Errorf("REMINDERS: %q is not a lead between 1s and 720h (24h,1h)", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// mail are the mail options.
func (c Config) mail() app.MailOptions {
	limit := c.MailDailyCap
	if limit == 0 {
		limit = -1 // no bound
	}
	return app.MailOptions{SMTPURL: c.SMTPURL, From: c.MailFrom, Reminders: c.Reminders, DailyCap: limit, PublicURL: c.PublicURL}
}

// payments are the payment options: real keys, or the sandbox when
// RAZORPAY_SANDBOX says so (by default with --demo, unless real keys are
// set).
func (c Config) payments() app.PaymentOptions {
	sandbox := c.Demo && c.RazorpayKeyID == ""
	if c.RazorpaySandbox != "" {
		sandbox, _ = strconv.ParseBool(c.RazorpaySandbox)
	}
	return app.PaymentOptions{
		KeyID: c.RazorpayKeyID, KeySecret: c.RazorpaySecret, WebhookSecret: c.RazorpayWebhookSecret,
		BaseURL: c.RazorpayBaseURL, Sandbox: sandbox,
	}
}

// secret returns JWT_SECRET, or in the embedded default the secret stored
// in the data dir, generated on first start (0600).
func (c Config) secret() ([]byte, error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), nil
	}
	path := filepath.Join(c.DataDir, "jwt-secret")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 64 {
			return nil, fmt.Errorf("%s is too short; delete it to generate a new one", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	s := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return []byte(s), f.Close()
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", name, v)
	}
	return n, nil
}
