package commands

import (
	"context"
	"errors"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/eventstore"
)

// NewAccount opens an account of any role.
type NewAccount struct {
	Name     string
	Email    string
	Password string
	Role     domain.Role
	DoctorID string // for role doctor
	// ID is the account id to use; empty means a new one.
	ID string
}

// openAccount validates, hashes, claims the email and opens the account
// stream. The email is claimed first, so two registrations of one email
// can never both open an account. Account openings claim no
// Idempotency-Key: their streams are derived from the key itself (the
// account id), and checkKeyedOpen compares the request with what the key
// stored.
func (h *Handler) openAccount(ctx context.Context, command string, m Meta, n NewAccount) (AccountResult, error) {
	if err := account.ValidatePassword(n.Password); err != nil {
		return AccountResult{}, err
	}
	n.Email = NormalizeEmail(n.Email)
	id := n.ID
	if id == "" {
		id = newID(m, command, "account")
	}
	probe := account.New(id) // validate before the slow hash
	reg := account.NewRegistration{Name: n.Name, Email: n.Email, PasswordHash: "-", Role: n.Role, DoctorID: n.DoctorID}
	if err := probe.Register(reg, h.clock()); err != nil {
		return AccountResult{}, err
	}
	ev := probe.Changes()[0].(account.Registered)
	var hash string // a retry reuses the hash its first request stored
	if m.IdempotencyKey != "" {
		var err error
		if hash, err = h.checkKeyedOpen(ctx, n, id, ev); err != nil {
			return AccountResult{}, err
		}
	}
	if hash == "" {
		var err error
		if hash, err = h.hasher.Hash(n.Password); err != nil {
			return AccountResult{}, err
		}
	}
	reg.PasswordHash = hash
	claim := account.EmailClaimed{Email: ev.Email, AccountID: id, Role: n.Role, Name: ev.Name, PasswordHash: hash, DoctorID: n.DoctorID, ClaimedAt: h.clock()}
	if err := h.claimEmail(ctx, command, m, claim); err != nil {
		return AccountResult{}, err
	}
	return h.execAccount(ctx, command, n.Role, id, m, request{}, true, func(a *account.Account, now time.Time) error {
		if a.Registered() && m.IdempotencyKey != "" {
			if a.Email() != ev.Email {
				return ErrIdempotencyKeyReused // a concurrent request with the key and another email won
			}
			return nil // a retry after the account was opened
		}
		return a.Register(reg, now)
	})
}

// claimEmail appends the email stream's one event with expected revision
// "no stream": whoever appends first owns the email.
func (h *Handler) claimEmail(ctx context.Context, command string, m Meta, claim account.EmailClaimed) error {
	stream := account.EmailStreamID(h.emailKey, claim.Email)
	if legacy := account.LegacyEmailStreamID(claim.Email); legacy != stream {
		// Addresses claimed under the legacy name stay claimed. No new
		// legacy stream is ever written, so this check cannot race.
		if _, evs, err := h.readStream(ctx, legacy, 0); err != nil {
			return err
		} else if len(evs) > 0 {
			return account.ErrEmailTaken
		}
	}
	data, err := h.encode([]domain.Event{claim}, eventIDs(m, command, stream, 1), m, claim.ClaimedAt)
	if err != nil {
		return err
	}
	_, err = h.store.Append(ctx, stream, eventstore.NoStream, data)
	switch {
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return account.ErrEmailTaken
	case err != nil:
		return storeErr(err)
	}
	return nil
}

// checkKeyedOpen refuses a keyed account opening that is not a retry of the
// request that first used the key, and returns the password hash a retry's
// first request stored (empty for a first request). The key derives the
// account id, and anonymous callers (registration) share one key space:
// without this check a second request with the key and another email, name
// or password would be answered with the first caller's account and token.
func (h *Handler) checkKeyedOpen(ctx context.Context, n NewAccount, id string, ev account.Registered) (storedHash string, err error) {
	// The email stream is read first and the account second, so a first
	// request of the same key running concurrently may claim the email in
	// between: a registered account with this email sends us back once to
	// the claim, which then exists.
	for range 2 {
		_, evs, err := h.readEmailStream(ctx, ev.Email)
		if err != nil {
			return "", err
		}
		if len(evs) > 0 {
			if claim, ok := evs[0].(account.EmailClaimed); ok && claim.AccountID == id {
				// This key claimed this email: a retry only with the same
				// name, role and password.
				if claim.Name != ev.Name || claim.Role != n.Role || claim.DoctorID != n.DoctorID || h.hasher.Compare(claim.PasswordHash, n.Password) != nil {
					return "", ErrIdempotencyKeyReused
				}
				return claim.PasswordHash, nil
			}
		}
		st, ok, err := h.readAccount(ctx, n.Role, id)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", nil
		}
		if st.Email != ev.Email {
			return "", ErrIdempotencyKeyReused // the key opened an account with another email
		}
	}
	return "", ErrIdempotencyKeyReused
}

// readEmailStream reads the stream that claims email: the keyed name, or
// the legacy one for an address claimed before keyed names.
func (h *Handler) readEmailStream(ctx context.Context, email string) ([]eventstore.RecordedEvent, []domain.Event, error) {
	stream := account.EmailStreamID(h.emailKey, email)
	recs, evs, err := h.readStream(ctx, stream, 0)
	if err != nil || len(evs) > 0 {
		return recs, evs, err
	}
	if legacy := account.LegacyEmailStreamID(email); legacy != stream {
		return h.readStream(ctx, legacy, 0)
	}
	return recs, evs, nil
}
