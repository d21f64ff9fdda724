package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain"
)

// MinSecretBytes is the shortest HS256 secret NewTokens accepts (RFC 7518
// §3.2: the key must be at least as long as the hash output).
const MinSecretBytes = 32

// TokenLeeway is the clock skew tolerated on exp, nbf and iat.
const TokenLeeway = 30 * time.Second

// Claims are the claims of a Prescripto access token. Subject is the user id.
type Claims struct {
	jwt.RegisteredClaims
	Role     domain.Role `json:"role"`
	Name     string      `json:"name,omitempty"`
	DoctorID string      `json:"doctorId,omitempty"`
	// TokenVersion ("tv") is the account's token version at issue; a
	// password change, reset or deactivation bumps the account's, and the
	// session check refuses older tokens (sessions.go).
	TokenVersion int `json:"tv"`
}

// Validate is called by the jwt parser after the registered claims checked
// out: a token must name a user and a known human role ("system" is the
// engine itself and never holds a token).
func (c *Claims) Validate() error {
	if c.Subject == "" {
		return errors.New("token has no subject")
	}
	if !c.Role.Valid() || c.Role == domain.RoleSystem {
		return fmt.Errorf("token has an invalid role %q", c.Role)
	}
	return nil
}

// Tokens issues and verifies HS256 access tokens.
type Tokens struct {
	secret   []byte
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	parser   *jwt.Parser
}

// NewTokens makes a token issuer/verifier. secret must have at least
// MinSecretBytes bytes; now is the clock (time.Now if nil).
func NewTokens(secret []byte, issuer, audience string, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	switch {
	case len(secret) < MinSecretBytes:
		return nil, fmt.Errorf("api: JWT secret has %d bytes, need at least %d", len(secret), MinSecretBytes)
	case issuer == "":
		return nil, errors.New("api: JWT issuer is empty")
	case audience == "":
		return nil, errors.New("api: JWT audience is empty")
	case ttl <= 0:
		return nil, fmt.Errorf("api: JWT ttl %v is not positive", ttl)
	}
	if now == nil {
		now = time.Now
	}
	t := &Tokens{
		secret:   slices.Clone(secret),
		issuer:   issuer,
		audience: audience,
		ttl:      ttl,
		now:      now,
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(TokenLeeway),
		jwt.WithTimeFunc(now),
	)
	return t, nil
}

// TTL is how long issued tokens live.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs a token for a user at token version 0.
func (t *Tokens) Issue(userID string, role domain.Role, name, doctorID string) (string, time.Time, error) {
	return t.IssueVersion(userID, role, name, doctorID, 0)
}

// IssueVersion signs a token for a user at the account's token version tv.
func (t *Tokens) IssueVersion(userID string, role domain.Role, name, doctorID string, tv int) (string, time.Time, error) {
	if userID == "" {
		return "", time.Time{}, errors.New("api: issue token: empty user id")
	}
	if !role.Valid() || role == domain.RoleSystem {
		return "", time.Time{}, fmt.Errorf("api: issue token: invalid role %q", role)
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("api: issue token: %w", err)
	}
	now := t.now().UTC().Truncate(time.Second)
	exp := now.Add(t.ttl)
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{t.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		Role:         role,
		Name:         name,
		DoctorID:     doctorID,
		TokenVersion: tv,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("api: sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature (HS256 only), exp (required), nbf, iat,
// iss, aud, subject and role. Every failure is ErrTokenInvalid wrapping the
// parser's reason.
func (t *Tokens) Verify(token string) (*Claims, error) {
	claims := &Claims{}
	_, err := t.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return t.secret, nil // the parser has already refused any alg but HS256
	})
	if err != nil {
		return nil, ErrTokenInvalid.WithCause(err)
	}
	return claims, nil
}

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID   string
	Role     domain.Role
	Name     string
	DoctorID string // set for role doctor
	// TokenID (jti), TokenVersion (tv) and ExpiresAt are the token's, for
	// the session check and logout.
	TokenID      string
	TokenVersion int
	ExpiresAt    time.Time
}

// Actor is the principal as the actor of the events its commands record.
func (p Principal) Actor() domain.Actor {
	return domain.Actor{UserID: p.UserID, Role: p.Role}
}

// WithPrincipal returns ctx carrying p. Authenticate uses it; handler tests
// may too.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, keyPrincipal, p)
}

// PrincipalFrom returns the authenticated caller, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(keyPrincipal).(Principal)
	return p, ok
}

// Authenticate reads "Authorization: Bearer <token>" (the scheme is
// case-insensitive, RFC 7235). Without the header the request goes on
// anonymous; with a header that is not exactly one valid bearer token
// (malformed, expired, not yet valid, another alg, another key, issuer or
// audience, unknown role, no subject) it answers 401 invalid_token. On
// success the Principal is in the context (PrincipalFrom), the request
// logger carries user_id, and the access log records the user.
func (t *Tokens) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		log := zerolog.Ctx(r.Context())
		token, ok := bearerToken(values)
		if !ok {
			log.Debug().Msg("malformed Authorization header")
			WriteError(w, r, ErrTokenInvalid.WithDetail("The Authorization header must be \"Bearer <token>\"."))
			return
		}
		claims, err := t.Verify(token)
		if err != nil {
			log.Debug().Err(err).Msg("bearer token refused")
			WriteError(w, r, err)
			return
		}
		p := Principal{UserID: claims.Subject, Role: claims.Role, Name: claims.Name, DoctorID: claims.DoctorID, TokenID: claims.ID, TokenVersion: claims.TokenVersion}
		if claims.ExpiresAt != nil {
			p.ExpiresAt = claims.ExpiresAt.Time
		}
		ctx := WithPrincipal(r.Context(), p)
		if info := requestInfoFrom(ctx); info != nil {
			info.userID, info.role = p.UserID, p.Role
		}
		l := log.With().Str("user_id", p.UserID).Str("role", string(p.Role)).Logger()
		ctx = l.WithContext(ctx)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bearerToken extracts the token of a single "Bearer <token>" header.
func bearerToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// RequireRole lets through only authenticated callers with one of roles (any
// authenticated caller when roles is empty): anonymous gets 401 unauthorized
// with WWW-Authenticate, another role 403 forbidden. Mount it after
// Authenticate. Ownership ("its patient", "that doctor") is the handler's
// check, answered with 404 so as not to reveal what exists.
func RequireRole(roles ...domain.Role) func(http.Handler) http.Handler {
	allowed := slices.Clone(roles)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				WriteError(w, r, ErrTokenMissing)
				return
			}
			if len(allowed) > 0 && !slices.Contains(allowed, p.Role) {
				WriteError(w, r, ErrWrongRole)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
