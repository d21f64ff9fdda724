package commands

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/account"
)

// ProfilePatchAccount changes some personal fields; nil fields stay.
type ProfilePatchAccount struct {
	Name, Phone, Address, Gender, DOB *string
}

// UpdateAccountProfile changes the caller's own profile. With an
// Idempotency-Key, a retry answers like the first request and the key with
// another patch is refused.
func (h *Handler) UpdateAccountProfile(ctx context.Context, m Meta, p ProfilePatchAccount) (AccountResult, error) {
	return h.execAccount(ctx, "UpdateAccountProfile", m.Actor.Role, m.Actor.UserID, m, request{body: p}, false, func(a *account.Account, _ time.Time) error {
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
