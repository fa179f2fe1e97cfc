package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/dynogrid/grid/internal/cgroupfs"

	"golang.org/x/sys/unix"
)

// Moving a process into a cgroup takes the kernel's global
// cgroup_threadgroup_rwsem for writing, which by default waits for an RCU
// grace period: about 11 ms on this kind of VM, paid once per sandbox
// start. The cgroup mount option "favordynmods" (Linux 6.1+) keeps that
// lock in its slow-reader mode instead, so migrations are immediate, at a
// small cost to fork and exit. It is global: setting it on one hierarchy
// is enough. See Documentation/admin-guide/cgroup-v2.rst.
const favorDynmods = "favordynmods"

// tuneCgroups sets favordynmods on the cgroup2 mount (hybrid or unified
// layout) if it is not set yet. It reports whether it changed anything.
func tuneCgroups() (bool, error) {
	for _, path := range []string{cgroupfs.Root + "/unified", cgroupfs.Root} {
		opts, ok, err := cgroup2Options(path)
		if err != nil || !ok {
			continue
		}
		if slices.Contains(opts, favorDynmods) {
			return false, nil
		}
		data := strings.Join(append(dropRW(opts), favorDynmods), ",")
		if err := unix.Mount("", path, "", unix.MS_REMOUNT|mountFlags(path), data); err != nil {
			return false, fmt.Errorf("remount %s with %s: %w", path, favorDynmods, err)
		}
		return true, nil
	}
	return false, nil
}

// cgroup2Options returns the superblock options of the cgroup2 mount at
// path, and whether there is one.
func cgroup2Options(path string) ([]string, bool, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		return nil, false, err
	}
	if len(mounts) == 0 || mounts[0].FSType != "cgroup2" {
		return nil, false, nil
	}
	return strings.Split(mounts[0].VFSOptions, ","), true, nil
}

func dropRW(opts []string) []string {
	return slices.DeleteFunc(slices.Clone(opts), func(o string) bool { return o == "rw" || o == "ro" })
}

// mountFlags returns the per-mount flags of path, which a remount must
// repeat to keep them.
func mountFlags(path string) uintptr {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	var flags uintptr
	for st2, ms := range stToMS {
		if st.Flags&st2 != 0 {
			flags |= uintptr(ms)
		}
	}
	return flags
}

var stToMS = map[int64]int{
	unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
	unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_RELATIME: unix.MS_RELATIME, unix.ST_NOATIME: unix.MS_NOATIME,
	unix.ST_NODIRATIME: unix.MS_NODIRATIME,
}

// idleSuffix names the sibling of Config.CgroupParent that Idle
// sandboxes' cgroups go under.
const idleSuffix = "-idle"

// cgroupParents are the Manager's two cgroup parents: CgroupParent for
// ordinary sandboxes and its sibling CgroupParent-idle for Idle ones.
func (m *Manager) cgroupParents() []string {
	return []string{m.cfg.CgroupParent, m.cfg.CgroupParent + idleSuffix}
}

// cgroupParent is the parent of a sandbox's cgroups (on the path of every
// cgroup read: the host reads each dyno's CPU time four times a second).
func (m *Manager) cgroupParent(idle bool) string {
	if idle {
		return m.cfg.CgroupParent + idleSuffix
	}
	return m.cfg.CgroupParent
}

// makeCgroupParents creates both parents in every hierarchy and puts the
// idle one in the kernel's idle scheduling class (cpu.idle, Linux 5.15+).
// A sibling rather than a child of CgroupParent: the kernel picks a group
// at each level of the hierarchy before it picks a task, so an idle group
// under an ordinary parent still competes, through that parent, with
// every process beside it.
func (m *Manager) makeCgroupParents() error {
	for _, parent := range m.cgroupParents() {
		for _, dir := range cgroupfs.Dirs(parent) {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("cgroup parent: %w", err)
			}
		}
	}
	idle := filepath.Join(cgroupfs.Root, "cpu", m.cgroupParent(true), "cpu.idle")
	if err := os.WriteFile(idle, []byte("1"), 0); err != nil {
		m.log.Warn("no idle cgroup class; idle sandboxes yield only to their siblings", "err", err)
	}
	return nil
}

// cgroupDir is the sandbox's cgroup in one hierarchy.
func (s *Sandbox) cgroupDir(hierarchy string) string {
	return filepath.Join(cgroupfs.Root, hierarchy, s.m.cgroupParent(s.spec.Idle), s.spec.ID)
}
