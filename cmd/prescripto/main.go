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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	_ "time/tzdata" // the domain's zone arithmetic must not depend on the host's zoneinfo

	"github.com/prescripto/prescripto/eventstore/sqlite"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/obs"
)

// command is one subcommand of the binary.
type command struct {
	name, args, summary string
	run                 func(cfg Config, args []string, stdout, stderr io.Writer) error
}

// commandList is every subcommand, in the order the help lists them.
func commandList() []command {
	return []command{
		{"serve", "[--demo] [--addr :8080] [--data ./data]", "Run the API, the projections and the workers in one process (the embedded default needs no servers).", roleCommand(app.RoleAll)},
		{"api", "[--addr :8080]", "Run the HTTP API only (needs ESDB_URL, MONGODB_URI and JWT_SECRET; scale it out).", roleCommand(app.RoleAPI)},
		{"projector", "[--addr :8080]", "Run the read-model projections only (one per deployment); serves /healthz, /readyz and /metrics (on PRESCRIPTO_OPS_ADDR when set).", roleCommand(app.RoleProjector)},
		{"worker", "[--addr :8080] [--data ./data]", "Run the notification worker only; serves /healthz, /readyz and /metrics (on PRESCRIPTO_OPS_ADDR when set).", roleCommand(app.RoleWorker)},
		{"admin create", "--email EMAIL --password PASSWORD [--name NAME] [--data ./data]", "Create an admin account (also while `serve` runs on the same data dir).", adminCreate},
		{"history", "--appointment ID [--data ./data]", "Print every event that touched an appointment, as JSON lines (reads the event log; the embedded store only while no server holds it).", history},
		{"audit export", "[--stream S] [--from POSITION] [--data ./data]", "Print the event log (or one stream) as JSON lines, in constant memory.", auditExport},
		{"audit verify", "[--anchor ROOT@POSITION] [--json] [--data ./data]", "Check every stream's hash chain and print the log's root (an anchor to keep); with --anchor, prove nothing up to its position changed. Exits 1 when a check fails.", auditVerify},
		{"projections list", "[--data ./data]", "List the read-model projections of the server running on the data dir: position, lag, status, last rebuild's events/s.", projectionsList},
		{"projections rebuild", "NAME [--detach] [--data ./data]", "Rebuild a projection of the server running on the data dir into a shadow copy, with progress until it is swapped in.", projectionsRebuild},
		{"health", "[--url http://127.0.0.1:8080/readyz]", "Exit 0 when the URL answers 200 (a container health check).", health},
		{"version", "", "Print the version.", printVersion},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("Prescripto, the doctor-appointment booking engine.\n\nUsage:\n")
	for _, c := range commandList() {
		fmt.Fprintf(&b, "  prescripto %s %s\n      %s\n", c.name, c.args, c.summary)
	}
	b.WriteString("\nRun `prescripto COMMAND --help` for a command's flags and the environment\nvariables it reads (flags override them). See README.md.\n")
	return b.String()
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prescripto:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return errors.New("no command given")
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return nil
	}
	for _, c := range commandList() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			cfg, err := ConfigFromEnv()
			if err != nil {
				return err
			}
			return c.run(cfg, args[len(words):], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, usage())
	if args[0] == "admin" {
		return errors.New("usage: prescripto admin create --email EMAIL --password PASSWORD")
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// newFlags is the flag set of command name; its --help prints the
// command's usage, flags and environment variables to stdout.
func newFlags(name string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		for _, c := range commandList() {
			if c.name == name {
				fmt.Fprintf(stdout, "Usage: prescripto %s %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
			}
		}
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprint(stdout, "\nEnvironment:\n")
		for _, v := range envVars {
			fmt.Fprintf(stdout, "  %-24s %s\n", v.name, v.about)
		}
	}
	return fs
}

// parse parses args; --help is not an error (done reports it).
func parse(fs *flag.FlagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return false, err
}

func printVersion(_ Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stdout, stderr)
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	fmt.Fprintln(stdout, version())
	return nil
}

func newLogger(cfg Config, w io.Writer) zerolog.Logger {
	lvl, _ := zerolog.ParseLevel(cfg.LogLevel)
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", "prescripto").Logger()
}

// observability is the process's logger, reporting errors to Sentry when
// SENTRY_DSN is set and batching lines below warn (LOG_BUFFER); flush
// before exiting.
func observability(cfg Config, role app.Role, w io.Writer) (log zerolog.Logger, flush func(), err error) {
	flushLog := func() {}
	if cfg.LogBuffer > 0 {
		bw := obs.NewBufferedWriter(w, cfg.LogBuffer, 0)
		w, flushLog = bw, func() { _ = bw.Close() }
	}
	log = newLogger(cfg, w)
	if cfg.SentryDSN == "" {
		return log.With().Str("role", string(role)).Logger(), flushLog, nil
	}
	host, _ := os.Hostname()
	sw, err := obs.NewSentryWriter(obs.SentryConfig{
		DSN: cfg.SentryDSN, Environment: cfg.SentryEnvironment, Release: version(), ServerName: string(role) + "@" + host,
	})
	if err != nil {
		flushLog()
		return log, nil, err
	}
	lvl, _ := zerolog.ParseLevel(cfg.LogLevel)
	log = zerolog.New(zerolog.MultiLevelWriter(w, sw)).Level(lvl).With().Timestamp().
		Str("service", "prescripto").Str("role", string(role)).Logger()
	log.Info().Msg("reporting errors to Sentry")
	return log, func() { sw.Flush(5 * time.Second); flushLog() }, nil
}

// buildVersion is set at link time (-ldflags "-X main.buildVersion=...";
// the Dockerfile passes its VERSION build argument).
var buildVersion string

// version is the version the binary was built as.
func version() string {
	if buildVersion != "" {
		return "prescripto@" + buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "prescripto@devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return "prescripto@" + v
	}
	// A build from a checkout: its commit, as `go build` stamped it.
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = "+" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	return "prescripto@devel" + rev + dirty
}

// roleCommand runs the parts of role until SIGINT or SIGTERM.
func roleCommand(role app.Role) func(Config, []string, io.Writer, io.Writer) error {
	return func(cfg Config, args []string, stdout, stderr io.Writer) error {
		fs := newFlags(string(role), stdout, stderr)
		fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
		if role == app.RoleAll || role == app.RoleWorker {
			fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory")
		}
		if role == app.RoleAll {
			fs.BoolVar(&cfg.Demo, "demo", false, "seed the demo catalogue (once) and print its logins")
		}
		if done, err := parse(fs, args); done || err != nil {
			return err
		}
		cfg.Role = role
		return serve(cfg, stdout, stderr)
	}
}

func serve(cfg Config, stdout, stderr io.Writer) error {
	role := cfg.Role
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
	if role.ServesAPI() {
		if secret, err = cfg.secret(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The pprof listener comes up before the App, so that a CPU profile
	// can cover the start (the read models' states loading).
	pprofCtx, stopPprof := context.WithCancel(ctx)
	defer stopPprof()
	var pprofDone chan error
	if cfg.PprofAddr != "" && cfg.PprofAddr != cfg.OpsAddr {
		pprofDone = make(chan error, 1)
		go func() {
			pprofDone <- serveOps(pprofCtx, "pprof", cfg.PprofAddr, withPprof(http.NotFoundHandler()), log)
		}()
	}

	a, err := app.New(ctx, cfg.appOptions(secret, log))
	if err != nil {
		log.Error().Err(err).Msg("start-up failed")
		return err
	}
	defer a.Close()
	if err := bootstrap(ctx, cfg, a, stdout, log); err != nil {
		return err
	}

	srv := &http.Server{
		Addr: cfg.Addr, Handler: a.Handler,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Run(gctx) })
	if cfg.OpsAddr != "" {
		ops := a.OpsHandler
		if cfg.PprofAddr == cfg.OpsAddr {
			ops = withPprof(ops)
		}
		g.Go(func() error { return serveOps(gctx, "ops", cfg.OpsAddr, ops, log) })
	}
	if pprofDone != nil {
		g.Go(func() error {
			select {
			case err := <-pprofDone:
				return err
			case <-gctx.Done():
				stopPprof()
				return <-pprofDone
			}
		})
	}
	if a.Commands != nil && cfg.ESDBURL == "" {
		// This process holds the embedded store: `admin create` reaches it here.
		g.Go(func() error { return serveAdminSocket(gctx, cfg.DataDir, a, log) })
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

// appOptions are the App's options of this configuration.
func (cfg Config) appOptions(secret []byte, log zerolog.Logger) app.Options {
	return app.Options{
		Role:    cfg.Role,
		DataDir: cfg.DataDir, JWTSecret: secret, AuthRateLimit: cfg.AuthRateLimit, TrustProxy: cfg.TrustProxy,
		BcryptCost: cfg.BcryptCost, Logger: log,
		ESDBURL: cfg.ESDBURL, MongoURI: cfg.MongoURI, RedisURL: cfg.RedisURL,
		Payments: cfg.payments(), Mail: cfg.mail(), MaxLiveBookings: maxLive(cfg.MaxLiveBookings), BookingRateLimit: cfg.BookingRateLimit, VerifyEmail: cfg.VerifyEmail,
		OpsListener: cfg.OpsAddr != "", MetricsToken: cfg.MetricsToken,
	}
}

// bootstrap creates the ADMIN_EMAIL admin and seeds the demo (--demo), and
// says what it did.
func bootstrap(ctx context.Context, cfg Config, a *app.App, stdout io.Writer, log zerolog.Logger) error {
	if cfg.AdminEmail != "" && a.Commands != nil {
		res, err := createAdmin(ctx, a, adminRequest{Name: "Administrator", Email: cfg.AdminEmail, Password: cfg.AdminPassword})
		if err != nil {
			// Held by a patient or a doctor (squatted before the first
			// start, say): the operator's admin does not exist.
			return fmt.Errorf("ADMIN_EMAIL: %w", err)
		}
		if !res.Created {
			if _, err := a.Commands.Login(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
				log.Warn().Str("email", cfg.AdminEmail).Msg("ADMIN_PASSWORD is not the stored password of ADMIN_EMAIL: the stored one stays (ADMIN_PASSWORD only sets the first one)")
			}
		}
	}
	if !cfg.Demo {
		return nil
	}
	seed, err := a.SeedDemo(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	if seed.Seeded > 0 {
		fmt.Fprintf(stdout, "Prescripto demo: seeded %d accounts (an admin and %d doctors).\n", seed.Seeded, len(app.DemoCatalogue))
	} else {
		fmt.Fprintf(stdout, "Prescripto demo: the catalogue of %d doctors was seeded before; nothing to do.\n", len(app.DemoCatalogue))
	}
	fmt.Fprintf(stdout, "  admin login:  %s / %s\n  doctor login: <first.last>@prescripto.demo / %s (e.g. richard.james@prescripto.demo)\n  (kept in %s/demo-credentials)\n",
		seed.AdminEmail, seed.AdminPassword, seed.DoctorPassword, cfg.DataDir)
	return nil
}

// withPprof serves profiling under /debug/pprof/ and the rest with h.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// serveOps serves an operators' listener (the ops listener, pprof) until
// ctx ends. Keep it on loopback or a private network: it needs no login.
func serveOps(ctx context.Context, name, addr string, h http.Handler, log zerolog.Logger) error {
	ps := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = ps.Close() }()
	log.Info().Str("addr", addr).Msg(name + " listening")
	if err := ps.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	return nil
}

// health asks a readiness URL (default: this host's PRESCRIPTO_ADDR) and
// fails unless it answers 200: the health check of an image with no shell.
func health(cfg Config, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("health", stdout, stderr)
	url := fs.String("url", healthURL(cfg.Addr), "URL that must answer 200")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if done, err := parse(fs, args); done || err != nil {
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
	fs := newFlags("admin create", stdout, stderr)
	req := adminRequest{}
	fs.StringVar(&req.Email, "email", "", "admin email")
	fs.StringVar(&req.Password, "password", "", "admin password (8 to 72 bytes)")
	fs.StringVar(&req.Name, "name", "Administrator", "admin name")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory")
	if done, err := parse(fs, args); done || err != nil {
		return err
	}
	if req.Email == "" || req.Password == "" {
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
	a, err := app.New(ctx, cfg.appOptions(secret, newLogger(cfg, stderr)))
	if errors.Is(err, sqlite.ErrLocked) {
		// A running server holds the embedded store: ask it.
		res, err := askAdminSocket(ctx, cfg.DataDir, req)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.Message)
		return nil
	}
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := createAdmin(ctx, a, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.Message)
	return nil
}

// maxLive is MAX_LIVE_BOOKINGS as the App takes it: 0 (no bound) is
// negative there, where 0 means the default.
func maxLive(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
