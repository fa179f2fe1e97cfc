package grid

import (
	"fmt"
	"net/netip"
	"time"
)

// DynoState is where a dyno is in its lifecycle.
//
//	         start            bound $PORT (web) / running (others)
//	(none) ───────► starting ─────────────────────────► up
//	                   │  │                               │
//	  exit, R10, OOM   │  └──────────► crashed ◄──────────┘ exit, OOM
//	                   ▼                 │  back-off, then start again
//	                 down ◄──────────────┘  (assignment removed)
//	       stopped on purpose: SIGTERM, grace, SIGKILL
type DynoState string

// Dyno states, as Heroku names them.
const (
	DynoStarting DynoState = "starting"
	DynoUp       DynoState = "up"
	DynoCrashed  DynoState = "crashed"
	DynoDown     DynoState = "down"
)

// Assignment is the dyno manager's instruction to one host: run this dyno.
// It is the desired state; the host reports the actual state as a Dyno.
// Assignments are keyed by host and dyno ID, and removed to stop a dyno.
type Assignment struct {
	DynoID  string `json:"dyno_id"`
	App     string `json:"app"`
	AppID   string `json:"app_id"`
	UID     int    `json:"uid"`
	Host    string `json:"host"`
	Name    string `json:"name"` // web.1
	Type    string `json:"type"` // web
	Command string `json:"command"`
	Size    string `json:"size"`
	// Release and Epoch identify what the dyno runs; the manager replaces
	// dynos whose pair is older than the app's.
	Release int               `json:"release"`
	Epoch   int               `json:"epoch"`
	SlugID  string            `json:"slug_id"`
	Env     map[string]string `json:"env"` // config vars; PORT, DYNO, HOME are added by the host
	// Reach is the release's: the add-on endpoints the dyno may reach.
	Reach []netip.AddrPort `json:"reach,omitempty"`
	// CPUs is the cpuset the dyno is pinned to on its host ("1", "0-1");
	// empty means any core.
	CPUs string `json:"cpus,omitempty"`
	// OneOff dynos (run.N) are never restarted.
	OneOff bool `json:"one_off,omitempty"`
	// Attach makes a one-off dyno wait for a session (grid run) before it
	// starts, its stdio connected to the session instead of the logs; TTY
	// gives it a terminal. TimeToLive (seconds) ends a one-off dyno
	// sooner than the host's limit; zero means the host's limit.
	Attach     bool `json:"attach,omitempty"`
	TTY        bool `json:"tty,omitempty"`
	TimeToLive int  `json:"time_to_live,omitempty"`
	// Reason says why the manager started this dyno when it replaces a
	// healthy-looking one: "cycle" (the daily cycle) or "hung" (routers
	// found its predecessor hung). The host logs it.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// PendingHost is the Host of a one-off dyno's assignment until the
// manager places it: the API writes it there, the manager moves it to a
// host under the same dyno ID. No host can have this ID ('=' is not
// allowed in one).
const PendingHost = "=pending"

// Dyno is a dyno's actual state, reported by the host that runs it.
type Dyno struct {
	ID      string    `json:"id"`
	App     string    `json:"app"`
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Command string    `json:"command"`
	Size    string    `json:"size"`
	Release int       `json:"release"`
	Epoch   int       `json:"epoch"`
	Host    string    `json:"host"`
	State   DynoState `json:"state"`
	// Addr is host:port where the router reaches a web dyno; set once up.
	Addr      string    `json:"addr,omitempty"`
	ExitCode  int       `json:"exit_code,omitempty"`
	Restarts  int       `json:"restarts,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DynoName is the name of the index'th dyno (1-based) of a process type.
func DynoName(typ string, index int) string { return fmt.Sprintf("%s.%d", typ, index) }

// Host is a server that runs dynos, as it registers itself (and refreshes
// with every heartbeat). Only the host writes it.
type Host struct {
	ID   string `json:"id"`
	Addr string `json:"addr"` // the server's own address
	// Subnet is the CIDR its dynos' addresses come from; routers reach
	// them through Addr (a route the fabric or the provider sets up).
	Subnet      string    `json:"subnet,omitempty"`
	Cores       int       `json:"cores"`
	MemoryMB    int       `json:"memory_mb"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}

// HostState is how the control plane sees a host.
type HostState string

// Host states.
const (
	HostUp       HostState = "up"
	HostLost     HostState = "lost"     // heartbeats stopped
	HostDraining HostState = "draining" // dynos moving away before release
)

// HostControl is the control plane's say about a host, kept apart from the
// host's own record so heartbeats never overwrite it. Only servers write it.
type HostControl struct {
	ID       string `json:"id"`
	Draining bool   `json:"draining,omitempty"`
	// Provider created the host ("netns", "exec"); empty for hosts that
	// joined by hand. Handle is the provider's name for it.
	Provider string    `json:"provider,omitempty"`
	Handle   string    `json:"handle,omitempty"`
	Since    time.Time `json:"since"`
	// Lost says the manager holds the host lost (no heartbeat for its host
	// timeout): routers stop routing to its dynos, which are replaced
	// elsewhere, until the manager hears from it again and clears it.
	Lost bool `json:"lost,omitempty"`
}

// AppMeta is the part of an app routers need: no config vars, no secrets.
// It is derived from the app record whenever that changes.
type AppMeta struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Maintenance bool   `json:"maintenance,omitempty"`
	Released    bool   `json:"released"` // has a release with a slug
	Release     int    `json:"release"`
	// SlugID is the current release's slug, which hosts fetch ahead of need.
	SlugID string `json:"slug_id,omitempty"`
	// UID is the app's uid, which owns its unpacked slug trees on hosts.
	// Not a secret. Zero in records written before it existed.
	UID int `json:"uid,omitempty"`
}

// Meta derives an app's AppMeta.
func (a App) Meta() AppMeta {
	return AppMeta{ID: a.ID, Name: a.Name, Maintenance: a.Maintenance, Released: a.Release.SlugID != "", Release: a.Release.Version, SlugID: a.Release.SlugID, UID: a.UID}
}

// RouterState is what a router reports about itself, so the manager can
// tell when every router has seen a new dyno before it stops the old one.
type RouterState struct {
	ID string `json:"id"`
	// Revision is the dynos bucket revision the router's table includes.
	Revision    uint64    `json:"revision"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// Hung lists the dynos the router found hung (they accept connections
	// but stopped answering) and has not seen answer since. The manager
	// replaces them, start-before-stop. A router can write only its own
	// record, so one router can never speak for another.
	Hung []HungDyno `json:"hung,omitempty"`
}

// HungDyno is one dyno a router reports hung.
type HungDyno struct {
	ID    string    `json:"id"`
	App   string    `json:"app"`
	Name  string    `json:"name"`  // web.1, for logs
	Since time.Time `json:"since"` // when this router found it hung, by its clock
}
