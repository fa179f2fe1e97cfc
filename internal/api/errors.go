package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

// API-only error categories, for failures that happen before a request
// reaches grid's rules. They sit in the same table as grid's.
var (
	errBadRequest    = errors.New("bad request")
	errNotAcceptable = errors.New("not acceptable")
	errBadRange      = errors.New("requested range not satisfiable")
	// errNotImplemented: this grid lacks the part the request needs (a
	// host provider).
	errNotImplemented = errors.New("not implemented")
)

// errorTable is the one mapping from error category to HTTP status and
// error id. The first entry the error wraps wins; errors wrapping none of
// them are internal errors (500, details only in the server log).
var errorTable = []struct {
	category error
	status   int
	id       string
}{
	{grid.ErrNotFound, http.StatusNotFound, "not_found"},
	{grid.ErrInvalid, http.StatusUnprocessableEntity, "invalid_params"},
	{grid.ErrConflict, http.StatusConflict, "conflict"},
	{grid.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{grid.ErrForbidden, http.StatusForbidden, "forbidden"},
	{grid.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{grid.ErrTooLarge, http.StatusRequestEntityTooLarge, "request_entity_too_large"},
	{errBadRequest, http.StatusBadRequest, "bad_request"},
	{errNotAcceptable, http.StatusNotAcceptable, "not_acceptable"},
	{errBadRange, http.StatusRequestedRangeNotSatisfiable, "requested_range_not_satisfiable"},
	{errNotImplemented, http.StatusNotImplemented, "not_implemented"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
}

// classify returns the status, id and category of err.
func classify(err error) (status int, id string, category error) {
	for _, e := range errorTable {
		if errors.Is(err, e.category) {
			return e.status, e.id, e.category
		}
	}
	return http.StatusInternalServerError, "internal_server_error", nil
}

// userError is an error whose message is written for the API's users: it
// replaces the wrapped error's text in responses but keeps its category.
type userError struct {
	msg      string
	resource string // "app", "release", ...; may be empty
	err      error  // the category, or an error wrapping it
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// notFound is the Heroku-style not-found error for a kind of resource.
func notFound(resource string) error {
	return &userError{msg: "Couldn't find that " + resource + ".", resource: resource, err: grid.ErrNotFound}
}

// invalid is a 422 with a message for the user.
func invalid(msg string) error { return &userError{msg: msg, err: grid.ErrInvalid} }

// errorBody turns err into the response body. Messages of categorised
// errors are shown (they are written to say what to do); internal errors
// are not, since they may carry details only the operator should see.
func errorBody(err error) (int, schema.Error) {
	status, id, category := classify(err)
	body := schema.Error{ID: id}
	var ue *userError
	switch {
	case errors.As(err, &ue):
		body.Message, body.Resource = ue.msg, ue.resource
	case category == nil:
		body.Message = "Internal server error. The request was logged; try again, or ask the operator to check the grid log."
	default:
		// Drop the trailing category (": not found"); API-only categories too.
		body.Message = strings.TrimSuffix(grid.Message(err), ": "+category.Error())
	}
	return status, body
}

// writeError sends err as a JSON error response and logs internal errors.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorBody(err)
	if status >= 500 {
		s.logger.Error("request failed", "request_id", requestID(r), "method", r.Method, "path", logPath(r), "status", status, "err", err)
	}
	writeJSON(w, status, body)
}

// writeJSON sends v with status. Encoding errors can only come from a
// broken connection by then and are ignored.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
