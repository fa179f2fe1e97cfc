package grid

import (
	"errors"
	"strings"
)

// Error categories. Every error that crosses a package boundary wraps exactly
// one of these with its subject, for example
//
//	fmt.Errorf("app %q: %w", name, grid.ErrNotFound)
//
// Callers decide with errors.Is; the API maps them to HTTP statuses in one
// table. Never match on error text.
var (
	// ErrNotFound: the named thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the thing exists already, or changed under us.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed or breaks a rule.
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the caller may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: the caller did not prove who it is.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: a dependency is down or overloaded; retrying may help.
	ErrUnavailable = errors.New("unavailable")
	// ErrTooLarge: the input exceeds a size limit.
	ErrTooLarge = errors.New("too large")
)

var categories = []error{ErrNotFound, ErrConflict, ErrInvalid, ErrForbidden, ErrUnauthorized, ErrUnavailable, ErrTooLarge}

// Message is err's text for a user: the trailing category that wrapping
// adds (": not found") is dropped. It is formatting only; decisions use
// errors.Is.
func Message(err error) string {
	msg := err.Error()
	for _, c := range categories {
		if errors.Is(err, c) {
			return strings.TrimSuffix(msg, ": "+c.Error())
		}
	}
	return msg
}
