package schema

import "time"

// Release is one numbered release of an app.
type Release struct {
	ID                  string     `json:"id"`
	Version             int        `json:"version"`
	Description         string     `json:"description"`
	Status              string     `json:"status"` // "succeeded", "pending" or "failed"
	Current             bool       `json:"current"`
	EligibleForRollback bool       `json:"eligible_for_rollback"`
	OutputStreamURL     *string    `json:"output_stream_url"` // release phase output; always null here
	Slug                *IDRef     `json:"slug"`              // null before the first deploy
	Artifacts           []Artifact `json:"artifacts"`
	App                 Ref        `json:"app"`
	User                UserRef    `json:"user"`
	AddonPlanNames      []string   `json:"addon_plan_names"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// Artifact is something a release runs; only slugs exist.
type Artifact struct {
	Type string `json:"type"` // "slug"
	ID   string `json:"id"`
}

// ReleaseCreate is the body of POST /apps/{app}/releases: a rollback to the
// release with that id or version.
type ReleaseCreate struct {
	Release     string `json:"release"`
	Description string `json:"description,omitempty"` // ignored: rollbacks are described by the platform
}
