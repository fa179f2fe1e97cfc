package sandbox

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// Mount is an extra bind mount into a sandbox.
type Mount struct {
	// Source is a host path that exists. Its symlinks are resolved when
	// the Spec is checked; it must not resolve to / or into /proc, /sys
	// or /dev.
	Source string
	// Target is an absolute path inside the sandbox, not under /proc,
	// /sys, /dev or /.grid. Under /app (or under an earlier Mount's
	// Target) no part of it may be a symlink in the files there, which
	// are the tenant's (see checkTargetPath).
	Target   string
	Writable bool
}

// Spec describes one sandbox.
type Spec struct {
	// ID names the sandbox: [a-z0-9-], at most 64 characters, unique among
	// live sandboxes of this Manager.
	ID string
	// Hostname is the sandbox's hostname. Empty means the ID (cut to 63
	// characters).
	Hostname string
	// Args is the command; Args[0] is an absolute path or found on the PATH
	// given in Env. A command that cannot be run makes the sandbox exit
	// with code 127 (126 when it is not executable), as a shell would.
	Args []string
	// Env is the complete environment; without a PATH entry,
	// PATH=/usr/local/bin:/usr/bin:/bin is added. Names starting with
	// _LIBCONTAINER_ are reserved.
	Env []string
	Dir string // working directory inside; empty means "/"
	UID int    // never 0
	// GID is the primary group. Zero means the same as UID (never the root
	// group).
	GID int
	// AppDir is a host directory (a slug tree) mounted read-only at /app
	// under a writable overlay whose changes die with the sandbox. Empty
	// means no /app. /app itself belongs to UID:GID; files keep the
	// owners they have in AppDir (slug.Cache gives them to the app's uid),
	// so the dyno can change them in place.
	AppDir string
	Mounts []Mount
	// Limits. Zero means the default (512 MB, 256 processes, 1024 shares,
	// no CPU cap, 256 MB /tmp, 2 GB of writes to /app at 100 MB/s and
	// 2,000 operations/s). /tmp and /dev/shm are RAM and count against
	// MemoryMB; DiskMB is the writable layer of /app, on disk (disk.go):
	// writes past it fail with ENOSPC.
	MemoryMB  int
	PidsMax   int
	CPUShares int
	// CPUMilli caps the CPU time the sandbox gets, in thousandths of a
	// core per wall-clock second (a CFS quota): 500 is half a core, 2000
	// two. Shares only divide CPU among sandboxes that all want it; the
	// cap also bounds a busy sandbox while its neighbours are idle, so
	// that a neighbour waking up finds a core free at once.
	CPUMilli int
	// Idle runs the sandbox's processes at SCHED_IDLE: they get a core
	// only when no ordinary task wants it, and any task waking up takes
	// it from them at once, across cgroups (eco dynos, the tier that
	// yields). They cannot leave it: RLIMIT_NICE is 0 inside. Its cgroup
	// goes under the -idle sibling of Config.CgroupParent, whose
	// cpu.idle is 1: the kernel picks a cgroup before a task, at every
	// level from the root down, and an ordinary group of idle tasks
	// would still win time slices from the processes beside it (the
	// router, the load it serves, paying dynos' parent).
	Idle   bool
	TmpMB  int
	DiskMB int
	// DiskMBps and DiskIOPS bound the writable layer's reads and writes
	// (each), in MB/s and operations/s: the kernel's writeback and I/O
	// work for them runs outside the sandbox's cgroups, on any core, so
	// without a bound one dyno filling its disk at gigabytes a second
	// slows every neighbour (disk.go).
	DiskMBps int
	DiskIOPS int
	// CPUs pins the sandbox to these cores through the cpuset cgroup: a
	// cpuset list such as "1", "0-1" or "0,2-3", each core online on
	// this machine. Empty means any core. Memory nodes are the parent
	// cgroup's.
	CPUs string
	// Network gives the sandbox its own address with egress to the
	// outside, reachable from the host on any port; without it the sandbox
	// has only loopback.
	Network bool
	// EgressMbit caps, in megabits a second, what the sandbox sends
	// other than to its gateway and Config.Routers (egress.go): a dyno
	// uploading as fast as it can leaves the host's link to the others.
	// Only with Network.
	EgressMbit int
	// Reach are the add-on endpoints (IPv4 address and TCP port) the
	// sandbox may reach, its app's own: of the Manager's Config.Services,
	// it reaches these and no other. An endpoint outside every service is
	// left to the ordinary rules. Only with Network; at most maxReach.
	Reach []netip.AddrPort
	// Labels are the caller's notes about the sandbox (at most
	// maxLabels, short): kept with it and returned by Leftovers, so that a
	// caller that restarts can tell what a sandbox it left running is for.
	Labels map[string]string
	// Stdin, Stdout and Stderr connect the main process. Nil means
	// /dev/null for Stdin and discarding for the others. The sandbox never
	// gets the caller's files (even for an *os.File): Stdin is copied
	// through a pipe, and output reaches Stdout and Stderr through the
	// sandbox init and FIFOs (see output.go), so that it outlives this
	// process. Wait returns after Stdout and Stderr have been copied to
	// the end; the Stdin copy stops when the sandbox exits, but a Read
	// blocked at that moment returns only when the reader itself is
	// closed or ends. An adopted sandbox has no stdin (EOF).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// TTY gives the command a terminal of this size instead of pipes, as
	// for an interactive one-off dyno: Stdin is typed into it and all it
	// prints, stderr included, arrives on Stdout (with the terminal's
	// \r\n line ends). Resize changes the size. Nil means no terminal.
	TTY *WindowSize
}

// WindowSize is a terminal's size in characters.
type WindowSize struct {
	Rows, Cols uint16
}

// maxReach bounds Spec.Reach: an app has a few add-ons, not a firewall.
const maxReach = 64

// Label limits: a few short strings, not a data store.
const (
	maxLabels     = 16
	maxLabelBytes = 256
)

// Defaults applied to zero Spec limits.
const (
	DefaultMemoryMB   = 512
	DefaultPidsMax    = 256
	DefaultCPUShares  = 1024
	DefaultTmpMB      = 256
	DefaultDiskMB     = 2048
	DefaultDiskMBps   = 100
	DefaultDiskIOPS   = 2000
	DefaultEgressMbit = 100
)

// The highest disk rates a Spec may ask for: far beyond any disk, and
// far from overflowing the kernel's byte counts.
const (
	maxDiskMBps = 1 << 20
	maxDiskIOPS = 1 << 24
	// maxEgressMbit is 1 Tbit/s: tbf's 64-bit rate holds it.
	maxEgressMbit = 1_000_000
)

// minCPUMilli is the smallest CPU cap: 1 ms per 100 ms period is the
// kernel's least quota.
const minCPUMilli = 10

var idPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// reservedTargets may not receive extra mounts: the kernel surfaces the
// sandbox sets up itself, and the directory of its init (initTarget),
// which a mount would hide.
var reservedTargets = []string{"/proc", "/sys", "/dev", "/.grid"}

// invalid builds an ErrInvalid error about the sandbox named id.
func invalid(id, format string, args ...any) error {
	return fmt.Errorf("sandbox %q: %s: %w", id, fmt.Sprintf(format, args...), grid.ErrInvalid)
}

// normalize checks spec and returns a copy with defaults filled in.
func normalize(spec Spec) (Spec, error) {
	for _, check := range []func(Spec) error{checkID, checkCommand, checkIdentity, checkLimits, checkCPUs, checkReach, checkLabels, checkAppDir} {
		if err := check(spec); err != nil {
			return Spec{}, err
		}
	}
	mounts, err := resolveMounts(spec)
	if err != nil {
		return Spec{}, err
	}
	spec.Mounts = mounts
	spec.Labels = maps.Clone(spec.Labels)
	spec.Reach = slices.Clone(spec.Reach)
	if spec.GID == 0 {
		spec.GID = spec.UID
	}
	if spec.Hostname == "" {
		spec.Hostname = spec.ID[:min(len(spec.ID), 63)]
	}
	if spec.Dir == "" {
		spec.Dir = "/"
	}
	spec.MemoryMB = orDefault(spec.MemoryMB, DefaultMemoryMB)
	spec.PidsMax = orDefault(spec.PidsMax, DefaultPidsMax)
	spec.CPUShares = orDefault(spec.CPUShares, DefaultCPUShares)
	spec.TmpMB = orDefault(spec.TmpMB, DefaultTmpMB)
	spec.DiskMB = orDefault(spec.DiskMB, DefaultDiskMB)
	spec.DiskMBps = orDefault(spec.DiskMBps, DefaultDiskMBps)
	spec.DiskIOPS = orDefault(spec.DiskIOPS, DefaultDiskIOPS)
	spec.EgressMbit = orDefault(spec.EgressMbit, DefaultEgressMbit)
	return spec, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func checkID(spec Spec) error {
	if !idPattern.MatchString(spec.ID) {
		return invalid(spec.ID, "id must be 1 to 64 of [a-z0-9-]")
	}
	return nil
}

func checkCommand(spec Spec) error {
	if len(spec.Args) == 0 || spec.Args[0] == "" {
		return invalid(spec.ID, "no command (Args is empty)")
	}
	for _, kv := range spec.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return invalid(spec.ID, "env entry %q is not KEY=VALUE", kv)
		}
		if strings.HasPrefix(k, "_LIBCONTAINER_") {
			return invalid(spec.ID, "env %s is reserved", k)
		}
	}
	if spec.Dir != "" && !isCleanAbs(spec.Dir) {
		return invalid(spec.ID, "dir %q must be a clean absolute path", spec.Dir)
	}
	return nil
}

var hostnamePattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,61}[a-zA-Z0-9])?$`)

func checkIdentity(spec Spec) error {
	switch {
	case spec.UID == 0:
		return invalid(spec.ID, "uid 0 (root) is not allowed")
	case spec.UID < 0 || spec.UID > 1<<31-2 || spec.GID < 0 || spec.GID > 1<<31-2:
		return invalid(spec.ID, "uid %d / gid %d out of range", spec.UID, spec.GID)
	case spec.Hostname != "" && !hostnamePattern.MatchString(spec.Hostname):
		return invalid(spec.ID, "hostname %q is not a valid host name", spec.Hostname)
	}
	return nil
}

func checkLimits(spec Spec) error {
	if spec.MemoryMB < 0 || spec.PidsMax < 0 || spec.CPUShares < 0 || spec.CPUMilli < 0 || spec.TmpMB < 0 || spec.DiskMB < 0 || spec.DiskMBps < 0 || spec.DiskIOPS < 0 || spec.EgressMbit < 0 {
		return invalid(spec.ID, "limits must not be negative")
	}
	if spec.MemoryMB != 0 && spec.MemoryMB < 16 {
		return invalid(spec.ID, "memory limit %d MB is below the 16 MB minimum", spec.MemoryMB)
	}
	if spec.PidsMax != 0 && spec.PidsMax < 8 {
		return invalid(spec.ID, "pids limit %d is below the minimum of 8", spec.PidsMax)
	}
	if spec.CPUShares != 0 && spec.CPUShares < 2 {
		return invalid(spec.ID, "cpu shares %d is below the minimum of 2", spec.CPUShares)
	}
	if spec.CPUMilli != 0 && spec.CPUMilli < minCPUMilli {
		return invalid(spec.ID, "cpu cap %d millicores is below the minimum of %d", spec.CPUMilli, minCPUMilli)
	}
	if spec.DiskMB != 0 && spec.DiskMB < 8 {
		return invalid(spec.ID, "disk limit %d MB is below the 8 MB minimum", spec.DiskMB)
	}
	if spec.DiskMBps > maxDiskMBps || spec.DiskIOPS > maxDiskIOPS {
		return invalid(spec.ID, "disk rate %d MB/s, %d operations/s is above the maximum of %d MB/s, %d operations/s", spec.DiskMBps, spec.DiskIOPS, maxDiskMBps, maxDiskIOPS)
	}
	if spec.EgressMbit > maxEgressMbit {
		return invalid(spec.ID, "egress cap %d Mbit/s is above the maximum of %d", spec.EgressMbit, maxEgressMbit)
	}
	return nil
}

func checkCPUs(spec Spec) error {
	if spec.CPUs == "" {
		return nil
	}
	cpus, err := parseCPUList(spec.CPUs)
	if err != nil {
		return invalid(spec.ID, "cpus %q: %v", spec.CPUs, err)
	}
	online, err := onlineCPUs()
	if err != nil {
		return fmt.Errorf("sandbox %q: online cpus: %w", spec.ID, err)
	}
	for _, c := range cpus {
		if !slices.Contains(online, c) {
			return invalid(spec.ID, "cpu %d of %q is not online (online: %v)", c, spec.CPUs, online)
		}
	}
	return nil
}

func checkReach(spec Spec) error {
	if len(spec.Reach) > 0 && !spec.Network {
		return invalid(spec.ID, "reach %v needs a network", spec.Reach)
	}
	if len(spec.Reach) > maxReach {
		return invalid(spec.ID, "%d endpoints to reach, at most %d", len(spec.Reach), maxReach)
	}
	for _, e := range spec.Reach {
		if !e.Addr().Is4() || e.Port() == 0 {
			return invalid(spec.ID, "endpoint to reach %v: want an IPv4 address and a port", e)
		}
	}
	return nil
}

func checkLabels(spec Spec) error {
	if len(spec.Labels) > maxLabels {
		return invalid(spec.ID, "%d labels, at most %d", len(spec.Labels), maxLabels)
	}
	for k, v := range spec.Labels {
		if k == "" || len(k)+len(v) > maxLabelBytes {
			return invalid(spec.ID, "label %q: empty or longer than %d bytes", k, maxLabelBytes)
		}
	}
	return nil
}

// parseCPUList parses a cpuset list ("0-2,4") into core numbers.
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 || lo != strconv.Itoa(first) {
			return nil, fmt.Errorf("%q is not a core number or range", part)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first || hi != strconv.Itoa(last) {
				return nil, fmt.Errorf("%q is not a core range", part)
			}
		}
		if last >= 4096 {
			return nil, fmt.Errorf("core %d out of range", last)
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// onlineCPUs lists the machine's online cores.
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func checkAppDir(spec Spec) error {
	if spec.AppDir == "" {
		return nil
	}
	if !filepath.IsAbs(spec.AppDir) || strings.ContainsAny(spec.AppDir, ",:\\") {
		return invalid(spec.ID, "app dir %q must be an absolute path without ',', ':' or '\\'", spec.AppDir)
	}
	return checkDir(spec.ID, "app dir", spec.AppDir)
}

func checkDir(id, what, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return invalid(id, "%s %q: %v", what, path, err)
	}
	if !fi.IsDir() {
		return invalid(id, "%s %q is not a directory", what, path)
	}
	return nil
}

// resolveMounts checks spec's mounts and returns them cleaned, each
// source with its symlinks resolved (resolveSource) and no target
// through a symlink of the tenant's (checkTargetPath).
func resolveMounts(spec Spec) ([]Mount, error) {
	out := make([]Mount, len(spec.Mounts))
	seen := map[string]bool{}
	for i, m := range spec.Mounts {
		src, err := resolveSource(spec.ID, m.Source)
		if err != nil {
			return nil, err
		}
		if err := checkTarget(spec.ID, m.Target); err != nil {
			return nil, err
		}
		t := filepath.Clean(m.Target)
		if seen[t] || (spec.AppDir != "" && t == "/app") {
			return nil, invalid(spec.ID, "mount target %q is used twice", m.Target)
		}
		seen[t] = true
		out[i] = Mount{Source: src, Target: t, Writable: m.Writable}
	}
	for i := range out {
		if err := checkTargetPath(spec.ID, spec.AppDir, out, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkTarget(id, target string) error {
	if !filepath.IsAbs(target) {
		return invalid(id, "mount target %q must be absolute", target)
	}
	t := filepath.Clean(target)
	if t == "/" {
		return invalid(id, "mount target %q would hide the root", target)
	}
	for _, r := range reservedTargets {
		if t == r || strings.HasPrefix(t, r+"/") {
			return invalid(id, "mount target %q is under %s, which the sandbox manages", target, r)
		}
	}
	return nil
}

func isCleanAbs(p string) bool {
	return filepath.IsAbs(p) && filepath.Clean(p) == p
}
