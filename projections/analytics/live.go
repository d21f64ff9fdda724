package analytics

import (
	"context"

	"github.com/prescripto/prescripto/projections"
)

// LiveView implements View over whichever copy of the model a Live holds,
// so that a rebuild swapping in a new copy is seen by the next read.
type LiveView[T interface {
	projections.Projection
	View
}] struct{ L *projections.Live[T] }

// Bookings implements View.
func (v LiveView[T]) Bookings(ctx context.Context, q Query) ([]BookingRow, error) {
	return v.L.Current().Bookings(ctx, q)
}

// Utilisation implements View.
func (v LiveView[T]) Utilisation(ctx context.Context, q Query) ([]UtilisationRow, error) {
	return v.L.Current().Utilisation(ctx, q)
}
