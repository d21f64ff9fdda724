package account

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Lifecycle errors.
var (
	// ErrInvalidToken: a verification or reset token that is unknown,
	// expired, already used or superseded. One error for all of them, so
	// that a guesser learns nothing.
	ErrInvalidToken = domain.NewError(domain.ErrInvalid, "invalid_token", "the token is invalid or has expired")
	// ErrAccountInactive: the account is deactivated (login answers
	// ErrInvalidCredentials instead, so as not to reveal it).
	ErrAccountInactive = domain.NewError(domain.ErrForbidden, "account_inactive", "this account is deactivated")
	// ErrAccountErased: the account's personal data was erased; it stays
	// closed for good.
	ErrAccountErased = domain.NewError(domain.ErrConflict, "account_erased", "this account's personal data was erased; it cannot be opened again")
)

// Lifecycle event type names.
const (
	TypePasswordChanged         = "account.PasswordChanged.v1"
	TypePasswordResetRequested  = "account.PasswordResetRequested.v1"
	TypePasswordReset           = "account.PasswordReset.v1"
	TypeLoggedOut               = "account.LoggedOut.v1"
	TypeDeactivated             = "account.Deactivated.v1"
	TypeActivated               = "account.Activated.v1"
	TypeEmailVerificationIssued = "account.EmailVerificationIssued.v1"
	TypeEmailVerified           = "account.EmailVerified.v1"
	TypePersonalDataErased      = "account.PersonalDataErased.v1"

	TypeCalendarFeedRevoked = "account.CalendarFeedRevoked.v1"
)

// lifecycleEvents are the registrations of the lifecycle event types.
func lifecycleEvents() []domain.Registration {
	return []domain.Registration{
		domain.Type[PasswordChanged](),
		domain.Type[PasswordResetRequested](),
		domain.Type[PasswordReset](),
		domain.Type[LoggedOut](),
		domain.Type[Deactivated](),
		domain.Type[Activated](),
		domain.Type[EmailVerificationIssued](),
		domain.Type[EmailVerified](),
		domain.Type[PersonalDataErased](),

		domain.Type[CalendarFeedRevoked](),
	}
}

// PasswordChanged: the owner changed the password. TokenVersion is the
// account's new token version: every token issued before carries an older
// one and stops working.
type PasswordChanged struct {
	AccountID    string    `json:"accountId"`
	PasswordHash string    `json:"passwordHash"`
	TokenVersion int       `json:"tokenVersion"`
	ChangedAt    time.Time `json:"changedAt"`
}

// PasswordResetRequested: a reset mail was asked for. Only the SHA-256 of
// the mailed token is stored; a newer request supersedes an older one.
type PasswordResetRequested struct {
	AccountID   string    `json:"accountId"`
	TokenHash   string    `json:"tokenHash"`
	ExpiresAt   time.Time `json:"expiresAt"`
	RequestedAt time.Time `json:"requestedAt"`
}

// PasswordReset: the password was set with the reset token of TokenHash,
// which is thereby used up; TokenVersion as in PasswordChanged.
type PasswordReset struct {
	AccountID    string    `json:"accountId"`
	TokenHash    string    `json:"tokenHash"`
	PasswordHash string    `json:"passwordHash"`
	TokenVersion int       `json:"tokenVersion"`
	ResetAt      time.Time `json:"resetAt"`
}

// LoggedOut: the access token TokenID (its jti) stops working. ExpiresAt
// is the token's own expiry, after which nobody needs to remember it.
type LoggedOut struct {
	AccountID   string    `json:"accountId"`
	TokenID     string    `json:"tokenId"`
	ExpiresAt   time.Time `json:"expiresAt"`
	LoggedOutAt time.Time `json:"loggedOutAt"`
}

// Deactivated: an admin closed the account; its tokens stop working and
// it cannot log in. TokenVersion is bumped too, so that an activation
// later does not bring the old tokens back.
type Deactivated struct {
	AccountID     string    `json:"accountId"`
	TokenVersion  int       `json:"tokenVersion"`
	DeactivatedAt time.Time `json:"deactivatedAt"`
}

// Activated: an admin opened a deactivated account again.
type Activated struct {
	AccountID   string    `json:"accountId"`
	ActivatedAt time.Time `json:"activatedAt"`
}

// EmailVerificationIssued: a verification mail was sent; only the SHA-256
// of its token is stored. A newer one supersedes an older one.
type EmailVerificationIssued struct {
	AccountID string    `json:"accountId"`
	TokenHash string    `json:"tokenHash"`
	ExpiresAt time.Time `json:"expiresAt"`
	IssuedAt  time.Time `json:"issuedAt"`
}

// EmailVerified: the owner proved the address with the token of TokenHash.
type EmailVerified struct {
	AccountID  string    `json:"accountId"`
	TokenHash  string    `json:"tokenHash"`
	VerifiedAt time.Time `json:"verifiedAt"`
}

// PersonalDataErased: the person's data key was shredded (before this
// fact was appended): every personal field sealed with it, in any event,
// now reads as "[erased]". The account is closed for good.
type PersonalDataErased struct {
	AccountID string    `json:"accountId"`
	ErasedAt  time.Time `json:"erasedAt"`
}

// ErasedSubject implements domain.Erasure.
func (e PersonalDataErased) ErasedSubject() string { return e.AccountID }

func (PersonalDataErased) EventType() string { return TypePersonalDataErased }

// CalendarFeedRevoked: the owner revoked the private calendar feed's URL;
// Generation is the feed's new generation (the URL is made from it, so
// every older URL stops working).
type CalendarFeedRevoked struct {
	AccountID  string    `json:"accountId"`
	Generation int       `json:"generation"`
	RevokedAt  time.Time `json:"revokedAt"`
}

func (CalendarFeedRevoked) EventType() string { return TypeCalendarFeedRevoked }

func (PasswordChanged) EventType() string         { return TypePasswordChanged }
func (PasswordResetRequested) EventType() string  { return TypePasswordResetRequested }
func (PasswordReset) EventType() string           { return TypePasswordReset }
func (LoggedOut) EventType() string               { return TypeLoggedOut }
func (Deactivated) EventType() string             { return TypeDeactivated }
func (Activated) EventType() string               { return TypeActivated }
func (EmailVerificationIssued) EventType() string { return TypeEmailVerificationIssued }
func (EmailVerified) EventType() string           { return TypeEmailVerified }

// TokenHash is the stored form of a mailed token: hex SHA-256.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// pendingToken is a mailed token the account waits for.
type pendingToken struct {
	hash    string
	expires time.Time
}

// matches compares in constant time and checks the expiry.
func (p pendingToken) matches(hash string, now time.Time) bool {
	return p.hash != "" && subtle.ConstantTimeCompare([]byte(p.hash), []byte(hash)) == 1 && now.Before(p.expires)
}

// lifecycle is the part of the account's state the lifecycle events fold.
type lifecycle struct {
	inactive      bool
	emailVerified bool
	tokenVersion  int
	// revoked maps the jti of each logged-out token to its expiry; entries
	// past the expiry are dropped as later logouts fold.
	revoked  map[string]time.Time
	verify   pendingToken
	verified string // hash of the token that verified the email
	reset    pendingToken
	erased   bool

	feed int // generation of the calendar feed's URL
}

// CalendarFeed is the generation of the account's calendar-feed URL.
func (a *Account) CalendarFeed() int { return a.life.feed }

// RevokeCalendarFeed makes every calendar-feed URL of the account stop
// working (the next has a new generation).
func (a *Account) RevokeCalendarFeed(now time.Time) error {
	if err := a.mustBeActive(); err != nil {
		return err
	}
	a.record(CalendarFeedRevoked{AccountID: a.id, Generation: a.life.feed + 1, RevokedAt: now.UTC()})
	return nil
}

// Active reports whether the account may log in and use its tokens.
func (a *Account) Active() bool { return a.registered && !a.life.inactive }

// EmailVerified reports whether the owner proved the email address.
func (a *Account) EmailVerified() bool { return a.life.emailVerified }

// TokenVersion is the version every valid token of the account carries.
func (a *Account) TokenVersion() int { return a.life.tokenVersion }

// Revoked reports whether the token with jti was logged out.
func (a *Account) Revoked(jti string) bool {
	_, ok := a.life.revoked[jti]
	return ok
}

// RevokedTokens returns a copy of the logged-out token ids and their
// expiries.
func (a *Account) RevokedTokens() map[string]time.Time {
	out := make(map[string]time.Time, len(a.life.revoked))
	for k, v := range a.life.revoked {
		out[k] = v
	}
	return out
}

func (a *Account) applyLifecycle(ev domain.Event) {
	l := &a.life
	switch e := ev.(type) {
	case PasswordChanged:
		a.passwordHash, l.tokenVersion, l.reset = e.PasswordHash, e.TokenVersion, pendingToken{}
	case PasswordResetRequested:
		l.reset = pendingToken{hash: e.TokenHash, expires: e.ExpiresAt}
	case PasswordReset:
		a.passwordHash, l.tokenVersion, l.reset = e.PasswordHash, e.TokenVersion, pendingToken{}
	case LoggedOut:
		if l.revoked == nil {
			l.revoked = map[string]time.Time{}
		}
		for jti, exp := range l.revoked {
			if !exp.After(e.LoggedOutAt) {
				delete(l.revoked, jti)
			}
		}
		l.revoked[e.TokenID] = e.ExpiresAt
	case Deactivated:
		l.inactive, l.tokenVersion = true, e.TokenVersion
	case Activated:
		l.inactive = false
	case EmailVerificationIssued:
		l.verify = pendingToken{hash: e.TokenHash, expires: e.ExpiresAt}
	case EmailVerified:
		l.emailVerified, l.verified, l.verify = true, e.TokenHash, pendingToken{}
	case PersonalDataErased:
		l.erased, l.inactive = true, true
		a.email = domain.Erased
		a.profile = Profile{Name: domain.Erased}

	case CalendarFeedRevoked:
		l.feed = e.Generation
	}
}

// ChangePassword sets a new password hash (the caller checked the current
// password) and bumps the token version.
func (a *Account) ChangePassword(newHash string, now time.Time) error {
	if err := a.mustBeActive(); err != nil {
		return err
	}
	if newHash == "" {
		return domain.Detail(ErrInvalidAccount, "password hash missing")
	}
	a.record(PasswordChanged{AccountID: a.id, PasswordHash: newHash, TokenVersion: a.life.tokenVersion + 1, ChangedAt: now.UTC()})
	return nil
}

// RequestPasswordReset records a reset token's hash, valid until expires.
// A deactivated account gets none.
func (a *Account) RequestPasswordReset(tokenHash string, expires, now time.Time) error {
	if err := a.mustBeActive(); err != nil {
		return err
	}
	if tokenHash == "" || !expires.After(now) {
		return domain.Invalid("a reset token needs a hash and a future expiry")
	}
	a.record(PasswordResetRequested{AccountID: a.id, TokenHash: tokenHash, ExpiresAt: expires.UTC(), RequestedAt: now.UTC()})
	return nil
}

// ResetPassword sets a new password with the pending reset token of
// tokenHash, which is used up, and bumps the token version. An unknown,
// superseded, used or expired token, or a deactivated account, is
// ErrInvalidToken.
func (a *Account) ResetPassword(tokenHash, newHash string, now time.Time) error {
	if !a.Active() || !a.life.reset.matches(tokenHash, now) {
		return ErrInvalidToken
	}
	if newHash == "" {
		return domain.Detail(ErrInvalidAccount, "password hash missing")
	}
	a.record(PasswordReset{AccountID: a.id, TokenHash: tokenHash, PasswordHash: newHash, TokenVersion: a.life.tokenVersion + 1, ResetAt: now.UTC()})
	return nil
}

// Logout revokes one token (by its jti) until its expiry. Logging out a
// token twice records nothing the second time.
func (a *Account) Logout(jti string, expires, now time.Time) error {
	if !a.registered {
		return ErrAccountNotFound
	}
	if jti == "" {
		return domain.Invalid("the token has no id")
	}
	if a.Revoked(jti) {
		return nil
	}
	a.record(LoggedOut{AccountID: a.id, TokenID: jti, ExpiresAt: expires.UTC(), LoggedOutAt: now.UTC()})
	return nil
}

// Deactivate closes the account; nothing is recorded when it is closed.
func (a *Account) Deactivate(now time.Time) error {
	if !a.registered {
		return ErrAccountNotFound
	}
	if a.life.inactive {
		return nil
	}
	a.record(Deactivated{AccountID: a.id, TokenVersion: a.life.tokenVersion + 1, DeactivatedAt: now.UTC()})
	return nil
}

// Erased reports whether the account's personal data was erased.
func (a *Account) Erased() bool { return a.life.erased }

// Erase records the erasure of a patient's personal data (the caller
// shredded the key first), closing the account first if it is open.
// Nothing is recorded for an account erased already.
func (a *Account) Erase(now time.Time) error {
	if !a.registered || a.role != domain.RolePatient {
		return ErrAccountNotFound
	}
	if a.life.erased {
		return nil
	}
	if err := a.Deactivate(now); err != nil {
		return err
	}
	a.record(PersonalDataErased{AccountID: a.id, ErasedAt: now.UTC()})
	return nil
}

// Activate opens a closed account; nothing is recorded when it is open.
func (a *Account) Activate(now time.Time) error {
	if !a.registered {
		return ErrAccountNotFound
	}
	if a.life.erased {
		return ErrAccountErased
	}
	if !a.life.inactive {
		return nil
	}
	a.record(Activated{AccountID: a.id, ActivatedAt: now.UTC()})
	return nil
}

// IssueEmailVerification records a verification token's hash. It reports
// false, recording nothing, when the email is verified already.
func (a *Account) IssueEmailVerification(tokenHash string, expires, now time.Time) (bool, error) {
	if err := a.mustBeActive(); err != nil {
		return false, err
	}
	if a.life.emailVerified {
		return false, nil
	}
	if tokenHash == "" || !expires.After(now) {
		return false, domain.Invalid("a verification token needs a hash and a future expiry")
	}
	a.record(EmailVerificationIssued{AccountID: a.id, TokenHash: tokenHash, ExpiresAt: expires.UTC(), IssuedAt: now.UTC()})
	return true, nil
}

// VerifyEmail marks the email verified with the pending token of
// tokenHash. The token that verified it verifies again without recording
// anything (a second click on the link); any other is ErrInvalidToken.
func (a *Account) VerifyEmail(tokenHash string, now time.Time) error {
	if !a.registered {
		return ErrInvalidToken
	}
	if tokenHash == "" {
		return ErrInvalidToken
	}
	if a.life.emailVerified && subtle.ConstantTimeCompare([]byte(a.life.verified), []byte(tokenHash)) == 1 {
		return nil
	}
	if a.life.emailVerified || !a.life.verify.matches(tokenHash, now) {
		return ErrInvalidToken
	}
	a.record(EmailVerified{AccountID: a.id, TokenHash: tokenHash, VerifiedAt: now.UTC()})
	return nil
}

func (a *Account) mustBeActive() error {
	switch {
	case !a.registered:
		return ErrAccountNotFound
	case a.life.inactive:
		return ErrAccountInactive
	}
	return nil
}
