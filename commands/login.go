package commands

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

// Login checks credentials against the email stream and the account stream
// (never a read model, so a fresh registration logs in at once). Unknown
// email and wrong password are the same error and take about the same time.
func (h *Handler) Login(ctx context.Context, email, password string) (AccountResult, error) {
	email = NormalizeEmail(email)
	// bcrypt compares only a password's first 72 bytes: a longer one,
	// refused at registration, must not log in on its first 72.
	if account.ValidateEmail(email) != nil || len(password) > 72 {
		h.burnHash(password)
		return AccountResult{}, account.ErrInvalidCredentials
	}
	st, ok, err := h.emailOwner(ctx, email)
	if err != nil {
		return AccountResult{}, err
	}
	if !ok {
		h.burnHash(password)
		return AccountResult{}, account.ErrInvalidCredentials
	}
	// A deactivated account answers like a wrong password (after the same
	// hash comparison), so that nobody learns it exists.
	if h.hasher.Compare(st.passwordHash, password) != nil || !st.Active {
		return AccountResult{}, account.ErrInvalidCredentials
	}
	return st.AccountResult, nil
}

// EmailOwner returns the account that owns email, if any (an account whose
// registration stopped between the email claim and the account is
// completed first).
func (h *Handler) EmailOwner(ctx context.Context, email string) (AccountResult, bool, error) {
	st, ok, err := h.emailOwner(ctx, NormalizeEmail(email))
	return st.AccountResult, ok, err
}

// emailOwner reads the email's claim and the account it names.
func (h *Handler) emailOwner(ctx context.Context, email string) (accountState, bool, error) {
	recs, evs, err := h.readEmailStream(ctx, email)
	if err != nil || len(evs) == 0 {
		return accountState{}, false, err
	}
	claim, ok := evs[0].(account.EmailClaimed)
	if !ok {
		return accountState{}, false, errors.New("commands: email stream holds an unexpected event")
	}
	st, ok, err := h.readAccount(ctx, claim.Role, claim.AccountID)
	if err != nil {
		return accountState{}, false, err
	}
	if !ok {
		// The registration stopped between the claim and the account: the
		// claim carries what is needed to finish it.
		if st, err = h.completeRegistration(ctx, recs[0].ID, claim); err != nil {
			return accountState{}, false, err
		}
	}
	return st, true, nil
}

// NormalizeEmail is the form an email is claimed and looked up in: NFKC
// (so that full-width and other compatibility look-alikes of an address are
// that address), then trimmed and lower-cased.
func NormalizeEmail(e string) string { return account.NormalizeEmail(norm.NFKC.String(e)) }

// completeRegistration opens the account of an email claim whose
// registration stopped before the account stream was written.
func (h *Handler) completeRegistration(ctx context.Context, claimID uuid.UUID, claim account.EmailClaimed) (accountState, error) {
	m := Meta{Actor: domain.System, CausationID: claimID.String(), IdempotencyKey: "complete-registration:" + claimID.String()}
	if _, err := h.execAccount(ctx, "CompleteRegistration", claim.Role, claim.AccountID, m, request{}, true, func(a *account.Account, now time.Time) error {
		if a.Registered() {
			return nil
		}
		return a.Register(account.NewRegistration{Name: claim.Name, Email: claim.Email, PasswordHash: claim.PasswordHash, Role: claim.Role, DoctorID: claim.DoctorID}, now)
	}); err != nil {
		return accountState{}, err
	}
	st, ok, err := h.readAccount(ctx, claim.Role, claim.AccountID)
	if err == nil && !ok {
		err = account.ErrAccountNotFound
	}
	return st, err
}

// burnHash spends the time of a password check so that unknown emails do
// not answer faster than wrong passwords.
func (h *Handler) burnHash(password string) {
	h.dummyOnce.Do(func() {
		h.dummyHash, _ = h.hasher.Hash(uuid.NewString())
	})
	_ = h.hasher.Compare(h.dummyHash, password)
}
