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
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	_ "time/tzdata" // the domain's zone arithmetic must not depend on the host's zoneinfo

	"github.com/prescripto/prescripto/internal/app"
)

const usage = `Prescripto, the doctor-appointment booking engine.

Usage:
  prescripto serve [--demo] [--addr :8080] [--data ./data]
      Run the API, the projections and the workers in one process.
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
		return serve(cfg, args[1:], stdout, stderr)
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

func serve(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory")
	fs.BoolVar(&cfg.Demo, "demo", false, "seed the demo catalogue (once) and print its logins")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if cfg.SentryDSN != "" {
		log.Warn().Msg("SENTRY_DSN is set but this build does not report to Sentry yet")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	secret, err := cfg.secret()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, app.Options{
		DataDir: cfg.DataDir, JWTSecret: secret, AuthRateLimit: cfg.AuthRateLimit, TrustProxy: cfg.TrustProxy,
		BcryptCost: cfg.BcryptCost, Logger: log,
		ESDBURL: cfg.ESDBURL, MongoURI: cfg.MongoURI, RedisURL: cfg.RedisURL,
	})
	if err != nil {
		return err
	}
	defer a.Close()

	if cfg.AdminEmail != "" {
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
		fmt.Fprintf(stdout, "Prescripto listening on %s (data in %s)\n", cfg.Addr, cfg.DataDir)
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
