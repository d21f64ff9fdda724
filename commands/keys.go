package commands

import (
	"context"
	"fmt"

	"github.com/prescripto/prescripto/domain"
)

// keyWarmer is a cipher that brings a person's key into memory ahead of
// its use, reading its store within a deadline (internal/personal.Vault).
type keyWarmer interface {
	Warm(ctx context.Context, subject string) error
}

// warmKey makes sure that the key a doctor's batch will seal subject's
// fields with is in memory, reading the key store within the command's
// deadline. The doctor aggregate seals through domain.Cipher, which has
// no deadline: a key read there, while the key store does not answer,
// holds the doctor's batch (and every command of that doctor queued
// behind it) for the vault's own timeout. Read here, only this command
// waits, and it answers 503 at its deadline.
func (h *Handler) warmKey(ctx context.Context, subject string) error {
	w, ok := h.reg.Cipher().(keyWarmer)
	if !ok {
		return nil
	}
	if err := w.Warm(ctx, subject); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: personal-data keys: %w", domain.ErrUnavailable, err)
	}
	return nil
}
