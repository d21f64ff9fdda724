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
func EncodeCursor(booked uint64) string { return encodeCursor('b', booked) }

// DecodeCursor reads a cursor made by EncodeCursor (ErrInvalidCursor
// otherwise).
func DecodeCursor(s string) (uint64, error) { return decodeCursor('b', s) }

// EncodePaymentCursor makes the opaque cursor of the payments page after
// the payment last changed at position changed (AppointmentRecord.PaymentPos).
func EncodePaymentCursor(changed uint64) string { return encodeCursor('p', changed) }

// DecodePaymentCursor reads a cursor made by EncodePaymentCursor
// (ErrInvalidCursor otherwise, also for an appointments cursor).
func DecodePaymentCursor(s string) (uint64, error) { return decodeCursor('p', s) }

func encodeCursor(kind byte, n uint64) string {
	return base64.RawURLEncoding.EncodeToString(strconv.AppendUint([]byte{kind}, n, 10))
}

func decodeCursor(kind byte, s string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != kind {
		return 0, ErrInvalidCursor
	}
	n, err := strconv.ParseUint(string(b[1:]), 10, 64)
	if err != nil {
		return 0, ErrInvalidCursor
	}
	return n, nil
}
