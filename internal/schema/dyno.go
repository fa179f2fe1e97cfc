package schema

import "time"

// Dyno is one running (or starting, crashed, stopping) dyno.
type Dyno struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"` // "web.1"
	Type      string     `json:"type"` // "web"
	State     string     `json:"state"`
	Command   string     `json:"command"`
	Size      string     `json:"size"`       // display name: "Standard-1X"
	AttachURL *string    `json:"attach_url"` // an attached one-off dyno's session, at its creation; else null
	Release   ReleaseRef `json:"release"`
	App       Ref        `json:"app"`
	Host      *Ref       `json:"host,omitempty"` // where it runs; id and name are the host id
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"` // last state change
}

// ReleaseRef points at a release.
type ReleaseRef struct {
	ID      string `json:"id,omitempty"` // empty if the release record is gone
	Version int    `json:"version"`
}
