package commands

import (
	"context"
	"strings"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

// AccountResult is an account as a command left it.
type AccountResult struct {
	ID        string
	Email     string
	Role      domain.Role
	DoctorID  string
	Profile   account.Profile
	CreatedAt time.Time
	// Active is false for a deactivated account; EmailVerified is true once
	// the owner proved the address.
	Active        bool
	EmailVerified bool
	// TokenVersion is the version the account's valid tokens carry.
	TokenVersion int
	// Erased is set once the account's personal data was erased.
	Erased bool
	// CalendarFeed is the generation of the calendar-feed URL.
	CalendarFeed int
	Position     uint64
}

func accountResult(a *account.Account, pos uint64) AccountResult {
	return AccountResult{
		ID: a.ID(), Email: a.Email(), Role: a.Role(), DoctorID: a.DoctorID(), Profile: a.Profile(), CreatedAt: a.CreatedAt(),
		Active: a.Active(), EmailVerified: a.EmailVerified(), TokenVersion: a.TokenVersion(), Erased: a.Erased(),
		CalendarFeed: a.CalendarFeed(), Position: pos,
	}
}

// newAccountStreams is the handler's cache of account streams.
func newAccountStreams() *streams[*account.Account] {
	return newStreams(func(stream string) *account.Account {
		_, id, _ := strings.Cut(stream, "-")
		return account.New(id)
	})
}

// accountState is a registered account as its stream stands: the result,
// and the password hash a login compares with.
type accountState struct {
	AccountResult
	passwordHash string
}

// readAccount reads an account, caught up with its stream; ok is false when
// no such account is registered.
func (h *Handler) readAccount(ctx context.Context, role domain.Role, id string) (st accountState, ok bool, err error) {
	ok, err = view(ctx, h, h.accounts, account.StreamID(role, id), func(a *account.Account, pos uint64) {
		st = accountState{AccountResult: accountResult(a, pos), passwordHash: a.PasswordHash()}
	})
	return st, ok, err
}

// Account reads an account from its stream.
func (h *Handler) Account(ctx context.Context, role domain.Role, id string) (AccountResult, error) {
	st, ok, err := h.readAccount(ctx, role, id)
	if err != nil {
		return AccountResult{}, err
	}
	if !ok {
		return AccountResult{}, account.ErrAccountNotFound
	}
	return st.AccountResult, nil
}

// execAccount runs one command on an account stream through the command
// loop (run). With decideReplays, a keyed retry decides again instead of
// being answered from the events its first request stored (account
// openings compare the request with the account that way).
func (h *Handler) execAccount(ctx context.Context, command string, role domain.Role, id string, m Meta, req request, decideReplays bool, decide func(a *account.Account, now time.Time) error) (AccountResult, error) {
	var out AccountResult
	pos, err := run(ctx, h, h.accounts, step[*account.Account]{
		command: command, stream: account.StreamID(role, id), meta: m, req: req, decideReplays: decideReplays,
		decide: decide, view: func(a *account.Account) { out = accountResult(a, 0) },
	})
	if err != nil {
		return AccountResult{}, err
	}
	out.Position = pos
	if role == domain.RolePatient {
		h.names.put(id, out.Profile.Name, h.clock())
	}
	return out, nil
}
