package memory

import (
	"testing"
	"unsafe"
)

// An appointment's entry stays within the 256-byte size class (it took
// 416 with the record's time.Time fields and view strings): at a million
// appointments each byte is a megabyte.
func TestEntrySize(t *testing.T) {
	t.Parallel()
	if s := unsafe.Sizeof(entry{}); s > 256 {
		t.Errorf("entry takes %d bytes, want at most 256", s)
	}
}
