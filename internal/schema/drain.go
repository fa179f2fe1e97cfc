package schema

import "time"

// LogDrain is a log drain as the Platform API shows it.
type LogDrain struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"` // "d.<uuid>"
	URL       string    `json:"url"`
	Addon     *Ref      `json:"addon"` // always null: no add-on makes drains here
	App       Ref       `json:"app"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// LogDrainCreate is the body of POST /apps/{app}/log-drains.
type LogDrainCreate struct {
	URL string `json:"url"`
}
