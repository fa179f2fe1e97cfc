package schema

import "time"

// Host is a server that runs dynos, as GET /hosts shows it to
// administrators. It is not part of Heroku's API.
type Host struct {
	ID   string `json:"id"`
	Name string `json:"name"` // the id
	// Addr is the host's own address; Subnet holds its dynos' addresses.
	Addr   string `json:"addr"`
	Subnet string `json:"subnet"`
	// State is "up", "lost" (no heartbeat for 6 s), "draining" (its
	// dynos are moving away before it is released) or "starting"
	// (provisioned, not registered yet).
	State     string     `json:"state"`
	Cores     int        `json:"cores"`
	Memory    HostMemory `json:"memory"`
	DynoCount int        `json:"dyno_count"`
	// Provider made the host ("netns", "exec"); empty for a host that
	// joined by hand. Handle is the provider's name for it.
	Provider  string    `json:"provider"`
	Handle    string    `json:"handle"`
	CreatedAt time.Time `json:"created_at"` // when it started or was provisioned
	UpdatedAt time.Time `json:"updated_at"` // its last heartbeat
}

// HostMemory is a host's memory in MB: what it offers dynos, what the
// sizes of its dynos reserve, and the difference.
type HostMemory struct {
	TotalMB    int `json:"total_mb"`
	ReservedMB int `json:"reserved_mb"`
	FreeMB     int `json:"free_mb"`
}

// HostToken is GET /hosts/{id}/token: the NATS password a host joins with
// (`grid host --id ID --password-file FILE`).
type HostToken struct {
	Password string `json:"password"`
}
