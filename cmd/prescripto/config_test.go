package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/app"
)

func TestConfigValidate(t *testing.T) {
	base := Config{DataDir: "./data", LogLevel: "info", AuthRateLimit: 20, BookingRateLimit: 30, MaxLiveBookings: 5, BcryptCost: 11}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"embedded default": {func(*Config) {}, ""},
		"servers set": {func(c *Config) {
			c.ESDBURL, c.MongoURI, c.RedisURL = "esdb://localhost:2113?tls=false", "mongodb://localhost/prescripto", "redis://localhost:6379"
			c.JWTSecret = strings.Repeat("s", 32)
		}, ""},
		"esdb without secret":      {func(c *Config) { c.ESDBURL = "esdb://localhost:2113" }, "JWT_SECRET is required"},
		"mongo without secret":     {func(c *Config) { c.MongoURI = "mongodb://localhost" }, "JWT_SECRET is required"},
		"esdb not a url":           {func(c *Config) { c.ESDBURL = "localhost:2113"; c.JWTSecret = strings.Repeat("s", 32) }, "ESDB_URL"},
		"mongo not a uri":          {func(c *Config) { c.MongoURI = "localhost"; c.JWTSecret = strings.Repeat("s", 32) }, "MONGODB_URI"},
		"redis not a url":          {func(c *Config) { c.RedisURL = "localhost:6379"; c.JWTSecret = strings.Repeat("s", 32) }, "REDIS_URL"},
		"server without secret":    {func(c *Config) { c.RedisURL = "redis://localhost" }, "JWT_SECRET is required"},
		"short secret":             {func(c *Config) { c.JWTSecret = "short" }, "at least 32 bytes"},
		"admin email alone":        {func(c *Config) { c.AdminEmail = "a@b.co" }, "go together"},
		"bad log level":            {func(c *Config) { c.LogLevel = "loud" }, "LOG_LEVEL"},
		"negative log buffer":      {func(c *Config) { c.LogBuffer = -time.Second }, "LOG_BUFFER"},
		"rate limit zero":          {func(c *Config) { c.AuthRateLimit = 0 }, "AUTH_RATE_LIMIT"},
		"bcrypt cost out of range": {func(c *Config) { c.BcryptCost = 40 }, "BCRYPT_COST"},
		"ops on the api port":      {func(c *Config) { c.Addr, c.OpsAddr = ":8080", ":8080" }, "PRESCRIPTO_OPS_ADDR"},
		"ops listener":             {func(c *Config) { c.Addr, c.OpsAddr = ":8080", "127.0.0.1:9090" }, ""},
		"short metrics token":      {func(c *Config) { c.MetricsToken = "short" }, "METRICS_TOKEN"},
		"mail cap negative":        {func(c *Config) { c.MailDailyCap = -1 }, "MAIL_DAILY_CAP"},
		"mail cap over the record": {func(c *Config) { c.MailDailyCap = 1001 }, "MAIL_DAILY_CAP"},
		"mail cap at the record":   {func(c *Config) { c.MailDailyCap = 1000 }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to name %q", err, tc.want)
			}
		})
	}
}

func TestEmbeddedSecretIsGeneratedOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	c := Config{DataDir: dir}
	s1, err := c.secret()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c.secret()
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) < 64 || !bytes.Equal(s1, s2) {
		t.Fatalf("secret %q then %q; want one stable 64-hex-char secret", s1, s2)
	}
	fi, err := os.Stat(filepath.Join(dir, "jwt-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("jwt-secret mode %v; want 0600", fi.Mode().Perm())
	}
	c.JWTSecret = strings.Repeat("x", 40)
	if s, _ := c.secret(); string(s) != c.JWTSecret {
		t.Fatal("JWT_SECRET does not take precedence")
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"frobnicate"}, &out, &errb); err == nil || !strings.Contains(errb.String(), "Usage") {
		t.Fatalf("err %v, stderr %q", err, errb.String())
	}
	if err := run(nil, &out, &errb); err == nil {
		t.Fatal("no command accepted")
	}
}

func TestRolesValidate(t *testing.T) {
	servers := Config{DataDir: "./data", LogLevel: "info", AuthRateLimit: 20, BookingRateLimit: 30, MaxLiveBookings: 5, BcryptCost: 11,
		ESDBURL: "esdb://localhost:2113?tls=false", MongoURI: "mongodb://localhost/prescripto"}
	for _, tc := range []struct {
		role    app.Role
		servers bool
		secret  bool
		want    string
	}{
		{app.RoleAPI, false, true, "the api role needs ESDB_URL and MONGODB_URI"},
		{app.RoleProjector, false, false, "the projector role needs ESDB_URL and MONGODB_URI"},
		{app.RoleWorker, false, false, "the worker role needs ESDB_URL and MONGODB_URI"},
		{app.RoleAPI, true, false, "JWT_SECRET is required"},
		{app.RoleAPI, true, true, ""},
		{app.RoleProjector, true, false, ""}, // signs no tokens
		{app.RoleWorker, true, false, ""},
	} {
		c := Config{DataDir: "./data", LogLevel: "info", AuthRateLimit: 20, BookingRateLimit: 30, MaxLiveBookings: 5, BcryptCost: 11, Role: tc.role}
		if tc.servers {
			c.ESDBURL, c.MongoURI = servers.ESDBURL, servers.MongoURI
		}
		if tc.secret {
			c.JWTSecret = strings.Repeat("s", 32)
		}
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s (servers %v, secret %v): %v, want %q", tc.role, tc.servers, tc.secret, err, tc.want)
		}
	}
}

func TestRoleCommandsRefuseWithoutServers(t *testing.T) {
	for _, env := range []string{"ESDB_URL", "MONGODB_URI", "REDIS_URL", "JWT_SECRET"} {
		t.Setenv(env, "")
	}
	for _, role := range []string{"api", "projector", "worker"} {
		var out, errb bytes.Buffer
		err := run([]string{role, "--addr", "127.0.0.1:0"}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "needs ESDB_URL and MONGODB_URI") {
			t.Errorf("%s without servers: %v", role, err)
		}
	}
	var out, errb bytes.Buffer
	if err := run([]string{"projector", "--demo"}, &out, &errb); err == nil {
		t.Error("projector --demo accepted: the demo seeds through the API")
	}
}

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	if err := run([]string{"health", "--url", srv.URL + "/readyz"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("not ready: %v, want an error naming 503", err)
	}
	ready.Store(true)
	if err := run([]string{"health", "--url", srv.URL + "/readyz"}, &out, &errb); err != nil {
		t.Errorf("ready: %v", err)
	}
	if err := run([]string{"health", "--url", "http://127.0.0.1:1/readyz", "--timeout", "500ms"}, &out, &errb); err == nil {
		t.Error("nothing listening: no error")
	}
	for addr, want := range map[string]string{
		":8080": "http://127.0.0.1:8080/readyz", "0.0.0.0:9000": "http://127.0.0.1:9000/readyz",
		"10.0.0.5:8081": "http://10.0.0.5:8081/readyz", "[::]:8080": "http://127.0.0.1:8080/readyz", "nonsense": "http://127.0.0.1:8080/readyz",
	} {
		if got := healthURL(addr); got != want {
			t.Errorf("healthURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
