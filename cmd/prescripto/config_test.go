package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	base := Config{DataDir: "./data", LogLevel: "info", AuthRateLimit: 20, BcryptCost: 11}
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
		"rate limit zero":          {func(c *Config) { c.AuthRateLimit = 0 }, "AUTH_RATE_LIMIT"},
		"bcrypt cost out of range": {func(c *Config) { c.BcryptCost = 40 }, "BCRYPT_COST"},
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
