package sandbox

import (
	"fmt"
	"os"

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

// mounts lists the sandbox's mounts in the order libcontainer makes them
// (parents first). All are made inside the sandbox's own mount namespace:
// none of them appears on the host.
func mounts(l layout, spec Spec, initBin string) []*configs.Mount {
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
