package grid

import (
	"fmt"
	"regexp"
	"time"
)

// Addon is a provisioned add-on: a resource of a backend (a Postgres
// database, a Redis server) billed to its owning app.
type Addon struct {
	ID      string `json:"id"`
	Name    string `json:"name"` // "postgresql-dyno-4821", unique
	App     string `json:"app"`  // the owning app
	AppID   string `json:"app_id"`
	Service string `json:"service"` // "heroku-postgresql", "heroku-redis"
	Plan    string `json:"plan"`    // the plan's own name: "essential-0"
	// Resource is the backend's name for it ([a-z0-9]).
	Resource string `json:"resource"`
	// URL is the connection URL, credentials included: the value of the
	// NAME_URL config var of every attachment.
	URL       string    `json:"url"`
	Backups   []Backup  `json:"backups,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Backup is a stored dump of an add-on's data (pg:backups).
type Backup struct {
	ID        string    `json:"id"` // "b001"
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	User      string    `json:"user"`
}

// Attachment makes an add-on's URL an app's config var NAME_URL.
type Attachment struct {
	ID        string    `json:"id"`
	AddonID   string    `json:"addon_id"`
	App       string    `json:"app"`
	AppID     string    `json:"app_id"`
	Name      string    `json:"name"` // "DATABASE": the var is DATABASE_URL
	CreatedAt time.Time `json:"created_at"`
}

// ConfigVar is the config var the attachment sets.
func (a Attachment) ConfigVar() string { return a.Name + "_URL" }

var attachmentNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,59}$`)

// ValidateAttachmentName checks an attachment name: upper case letters,
// digits and underscores, starting with a letter.
func ValidateAttachmentName(n string) error {
	if !attachmentNameRE.MatchString(n) {
		return fmt.Errorf("attachment name %q must be capital letters, digits and underscores, starting with a letter (DATABASE, CACHE): %w", n, ErrInvalid)
	}
	return nil
}
