// Package sandbox runs one isolated process tree: a dyno, a build or a
// boot check. It turns a Spec into a libcontainer container with its own
// PID, mount, UTS, IPC, cgroup and network namespaces, cgroup limits, a
// read-only root made of the host's system directories, /app as an overlay
// of a read-only slug tree with a throw-away writable layer, and a private
// /tmp.
//
// It never decides what to run or when; callers (host, build) do. It must
// never act as host root on paths inside a tenant's filesystem.
package sandbox

// CONTRACT (implementation pending): the exported API below is what host
// and build code against. Bodies are filled in by the sandbox work.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"
)

var errTODO = errors.New("sandbox: not implemented")

// Config configures a Manager.
type Config struct {
	// StateDir holds per-sandbox state (rootfs mountpoints, overlay upper
	// dirs, libcontainer state). Required.
	StateDir string
	// Subnet is carved into one /30 per networked sandbox. Zero means
	// 10.231.0.0/16.
	Subnet netip.Prefix
	// CgroupParent is the cgroup every sandbox's cgroup is created under.
	// Empty means "grid".
	CgroupParent string
	Logger       *slog.Logger
}

// Mount is an extra bind mount into a sandbox.
type Mount struct {
	Source   string // host path
	Target   string // absolute path inside the sandbox
	Writable bool
}

// Spec describes one sandbox.
type Spec struct {
	// ID names the sandbox: [a-z0-9-], at most 64 characters, unique among
	// live sandboxes of this Manager.
	ID       string
	Hostname string
	// Args is the command; Args[0] is an absolute path or found on the PATH
	// given in Env.
	Args []string
	Env  []string
	Dir  string // working directory inside; empty means "/"
	UID  int    // never 0
	GID  int
	// AppDir is a host directory (a slug tree) mounted read-only at /app
	// under a writable overlay whose changes die with the sandbox. Empty
	// means no /app.
	AppDir string
	Mounts []Mount
	// Limits. Zero means the default (512 MB, 256 processes, 1024 shares,
	// 256 MB /tmp).
	MemoryMB  int
	PidsMax   int
	CPUShares int
	TmpMB     int
	// Network gives the sandbox its own address with egress to the
	// outside, reachable from the host on any port; without it the sandbox
	// has only loopback.
	Network bool
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// MaybeInit must be the first call in main (and in TestMain of any test
// binary that starts sandboxes): when the process was re-executed by
// libcontainer as a container's init ("<exe> init"), it runs the init and
// never returns; otherwise it returns at once.
func MaybeInit() {}

// Manager creates sandboxes and owns the host-side resources they share
// (address pool, firewall rules, cgroup parent).
type Manager struct{}

// New prepares the host (IP forwarding, firewall rules, cgroup parent) and
// removes what a previous run left behind.
func New(cfg Config) (*Manager, error) { return nil, errTODO }

// Close releases host-side resources. Live sandboxes must be destroyed first.
func (m *Manager) Close() error { return errTODO }

// Sandbox is one running sandbox.
type Sandbox struct{}

// Start creates and starts a sandbox. On error nothing is left behind.
func (m *Manager) Start(ctx context.Context, spec Spec) (*Sandbox, error) { return nil, errTODO }

// Addr is the sandbox's address; the zero Addr without Network.
func (s *Sandbox) Addr() netip.Addr { return netip.Addr{} }

// WaitListening returns nil once something in the sandbox listens on TCP
// port, or an error if the sandbox exits first or ctx ends.
func (s *Sandbox) WaitListening(ctx context.Context, port int) error { return errTODO }

// Wait waits for the sandbox's main process to exit and returns its exit
// code (128+signal when killed by a signal).
func (s *Sandbox) Wait() (int, error) { return -1, errTODO }

// Done is closed when the main process has exited.
func (s *Sandbox) Done() <-chan struct{} { return nil }

// Signal sends sig to every process in the sandbox.
func (s *Sandbox) Signal(sig os.Signal) error { return errTODO }

// Stop sends SIGTERM to every process, waits up to grace for the main
// process to exit, then SIGKILLs everything. It returns the exit code and
// whether SIGKILL was needed.
func (s *Sandbox) Stop(grace time.Duration) (code int, killed bool) { return -1, false }

// Destroy kills whatever still runs and removes every trace of the sandbox:
// cgroup, network, overlay, state. Safe to call more than once.
func (s *Sandbox) Destroy() error { return errTODO }
