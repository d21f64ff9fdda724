// Package domain holds what every aggregate shares: error kinds, actors,
// event metadata and the event registry. The aggregates live in the
// sub-packages doctor and account. Everything under domain is pure: standard
// library and uuid only, no clock, no I/O, no logging.
package domain

import (
	"errors"
	"fmt"
)

// Kinds of errors. Every domain error unwraps to exactly one kind, which the
// API maps to an HTTP status; the Error's Code is the stable machine string.
var (
	ErrInvalid       = errors.New("invalid")       // malformed input (400)
	ErrUnprocessable = errors.New("unprocessable") // well-formed but against the rules (422)
	ErrNotFound      = errors.New("not found")     // unknown, or not yours (404)
	ErrConflict      = errors.New("conflict")      // clashes with current state (409)
	ErrForbidden     = errors.New("forbidden")     // wrong role (403)
	ErrUnauthorized  = errors.New("unauthorized")  // bad credentials (401)
	ErrUnavailable   = errors.New("unavailable")   // a dependency is down (503)
)

// Error is a domain error: a stable code, a kind and a human message.
type Error struct {
	Code    string
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

// Is makes two *Error with the same code match, so that a sentinel wrapped
// with extra detail still matches errors.Is(err, Sentinel).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// NewError makes a sentinel error of a kind.
func NewError(kind error, code, message string) *Error {
	return &Error{Code: code, Kind: kind, Message: message}
}

// Detail returns a copy of sentinel with a more specific message; it still
// matches the sentinel with errors.Is.
func Detail(sentinel *Error, format string, args ...any) *Error {
	return &Error{Code: sentinel.Code, Kind: sentinel.Kind, Message: fmt.Sprintf(format, args...)}
}

// Invalid is a shorthand for a validation error with code "invalid_input".
func Invalid(format string, args ...any) *Error {
	return &Error{Code: "invalid_input", Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the stable code of err, or "" if err carries none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
