package grid

import (
	"fmt"
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
	// OneOff dynos (run.N) are never restarted.
	OneOff    bool      `json:"one_off,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

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

// Host is a server that runs dynos, as it registers itself.
type Host struct {
	ID          string    `json:"id"`
	Addr        string    `json:"addr"`
	Cores       int       `json:"cores"`
	MemoryMB    int       `json:"memory_mb"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
}
