package sqlite

import (
	"testing"

	"github.com/prescripto/prescripto/eventstore/storetest"
)

// FuzzRecord: arbitrary streams, types, data and metadata come back from
// the file byte for byte (scanEvents), or the append fails and writes
// nothing.
func FuzzRecord(f *testing.F) {
	s, _ := openTemp(f)
	storetest.Fuzz(f, s)
}
