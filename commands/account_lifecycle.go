package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

// Lifetimes of mailed tokens.
const (
	ResetTokenTTL  = time.Hour
	VerifyTokenTTL = 48 * time.Hour
)

// Lifecycle errors of the command layer.
var (
	// ErrWrongPassword: POST /me/password with a wrong current password.
	// It is 403, not 401: the caller's token is fine.
	ErrWrongPassword = domain.NewError(domain.ErrForbidden, "wrong_password", "the current password is wrong")
	// ErrSelfDeactivation: an admin may not deactivate their own account
	// (the last admin would lock everybody out).
	ErrSelfDeactivation = domain.NewError(domain.ErrConflict, "self_deactivation", "an admin cannot deactivate their own account")
	// ErrAdminsOnly: only admins (de)activate accounts.
	ErrAdminsOnly = domain.NewError(domain.ErrForbidden, "forbidden", "only admins may do this")
)

// MailedToken is a token to mail to an account's owner (verification or
// password reset). Only its SHA-256 is stored; Token itself exists only
// here, for the mail.
type MailedToken struct {
	Token     string
	ExpiresAt time.Time
	// MailID identifies the mail (the Mailer sends an id at most once).
	MailID  string
	Account AccountResult
}

// Session is what an authenticated request is checked against: the
// account's state as its stream stands.
type Session struct {
	Active       bool
	TokenVersion int
	// Revoked maps logged-out token ids to their expiries.
	Revoked map[string]time.Time
}

// Session reads the session state of an account. ok is false when there is
// no such account.
func (h *Handler) Session(ctx context.Context, role domain.Role, id string) (s Session, ok bool, err error) {
	ok, err = view(ctx, h, h.accounts, account.StreamID(role, id), func(a *account.Account, _ uint64) {
		s = Session{Active: a.Active(), TokenVersion: a.TokenVersion(), Revoked: a.RevokedTokens()}
	})
	return s, ok, err
}

// ChangePassword changes the caller's password after checking the current
// one (ErrWrongPassword). Every token issued before carries an older token
// version afterwards; the result has the new one.
func (h *Handler) ChangePassword(ctx context.Context, m Meta, current, next string) (AccountResult, error) {
	if err := account.ValidatePassword(next); err != nil {
		return AccountResult{}, err
	}
	st, ok, err := h.readAccount(ctx, m.Actor.Role, m.Actor.UserID)
	switch {
	case err != nil:
		return AccountResult{}, err
	case !ok:
		return AccountResult{}, account.ErrAccountNotFound
	case len(current) > 72 || h.hasher.Compare(st.passwordHash, current) != nil:
		return AccountResult{}, ErrWrongPassword
	}
	hash, err := h.hasher.Hash(next)
	if err != nil {
		return AccountResult{}, err
	}
	return h.execAccount(ctx, "ChangePassword", m.Actor.Role, m.Actor.UserID, m, request{}, false, func(a *account.Account, now time.Time) error {
		if a.PasswordHash() != st.passwordHash {
			return ErrWrongPassword // changed meanwhile: the current password checked is no longer current
		}
		return a.ChangePassword(hash, now)
	})
}

// Logout revokes the caller's token jti until it expires.
func (h *Handler) Logout(ctx context.Context, m Meta, jti string, expires time.Time) error {
	_, err := h.execAccount(ctx, "Logout", m.Actor.Role, m.Actor.UserID, m, request{}, false, func(a *account.Account, now time.Time) error {
		return a.Logout(jti, expires, now)
	})
	return err
}

// RevokeCalendarFeed makes the caller's calendar-feed URL stop working.
func (h *Handler) RevokeCalendarFeed(ctx context.Context, m Meta) (AccountResult, error) {
	return h.execAccount(ctx, "RevokeCalendarFeed", m.Actor.Role, m.Actor.UserID, m, request{}, false, func(a *account.Account, now time.Time) error {
		return a.RevokeCalendarFeed(now)
	})
}

// SetAccountActive deactivates or activates the account id (any role);
// admins only, never their own account.
func (h *Handler) SetAccountActive(ctx context.Context, m Meta, id string, active bool) (AccountResult, error) {
	if m.Actor.Role != domain.RoleAdmin && m.Actor.Role != domain.RoleSystem {
		return AccountResult{}, ErrAdminsOnly
	}
	if !active && m.Actor.UserID == id {
		return AccountResult{}, ErrSelfDeactivation
	}
	role, err := h.roleOf(ctx, id)
	if err != nil {
		return AccountResult{}, err
	}
	command := "DeactivateAccount"
	if active {
		command = "ActivateAccount"
	}
	return h.execAccount(ctx, command, role, id, m, request{}, false, func(a *account.Account, now time.Time) error {
		if active {
			return a.Activate(now)
		}
		return a.Deactivate(now)
	})
}

// roleOf finds the stream of account id: a patient's, else a staff one
// (any staff role names the staff stream).
func (h *Handler) roleOf(ctx context.Context, id string) (domain.Role, error) {
	if id == "" || len(id) > 64 {
		return "", account.ErrAccountNotFound
	}
	for _, r := range []domain.Role{domain.RolePatient, domain.RoleAdmin} {
		_, ok, err := h.readAccount(ctx, r, id)
		if err != nil {
			return "", err
		}
		if ok {
			return r, nil
		}
	}
	return "", account.ErrAccountNotFound
}

// RequestPasswordReset issues a reset token for the account of email. ok
// is false, with nothing recorded, when there is no such account or it is
// deactivated: the caller answers the same either way.
func (h *Handler) RequestPasswordReset(ctx context.Context, m Meta, email string) (MailedToken, bool, error) {
	email = NormalizeEmail(email)
	if account.ValidateEmail(email) != nil {
		return MailedToken{}, false, nil
	}
	st, ok, err := h.emailOwner(ctx, email)
	if err != nil || !ok || !st.Active {
		return MailedToken{}, false, err
	}
	return h.issueToken(ctx, "RequestPasswordReset", m, st.Role, st.ID, ResetTokenTTL, func(a *account.Account, hash string, exp, now time.Time) (bool, error) {
		return true, a.RequestPasswordReset(hash, exp, now)
	})
}

// IssueEmailVerification issues a verification token for the account. ok
// is false, with nothing recorded, when the email is verified already.
func (h *Handler) IssueEmailVerification(ctx context.Context, m Meta, role domain.Role, id string) (MailedToken, bool, error) {
	return h.issueToken(ctx, "IssueEmailVerification", m, role, id, VerifyTokenTTL, func(a *account.Account, hash string, exp, now time.Time) (bool, error) {
		return a.IssueEmailVerification(hash, exp, now)
	})
}

// issueToken makes a random token naming the account's stream, has issue
// record its hash, and returns it when issue recorded it.
func (h *Handler) issueToken(ctx context.Context, command string, m Meta, role domain.Role, id string, ttl time.Duration,
	issue func(a *account.Account, hash string, exp, now time.Time) (bool, error)) (MailedToken, bool, error) {
	token, err := newMailedToken(account.StreamID(role, id))
	if err != nil {
		return MailedToken{}, false, err
	}
	hash := account.TokenHash(token)
	var (
		issued bool
		exp    time.Time
	)
	res, err := h.execAccount(ctx, command, role, id, m, request{}, false, func(a *account.Account, now time.Time) error {
		exp = now.Add(ttl)
		var err error
		issued, err = issue(a, hash, exp, now)
		return err
	})
	if err != nil || !issued {
		return MailedToken{}, false, err
	}
	return MailedToken{Token: token, ExpiresAt: exp, MailID: hash[:32], Account: res}, true, nil
}

// ResetPassword sets a new password with a mailed reset token; every older
// token of the account stops working. A bad token is account.ErrInvalidToken.
func (h *Handler) ResetPassword(ctx context.Context, m Meta, token, password string) (AccountResult, error) {
	if err := account.ValidatePassword(password); err != nil {
		return AccountResult{}, err
	}
	role, id, err := h.tokenAccount(ctx, token)
	if err != nil {
		return AccountResult{}, err
	}
	hash, err := h.hasher.Hash(password)
	if err != nil {
		return AccountResult{}, err
	}
	return h.execAccount(ctx, "ResetPassword", role, id, m, request{}, false, func(a *account.Account, now time.Time) error {
		return a.ResetPassword(account.TokenHash(token), hash, now)
	})
}

// VerifyEmail marks the email of the token's account verified. A bad
// token is account.ErrInvalidToken.
func (h *Handler) VerifyEmail(ctx context.Context, m Meta, token string) (AccountResult, error) {
	role, id, err := h.tokenAccount(ctx, token)
	if err != nil {
		return AccountResult{}, err
	}
	return h.execAccount(ctx, "VerifyEmail", role, id, m, request{}, false, func(a *account.Account, now time.Time) error {
		return a.VerifyEmail(account.TokenHash(token), now)
	})
}

// tokenAccount is the registered account a mailed token names; anything
// else is account.ErrInvalidToken.
func (h *Handler) tokenAccount(ctx context.Context, token string) (domain.Role, string, error) {
	role, id, ok := parseMailedToken(token)
	if !ok {
		return "", "", account.ErrInvalidToken
	}
	_, found, err := h.readAccount(ctx, role, id)
	switch {
	case err != nil:
		return "", "", err
	case !found:
		return "", "", account.ErrInvalidToken
	}
	return role, id, nil
}

// A mailed token is base64url(stream) "." base64url(32 random bytes): it
// names its account's stream, so that it can be checked against the hash
// that stream stores without any index.
const mailedSecretBytes = 32

func newMailedToken(stream string) (string, error) {
	secret := make([]byte, mailedSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("commands: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(stream)) + "." + base64.RawURLEncoding.EncodeToString(secret), nil
}

// parseMailedToken returns the account a well-formed token names.
func parseMailedToken(token string) (domain.Role, string, bool) {
	if len(token) > 256 {
		return "", "", false
	}
	head, secret, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", false
	}
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != mailedSecretBytes {
		return "", "", false
	}
	stream, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", "", false
	}
	category, id, ok := strings.Cut(string(stream), "-")
	if !ok || id == "" {
		return "", "", false
	}
	switch category {
	case account.PatientCategory:
		return domain.RolePatient, id, true
	case account.StaffCategory:
		return domain.RoleAdmin, id, true // any staff role names the staff stream
	}
	return "", "", false
}
