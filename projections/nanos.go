package projections

import (
	"math"
	"time"
)

// NoNanos is the zero time.Time as Unix nanoseconds (see Nanos).
const NoNanos = math.MinInt64

// Nanos is t as Unix nanoseconds, NoNanos for the zero time: how read
// models keep an instant in 8 bytes (a time.Time takes 24), exactly and in
// order. Instants outside 1678-2262 are not representable.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return NoNanos
	}
	return t.UnixNano()
}

// FromNanos is the instant Nanos gave n for, in UTC.
func FromNanos(n int64) time.Time {
	if n == NoNanos {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
