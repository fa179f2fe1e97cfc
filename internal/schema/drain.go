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
	// Status is grid's: how delivery goes, as the answering server ships
	// it; absent when that server ships none of it (yet).
	Status *LogDrainStatus `json:"status,omitempty"`
}

// LogDrainStatus is a drain's delivery record.
type LogDrainStatus struct {
	Delivered   uint64     `json:"delivered"` // lines, L10 lines included
	Dropped     uint64     `json:"dropped"`   // lines lost (reported with L10)
	Queued      int        `json:"queued"`    // lines waiting
	LastError   *string    `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
}

// LogDrainCreate is the body of POST /apps/{app}/log-drains.
type LogDrainCreate struct {
	URL string `json:"url"`
}
