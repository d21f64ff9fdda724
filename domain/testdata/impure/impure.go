// Package impure is a fixture for TestImportScannerCatchesViolations: it
// breaks every rule of the domain's imports. testdata is never built.
package impure

import (
	"math/rand"
	"os"
	clock "time"

	"github.com/go-chi/chi/v5"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
)

var (
	_ = rand.Int
	_ = os.Getenv
	_ = chi.NewRouter
	_ = eventstore.Nothing
	_ domain.Event
	_ = clock.Now()
	_ = clock.Since(clock.Time{})
	_ = clock.Date // fine
)
