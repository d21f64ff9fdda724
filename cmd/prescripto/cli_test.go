package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/internal/app"
)

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commandList() {
		var out, errb bytes.Buffer
		args := append(strings.Fields(c.name), "--help")
		if err := run(args, &out, &errb); err != nil {
			t.Errorf("%s --help: %v (stderr %q)", c.name, err, errb.String())
			continue
		}
		for _, want := range []string{"Usage: prescripto " + c.name, "Environment:", "PRESCRIPTO_DATA", "JWT_SECRET"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s --help does not say %q:\n%s", c.name, want, out.String())
			}
		}
	}
	var out, errb bytes.Buffer
	if err := run([]string{"--help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "prescripto serve") {
		t.Errorf("--help: %v %q", err, out.String())
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"version"}, &out, &errb); err != nil || !strings.HasPrefix(out.String(), "prescripto@") {
		t.Fatalf("version: %v %q", err, out.String())
	}
}

// admin create says what it did: created once, then "exists already".
func TestAdminCreateTwice(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PRESCRIPTO_BCRYPT_COST", "4")
	args := []string{"admin", "create", "--email", "ops@clinic.example", "--password", "a-good-password", "--data", dir}
	for i, want := range []string{"admin ops@clinic.example created", "exists already; nothing changed"} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err != nil || !strings.Contains(out.String(), want) {
			t.Fatalf("run %d: %v, out %q, want %q", i+1, err, out.String(), want)
		}
	}
}

// While a server holds the embedded store, admin create asks it through
// the data dir's socket.
func TestAdminCreateWhileTheServerRuns(t *testing.T) {
	dir := t.TempDir()
	a, _ := startEmbedded(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveAdminSocket(ctx, dir, a, zerolog.Nop()) }()

	args := []string{"admin", "create", "--email", "night@clinic.example", "--password", "a-good-password", "--data", dir}
	var out, errb bytes.Buffer
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		out.Reset()
		err = run(args, &out, &errb)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the socket is being opened
	}
	if err != nil || !strings.Contains(out.String(), "created") {
		t.Fatalf("admin create while serving: %v, out %q", err, out.String())
	}
	if _, err := a.Commands.Login(ctx, "night@clinic.example", "a-good-password"); err != nil {
		t.Fatalf("the admin created through the socket cannot log in: %v", err)
	}
	// A patient's email is not made an admin.
	if _, err := a.Commands.RegisterPatient(ctx, patientMeta(), "Pat Ient", "pat@clinic.example", "a-good-password"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run([]string{"admin", "create", "--email", "pat@clinic.example", "--password", "a-good-password", "--data", dir}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "belongs to a patient account") {
		t.Fatalf("admin create of a patient's email: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func patientMeta() commands.Meta {
	return commands.Meta{Actor: domain.System}
}

// ADMIN_EMAIL held by a patient is a start-up error, not a silent skip; a
// changed ADMIN_PASSWORD for the existing admin is reported.
func TestBootstrapAdminEmail(t *testing.T) {
	a, cfg := startEmbedded(t, t.TempDir())
	ctx := context.Background()
	if _, err := a.Commands.RegisterPatient(ctx, patientMeta(), "Squatter", "ops@clinic.example", "a-good-password"); err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	log := zerolog.New(&logs)
	cfg.AdminEmail, cfg.AdminPassword = "ops@clinic.example", "another-password"
	if err := bootstrap(ctx, cfg, a, &out, log); err == nil || !strings.Contains(err.Error(), "ADMIN_EMAIL") || !strings.Contains(err.Error(), "patient") {
		t.Fatalf("ADMIN_EMAIL held by a patient: %v", err)
	}
	cfg.AdminEmail = "boss@clinic.example"
	if err := bootstrap(ctx, cfg, a, &out, log); err != nil {
		t.Fatal(err)
	}
	cfg.AdminPassword = "a-changed-password"
	if err := bootstrap(ctx, cfg, a, &out, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "ADMIN_PASSWORD is not the stored password") {
		t.Fatalf("a changed ADMIN_PASSWORD was not reported: %s", logs.String())
	}
}

// startEmbedded opens the App a `serve` on the embedded default would open
// on dir (bcrypt at its cheapest), closed with the test, and its config.
func startEmbedded(t *testing.T, dir string) (*app.App, Config) {
	t.Helper()
	t.Setenv("PRESCRIPTO_BCRYPT_COST", "4")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	secret, err := cfg.secret()
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg.appOptions(secret, zerolog.Nop()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, cfg
}
