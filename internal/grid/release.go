package grid

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// ReleaseStatus is the state of a release.
type ReleaseStatus string

// Release statuses, as Heroku names them.
const (
	ReleasePending   ReleaseStatus = "pending"
	ReleaseSucceeded ReleaseStatus = "succeeded"
	ReleaseFailed    ReleaseStatus = "failed"
)

// Release is an immutable, numbered combination of a slug and config vars.
// Every deploy, config change and rollback creates a new one.
type Release struct {
	ID          string            `json:"id"`
	Version     int               `json:"version"`
	Description string            `json:"description"`
	Status      ReleaseStatus     `json:"status"`
	SlugID      string            `json:"slug_id,omitempty"` // empty before the first deploy
	Commit      string            `json:"commit,omitempty"`
	Config      map[string]string `json:"config"`
	// Reach are the endpoints of the add-ons attached to the app when the
	// release was made: its dynos' way through to the add-on servers. It
	// comes from the add-on records, never from Config, which the app's
	// owner can set to anything.
	Reach     []netip.AddrPort `json:"reach,omitempty"`
	User      string           `json:"user"` // email of who made it
	CreatedAt time.Time        `json:"created_at"`
}

// configKeyOK mirrors the Platform API's ^\w+$ rule for config var names.
func configKeyOK(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// ValidateConfigKey reports whether k can name a config var.
func ValidateConfigKey(k string) error {
	if !configKeyOK(k) {
		return fmt.Errorf("config var name %q must be 1 to 255 letters, digits and underscores: %w", k, ErrInvalid)
	}
	return nil
}

// MaxConfigBytes bounds the total size of an app's config vars (keys+values).
const MaxConfigBytes = 64 << 10

// PatchConfig applies a config-vars PATCH to cur and returns the new config
// and the release description ("Set A, B config vars", "Remove C config
// vars"). A nil value removes the key. It never modifies cur.
func PatchConfig(cur map[string]string, patch map[string]*string) (map[string]string, string, error) {
	next := make(map[string]string, len(cur)+len(patch))
	for k, v := range cur {
		next[k] = v
	}
	var set, removed []string
	for k, v := range patch {
		if !configKeyOK(k) {
			return nil, "", fmt.Errorf("config var name %q may contain only letters, digits and underscores: %w", k, ErrInvalid)
		}
		if v == nil {
			if _, ok := next[k]; ok {
				delete(next, k)
				removed = append(removed, k)
			}
			continue
		}
		if strings.IndexByte(*v, 0) >= 0 {
			return nil, "", fmt.Errorf("config var %s contains a NUL byte: %w", k, ErrInvalid)
		}
		next[k] = *v
		set = append(set, k)
	}
	size := 0
	for k, v := range next {
		size += len(k) + len(v)
	}
	if size > MaxConfigBytes {
		return nil, "", fmt.Errorf("config vars total %d bytes, more than the %d allowed: %w", size, MaxConfigBytes, ErrTooLarge)
	}
	sort.Strings(set)
	sort.Strings(removed)
	var parts []string
	if len(set) > 0 {
		parts = append(parts, "Set "+strings.Join(set, ", ")+" config vars")
	}
	if len(removed) > 0 {
		parts = append(parts, "Remove "+strings.Join(removed, ", ")+" config vars")
	}
	return next, strings.Join(parts, " and "), nil
}

// DeployDescription is the release description for a deploy of commit.
func DeployDescription(commit string) string {
	if len(commit) > 8 {
		commit = commit[:8]
	}
	return "Deploy " + commit
}

// RollbackDescription is the release description for a rollback to version v.
func RollbackDescription(v int) string { return fmt.Sprintf("Rollback to v%d", v) }
