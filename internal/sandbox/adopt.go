package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/grid"
)

// Sandboxes outlive the process that starts them, so that the caller (the
// host agent) can restart or be upgraded without restarting them:
//
//	run 1:  Start ─► sandbox runs ─► process exits (killed, or after Detach)
//	run 2:  New finds it ─► Leftovers ─► Adopt ──────────► as if started here
//	                                  └─► CollectGarbage ─► destroyed
//
// Nothing a sandbox needs lives in the process: its init is reparented to
// the host's init, its output goes through FIFOs (output.go), and its
// netns, veth, cgroups and state are on the host. New rebuilds the rest
// from <run>/<id>/sandbox.json and libcontainer's state: what a sandbox
// is for (its labels), its address slot, its start time. Until a
// leftover is adopted or collected its ID and address stay reserved.

// Leftover is a sandbox that no caller has: left by an earlier run of the
// process (found by New) or detached in this one.
type Leftover struct {
	ID string
	// Labels are the Spec's labels; nil if the sandbox's record is gone
	// (a start that crashed half-way), in which case Adopt refuses it.
	Labels map[string]string
	// Running reports whether its main process still ran when this
	// Leftover was made; Pid is then its init's host pid.
	Running bool
	Pid     int
	Addr    netip.Addr // zero without Network
	Started time.Time  // zero if unknown
}

// leftover is the Manager's view of one: what New found, or the detached
// Sandbox.
type leftover struct {
	info       Leftover
	rec        *record  // nil if unreadable
	sb         *Sandbox // detached in this process; nil for ones New found
	slot       int      // address slot it holds; -1 for none
	collecting bool     // CollectGarbage is destroying it
}

// record is what a later Manager needs to know about a sandbox: written at
// its start as <run>/<id>/sandbox.json.
type record struct {
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Labels   map[string]string `json:"labels,omitempty"`
	Network  bool              `json:"network,omitempty"`
	Reach    []netip.AddrPort  `json:"reach,omitempty"`
	Idle     bool              `json:"idle,omitempty"` // its cgroups are under the idle parent
	Slot     int               `json:"slot"`
	Started  time.Time         `json:"started"`
}

func newRecord(spec Spec, n *sandboxNet, started time.Time) record {
	r := record{ID: spec.ID, Hostname: spec.Hostname, Labels: spec.Labels, Network: n != nil, Reach: spec.Reach, Idle: spec.Idle, Started: started}
	if n != nil {
		r.Slot = n.slot
	}
	return r
}

func writeRecord(l layout, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := l.record() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.record())
}

func readRecord(l layout) (*record, error) {
	b, err := os.ReadFile(l.record())
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// findLeftovers takes stock of what an earlier run left: every sandbox ID
// with a run dir, a disk dir or a cgroup, and every host veth of ours.
// Their address slots are taken until they are adopted or collected.
func (m *Manager) findLeftovers() error {
	ids, err := m.leftoverIDs()
	if err != nil {
		return err
	}
	held := map[int]bool{}
	for id := range ids {
		lo := m.inspect(id)
		m.leftovers[id] = lo
		if lo.slot >= 0 {
			held[lo.slot] = true
			m.pool.take(lo.slot)
		}
	}
	links, err := listLinks()
	if err != nil {
		return err
	}
	for _, l := range links {
		slot, err := strconv.Atoi(strings.TrimPrefix(l.Attrs().Name, m.linkPrefix))
		if !strings.HasPrefix(l.Attrs().Name, m.linkPrefix) || err != nil || held[slot] {
			continue
		}
		m.orphans = append(m.orphans, slot)
		m.pool.take(slot)
	}
	return nil
}

// leftoverIDs lists the sandbox IDs that have any trace on the host.
func (m *Manager) leftoverIDs() (map[string]bool, error) {
	ids := map[string]bool{}
	dirs := []string{m.runDir(), m.cfg.StateDir}
	for _, parent := range m.cgroupParents() {
		dirs = append(dirs, cgroupfs.Dirs(parent)...)
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() && idPattern.MatchString(e.Name()) {
				ids[e.Name()] = true
			}
		}
	}
	return ids, nil
}

// inspect reads what is known of leftover id.
func (m *Manager) inspect(id string) *leftover {
	l := newLayout(m.cfg.StateDir, id)
	lo := &leftover{info: Leftover{ID: id}, slot: -1}
	if rec, err := readRecord(l); err == nil && rec.ID == id && (!rec.Network || rec.Slot >= 0 && rec.Slot < m.pool.size) {
		lo.rec = rec
		lo.info.Labels, lo.info.Started = maps.Clone(rec.Labels), rec.Started
		if rec.Network {
			lo.slot = rec.Slot
			_, lo.info.Addr = m.pool.addrs(rec.Slot)
		}
	}
	if c, err := libcontainer.Load(l.state(), id); err == nil {
		if st, err := c.State(); err == nil && initRunning(st.InitProcessPid, st.InitProcessStartTime) {
			lo.info.Running, lo.info.Pid = true, st.InitProcessPid
		}
	}
	return lo
}

// Leftovers lists the sandboxes no caller has (see Leftover), by ID.
func (m *Manager) Leftovers() []Leftover {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Leftover
	for _, lo := range m.leftovers {
		if lo.collecting {
			continue
		}
		info := lo.info
		if lo.sb != nil {
			info.Running = !lo.sb.exited()
		}
		info.Labels = maps.Clone(info.Labels)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Leftover) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Adopt takes over leftover id: the returned Sandbox is as if started by
// this Manager, with the same process, address and files, its output now
// copied to stdout and stderr (nil: discard; output written while nobody
// read is partly lost, see output.go). It has no stdin. If the leftover's
// main process has exited, the Sandbox has too: Done is closed and Wait
// returns the status the sandbox init recorded (see Wait). Adopt fails
// with ErrNotFound for an ID that is not a leftover, and with
// ErrConflict for the remains of a start that never finished (no record
// or state), which only CollectGarbage removes.
func (m *Manager) Adopt(id string, stdout, stderr io.Writer) (*Sandbox, error) {
	lo, s, err := m.claim(id)
	if err != nil {
		return nil, err
	}
	if lo.sb != nil { // detached in this process
		lo.sb.attachOutput(stdout, stderr)
		return lo.sb, nil
	}
	if err := s.adopt(lo.rec, stdout, stderr); err != nil {
		m.unclaim(lo, s)
		return nil, fmt.Errorf("sandbox %q: adopt: %w", id, err)
	}
	m.log.Debug("sandbox adopted", "sandbox", id, "running", !s.exited(), "pid", s.initPid, "addr", s.Addr())
	return s, nil
}

// claim moves leftover id to the live sandboxes, reserving it while it
// is adopted.
func (m *Manager) claim(id string) (*leftover, *Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lo := m.leftovers[id]
	if lo == nil || lo.collecting {
		return nil, nil, fmt.Errorf("sandbox %q is not a leftover: %w", id, grid.ErrNotFound)
	}
	if _, ok := m.live[id]; ok {
		return nil, nil, fmt.Errorf("sandbox %q is already live: %w", id, grid.ErrConflict)
	}
	if lo.rec == nil && lo.sb == nil {
		return nil, nil, fmt.Errorf("sandbox %q is the remains of a start that never finished: %w", id, grid.ErrConflict)
	}
	delete(m.leftovers, id)
	s := lo.sb
	if s == nil {
		s = m.newSandbox(Spec{ID: id})
	}
	m.live[id] = s
	return lo, s, nil
}

// unclaim undoes claim after a failed adoption.
func (m *Manager) unclaim(lo *leftover, s *Sandbox) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[lo.info.ID] == s {
		delete(m.live, lo.info.ID)
	}
	m.leftovers[lo.info.ID] = lo
}

// adopt fills a Sandbox claimed for a leftover an earlier process
// started, from its record and libcontainer's state.
func (s *Sandbox) adopt(rec *record, stdout, stderr io.Writer) error {
	s.spec = Spec{ID: rec.ID, Hostname: rec.Hostname, Labels: rec.Labels, Network: rec.Network, Reach: rec.Reach, Idle: rec.Idle, Stdout: stdout, Stderr: stderr}
	s.started = rec.Started
	c, err := libcontainer.Load(s.layout.state(), rec.ID)
	if err != nil {
		return fmt.Errorf("load container state: %v: %w", err, grid.ErrConflict)
	}
	st, err := c.State()
	if err != nil {
		return fmt.Errorf("container state: %w", err)
	}
	s.container, s.initPid = c, st.InitProcessPid
	if rec.Network {
		s.net = s.m.sandboxNetAt(rec.Slot, s.layout, rec.Reach)
		// The Manager's new firewall table starts with an empty set.
		if err := s.m.fw.open(s.net.addr, s.net.reach); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
	}
	pidfd, err := openPidfd(st.InitProcessPid, st.InitProcessStartTime)
	if err != nil { // exited while nobody watched
		s.finish(readExitStatus(s.layout), nil)
		return nil
	}
	out, err := openOutput(s.layout)
	if err != nil {
		pidfd.Close()
		return fmt.Errorf("output: %w", err)
	}
	out.start(stdout, stderr)
	s.out, s.watching = out, true
	go s.waitAdopted(pidfd)
	return nil
}

// waitAdopted waits for the main process of an adopted sandbox (not our
// child) to exit, and publishes the status its init recorded.
func (s *Sandbox) waitAdopted(pidfd *os.File) {
	err := waitPidfd(pidfd)
	pidfd.Close()
	s.finish(readExitStatus(s.layout), err)
}

// attachOutput copies the output of a sandbox detached in this process
// again, unless it has exited.
func (s *Sandbox) attachOutput(stdout, stderr io.Writer) {
	if s.exited() {
		return
	}
	out, err := openOutput(s.layout)
	if err != nil {
		s.m.log.Warn("sandbox output lost", "sandbox", s.spec.ID, "err", err)
		return
	}
	out.start(stdout, stderr)
	s.mu.Lock()
	s.out = out
	s.mu.Unlock()
}

// Detach lets go of the sandbox without stopping it: its output is no
// longer copied (the init drops it while nobody reads, see output.go) and
// it becomes a leftover, which Adopt, in this process or in a later one,
// takes over, and CollectGarbage destroys. Done and Wait keep working;
// other methods must not be called after Detach.
func (s *Sandbox) Detach() {
	s.detachOutput()
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[s.spec.ID] != s {
		return // destroyed, or detached already
	}
	delete(m.live, s.spec.ID)
	lo := &leftover{sb: s, slot: -1, info: Leftover{
		ID: s.spec.ID, Labels: maps.Clone(s.spec.Labels), Running: !s.exited(), Pid: s.initPid, Addr: s.Addr(), Started: s.started,
	}}
	if s.net != nil {
		lo.slot = s.net.slot
	}
	m.leftovers[s.spec.ID] = lo
}

// CollectGarbage destroys every leftover that has not been adopted: it
// kills its processes and removes its cgroups, network, files and address.
// It also removes host veths of this Manager that no sandbox accounts
// for. It returns how many leftovers it destroyed. Sandboxes started or
// adopted are never touched.
func (m *Manager) CollectGarbage() (int, error) {
	m.mu.Lock()
	var los []*leftover
	for _, lo := range m.leftovers {
		if !lo.collecting {
			lo.collecting = true
			los = append(los, lo)
		}
	}
	orphans := m.orphans
	m.orphans = nil
	m.mu.Unlock()
	var errs []error
	for _, lo := range los {
		errs = append(errs, m.destroyLeftover(lo))
	}
	for _, slot := range orphans {
		errs = append(errs, deleteLink(m.linkName(slot)))
		m.pool.put(slot)
	}
	if len(los)+len(orphans) > 0 {
		m.log.Info("sandbox leftovers removed", "sandboxes", len(los), "links", len(orphans))
	}
	return len(los), errors.Join(errs...)
}

func (m *Manager) destroyLeftover(lo *leftover) error {
	defer func() {
		m.mu.Lock()
		delete(m.leftovers, lo.info.ID)
		m.mu.Unlock()
	}()
	if lo.sb != nil {
		return lo.sb.Destroy()
	}
	l := newLayout(m.cfg.StateDir, lo.info.ID)
	var errs []error
	for _, parent := range m.cgroupParents() {
		errs = append(errs, removeSandboxCgroups(parent, lo.info.ID)) // kills what runs
	}
	if lo.slot >= 0 {
		errs = append(errs, deleteLink(m.linkName(lo.slot)))
		m.pool.put(lo.slot)
	}
	errs = append(errs, removeDir(l.run), removeDir(l.disk))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %q: remove leftover: %w", lo.info.ID, err)
	}
	return nil
}

// removeSandboxCgroups kills what runs in sandbox id's cgroups and removes
// them.
func removeSandboxCgroups(parent, id string) error {
	var errs []error
	for _, dir := range cgroupfs.Dirs(filepath.Join(parent, id)) {
		if _, err := os.Stat(dir); err == nil {
			errs = append(errs, removeCgroup(dir))
		}
	}
	return errors.Join(errs...)
}

// initRunning reports whether pid is still the process that started at
// startTime (clock ticks after boot, /proc/<pid>/stat field 22) and has
// not exited.
func initRunning(pid int, startTime uint64) bool {
	st, state, err := procStart(pid)
	return err == nil && st == startTime && state != "Z" && state != "X"
}

// procStart reads a process's start time and state from /proc.
func procStart(pid int) (uint64, string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	// "pid (comm) state ppid ...": comm may hold anything but ends at the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, "", fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22 overall
	return start, f[0], err
}

// openPidfd opens a pidfd for pid if it is still the process that
// started at startTime; checking after the open rules out a reused pid.
func openPidfd(pid int, startTime uint64) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))
	if !initRunning(pid, startTime) {
		f.Close()
		return nil, ErrExited
	}
	return f, nil
}

// waitPidfd waits, in the runtime's poller (no thread blocked), until the
// process exits: a pidfd becomes readable then.
func waitPidfd(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		return err != nil && !errors.Is(err, unix.EINTR) || n > 0
	})
}

// readExitStatus reads the status the sandbox init recorded as it exited.
// An init that recorded none was killed (SIGKILL: it catches everything
// else).
func readExitStatus(l layout) int {
	b, err := os.ReadFile(l.exit())
	if err != nil {
		return 128 + int(unix.SIGKILL)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 128 + int(unix.SIGKILL)
	}
	return code
}
