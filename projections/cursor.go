package projections

import (
	"encoding/base64"
	"strconv"
)

// LatestN is how many appointments the dashboards list as latest.
const LatestN = 5

// EncodeCursor makes the opaque cursor of the page after the appointment
// booked at position booked. Every read-model implementation uses it, so a
// cursor stays valid whichever serves the next page.
func EncodeCursor(booked uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("b" + strconv.FormatUint(booked, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor (ErrInvalidCursor
// otherwise).
func DecodeCursor(s string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'b' {
		return 0, ErrInvalidCursor
	}
	n, err := strconv.ParseUint(string(b[1:]), 10, 64)
	if err != nil {
		return 0, ErrInvalidCursor
	}
	return n, nil
}
