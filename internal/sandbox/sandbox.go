// Package sandbox runs one isolated process tree: a dyno, a build or a
// boot check. It turns a Spec into a libcontainer container with its own
// PID, mount, UTS, IPC, cgroup and network namespaces, cgroup limits, a
// read-only root made of the host's system directories, /app as an overlay
// of a read-only slug tree with a throw-away writable layer, and a private
// /tmp. Networked sandboxes get their own address behind a veth pair and
// an nftables firewall that keeps them away from each other, from the
// host and from the networks the caller calls internal. Sandboxes outlive
// the process that starts them (output goes through their init and
// FIFOs, not pipes to it), so a restarted caller adopts them (adopt.go).
//
// It never decides what to run or when; callers (host, build) do. It must
// never act as host root on paths inside a tenant's filesystem: every
// mount into a sandbox is made by libcontainer inside the sandbox's own
// mount namespace, and the only host paths sandbox writes are its own
// state under Config.StateDir.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	// The devices package lets libcontainer's cgroup managers apply device
	// rules; nsenter is the C half of libcontainer's init (it runs before
	// the Go runtime when this binary is re-executed as "init").
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/mounts"
)

// Config configures a Manager. Two Managers alive on one host must differ
// in StateDir, Subnet and CgroupParent: each takes what it finds of the
// other for its own leftovers otherwise.
type Config struct {
	// StateDir holds per-sandbox state: /app overlay upper dirs on disk,
	// and a tmpfs New mounts at StateDir/.run for generated roots, netns
	// bind mounts, output FIFOs and libcontainer state. Required; it
	// belongs to this Manager alone (and to the Managers of later runs of
	// this process, which adopt what it leaves). It must be on a disk
	// filesystem that can hold overlayfs upper layers (ext4, xfs; not
	// tmpfs or overlayfs).
	StateDir string
	// Subnet is carved into one /30 per networked sandbox. Zero means
	// 10.231.0.0/16.
	Subnet netip.Prefix
	// CgroupParent is the cgroup every sandbox's cgroup is created under,
	// relative to each hierarchy's root (not to grid's own cgroup), e.g.
	// /sys/fs/cgroup/memory/grid/<id>. Empty means "grid". Idle
	// sandboxes' cgroups go under its sibling CgroupParent-idle
	// (grid-idle).
	CgroupParent string
	// Internal are destinations sandboxes must never open connections to:
	// the cluster fabric, other hosts' sandbox subnets. IPv4 only. A
	// nameserver of the host's /etc/resolv.conf inside them stays
	// reachable on port 53 (sandboxes use that resolv.conf). Nil means
	// none beyond the host itself, link-local addresses and the other
	// sandboxes of this Manager, which are always refused.
	Internal []netip.Prefix
	// Routers are the only sources, other than this host, that may open
	// connections to sandboxes (routers on other machines reach dynos
	// through this host; a dyno of another host arrives masqueraded as
	// that host's address). IPv4 only. Nil means any source outside
	// Subnet.
	Routers []netip.Prefix
	// Services are the add-on servers: TCP ports that a sandbox reaches
	// only at the endpoints of its Spec.Reach (its app's add-ons), whether
	// they are on the host, in Internal or elsewhere. IPv4 only.
	Services []Service
	Logger   *slog.Logger

	// resolvConf is where nameservers are read from; tests change it.
	// Empty means /etc/resolv.conf.
	resolvConf string
}

// Service is an address and a range of TCP ports on it.
type Service struct {
	Addr                netip.Addr
	FirstPort, LastPort uint16
}

func (sv Service) contains(e netip.AddrPort) bool {
	return e.Addr() == sv.Addr && e.Port() >= sv.FirstPort && e.Port() <= sv.LastPort
}

var cgroupParentPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*(/[a-zA-Z0-9_][a-zA-Z0-9_.-]*)*$`)

func (c Config) normalize() (Config, error) {
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return c, fmt.Errorf("sandbox state dir %q must be an absolute path: %w", c.StateDir, grid.ErrInvalid)
	}
	if strings.ContainsAny(c.StateDir, ",:\\") {
		return c, fmt.Errorf("sandbox state dir %q must not contain ',', ':' or '\\' (overlayfs options): %w", c.StateDir, grid.ErrInvalid)
	}
	c.StateDir = filepath.Clean(c.StateDir)
	if !c.Subnet.IsValid() {
		c.Subnet = defaultSubnet
	}
	c.Subnet = c.Subnet.Masked()
	if c.CgroupParent == "" {
		c.CgroupParent = "grid"
	}
	if !cgroupParentPattern.MatchString(c.CgroupParent) || strings.Contains(c.CgroupParent, "..") {
		return c, fmt.Errorf("cgroup parent %q must be a relative cgroup path: %w", c.CgroupParent, grid.ErrInvalid)
	}
	for _, sv := range c.Services {
		if !sv.Addr.Is4() || sv.FirstPort == 0 || sv.LastPort < sv.FirstPort {
			return c, fmt.Errorf("sandbox service %v ports %d-%d: want an IPv4 address and a port range: %w", sv.Addr, sv.FirstPort, sv.LastPort, grid.ErrInvalid)
		}
	}
	for _, p := range append(slices.Clone(c.Internal), c.Routers...) {
		if !p.IsValid() || !p.Addr().Is4() {
			return c, fmt.Errorf("sandbox firewall prefix %v must be an IPv4 prefix: %w", p, grid.ErrInvalid)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.resolvConf == "" {
		c.resolvConf = "/etc/resolv.conf"
	}
	return c, nil
}

// Manager creates sandboxes and owns the host-side resources they share
// (address pool, firewall rules, cgroup parent). It is safe for concurrent
// use.
//
// Sandboxes outlive the process that started them: New finds those an
// earlier run left (see Leftovers), the caller adopts the ones it still
// wants (Adopt) and destroys the rest (CollectGarbage).
type Manager struct {
	cfg        Config
	log        *slog.Logger
	pool       *addrPool
	fw         *firewall
	linkPrefix string
	initBin    string // this executable, bind-mounted as every sandbox's pid 1

	mu        sync.Mutex
	live      map[string]*Sandbox
	leftovers map[string]*leftover
	orphans   []int // address slots of host veths no leftover accounts for
}

// New prepares the host (IP forwarding, firewall rules, cgroup parent,
// the kernel console's log level) and takes stock of what an earlier run
// left: sandboxes still running, and the remains of dead ones. It stops
// or removes none of them; see Leftovers, Adopt and CollectGarbage.
func New(cfg Config) (*Manager, error) {
	if err := checkSeccomp(); err != nil {
		return nil, err
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	pool, err := newAddrPool(cfg.Subnet)
	if err != nil {
		return nil, err
	}
	initBin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox init binary: %w", err)
	}
	fw, err := newFirewall(cfg)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger, pool: pool, fw: fw,
		linkPrefix: linkPrefix(cfg.Subnet), initBin: initBin,
		live: map[string]*Sandbox{}, leftovers: map[string]*leftover{},
	}
	if err := m.prepareHost(); err != nil {
		return nil, err
	}
	if err := m.findLeftovers(); err != nil {
		return nil, fmt.Errorf("sandbox leftovers: %w", err)
	}
	m.log.Info("sandbox manager ready", "state_dir", cfg.StateDir, "subnet", cfg.Subnet.String(),
		"cgroup_parent", cfg.CgroupParent, "leftovers", len(m.leftovers))
	return m, nil
}

func (m *Manager) prepareHost() error {
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("sandbox state dir: %w", err)
	}
	if err := m.makeCgroupParents(); err != nil {
		return err
	}
	if changed, err := tuneCgroups(); err != nil {
		m.log.Warn("cgroup tuning failed; sandbox starts take ~10 ms longer", "err", err)
	} else if changed {
		m.log.Info("cgroup2 remounted with favordynmods for fast sandbox starts")
	}
	switch p := KernelPreemption(); {
	case p.Isolating(), p.Mode == "unknown":
		m.log.Info("kernel preemption", "mode", p.Mode, "from", p.Source)
	default:
		m.log.Warn("kernel preemption does not isolate dynos' latency: a dyno in a system call keeps its core "+
			"from another that wakes there, for up to milliseconds, whatever their sizes; boot with preempt=full",
			"mode", p.Mode, "from", p.Source)
	}
	m.tuneConsole()
	if err := enableForwarding(); err != nil {
		return fmt.Errorf("enable ip forwarding: %w", err)
	}
	// Replacing the table is atomic: connections of running sandboxes
	// (conntrack) go on.
	if err := m.fw.install(); err != nil {
		return err
	}
	return mountRunDir(m.runDir()) // last: nothing to undo after it
}

// Close releases host-side resources: the firewall table, the run tmpfs
// and the (empty) cgroup parent. Live sandboxes must be destroyed or
// detached first; Close refuses with ErrConflict otherwise. While
// adoptable leftovers remain (detached, or never adopted nor collected)
// it leaves all of that in place for the next Manager, which adopts
// them, and returns nil. Closing twice is harmless.
func (m *Manager) Close() error {
	m.mu.Lock()
	live, left := len(m.live), m.adoptableLeftovers()
	m.mu.Unlock()
	if live > 0 {
		return fmt.Errorf("sandbox manager: %d sandboxes still live: %w", live, grid.ErrConflict)
	}
	if left > 0 {
		m.log.Info("sandbox manager closed; leftovers stay for the next run", "leftovers", left)
		return nil
	}
	err := errors.Join(m.fw.remove(), unmountRunDir(m.runDir()))
	for _, parent := range m.cgroupParents() {
		for _, dir := range cgroupfs.Dirs(parent) {
			_ = os.Remove(dir) // only if empty; a busy parent is harmless
		}
	}
	return err
}

// adoptableLeftovers counts the leftovers a later Manager could adopt:
// those with a run dir, which holds their record and libcontainer state
// on the run tmpfs. One found only as cgroups holds nothing there (a
// start cut short before its run dir, or a sandbox of another Manager
// on the same CgroupParent whose processes outlived their SIGKILL), and
// a later Manager finds its cgroups again without it. m.mu held.
func (m *Manager) adoptableLeftovers() int {
	n := 0
	for id := range m.leftovers {
		if _, err := os.Stat(newLayout(m.cfg.StateDir, id).run); err == nil {
			n++
		}
	}
	return n
}

// init pins the main goroutine to the main thread. Both libcontainer and
// newNetns enter namespaces on locked goroutines whose threads die with
// them; the main thread cannot die, so the runtime would instead park it
// for good inside a sandbox's namespaces, keeping them alive and making
// /proc/self show them. Pinned to main, the main thread never runs those
// goroutines.
func init() { runtime.LockOSThread() }

// runDir is the Manager's tmpfs for sandbox roots and runtime state.
func (m *Manager) runDir() string { return filepath.Join(m.cfg.StateDir, runDirName) }

func unmountRunDir(dir string) error {
	if err := mounts.DetachBelow(dir); err != nil {
		return err
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// MaybeInit must be the first call in main (and in TestMain of any test
// binary that starts sandboxes): when the process was re-executed by
// libcontainer as a container's init ("<exe> init"), it runs the init and
// never returns; otherwise it returns at once. (The sandbox's own pid 1,
// see dynoinit.go, never gets as far as main.)
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != "" {
		libcontainer.Init()
	}
}

// Sandbox is one running sandbox.
//
//	Start ─┬─► running ──(main process exits)──► exited ──Destroy──► gone
//	Adopt ─┘     │ │                                ▲
//	             │ └── Signal / Stop (TERM, grace, KILL)
//	             └──── Detach ──► leftover: runs on, no caller
//	                              ──► Adopt (here or in a later process)
//	                              ──► CollectGarbage (destroyed)
//
// Every method is safe for concurrent use; Destroy may be called in any
// state and more than once.
type Sandbox struct {
	m         *Manager
	spec      Spec
	layout    layout
	container *libcontainer.Container
	process   *libcontainer.Process // nil when adopted: not our child
	initPid   int
	started   time.Time
	net       *sandboxNet // nil without Network
	stdin     io.Closer   // our end of the stdin pipe, if we copy stdin
	winsize   *os.File    // our end of the init's window size pipe (TTY only)
	watching  bool        // a goroutine waits for the main process (set before it starts)

	mu  sync.Mutex
	out *output // copies stdout and stderr; nil when detached

	done chan struct{} // closed when the main process has exited and its output is copied
	code int           // exit code, valid after done
	err  error         // wait error, valid after done

	destroyOnce sync.Once
	destroyErr  error
}

// Start creates and starts a sandbox. On error nothing is left behind.
// It returns once the main process runs.
func (m *Manager) Start(ctx context.Context, spec Spec) (*Sandbox, error) {
	spec, err := normalize(spec)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox %q: %w", spec.ID, err)
	}
	s := m.newSandbox(spec)
	if err := m.register(s); err != nil {
		return nil, err
	}
	begin := time.Now()
	if err := s.start(); err != nil {
		s.undoStart()
		return nil, fmt.Errorf("sandbox %q: start: %w", spec.ID, err)
	}
	go s.waitChild()
	m.log.Debug("sandbox started", "sandbox", spec.ID, "network", spec.Network, "addr", s.Addr(), "took", time.Since(begin))
	return s, nil
}

func (m *Manager) newSandbox(spec Spec) *Sandbox {
	return &Sandbox{m: m, spec: spec, layout: newLayout(m.cfg.StateDir, spec.ID), done: make(chan struct{})}
}

func (m *Manager) register(s *Sandbox) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live[s.spec.ID]; ok {
		return fmt.Errorf("sandbox %q is already live: %w", s.spec.ID, grid.ErrConflict)
	}
	if _, ok := m.leftovers[s.spec.ID]; ok {
		return fmt.Errorf("sandbox %q is a leftover of an earlier run: %w", s.spec.ID, grid.ErrConflict)
	}
	m.live[s.spec.ID] = s
	return nil
}

func (m *Manager) unregister(s *Sandbox) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[s.spec.ID] == s {
		delete(m.live, s.spec.ID)
	}
	if lo := m.leftovers[s.spec.ID]; lo != nil && lo.sb == s {
		delete(m.leftovers, s.spec.ID)
	}
}

// Addr is the sandbox's address; the zero Addr without Network.
func (s *Sandbox) Addr() netip.Addr {
	if s.net == nil {
		return netip.Addr{}
	}
	return s.net.addr
}

// Gateway is the host's address on the sandbox's link (its default
// route); the zero Addr without Network. Dynos cannot open connections to
// it.
func (s *Sandbox) Gateway() netip.Addr {
	if s.net == nil {
		return netip.Addr{}
	}
	return s.net.host
}

// ID returns the sandbox's ID.
func (s *Sandbox) ID() string { return s.spec.ID }

// Pid is the host pid of the sandbox's init (its pid 1), whose only child
// is the command.
func (s *Sandbox) Pid() int { return s.initPid }

// Started is when the sandbox's main process was started (by this
// process or, for an adopted sandbox, by an earlier one).
func (s *Sandbox) Started() time.Time { return s.started }

// Wait waits for the sandbox's main process to exit and returns its exit
// code (128+signal when killed by a signal). For an adopted sandbox the
// code is the one the sandbox init recorded as it exited; an init that
// recorded none was killed, and Wait returns 137 (128+SIGKILL), which is
// what it would return for a sandbox of this process killed by Stop.
func (s *Sandbox) Wait() (int, error) {
	<-s.done
	return s.code, s.err
}

// Done is closed when the main process has exited.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// exited reports whether the main process has exited.
func (s *Sandbox) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ErrExited is wrapped by errors of calls that need a running sandbox
// (WaitListening, Signal) when its main process has exited.
var ErrExited = errors.New("sandbox exited")
