package grid

import "time"

// Slug is a compiled, read-only archive of an app, ready to run.
type Slug struct {
	ID                   string            `json:"id"`
	App                  string            `json:"app"`
	Commit               string            `json:"commit"`
	BuildpackDescription string            `json:"buildpack_provided_description"`
	ProcessTypes         map[string]string `json:"process_types"`
	Size                 int64             `json:"size"`     // compressed bytes
	Checksum             string            `json:"checksum"` // "SHA256:<hex>" of the archive
	Stack                string            `json:"stack"`
	CreatedAt            time.Time         `json:"created_at"`
}

// Stack is the name of the (only) stack: the host's own system directories.
const Stack = "grid-24"
