package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPUTime is the CPU time the sandbox's processes have used so far, from
// its cpuacct cgroup (v1).
func (s *Sandbox) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(s.cgroupDir("cpuacct"), "cpuacct.usage"))
	if err != nil {
		return 0, fmt.Errorf("sandbox %q: cpu time: %w", s.spec.ID, err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sandbox %q: cpu time: %w", s.spec.ID, err)
	}
	return time.Duration(ns), nil
}

// CPULimit is the most CPU the sandbox can use, in cores: its cap
// (CPUMilli) or the cores it may run on, whichever is less.
func (s *Sandbox) CPULimit() float64 {
	cores := 0
	if cpus, err := parseCPUList(s.spec.CPUs); err == nil && s.spec.CPUs != "" {
		cores = len(cpus)
	} else if online, err := onlineCPUs(); err == nil {
		cores = len(online)
	}
	limit := float64(max(cores, 1))
	if s.spec.CPUMilli > 0 {
		limit = min(limit, float64(s.spec.CPUMilli)/1000)
	}
	return limit
}

// SetCPUIdle puts the sandbox's processes, as a group, in the kernel's
// idle scheduling class (cgroup cpu.idle), or takes them out of it. An
// idle group still gets whatever CPU nobody else wants, up to its cap,
// but any other process that wakes up takes the core from it at once
// instead of waiting out a time slice: a CPU-bound dyno so marked no
// longer adds milliseconds to its neighbours' response times.
func (s *Sandbox) SetCPUIdle(idle bool) error {
	v := "0"
	if idle {
		v = "1"
	}
	p := filepath.Join(s.cgroupDir("cpu"), "cpu.idle")
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		return fmt.Errorf("sandbox %q: cpu.idle: %w", s.spec.ID, err)
	}
	return nil
}
