// Package catalog assembles the registry of every stored event type. The
// binary builds it once at start-up and hands it to whoever decodes events.
package catalog

import (
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/idempotency"
	"github.com/prescripto/prescripto/domain/ledger"
	"github.com/prescripto/prescripto/domain/payment"
)

// NewRegistry returns a registry of every event type of every aggregate.
func NewRegistry() (*domain.Registry, error) {
	r := domain.NewEmptyRegistry()
	for _, types := range [][]domain.Registration{doctor.Events(), account.Events(), idempotency.Events(), payment.Events(), ledger.Events()} {
		if err := r.Register(types...); err != nil {
			return nil, err
		}
	}
	return r, nil
}
