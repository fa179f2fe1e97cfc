package grid

import (
	"fmt"
	"regexp"
	"time"
)

// BuildStatus is the state of a build made through the Build API.
type BuildStatus string

// Build statuses, as Heroku names them.
const (
	BuildPending   BuildStatus = "pending"
	BuildSucceeded BuildStatus = "succeeded"
	BuildFailed    BuildStatus = "failed"
)

// Build is one run of the slug compiler started through the Build API
// (git pushes build too, but answer on the push itself).
type Build struct {
	ID     string      `json:"id"`
	App    string      `json:"app"`
	AppID  string      `json:"app_id"`
	Status BuildStatus `json:"status"`
	// SourceURL is where the source tarball came from, as given; Version
	// labels it ("a commit sha or any label") and becomes the release's
	// commit.
	SourceURL string `json:"source_url"`
	Version   string `json:"version,omitempty"`
	Checksum  string `json:"checksum,omitempty"` // "SHA256:<hex>", checked when given
	// Buildpacks overrides the app's list for this build; empty uses it.
	Buildpacks []string  `json:"buildpacks,omitempty"`
	User       string    `json:"user"` // email
	SlugID     string    `json:"slug_id,omitempty"`
	Release    int       `json:"release,omitempty"` // version, once released
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

var checksumRE = regexp.MustCompile(`^SHA256:[0-9a-f]{64}$`)

// ValidateChecksum checks a Build API checksum: "SHA256:" and 64
// lowercase hex digits.
func ValidateChecksum(c string) error {
	if !checksumRE.MatchString(c) {
		return fmt.Errorf("checksum %q must be SHA256: and 64 lowercase hex digits: %w", c, ErrInvalid)
	}
	return nil
}
