package audit

import (
	"context"

	"github.com/prescripto/prescripto/eventstore/chain"
)

// Verify checks the hash chain of every stream of the log and the anchor
// of o, if any (see chain.Verify).
func (l *Log) Verify(ctx context.Context, o chain.Options) (chain.Report, error) {
	rep, err := chain.Verify(ctx, l.store, o)
	if err != nil {
		return chain.Report{}, storeErr(err)
	}
	return rep, nil
}
