package account_test

import (
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

func TestLifecycle(t *testing.T) {
	t.Parallel()
	h1, h2 := account.TokenHash("token-1"), account.TokenHash("token-2")
	later := now0.Add(30 * time.Minute)
	hour := now0.Add(time.Hour)
	reset := account.PasswordResetRequested{AccountID: accID, TokenHash: h1, ExpiresAt: hour, RequestedAt: now0}
	issued := account.EmailVerificationIssued{AccountID: accID, TokenHash: h1, ExpiresAt: hour, IssuedAt: now0}
	off := account.Deactivated{AccountID: accID, TokenVersion: 1, DeactivatedAt: now0}
	run(t, []scenario{
		{
			name: "change password bumps the token version", given: []domain.Event{registered()},
			when: func(a *account.Account) error { return a.ChangePassword("$2a$new", later) },
			then: []domain.Event{account.PasswordChanged{AccountID: accID, PasswordHash: "$2a$new", TokenVersion: 1, ChangedAt: later}},
			after: func(t *testing.T, a *account.Account) {
				if a.PasswordHash() != "$2a$new" || a.TokenVersion() != 1 {
					t.Errorf("hash %q version %d", a.PasswordHash(), a.TokenVersion())
				}
			},
		},
		{
			name: "a deactivated account cannot change its password", given: []domain.Event{registered(), off},
			when: func(a *account.Account) error { return a.ChangePassword("$2a$new", later) },
			err:  account.ErrAccountInactive, kind: domain.ErrForbidden,
		},
		{
			name: "reset with the pending token", given: []domain.Event{registered(), reset},
			when: func(a *account.Account) error { return a.ResetPassword(h1, "$2a$new", later) },
			then: []domain.Event{account.PasswordReset{AccountID: accID, TokenHash: h1, PasswordHash: "$2a$new", TokenVersion: 1, ResetAt: later}},
		},
		{
			name: "a reset token is single-use", given: []domain.Event{registered(), reset, account.PasswordReset{AccountID: accID, TokenHash: h1, PasswordHash: "$2a$new", TokenVersion: 1, ResetAt: later}},
			when: func(a *account.Account) error { return a.ResetPassword(h1, "$2a$other", later) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "a reset token expires", given: []domain.Event{registered(), reset},
			when: func(a *account.Account) error { return a.ResetPassword(h1, "$2a$new", hour) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "a newer reset request supersedes the older", given: []domain.Event{registered(), reset, account.PasswordResetRequested{AccountID: accID, TokenHash: h2, ExpiresAt: hour, RequestedAt: now0}},
			when: func(a *account.Account) error { return a.ResetPassword(h1, "$2a$new", later) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "a password change voids a pending reset", given: []domain.Event{registered(), reset, account.PasswordChanged{AccountID: accID, PasswordHash: "$2a$x", TokenVersion: 1, ChangedAt: now0}},
			when: func(a *account.Account) error { return a.ResetPassword(h1, "$2a$new", later) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "no reset for a deactivated account", given: []domain.Event{registered(), off},
			when: func(a *account.Account) error { return a.RequestPasswordReset(h1, hour, now0) },
			err:  account.ErrAccountInactive, kind: domain.ErrForbidden,
		},
		{
			name: "logout revokes one token, once", given: []domain.Event{registered(), account.LoggedOut{AccountID: accID, TokenID: "jti-1", ExpiresAt: hour, LoggedOutAt: now0}},
			when: func(a *account.Account) error {
				if err := a.Logout("jti-1", hour, later); err != nil {
					return err
				}
				return a.Logout("jti-2", hour, later)
			},
			then: []domain.Event{account.LoggedOut{AccountID: accID, TokenID: "jti-2", ExpiresAt: hour, LoggedOutAt: later}},
			after: func(t *testing.T, a *account.Account) {
				if !a.Revoked("jti-1") || !a.Revoked("jti-2") || a.Revoked("jti-3") || a.TokenVersion() != 0 {
					t.Errorf("revoked %v", a.RevokedTokens())
				}
			},
		},
		{
			name: "expired revocations are forgotten", given: []domain.Event{registered(), account.LoggedOut{AccountID: accID, TokenID: "jti-1", ExpiresAt: later, LoggedOutAt: now0}},
			when: func(a *account.Account) error { return a.Logout("jti-2", hour.Add(time.Hour), hour) },
			then: []domain.Event{account.LoggedOut{AccountID: accID, TokenID: "jti-2", ExpiresAt: hour.Add(time.Hour), LoggedOutAt: hour}},
			after: func(t *testing.T, a *account.Account) {
				if a.Revoked("jti-1") || len(a.RevokedTokens()) != 1 {
					t.Errorf("revoked %v", a.RevokedTokens())
				}
			},
		},
		{
			name: "deactivate bumps the version, activate keeps it", given: []domain.Event{registered()},
			when: func(a *account.Account) error {
				if err := a.Deactivate(now0); err != nil {
					return err
				}
				if err := a.Deactivate(now0); err != nil {
					return err
				}
				return a.Activate(later)
			},
			then: []domain.Event{off, account.Activated{AccountID: accID, ActivatedAt: later}},
			after: func(t *testing.T, a *account.Account) {
				if !a.Active() || a.TokenVersion() != 1 {
					t.Errorf("active %v version %d", a.Active(), a.TokenVersion())
				}
			},
		},
		{
			name: "activating an active account records nothing", given: []domain.Event{registered()},
			when: func(a *account.Account) error { return a.Activate(now0) },
		},
		{
			name: "verify with the pending token, and again", given: []domain.Event{registered(), issued},
			when: func(a *account.Account) error {
				if err := a.VerifyEmail(h1, later); err != nil {
					return err
				}
				return a.VerifyEmail(h1, hour.Add(time.Hour))
			},
			then: []domain.Event{account.EmailVerified{AccountID: accID, TokenHash: h1, VerifiedAt: later}},
			after: func(t *testing.T, a *account.Account) {
				if !a.EmailVerified() {
					t.Error("not verified")
				}
				if ok, err := a.IssueEmailVerification(h2, hour, later); ok || err != nil {
					t.Errorf("issue after verification: %v %v", ok, err)
				}
			},
		},
		{
			name: "a wrong verification token", given: []domain.Event{registered(), issued},
			when: func(a *account.Account) error { return a.VerifyEmail(h2, later) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "an empty verification token", given: []domain.Event{registered(), issued},
			when: func(a *account.Account) error { return a.VerifyEmail("", later) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "an expired verification token", given: []domain.Event{registered(), issued},
			when: func(a *account.Account) error { return a.VerifyEmail(h1, hour) },
			err:  account.ErrInvalidToken, kind: domain.ErrInvalid,
		},
		{
			name: "issue a verification", given: []domain.Event{registered()},
			when: func(a *account.Account) error {
				_, err := a.IssueEmailVerification(h1, hour, now0)
				return err
			},
			then: []domain.Event{issued},
		},
	})
}
