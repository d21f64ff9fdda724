package commands

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/eventstore"
)

// AccountResult is an account as a command left it.
type AccountResult struct {
	ID        string
	Email     string
	Role      domain.Role
	DoctorID  string
	Profile   account.Profile
	CreatedAt time.Time
	Position  uint64
}

func accountResult(a *account.Account, pos uint64) AccountResult {
	return AccountResult{ID: a.ID(), Email: a.Email(), Role: a.Role(), DoctorID: a.DoctorID(), Profile: a.Profile(), CreatedAt: a.CreatedAt(), Position: pos}
}

// loadAccount folds an account stream (accounts are short streams).
func (h *Handler) loadAccount(ctx context.Context, role domain.Role, id string) (*account.Account, int64, uint64, error) {
	a, recs, err := h.loadAccountRecords(ctx, role, id)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(recs) == 0 {
		return a, -1, 0, nil
	}
	last := recs[len(recs)-1]
	return a, int64(last.Revision), last.Position, nil
}

// loadAccountRecords folds an account stream and returns its records too.
func (h *Handler) loadAccountRecords(ctx context.Context, role domain.Role, id string) (*account.Account, []eventstore.RecordedEvent, error) {
	recs, evs, err := h.readStream(ctx, account.StreamID(role, id), 0)
	if err != nil {
		return nil, nil, err
	}
	a := account.New(id)
	a.Load(evs...)
	return a, recs, nil
}

// execAccount runs load -> decide -> append on one account stream. With
// replay, a keyed command whose events the stream already holds is not
// decided again: it answers with the position of its last event (account
// openings decide again instead, to compare the request with the account).
func (h *Handler) execAccount(ctx context.Context, command string, role domain.Role, id string, m Meta, replay bool, decide func(a *account.Account, now time.Time) error) (AccountResult, error) {
	stream := account.StreamID(role, id)
	for attempt := 0; ; attempt++ {
		a, recs, err := h.loadAccountRecords(ctx, role, id)
		if err != nil {
			return AccountResult{}, err
		}
		rev, pos := int64(-1), uint64(0)
		if n := len(recs); n > 0 {
			rev, pos = int64(recs[n-1].Revision), recs[n-1].Position
		}
		if replay && m.IdempotencyKey != "" {
			first := eventIDs(m, command, stream, 1)[0]
			for _, r := range recs {
				if r.ID == first {
					return accountResult(a, r.Position), nil // a retry (a one-event command)
				}
			}
		}
		now := h.clock()
		if err := decide(a, now); err != nil {
			return AccountResult{}, err
		}
		changes := a.Changes()
		if len(changes) == 0 {
			return accountResult(a, pos), nil
		}
		data, err := encode(changes, eventIDs(m, command, stream, len(changes)), m, now)
		if err != nil {
			return AccountResult{}, err
		}
		expected := eventstore.NoStream
		if rev >= 0 {
			expected = eventstore.Exact(uint64(rev))
		}
		res, err := h.store.Append(ctx, stream, expected, data)
		if err == nil {
			a.ClearChanges()
			if role == domain.RolePatient {
				h.names.put(id, a.Profile().Name, now)
			}
			return accountResult(a, res.Position), nil
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return AccountResult{}, storeErr(err)
		}
		if attempt >= h.maxRetries {
			h.obs.Conflict(command)
			return AccountResult{}, ErrConcurrency
		}
		h.obs.Retry(command)
	}
}

// claimEmail appends the email stream's one event with expected revision
// "no stream": whoever appends first owns the email.
func (h *Handler) claimEmail(ctx context.Context, command string, m Meta, claim account.EmailClaimed) error {
	stream := account.EmailStreamID(claim.Email)
	data, err := encode([]domain.Event{claim}, eventIDs(m, command, stream, 1), m, claim.ClaimedAt)
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
// can never both open an account.
func (h *Handler) openAccount(ctx context.Context, command string, m Meta, n NewAccount) (AccountResult, error) {
	if err := account.ValidatePassword(n.Password); err != nil {
		return AccountResult{}, err
	}
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
	return h.execAccount(ctx, command, n.Role, id, m, false, func(a *account.Account, now time.Time) error {
		if a.Registered() && m.IdempotencyKey != "" {
			if a.Email() != ev.Email {
				return ErrIdempotencyKeyReused // a concurrent request with the key and another email won
			}
			return nil // a retry after the account was opened
		}
		return a.Register(reg, now)
	})
}

// checkKeyedOpen refuses a keyed account opening that is not a retry of the
// request that first used the key, and returns the password hash a retry's
// first request stored (empty for a first request). The key derives the account id, and
// anonymous callers (registration) share one key space: without this check
// a second request with the key and another email, name or password would
// be answered with the first caller's account and token.
func (h *Handler) checkKeyedOpen(ctx context.Context, n NewAccount, id string, ev account.Registered) (storedHash string, err error) {
	// The email stream is read first and the account second, so a first
	// request of the same key running concurrently may claim the email in
	// between: a registered account with this email sends us back once to
	// the claim, which then exists.
	for range 2 {
		_, evs, err := h.readStream(ctx, account.EmailStreamID(ev.Email), 0)
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
		a, _, _, err := h.loadAccount(ctx, n.Role, id)
		if err != nil {
			return "", err
		}
		if !a.Registered() {
			return "", nil
		}
		if a.Email() != ev.Email {
			return "", ErrIdempotencyKeyReused // the key opened an account with another email
		}
	}
	return "", ErrIdempotencyKeyReused
}

// RegisterPatient opens a patient account (self-service registration).
func (h *Handler) RegisterPatient(ctx context.Context, m Meta, name, email, password string) (AccountResult, error) {
	return h.openAccount(ctx, "RegisterPatient", m, NewAccount{Name: name, Email: email, Password: password, Role: domain.RolePatient})
}

// CreateStaff opens an admin, auditor or analyst account; admins only.
func (h *Handler) CreateStaff(ctx context.Context, m Meta, n NewAccount) (AccountResult, error) {
	if m.Actor.Role != domain.RoleAdmin && m.Actor.Role != domain.RoleSystem {
		return AccountResult{}, domain.Detail(account.ErrInvalidAccount, "only admins create staff accounts")
	}
	switch n.Role {
	case domain.RoleAdmin, domain.RoleAuditor, domain.RoleAnalyst:
	default:
		return AccountResult{}, domain.Detail(account.ErrInvalidAccount, "role must be admin, auditor or analyst")
	}
	n.DoctorID = ""
	return h.openAccount(ctx, "CreateStaff", m, n)
}

// Login checks credentials against the email stream and the account stream
// (never a read model, so a fresh registration logs in at once). Unknown
// email and wrong password are the same error and take about the same time.
func (h *Handler) Login(ctx context.Context, email, password string) (AccountResult, error) {
	email = account.NormalizeEmail(email)
	if account.ValidateEmail(email) != nil || len(password) > 1024 {
		h.burnHash(password)
		return AccountResult{}, account.ErrInvalidCredentials
	}
	recs, evs, err := h.readStream(ctx, account.EmailStreamID(email), 0)
	if err != nil {
		return AccountResult{}, err
	}
	if len(evs) == 0 {
		h.burnHash(password)
		return AccountResult{}, account.ErrInvalidCredentials
	}
	claim, ok := evs[0].(account.EmailClaimed)
	if !ok {
		return AccountResult{}, errors.New("commands: email stream holds an unexpected event")
	}
	a, _, pos, err := h.loadAccount(ctx, claim.Role, claim.AccountID)
	if err != nil {
		return AccountResult{}, err
	}
	if !a.Registered() {
		// The registration stopped between the claim and the account: the
		// claim carries what is needed to finish it.
		m := Meta{Actor: domain.System, CausationID: recs[0].ID.String(), IdempotencyKey: "complete-registration:" + recs[0].ID.String()}
		res, err := h.execAccount(ctx, "CompleteRegistration", claim.Role, claim.AccountID, m, false, func(a *account.Account, now time.Time) error {
			if a.Registered() {
				return nil
			}
			return a.Register(account.NewRegistration{Name: claim.Name, Email: claim.Email, PasswordHash: claim.PasswordHash, Role: claim.Role, DoctorID: claim.DoctorID}, now)
		})
		if err != nil {
			return AccountResult{}, err
		}
		if a, _, pos, err = h.loadAccount(ctx, claim.Role, claim.AccountID); err != nil {
			return AccountResult{}, err
		}
		_ = res
	}
	if h.hasher.Compare(a.PasswordHash(), password) != nil {
		return AccountResult{}, account.ErrInvalidCredentials
	}
	return accountResult(a, pos), nil
}

// burnHash spends the time of a password check so that unknown emails do
// not answer faster than wrong passwords.
func (h *Handler) burnHash(password string) {
	h.dummyOnce.Do(func() {
		h.dummyHash, _ = h.hasher.Hash(uuid.NewString())
	})
	_ = h.hasher.Compare(h.dummyHash, password)
}

// Account reads an account from its stream.
func (h *Handler) Account(ctx context.Context, role domain.Role, id string) (AccountResult, error) {
	a, _, pos, err := h.loadAccount(ctx, role, id)
	if err != nil {
		return AccountResult{}, err
	}
	if !a.Registered() {
		return AccountResult{}, account.ErrAccountNotFound
	}
	return accountResult(a, pos), nil
}

// ProfilePatchAccount changes some personal fields; nil fields stay.
type ProfilePatchAccount struct {
	Name, Phone, Address, Gender, DOB *string
}

// UpdateAccountProfile changes the caller's own profile. With an
// Idempotency-Key, a retry answers like the first request and the key with
// another patch is refused.
func (h *Handler) UpdateAccountProfile(ctx context.Context, m Meta, p ProfilePatchAccount) (AccountResult, error) {
	const command = "UpdateAccountProfile"
	if err := h.claimKey(ctx, m, command, account.StreamID(m.Actor.Role, m.Actor.UserID), "", request{body: p}); err != nil {
		return AccountResult{}, err
	}
	return h.execAccount(ctx, command, m.Actor.Role, m.Actor.UserID, m, true, func(a *account.Account, _ time.Time) error {
		if !a.Registered() {
			return account.ErrAccountNotFound
		}
		cur := a.Profile()
		for _, f := range []struct {
			dst *string
			src *string
		}{{&cur.Name, p.Name}, {&cur.Phone, p.Phone}, {&cur.Address, p.Address}, {&cur.Gender, p.Gender}, {&cur.DOB, p.DOB}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		return a.UpdateProfile(cur)
	})
}
