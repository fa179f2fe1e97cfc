package grid

import "errors"

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
