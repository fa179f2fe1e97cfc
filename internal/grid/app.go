package grid

import (
	"fmt"
	"regexp"
	"time"
)

// App is one application: the unit of tenancy. Its record also carries its
// current release, so that changing config or deploying is one
// compare-and-set on one key (see docs/design/releases.md).
type App struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Owner       string    `json:"owner"` // account email
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Maintenance bool      `json:"maintenance"`
	// UID is the unprivileged Linux uid (and gid) every sandbox of this app
	// runs as. Unique per app, allocated at creation, never reused.
	UID int `json:"uid"`
	// Release is the current release: the one dynos should run. Version 0
	// means none yet (never seen outside a create in progress).
	Release Release `json:"release"`
	// ReleaseSeq is the highest release version ever allocated; the next
	// release gets ReleaseSeq+1.
	ReleaseSeq int `json:"release_seq"`
	// Buildpacks is the app's buildpack list (ParseBuildpack references),
	// in order; empty means detect one from the built-ins at each build.
	Buildpacks []string `json:"buildpacks,omitempty"`
}

// AppNamePattern is Heroku's rule for app names.
var appNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)

// ValidateAppName reports whether name is a usable app name.
func ValidateAppName(name string) error {
	if !appNameRE.MatchString(name) {
		return fmt.Errorf("app name %q must start with a letter, contain only lowercase letters, digits and dashes, and have 2 to 30 characters: %w", name, ErrInvalid)
	}
	return nil
}
