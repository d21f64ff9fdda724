// Command prescripto is the Prescripto booking engine: one binary, several
// roles. `prescripto serve` runs everything in one process on the embedded
// default (a single-file event store and in-memory read models rebuilt from
// it), with no servers to install.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	_ "time/tzdata" // the domain's zone arithmetic must not depend on the host's zoneinfo

	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/obs"
)

const usage = `Prescripto, the doctor-appointment booking engine.

Usage:
  prescripto serve [--demo] [--addr :8080] [--data ./data]
      Run the API, the projections and the workers in one process.
  prescripto api [--addr :8080]
      Run the HTTP API only (needs ESDB_URL and MONGODB_URI; scale it out).
  prescripto projector [--addr :8080]
      Run the read-model projections only (one per deployment); serves
      /healthz, /readyz and /metrics.
  prescripto worker [--addr :8080] [--data ./data]
      Run the notification worker only; serves /healthz, /readyz, /metrics.
  prescripto health [--url http://127.0.0.1:8080/readyz]
      Exit 0 when the URL answers 200 (a container health check).
  prescripto admin create --email EMAIL --password PASSWORD [--name NAME] [--data ./data]
      Create an admin account.

Configuration comes from the environment (PRESCRIPTO_ADDR, PRESCRIPTO_DATA,
JWT_SECRET, ADMIN_EMAIL, ADMIN_PASSWORD, LOG_LEVEL, AUTH_RATE_LIMIT, ...);
flags override it. See README.md.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prescripto:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		return err
	}
	switch args[0] {
	case "serve":
		return serve(cfg, app.RoleAll, args[1:], stdout, stderr)
	case "api":
		return serve(cfg, app.RoleAPI, args[1:], stdout, stderr)
	case "projector":
		return serve(cfg, app.RoleProjector, args[1:], stdout, stderr)
	case "worker":
		return serve(cfg, app.RoleWorker, args[1:], stdout, stderr)
	case "health":
		return health(cfg, args[1:], stdout, stderr)
	case "admin":
		if len(args) < 2 || args[1] != "create" {
			return errors.New("usage: prescripto admin create --email EMAIL --password PASSWORD")
		}
		return adminCreate(cfg, args[2:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(cfg Config, w io.Writer) zerolog.Logger {
	lvl, _ := zerolog.ParseLevel(cfg.LogLevel)
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", "prescripto").Logger()
}

// observability is the process's logger, reporting errors to Sentry when
// SENTRY_DSN is set; flush before exiting.
func observability(cfg Config, role app.Role, w io.Writer) (log zerolog.Logger, flush func(), err error) {
	log = newLogger(cfg, w)
	if cfg.SentryDSN == "" {
		return log.With().Str("role", string(role)).Logger(), func() {}, nil
	}
	host, _ := os.Hostname()
	sw, err := obs.NewSentryWriter(obs.SentryConfig{
		DSN: cfg.SentryDSN, Environment: cfg.SentryEnvironment, Release: version(), ServerName: string(role) + "@" + host,
	})
	if err != nil {
		return log, nil, err
	}
	lvl, _ := zerolog.ParseLevel(cfg.LogLevel)
	log = zerolog.New(zerolog.MultiLevelWriter(w, sw)).Level(lvl).With().Timestamp().
		Str("service", "prescripto").Str("role", string(role)).Logger()
	log.Info().Msg("reporting errors to Sentry")
	return log, func() { sw.Flush(5 * time.Second) }, nil
}

// buildVersion is set at link time (-ldflags "-X main.buildVersion=...";
// the Dockerfile passes its VERSION build argument).
var buildVersion string

// version is the version the binary was built as.
func version() string {
	if buildVersion != "" {
		return "prescripto@" + buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return "prescripto@" + bi.Main.Version
	}
	return "prescripto@devel"
}

func serve(cfg Config, role app.Role, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	if role != app.RoleAPI && role != app.RoleProjector {
		fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory")
	}
	if role == app.RoleAll {
		fs.BoolVar(&cfg.Demo, "demo", false, "seed the demo catalogue (once) and print its logins")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", role, fs.Args())
	}
	cfg.Role = role
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, flush, err := observability(cfg, role, stderr)
	if err != nil {
		return err
	}
	defer flush()
	if role == app.RoleAPI && cfg.RedisURL == "" {
		log.Warn().Msg("REDIS_URL is not set: the /auth rate limits count per api process and the doctors and free slots are read from MongoDB without a cache")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	var secret []byte
	if role == app.RoleAll || role == app.RoleAPI {
		if secret, err = cfg.secret(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, app.Options{
		Role:    role,
		DataDir: cfg.DataDir, JWTSecret: secret, AuthRateLimit: cfg.AuthRateLimit, TrustProxy: cfg.TrustProxy,
		BcryptCost: cfg.BcryptCost, Logger: log,
		ESDBURL: cfg.ESDBURL, MongoURI: cfg.MongoURI, RedisURL: cfg.RedisURL,
	})
	if err != nil {
		log.Error().Err(err).Msg("start-up failed")
		return err
	}
	defer a.Close()

	if cfg.AdminEmail != "" && a.Commands != nil {
		if _, err := a.EnsureAdmin(ctx, "Administrator", cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return fmt.Errorf("ADMIN_EMAIL: %w", err)
		}
	}
	if cfg.Demo {
		creds, err := a.SeedDemo(ctx, cfg.DataDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Prescripto demo: %d doctors seeded.\n  admin login:  %s / %s\n  doctor login: <first.last>@prescripto.demo / %s (e.g. richard.james@prescripto.demo)\n  (kept in %s/demo-credentials)\n",
			len(app.DemoCatalogue), creds.AdminEmail, creds.AdminPassword, creds.DoctorPassword, cfg.DataDir)
	}

	srv := &http.Server{
		Addr: cfg.Addr, Handler: a.Handler,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Run(gctx) })
	if cfg.PprofAddr != "" {
		// Profiling for operators, on its own listener (keep it on loopback).
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Addr: cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			log.Info().Str("addr", cfg.PprofAddr).Msg("pprof listening")
			if err := ps.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error { <-gctx.Done(); return ps.Close() })
	}
	g.Go(func() error {
		log.Info().Str("addr", cfg.Addr).Str("data", cfg.DataDir).Msg("prescripto listening")
		fmt.Fprintf(stdout, "Prescripto (%s) listening on %s (data in %s)\n", role, cfg.Addr, cfg.DataDir)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info().Msg("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}

// health asks a readiness URL (default: this host's PRESCRIPTO_ADDR) and
// fails unless it answers 200: the health check of an image with no shell.
func health(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", healthURL(cfg.Addr), "URL that must answer 200")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &http.Client{Timeout: *timeout}
	res, err := c.Get(*url)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %d: %s", *url, res.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s: %d\n", *url, res.StatusCode)
	return nil
}

// healthURL is the readiness URL of a process listening on addr, asked
// from the same host.
func healthURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:8080/readyz"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

func adminCreate(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "admin email")
	password := fs.String("password", "", "admin password (at least 8 characters)")
	name := fs.String("name", "Administrator", "admin name")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" || *password == "" {
		return errors.New("--email and --password are required")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	secret, err := cfg.secret()
	if err != nil {
		return err
	}
	ctx := context.Background()
	a, err := app.New(ctx, app.Options{
		DataDir: cfg.DataDir, JWTSecret: secret, BcryptCost: cfg.BcryptCost, Logger: newLogger(cfg, stderr),
		ESDBURL: cfg.ESDBURL, MongoURI: cfg.MongoURI, RedisURL: cfg.RedisURL,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	created, err := a.EnsureAdmin(ctx, *name, *email, *password)
	if err != nil {
		return err
	}
	if !created {
		return fmt.Errorf("an account with email %s already exists", *email)
	}
	fmt.Fprintf(stdout, "admin %s created\n", *email)
	return nil
}
