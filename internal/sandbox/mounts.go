package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

const (
	// hardened is set on every mount tenants can write or that holds no
	// programs.
	hardened = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	// devShmMB caps /dev/shm (tmpfs pages count against the memory limit
	// too).
	devShmMB = 64
)

// maskedPaths are hidden from the sandbox (runc's and Docker's defaults).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// readonlyPaths are read-only inside the sandbox.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// containerMounts lists the sandbox's mounts in the order libcontainer makes them
// (parents first). All are made inside the sandbox's own mount namespace:
// none of them appears on the host.
func containerMounts(l layout, spec Spec, initBin string) []*configs.Mount {
	ms := []*configs.Mount{
		{Device: "proc", Source: "proc", Destination: "/proc", Flags: hardened},
		{Device: "tmpfs", Source: "tmpfs", Destination: "/dev", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		{Device: "devpts", Source: "devpts", Destination: "/dev/pts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Device: "tmpfs", Source: "shm", Destination: "/dev/shm", Flags: hardened, Data: fmt.Sprintf("mode=1777,size=%dm", devShmMB)},
		{Device: "mqueue", Source: "mqueue", Destination: "/dev/mqueue", Flags: hardened},
		{Device: "sysfs", Source: "sysfs", Destination: "/sys", Flags: hardened | unix.MS_RDONLY},
		readOnlyBind("/usr", "/usr", unix.MS_NOSUID|unix.MS_NODEV),
		{Device: "tmpfs", Source: "tmpfs", Destination: "/tmp", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: fmt.Sprintf("mode=1777,size=%dm", spec.TmpMB)},
		readOnlyBind(initBin, initTarget, unix.MS_NOSUID|unix.MS_NODEV),
	}
	for _, p := range hostEtcBinds {
		if _, err := os.Stat(p); err == nil {
			ms = append(ms, readOnlyBind(p, p, hardened))
		}
	}
	if spec.AppDir != "" {
		ms = append(ms, appOverlay(l, spec))
	}
	for _, m := range spec.Mounts {
		ms = append(ms, extraBind(m))
	}
	return ms
}

// readOnlyBind binds src at dst read-only, submounts included.
func readOnlyBind(src, dst string, flags int) *configs.Mount {
	return &configs.Mount{
		Device: "bind", Source: src, Destination: dst,
		Flags:   unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | flags,
		RecAttr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY},
	}
}

// appOverlay is /app: the slug tree as the read-only lower layer and a
// per-sandbox upper layer. "volatile" skips syncs: the upper layer is
// thrown away with the sandbox anyway.
func appOverlay(l layout, spec Spec) *configs.Mount {
	return &configs.Mount{
		Device: "overlay", Source: "overlay", Destination: "/app",
		Flags: unix.MS_NOSUID | unix.MS_NODEV,
		Data:  fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,volatile", spec.AppDir, l.upper(), l.work()),
	}
}

func extraBind(m Mount) *configs.Mount {
	if !m.Writable {
		return readOnlyBind(m.Source, m.Target, unix.MS_NOSUID|unix.MS_NODEV)
	}
	return &configs.Mount{
		Device: "bind", Source: m.Source, Destination: m.Target,
		Flags: unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID | unix.MS_NODEV,
	}
}

// Where a mount lands and what it binds must be the platform's choice,
// never the tenant's. The tenant writes the slug (AppDir, the /app
// overlay's lower layer) and whatever a writable mount holds, so a
// symlink there on a mount target's path would choose where the
// platform's mount lands (the CVE-2021-30465 and CVE-2025-31133 class:
// over /etc, /tmp, /dev/null or the init, or out of the root).
// libcontainer already resolves every target inside the root (openat2
// RESOLVE_IN_ROOT) and refuses targets in /proc, so even a symlink
// swapped in after these checks cannot take a mount out of the root;
// the checks keep mounts where the Spec put them and refuse a hostile
// slug with an error that says why.

// hostSurfaces are host paths no mount source may resolve to or below:
// the host's kernel interfaces.
var hostSurfaces = []string{"/proc", "/sys", "/dev"}

// resolveSource returns src with its symlinks resolved, so that the path
// checked is the path libcontainer binds. A source that resolves to the
// host's root or a kernel surface is refused: a symlink anywhere on the
// operator's path (in a directory a build wrote, say) must not hand a
// sandbox the host's / or /proc. Only who can write the host directories
// on the path could change it again before libcontainer opens it.
func resolveSource(id, src string) (string, error) {
	if !filepath.IsAbs(src) {
		return "", invalid(id, "mount source %q must be absolute", src)
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", invalid(id, "mount source %q: %v", src, err)
	}
	if real == "/" || slices.ContainsFunc(hostSurfaces, func(s string) bool { return within(real, s) }) {
		return "", invalid(id, "mount source %q resolves to %s, which no sandbox may get", src, real)
	}
	return real, nil
}

// checkTargetPath refuses mount i of ms (cleaned, sources resolved) if
// its target passes through a symlink in the tenant's files: the slug
// for a target under /app (the overlay's upper layer is empty at start),
// or an earlier mount's source for a target below that mount.
func checkTargetPath(id, appDir string, ms []Mount, i int) error {
	dir, at := backingDir(appDir, ms, i)
	if dir == "" {
		return nil // in the root or /tmp, which are the sandbox's own
	}
	rel := strings.TrimPrefix(ms[i].Target, at+"/")
	link, err := symlinkOnPath(dir, rel)
	if err != nil {
		return invalid(id, "mount target %q: %v", ms[i].Target, err)
	}
	if link != "" {
		return invalid(id, "mount target %q: %s is a symlink in the tenant's files (%s), and a target may not pass through one; choose another target",
			ms[i].Target, path.Join(at, link), dir)
	}
	return nil
}

// backingDir returns the host directory whose files the sandbox sees at
// the deepest mount point above mount i that is in place when i is
// mounted (mounts are made in order, after /app), and that point.
func backingDir(appDir string, ms []Mount, i int) (dir, at string) {
	target := ms[i].Target
	if appDir != "" && within(target, "/app") {
		dir, at = appDir, "/app"
	}
	for _, m := range ms[:i] {
		if within(target, m.Target) && target != m.Target && len(m.Target) > len(at) {
			dir, at = m.Source, m.Target
		}
	}
	return dir, at
}

// symlinkOnPath returns the first of rel's leading paths (a, a/b, ...)
// that is a symlink in dir, or "" if none is. It stops at the first that
// does not exist: libcontainer makes the rest as plain directories.
func symlinkOnPath(dir, rel string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	p := ""
	for name := range strings.SplitSeq(rel, "/") {
		p = path.Join(p, name)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return p, nil
		}
	}
	return "", nil
}

// within reports whether p is dir or below it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
