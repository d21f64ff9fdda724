package commands

import (
	"context"

	"github.com/prescripto/prescripto/domain"
)

// RegisterPatient opens a patient account (self-service registration).
func (h *Handler) RegisterPatient(ctx context.Context, m Meta, name, email, password string) (AccountResult, error) {
	return h.openAccount(ctx, "RegisterPatient", m, NewAccount{Name: name, Email: email, Password: password, Role: domain.RolePatient})
}
