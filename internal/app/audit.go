package app

import (
	"context"
	"fmt"

	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/projections/audit"
)

// OpenAudit opens the event store of o (EventStoreDB with ESDBURL, the
// embedded store in DataDir otherwise) for the command line's audit
// commands, which read the log and nothing else. Close it with the
// function returned. The embedded store is one process's at a time: while
// a server holds it, this fails with sqlite.ErrLocked (ask that server's
// /api/v1/audit routes instead).
func OpenAudit(ctx context.Context, o Options) (*audit.Log, func() error, error) {
	o = o.withDefaults()
	sh := &shared{opts: o}
	reg, err := catalog.NewRegistry()
	if err != nil {
		return nil, nil, err
	}
	if err := sh.openStore(ctx); err != nil {
		return nil, nil, err
	}
	l, err := audit.New(sh.store, reg)
	if err != nil {
		_ = sh.Close()
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	return l, sh.Close, nil
}
