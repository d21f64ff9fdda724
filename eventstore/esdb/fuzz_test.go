package esdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/eventstore/storetest"
)

// FuzzRecord: arbitrary streams, types, data and metadata go through the
// real client and the emulator's gRPC and come back byte for byte
// (Store.convert), or the append fails and writes nothing.
func FuzzRecord(f *testing.F) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, esdbtest.Start(f))
	if err != nil {
		f.Fatalf("Open: %v", err)
	}
	f.Cleanup(func() { s.Close() })
	storetest.Fuzz(f, s)
}
