package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/golang-jwt/jwt/v5"

	"github.com/prescripto/prescripto/domain"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	t0         = time.Date(2026, 11, 25, 4, 30, 0, 0, time.UTC)
)

const (
	testIssuer   = "prescripto"
	testAudience = "prescripto-api"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func newTestTokens(t *testing.T, c *clock) *Tokens {
	t.Helper()
	tok, err := NewTokens(testSecret, testIssuer, testAudience, time.Hour, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestNewTokensValidation(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func() (*Tokens, error){
		"short secret": func() (*Tokens, error) { return NewTokens(testSecret[:31], "i", "a", time.Hour, nil) },
		"no issuer":    func() (*Tokens, error) { return NewTokens(testSecret, "", "a", time.Hour, nil) },
		"no audience":  func() (*Tokens, error) { return NewTokens(testSecret, "i", "", time.Hour, nil) },
		"zero ttl":     func() (*Tokens, error) { return NewTokens(testSecret, "i", "a", 0, nil) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewTokens(testSecret, "i", "a", time.Hour, nil); err != nil {
		t.Errorf("32-byte secret refused: %v", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	tok := newTestTokens(t, &clock{now: t0})
	for _, tc := range []struct {
		user string
		role domain.Role
	}{{"", domain.RolePatient}, {"u1", domain.RoleSystem}, {"u1", "root"}, {"u1", ""}} {
		if _, _, err := tok.Issue(tc.user, tc.role, "", ""); err == nil {
			t.Errorf("Issue(%q, %q) succeeded", tc.user, tc.role)
		}
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0.Add(500 * time.Millisecond)}
	tok := newTestTokens(t, c)
	s, exp, err := tok.Issue("doc-user", domain.RoleDoctor, "Dr Rao", "doc-1")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(time.Hour)) {
		t.Errorf("expiresAt %v", exp)
	}
	cl, err := tok.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Subject != "doc-user" || cl.Role != domain.RoleDoctor || cl.Name != "Dr Rao" || cl.DoctorID != "doc-1" ||
		cl.Issuer != testIssuer || len(cl.Audience) != 1 || cl.Audience[0] != testAudience || cl.ID == "" ||
		cl.IssuedAt == nil || cl.NotBefore == nil || cl.ExpiresAt == nil {
		t.Errorf("claims %+v", cl)
	}
	// Two tokens never share a jti.
	s2, _, _ := tok.Issue("doc-user", domain.RoleDoctor, "Dr Rao", "doc-1")
	cl2, _ := tok.Verify(s2)
	if cl2.ID == cl.ID {
		t.Error("jti reused")
	}
}

// sign makes a token with arbitrary claims and method.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimsAt(now time.Time, mutate func(*Claims)) *Claims {
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "u1",
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "j1",
		},
		Role: domain.RolePatient,
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// authRouter mounts a public route (reports the principal) and a
// patient-only one behind the same Authenticate.
func authRouter(tok *Tokens) http.Handler {
	r := chi.NewRouter()
	r.Use(tok.Authenticate)
	r.Get("/public", func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			_, _ = w.Write([]byte("anonymous"))
			return
		}
		_, _ = w.Write([]byte(string(p.Role) + ":" + p.UserID))
	})
	r.With(RequireRole(domain.RolePatient)).Get("/patient", func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		a := p.Actor()
		_, _ = w.Write([]byte(string(a.Role) + ":" + a.UserID))
	})
	r.With(RequireRole()).Get("/anyone", func(w http.ResponseWriter, r *http.Request) {})
	r.With(RequireRole(domain.RoleAuditor, domain.RoleAdmin)).Get("/audit", func(w http.ResponseWriter, r *http.Request) {})
	return r
}

func TestAuthenticateAndRequireRole(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	tok := newTestTokens(t, c)
	issue := func(role domain.Role) string {
		s, _, err := tok.Issue("u1", role, "Asha", "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	patient := issue(domain.RolePatient)
	doctor := issue(domain.RoleDoctor)
	auditor := issue(domain.RoleAuditor)
	rsaHeader := b64(`{"alg":"RS256","typ":"JWT"}`)
	payload := strings.Split(patient, ".")[1]

	tests := []struct {
		name   string
		path   string
		header []string // Authorization values; nil: none
		now    time.Time
		status int
		code   string
		body   string
	}{
		{name: "valid patient", path: "/patient", header: []string{"Bearer " + patient}, status: 200, body: "patient:u1"},
		{name: "lowercase scheme accepted", path: "/patient", header: []string{"bearer " + patient}, status: 200},
		{name: "upper-case scheme accepted", path: "/patient", header: []string{"BEARER " + patient}, status: 200},
		{name: "anonymous on public", path: "/public", status: 200, body: "anonymous"},
		{name: "principal on public", path: "/public", header: []string{"Bearer " + doctor}, status: 200, body: "doctor:u1"},
		{name: "anonymous on protected", path: "/patient", status: 401, code: "unauthorized"},
		{name: "anonymous on any-role", path: "/anyone", status: 401, code: "unauthorized"},
		{name: "any role", path: "/anyone", header: []string{"Bearer " + doctor}, status: 200},
		{name: "wrong role", path: "/patient", header: []string{"Bearer " + doctor}, status: 403, code: "forbidden"},
		{name: "one of roles", path: "/audit", header: []string{"Bearer " + auditor}, status: 200},
		{name: "none of roles", path: "/audit", header: []string{"Bearer " + patient}, status: 403, code: "forbidden"},
		{name: "invalid token on public route", path: "/public", header: []string{"Bearer nope"}, status: 401, code: "invalid_token"},
		{name: "missing exp", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.ExpiresAt = nil }))}},
		{name: "expired", path: "/patient", header: []string{"Bearer " + patient}, now: t0.Add(time.Hour + TokenLeeway + time.Second), status: 401, code: "invalid_token"},
		{name: "expired within leeway", path: "/patient", header: []string{"Bearer " + patient}, now: t0.Add(time.Hour + TokenLeeway/2), status: 200},
		{name: "nbf in future", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(5 * time.Minute)) }))}},
		{name: "iat in future", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(t0.Add(5 * time.Minute)) }))}},
		{name: "alg none", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(t0, nil))}},
		{name: "alg none hand-made", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + b64(`{"alg":"none","typ":"JWT"}`) + "." + payload + "."}},
		{name: "HS512 same key", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS512, testSecret, claimsAt(t0, nil))}},
		{name: "HS384 same key", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS384, testSecret, claimsAt(t0, nil))}},
		{name: "RS256 header with garbage", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + rsaHeader + "." + payload + "." + b64("garbage")}},
		{name: "wrong key", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-long!"), claimsAt(t0, nil))}},
		{name: "tampered payload", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + strings.Replace(patient, payload, b64(`{"sub":"u1","role":"admin"}`), 1)}},
		{name: "wrong issuer", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Issuer = "evil" }))}},
		{name: "no issuer", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Issuer = "" }))}},
		{name: "wrong audience", path: "/patient", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }))}},
		{name: "unknown role", path: "/public", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Role = "superuser" }))}},
		{name: "system role", path: "/public", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Role = domain.RoleSystem }))}},
		{name: "no role", path: "/public", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Role = "" }))}},
		{name: "empty subject", path: "/public", status: 401, code: "invalid_token",
			header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, claimsAt(t0, func(c *Claims) { c.Subject = "" }))}},
		{name: "garbage", path: "/public", header: []string{"Bearer garbage"}, status: 401, code: "invalid_token"},
		{name: "three dots of garbage", path: "/public", header: []string{"Bearer a.b.c"}, status: 401, code: "invalid_token"},
		{name: "Bearer without token", path: "/public", header: []string{"Bearer"}, status: 401, code: "invalid_token"},
		{name: "Bearer and spaces", path: "/public", header: []string{"Bearer    "}, status: 401, code: "invalid_token"},
		{name: "empty header", path: "/public", header: []string{""}, status: 401, code: "invalid_token"},
		{name: "token without scheme", path: "/public", header: []string{patient}, status: 401, code: "invalid_token"},
		{name: "basic scheme", path: "/public", header: []string{"Basic dTpw"}, status: 401, code: "invalid_token"},
		{name: "two tokens in one header", path: "/public", header: []string{"Bearer " + patient + " " + doctor}, status: 401, code: "invalid_token"},
		{name: "two headers", path: "/public", header: []string{"Bearer " + patient, "Bearer " + doctor}, status: 401, code: "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cl := &clock{now: t0}
			if !tt.now.IsZero() {
				cl.Set(tt.now)
			}
			verifier, err := NewTokens(testSecret, testIssuer, testAudience, time.Hour, cl.Now)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			for _, h := range tt.header {
				req.Header.Add("Authorization", h)
			}
			rec := serve(authRouter(verifier), req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.code == "" {
				if tt.body != "" && rec.Body.String() != tt.body {
					t.Errorf("body %q, want %q", rec.Body, tt.body)
				}
				return
			}
			p := decodeProblem(t, rec)
			if p.Code != tt.code {
				t.Errorf("code %q, want %q", p.Code, tt.code)
			}
			wa := rec.Header().Get("WWW-Authenticate")
			switch tt.code {
			case "invalid_token":
				if wa != `Bearer realm="prescripto", error="invalid_token"` {
					t.Errorf("WWW-Authenticate %q", wa)
				}
			case "unauthorized":
				if wa != `Bearer realm="prescripto"` {
					t.Errorf("WWW-Authenticate %q", wa)
				}
			default:
				if wa != "" {
					t.Errorf("WWW-Authenticate %q on %d", wa, rec.Code)
				}
			}
		})
	}
}

func TestPrincipalContext(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if _, ok := PrincipalFrom(req.Context()); ok {
		t.Error("principal in a fresh context")
	}
	p := Principal{UserID: "u1", Role: domain.RoleDoctor, Name: "Dr", DoctorID: "d1"}
	ctx := WithPrincipal(req.Context(), p)
	got, ok := PrincipalFrom(ctx)
	if !ok || got != p {
		t.Errorf("PrincipalFrom = %+v %v", got, ok)
	}
	if a := p.Actor(); a != (domain.Actor{UserID: "u1", Role: domain.RoleDoctor}) {
		t.Errorf("Actor = %+v", a)
	}
	// A string key with the same spelling cannot reach it.
	type stringKey string
	if ctx.Value(stringKey("principal")) != nil {
		t.Error("principal reachable by string key")
	}
}
