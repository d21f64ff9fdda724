package commands

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
)

func TestStoreErrMapsEveryStoreError(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want error
	}{
		{eventstore.ErrUnavailable, domain.ErrUnavailable},
		{eventstore.ErrClosed, domain.ErrUnavailable},
		{eventstore.ErrAccessDenied, domain.ErrUnavailable},
		{eventstore.ErrStreamDeleted, ErrStreamDeleted},
		{eventstore.ErrStreamDeleted, domain.ErrNotFound},
		{eventstore.ErrAppendTooLarge, ErrTooLarge},
		{eventstore.ErrAppendTooLarge, domain.ErrUnprocessable},
		{context.Canceled, context.Canceled},
	} {
		err := storeErr(fmt.Errorf("append: %w", c.err))
		if !errors.Is(err, c.want) || !errors.Is(err, c.err) {
			t.Errorf("storeErr(%v) = %v; want it to be %v and keep the cause", c.err, err, c.want)
		}
	}
}
