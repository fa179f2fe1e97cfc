package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// cgroupRoot holds one directory per cgroup hierarchy (cgroup v1
// controllers, name=systemd, and the cgroup2 "unified" mount in hybrid
// mode).
const cgroupRoot = "/sys/fs/cgroup"

// killTimeout bounds how long cleanup waits for killed processes to leave
// their cgroup.
const killTimeout = 10 * time.Second

// removeLeftovers undoes what an earlier run of a Manager with the same
// StateDir, CgroupParent and Subnet left behind when it was killed before
// Destroy and Close: processes and cgroups under the parent, netns bind
// mounts and sandbox directories under StateDir, and host-side veths.
func (m *Manager) removeLeftovers() error {
	var errs []error
	n, err := removeCgroupChildren(m.cfg.CgroupParent)
	errs = append(errs, err)
	errs = append(errs, unmountUnder(m.cfg.StateDir))
	d, err := removeSandboxDirs(m.cfg.StateDir)
	errs = append(errs, err)
	v, err := removeLinks(m.linkPrefix)
	errs = append(errs, err)
	if n+d+v > 0 {
		m.log.Info("removed sandbox leftovers", "cgroups", n, "dirs", d, "links", v)
	}
	return errors.Join(errs...)
}

// cgroupDirs returns <hierarchy>/<rel> for every mounted hierarchy.
func cgroupDirs(rel string) []string {
	entries, _ := os.ReadDir(cgroupRoot)
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(cgroupRoot, e.Name(), rel))
		}
	}
	return dirs
}

// removeCgroupChildren kills every process in the cgroups under parent and
// removes those cgroups; parent itself stays. It returns how many
// cgroups it removed.
func removeCgroupChildren(parent string) (int, error) {
	removed := 0
	var errs []error
	for _, dir := range cgroupDirs(parent) {
		children, err := os.ReadDir(dir)
		if err != nil {
			continue // hierarchy without our parent
		}
		for _, c := range children {
			if !c.IsDir() {
				continue
			}
			if err := removeCgroup(filepath.Join(dir, c.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// removeCgroup kills what runs in the cgroup at path (and below), waits
// for it to leave and removes the directories, deepest first.
func removeCgroup(path string) error {
	children, _ := os.ReadDir(path)
	for _, c := range children {
		if c.IsDir() {
			if err := removeCgroup(filepath.Join(path, c.Name())); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(killTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		killCgroupProcs(path)
		err := unix.Rmdir(path)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", path, err)
		}
		time.Sleep(wait)
	}
}

// killCgroupProcs SIGKILLs every process listed in the cgroup.
func killCgroupProcs(path string) {
	for _, pid := range cgroupPids(path) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

func cgroupPids(path string) []int {
	b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder detaches every mount point below dir (netns bind mounts of
// sandboxes a killed run left), deepest first.
func unmountUnder(dir string) error {
	points, err := mountPointsUnder(dir)
	if err != nil {
		return err
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// readMountinfo returns the mount table of the calling thread's mount
// namespace. Not /proc/self: that is the main thread's, and libcontainer
// (like newNetns) may leave the main thread wedged in a namespace it
// entered on a locked goroutine.
func readMountinfo() ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return os.ReadFile("/proc/thread-self/mountinfo")
}

// mountPointsUnder lists mount points strictly below dir.
func mountPointsUnder(dir string) ([]string, error) {
	b, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Clean(dir) + "/"
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if p := unescapeMountPath(fields[4]); strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space...).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeSandboxDirs removes the per-sandbox directories in stateDir (names
// that are valid sandbox IDs); anything else there is left alone.
func removeSandboxDirs(stateDir string) (int, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !idPattern.MatchString(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(stateDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// removeLinks deletes host links whose names start with prefix.
func removeLinks(prefix string) (int, error) {
	links, err := listLinks()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, l := range links {
		if !strings.HasPrefix(l.Attrs().Name, prefix) {
			continue
		}
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete link %s: %w", l.Attrs().Name, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// listLinks lists the host's links, retrying dumps that other link
// changes (such as concurrent sandbox starts) interrupted.
func listLinks() ([]netlink.Link, error) {
	for range 10 {
		links, err := netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list links: %w", err)
			}
			return links, nil
		}
	}
	return nil, fmt.Errorf("list links: %w", netlink.ErrDumpInterrupted)
}
