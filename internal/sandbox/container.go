package sandbox

import (
	"os"
	"sync"

	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	// nofile is RLIMIT_NOFILE inside (Heroku's dyno limit).
	nofile = 10000
	// oomScoreAdj makes dyno processes the host OOM killer's first choice,
	// ahead of grid itself.
	oomScoreAdj = 500
)

// containerConfig turns a normalized Spec into libcontainer's config.
// nsPath is the sandbox's network namespace, empty without Network.
func containerConfig(l layout, spec Spec, cgroupParent, nsPath, initBin string) *configs.Config {
	oom := oomScoreAdj
	cfg := &configs.Config{
		Rootfs:          l.rootfs(),
		Readonlyfs:      true,
		NoNewPrivileges: true,
		Capabilities:    &configs.Capabilities{}, // every set empty: all capabilities dropped
		Namespaces:      namespaces(nsPath),
		Cgroups:         cgroupConfig(spec, cgroupParent),
		Devices:         deviceNodes(),
		Hostname:        spec.Hostname,
		Mounts:          containerMounts(l, spec, initBin),
		MaskPaths:       maskedPaths,
		ReadonlyPaths:   readonlyPaths,
		Networks:        []*configs.Network{{Type: "loopback", Address: "127.0.0.1/0", Gateway: "localhost"}},
		Rlimits: []configs.Rlimit{
			{Type: unix.RLIMIT_NOFILE, Soft: nofile, Hard: nofile},
			{Type: unix.RLIMIT_CORE, Soft: 0, Hard: 0},
			// No raising of priority, and no way out of SCHED_IDLE.
			{Type: unix.RLIMIT_NICE, Soft: 0, Hard: 0},
		},
		OomScoreAdj: &oom,
		Seccomp:     seccompProfile(),
	}
	if spec.Idle {
		cfg.Scheduler = &configs.Scheduler{Policy: specs.SchedIdle}
	}
	return cfg
}

func namespaces(nsPath string) configs.Namespaces {
	return configs.Namespaces{
		{Type: configs.NEWNS},
		{Type: configs.NEWUTS},
		{Type: configs.NEWIPC},
		{Type: configs.NEWPID},
		{Type: configs.NEWNET, Path: nsPath}, // empty path: a fresh netns with only loopback
		{Type: configs.NEWCGROUP},
	}
}

func cgroupConfig(spec Spec, parent string) *cgroups.Cgroup {
	pids := int64(spec.PidsMax)
	mem := int64(spec.MemoryMB) << 20
	return &cgroups.Cgroup{
		// Absolute: a relative Parent would nest sandboxes under grid's own
		// cgroup, which in some hierarchies is a supervisor's (with its
		// limits), and New could not find leftovers there.
		Path: "/" + parent + "/" + spec.ID,
		Resources: &cgroups.Resources{
			Memory:     mem,
			MemorySwap: swapLimit(mem),
			PidsLimit:  &pids,
			CpuShares:  uint64(spec.CPUShares),
			CpuPeriod:  cfsPeriod,
			CpuQuota:   cpuQuota(spec.CPUMilli),
			// Empty means the parent's cores; cpuset.mems always comes
			// from the parent (libcontainer copies it).
			CpusetCpus: spec.CPUs,
			Devices:    deviceRules(),
		},
	}
}

// cfsPeriod is the CFS bandwidth period in µs: the kernel's default. A
// capped sandbox that used its quota early waits at most this long.
const cfsPeriod = 100_000

// cpuQuota is the CFS quota per period for a cap in millicores; zero (no
// cap) is left unset.
func cpuQuota(milli int) int64 {
	return int64(milli) * cfsPeriod / 1000
}

// swapLimit is memory+swap: equal to the memory limit (no swap), or zero
// (unset) where the kernel does not account swap.
func swapLimit(mem int64) int64 {
	if !swapAccounting() {
		return 0
	}
	return mem
}

// swapAccounting reports whether the memory controller has memsw files.
var swapAccounting = sync.OnceValue(func() bool {
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
})

// deviceNodes are the device files created in /dev: runc's defaults
// (null, zero, full, random, urandom, tty).
func deviceNodes() []*devices.Device {
	var out []*devices.Device
	for _, d := range specconv.AllowedDevices {
		if d.Path != "" {
			out = append(out, d)
		}
	}
	return out
}

// deviceRules is the device cgroup: deny everything, then allow the
// default nodes and ptys. Unlike runc's defaults there is no blanket mknod
// permission.
func deviceRules() []*devices.Rule {
	rules := []*devices.Rule{{Type: devices.WildcardDevice, Major: devices.Wildcard, Minor: devices.Wildcard, Permissions: "rwm", Allow: false}}
	for _, d := range specconv.AllowedDevices {
		if d.Permissions == "m" {
			continue
		}
		r := d.Rule
		rules = append(rules, &r)
	}
	return rules
}
