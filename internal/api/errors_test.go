package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

func TestErrorTable(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		body   schema.Error
	}{
		{"not found", fmt.Errorf("app %q: %w", "x", grid.ErrNotFound), 404, schema.Error{ID: "not_found", Message: `app "x"`}},
		{"invalid", fmt.Errorf("quantity %q is not a whole number: %w", "x", grid.ErrInvalid), 422, schema.Error{ID: "invalid_params", Message: `quantity "x" is not a whole number`}},
		{"conflict", fmt.Errorf("app changed: %w", grid.ErrConflict), 409, schema.Error{ID: "conflict", Message: "app changed"}},
		{"unauthorized", errUnauthorized, 401, schema.Error{ID: "unauthorized", Message: "Invalid credentials provided."}},
		{"forbidden", fmt.Errorf("no: %w", grid.ErrForbidden), 403, schema.Error{ID: "forbidden", Message: "no"}},
		{"unavailable", fmt.Errorf("store: down: %w", grid.ErrUnavailable), 503, schema.Error{ID: "unavailable", Message: "store: down"}},
		{"too large", fmt.Errorf("config: %w", grid.ErrTooLarge), 413, schema.Error{ID: "request_entity_too_large", Message: "config"}},
		{"bad request", &userError{msg: "Invalid JSON", err: errBadRequest}, 400, schema.Error{ID: "bad_request", Message: "Invalid JSON"}},
		{"not acceptable", &userError{msg: "v2?", err: errNotAcceptable}, 406, schema.Error{ID: "not_acceptable", Message: "v2?"}},
		{"bad range", fmt.Errorf("range: %w", errBadRange), 416, schema.Error{ID: "requested_range_not_satisfiable", Message: "range"}},
		{"resource", notFound("app"), 404, schema.Error{ID: "not_found", Message: "Couldn't find that app.", Resource: "app"}},
		{"deadline", fmt.Errorf("store: %w", context.DeadlineExceeded), 503, schema.Error{ID: "unavailable", Message: "store"}},
		{"internal hides details", errors.New("secret detail"), 500, schema.Error{ID: "internal_server_error", Message: "Internal server error. The request was logged; try again, or ask the operator to check the grid log."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := errorBody(tt.err)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if diff := cmp.Diff(tt.body, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckAccept(t *testing.T) {
	ok := [][]string{
		nil,
		{"application/vnd.heroku+json; version=3"},
		{"application/vnd.heroku+json; version=3.sdk"},
		{"application/vnd.heroku+json; version=3.account-quotas"},
		{"*/*"},
		{"application/json"},
		{"text/html, */*;q=0.1"},
		{"application/vnd.heroku+json"},
	}
	for _, v := range ok {
		if err := checkAccept(v); err != nil {
			t.Errorf("checkAccept(%q): %v", v, err)
		}
	}
	for _, v := range [][]string{{"application/vnd.heroku+json; version=2"}, {"text/html"}} {
		if status, _, _ := classify(checkAccept(v)); status != 406 {
			t.Errorf("checkAccept(%q): status %d, want 406", v, status)
		}
	}
}

func TestAPIKey(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer k1":          "k1",
		"bearer  k1 ":        "k1",
		"Basic OmsxMg==":     "k12", // ":k12"
		"Basic dXNlcjprMTI=": "k12", // "user:k12"
		"Basic !!!":          "",
		"Token k1":           "",
		"":                   "",
	} {
		if got := apiKey(h); got != want {
			t.Errorf("apiKey(%q) = %q, want %q", h, got, want)
		}
	}
}
