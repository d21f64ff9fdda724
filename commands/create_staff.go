package commands

import (
	"context"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

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
