// Package schema holds the wire shapes of the Heroku Platform API v3 subset
// that Dynogrid serves: JSON structs with Heroku's field names, shared by the
// API server (package api) and the grid client (package cli) so that both
// sides agree on one definition.
//
// It is plain data. It must never import anything outside the standard
// library, know about the store, or hold policy: what a field means for the
// platform is decided in grid and api.
package schema

// Ref points at another resource by id and name, as in "app":{"id","name"}.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// UserRef points at an account, as in "owner":{"id","email"}.
type UserRef struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// IDRef points at a resource by id only, as in "slug":{"id"}.
type IDRef struct {
	ID string `json:"id"`
}

// Error is the body of every non-2xx API response.
type Error struct {
	// ID is a stable machine-readable category: "not_found",
	// "invalid_params", "unauthorized", ...
	ID string `json:"id"`
	// Message is for people and says what to do next.
	Message string `json:"message"`
	// Resource names the kind of thing the error is about ("app"); empty
	// when not specific to one.
	Resource string `json:"resource,omitempty"`
}
