package sandbox

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// The kernel's preemption mode decides whether sizes hold at the moment a
// dyno wakes. Under preempt=full a task that wakes takes its core from an
// idle-class (eco) dyno at once. Under none or voluntary, a dyno inside a
// system call or a page fault keeps its core until that kernel code yields
// (cond_resched) or returns to user space: SCHED_IDLE and cpu.idle still
// bound an eco dyno's share of the core, but not the delay it causes the
// dyno that woke, which can be milliseconds. Under lazy the delay is at
// most one timer tick. The mode is chosen at boot (preempt= on kernels
// built with PREEMPT_DYNAMIC), so the manager can only report it.

// Preemption is the running kernel's preemption mode ("none",
// "voluntary", "full", "lazy", "rt", or "unknown") and where it was read.
type Preemption struct {
	Mode, Source string
}

// Isolating reports whether a waking dyno takes its core from an idle-class
// one within a timer tick, whatever the latter is doing in the kernel.
func (p Preemption) Isolating() bool {
	return p.Mode == "full" || p.Mode == "lazy" || p.Mode == "rt"
}

// KernelPreemption reads the running kernel's preemption mode: from
// debugfs where it can, else from the boot parameters, the version string
// and the kernel's build configuration.
func KernelPreemption() Preemption {
	debugfs, _ := os.ReadFile("/sys/kernel/debug/sched/preempt")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	version, _ := os.ReadFile("/proc/version")
	return parsePreemption(string(debugfs), string(cmdline), string(version), kernelConfig())
}

var (
	debugfsMode = regexp.MustCompile(`\((none|voluntary|full|lazy)\)`)
	bootMode    = regexp.MustCompile(`(?:^|\s)preempt=(none|voluntary|full|lazy)(?:\s|$)`)
	configMode  = regexp.MustCompile(`(?m)^CONFIG_PREEMPT(_NONE|_VOLUNTARY|_LAZY|_RT)?=y$`)
	versionWord = regexp.MustCompile(`\bPREEMPT(_RT|_DYNAMIC|_LAZY)?\b`)
)

// parsePreemption works out the mode from debugfs's sched/preempt (the
// mode in parentheses), /proc/cmdline, /proc/version and the build
// configuration, each of which may be empty.
func parsePreemption(debugfs, cmdline, version, config string) Preemption {
	if m := debugfsMode.FindStringSubmatch(debugfs); m != nil {
		return Preemption{m[1], "/sys/kernel/debug/sched/preempt"}
	}
	word := ""
	if m := versionWord.FindStringSubmatch(version); m != nil {
		word = m[0]
	}
	switch word {
	case "PREEMPT_RT":
		return Preemption{"rt", "the kernel's version string"}
	case "PREEMPT_DYNAMIC":
		// The boot parameter only counts on a kernel that can switch.
		if m := bootMode.FindStringSubmatch(cmdline); m != nil {
			return Preemption{m[1], "preempt= on the kernel command line"}
		}
	}
	if m := configMode.FindAllStringSubmatch(config, -1); len(m) > 0 {
		// One choice is set, but an RT build has CONFIG_PREEMPT=y too.
		suffix := m[0][1]
		for _, c := range m {
			if c[1] == "_RT" {
				suffix = c[1]
			}
		}
		modes := map[string]string{"_NONE": "none", "_VOLUNTARY": "voluntary", "": "full", "_LAZY": "lazy", "_RT": "rt"}
		source := "the kernel's build configuration"
		if word == "PREEMPT_DYNAMIC" {
			source = "the kernel's default: no preempt= at boot"
		}
		return Preemption{modes[suffix], source}
	}
	switch word {
	case "PREEMPT":
		return Preemption{"full", "the kernel's version string"}
	case "PREEMPT_LAZY":
		return Preemption{"lazy", "the kernel's version string"}
	}
	return Preemption{"unknown", ""}
}

// kernelConfig returns the CONFIG_PREEMPT lines of the running kernel's
// build configuration (/proc/config.gz, else /boot/config-<release>), or
// "" if neither can be read.
func kernelConfig() string {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			r = zr
		}
	}
	if r == nil {
		var uts unix.Utsname
		if err := unix.Uname(&uts); err != nil {
			return ""
		}
		f, err := os.Open("/boot/config-" + unix.ByteSliceToString(uts.Release[:]))
		if err != nil {
			return ""
		}
		defer f.Close()
		r = f
	}
	var b strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "CONFIG_PREEMPT") {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}
