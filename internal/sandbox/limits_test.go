package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/cgroupfs"
)

// cgroupFile reads a control file of the sandbox's cgroup in hierarchy h
// ("../cpu.idle" is its parent's).
func cgroupFile(t *testing.T, m *Manager, s *Sandbox, h, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.cgroupDir(h), file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCgroupLimitsApplied(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("limits", "sleep", "1000")
	sp.MemoryMB, sp.PidsMax, sp.CPUShares, sp.CPUMilli = 96, 40, 512, 1500
	s := start(t, m, sp)
	for _, c := range []struct{ h, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(96 << 20)},
		{"pids", "pids.max", "40"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.cfs_quota_us", "150000"},
	} {
		if got := cgroupFile(t, m, s, c.h, c.file); got != c.want {
			t.Errorf("%s = %s, want %s", c.file, got, c.want)
		}
	}
}

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("defaults", "sleep", "1000")
	s := start(t, m, sp)
	if got := cgroupFile(t, m, s, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(DefaultMemoryMB<<20) {
		t.Errorf("memory limit = %s", got)
	}
	if got := cgroupFile(t, m, s, "pids", "pids.max"); got != strconv.Itoa(DefaultPidsMax) {
		t.Errorf("pids.max = %s", got)
	}
	if got := cgroupFile(t, m, s, "cpu", "cpu.cfs_quota_us"); got != "-1" {
		t.Errorf("cpu.cfs_quota_us = %s, want -1 (no cap by default)", got)
	}
}

// TestCPUCapBoundsABusyLoop runs four busy processes under a cap of half
// a core and checks, from the cgroup's own accounting, that they got no
// more than that (plus 5%, one period's slack) over two seconds.
func TestCPUCapBoundsABusyLoop(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("cpuhog", "python3", "-c", `
import os
for _ in range(3):
    if os.fork() == 0:
        break
while True:
    pass`)
	sp.CPUMilli = 500
	s := start(t, m, sp)
	usage := func() (time.Duration, time.Time) {
		ns, err := strconv.ParseInt(cgroupFile(t, m, s, "cpuacct", "cpuacct.usage"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(ns), time.Now()
	}
	time.Sleep(300 * time.Millisecond) // past start-up, which runs before the loop
	u0, t0 := usage()
	time.Sleep(2 * time.Second)
	u1, t1 := usage()
	share := float64(u1-u0) / float64(t1.Sub(t0))
	t.Logf("busy loop used %.3f cores under a 0.5 cap", share)
	if share > 0.5*1.05 {
		t.Errorf("busy loop used %.3f cores, cap 0.5", share)
	}
	if share < 0.05 {
		t.Errorf("busy loop used %.3f cores: it did not run", share)
	}
}

func TestForkBombIsBounded(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	const limit = 32
	// The bomb forks until the kernel refuses, then holds its processes
	// while the host forks (I-5: a host-side loop of 100 true, 0 failures).
	sp, out, _ := spec("forkbomb", "python3", "-c", `
import os, sys, time
n = 0
try:
    while n < 10000:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    print("no limit hit", flush=True)
except OSError as e:
    print("fork failed after", n, e.errno, flush=True)
sys.stdin.read()`)
	sp.PidsMax = limit
	stdin, release := io.Pipe()
	sp.Stdin = stdin
	begin := time.Now()
	s := start(t, m, sp)
	eventually(t, 10*time.Second, "the fork bomb to hit its limit", func() bool { return strings.Contains(out.String(), "\n") })
	got := regexp.MustCompile(`fork failed after (\d+) 11`).FindStringSubmatch(out.String())
	if got == nil {
		t.Fatalf("want EAGAIN from fork, got %q", out.String())
	}
	if n, _ := strconv.Atoi(got[1]); n >= limit {
		t.Errorf("forked %d children under a limit of %d", n, limit)
	}
	t.Logf("the bomb hit its limit of %d in %v", limit, time.Since(begin))
	failed := 0
	for range 100 {
		if err := exec.Command("true").Run(); err != nil {
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("the host failed %d of 100 forks beside the bomb", failed)
	}
	release.Close()
	if code := waitExit(t, s, 30*time.Second); code != 0 {
		t.Errorf("bomb exited %d", code)
	}
}

func TestMemoryLimitKillsInsideOnly(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("oom", "python3", "-c", `b = bytearray(300 << 20); print("survived")`)
	sp.MemoryMB = 64
	s := start(t, m, sp)
	code := waitExit(t, s, 30*time.Second)
	if code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit %d, want 137 (OOM kill)", code)
	}
	if out := sp.Stdout.(*syncBuffer).String(); strings.Contains(out, "survived") {
		t.Error("allocation above the limit succeeded")
	}
	oom := cgroupFile(t, m, s, "memory", "memory.oom_control")
	if !regexp.MustCompile(`oom_kill [1-9]`).MatchString(oom) {
		t.Errorf("no OOM kill counted in the sandbox's cgroup:\n%s", oom)
	}
}

func TestCPUPinning(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	online, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	last := strconv.Itoa(online[len(online)-1])
	for _, c := range []struct{ cpus, want string }{
		{last, last},
		{"0-" + last, "0-" + last},
		{"", "0-" + last},
	} {
		t.Run("cpus="+c.cpus, func(t *testing.T) {
			sp, out, _ := spec("pinned", "sh", "-c", "grep Cpus_allowed_list /proc/self/status; echo ready; exec sleep 1000")
			sp.CPUs = c.cpus
			s := start(t, m, sp)
			out.waitFor(t, "ready", 10*time.Second)
			if want := "Cpus_allowed_list:\t" + c.want + "\n"; !strings.HasPrefix(out.String(), want) {
				t.Errorf("inside: %q, want %q", out.String(), want)
			}
			if got := cgroupFile(t, m, s, "cpuset", "cpuset.cpus"); got != c.want {
				t.Errorf("cpuset.cpus = %q, want %q", got, c.want)
			}
			if got := cgroupFile(t, m, s, "cpuset", "cpuset.mems"); got == "" {
				t.Error("cpuset.mems is empty")
			}
			if err := s.Destroy(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Filling /app or /tmp ends in ENOSPC inside the sandbox, at its limits:
// the host's disk takes only what the dyno was allowed, and the sparse
// layer image goes with the sandbox (and its loop device with it).
func TestDiskFillStopsAtTheLimit(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("diskfill", "sh", "-c", `
dd if=/dev/zero of=/app/fill bs=1M count=64 2>&1 | grep -o 'No space left on device' | head -1
echo app $(($(stat -c %s /app/fill) >> 20))
dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1 | grep -o 'No space left on device' | head -1
echo tmp $(($(stat -c %s /tmp/fill) >> 20))`)
	sp.AppDir = appDir(t)
	sp.DiskMB, sp.TmpMB, sp.MemoryMB = 32, 16, 256
	s := start(t, m, sp)
	if code := waitExit(t, s, 30*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, sp.Stderr.(*syncBuffer).String())
	}
	out := sp.Stdout.(*syncBuffer).String()
	for _, re := range []string{`No space left on device\napp (2[0-9]|3[0-2])\n`, `No space left on device\ntmp 1[0-6]\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("want %q in:\n%s", re, out)
		}
	}
	img := newLayout(m.cfg.StateDir, s.ID()).image()
	var st syscall.Stat_t
	if err := syscall.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512 >> 20; used > 40 {
		t.Errorf("layer image holds %d MB of disk for a 32 MB limit", used)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("layer image left after destroy: %v", err)
	}
}

// TestDiskRateIsBounded writes 32 MB to /app at a bound of 8 MB/s: the
// device's rules are in place, and the write takes at least 2.5 s of the
// 4 it should (the kernel lets a first burst through at once; unbounded,
// it takes a tenth of a second). Only a missing bound can fail it, not a
// slow machine.
func TestDiskRateIsBounded(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("diskrate", "sh", "-c", `
t0=$(date +%s%N)
dd if=/dev/zero of=/app/fill bs=1M count=32 conv=fsync 2>/dev/null
echo ms $(( ($(date +%s%N) - t0) / 1000000 ))`)
	sp.AppDir = appDir(t)
	sp.DiskMBps, sp.DiskIOPS = 8, 300
	s := start(t, m, sp)
	if code := waitExit(t, s, time.Minute); code != 0 {
		t.Fatalf("exit %d: %s", code, sp.Stderr.(*syncBuffer).String())
	}
	out := sp.Stdout.(*syncBuffer).String()
	var ms int
	if _, err := fmt.Sscanf(out, "ms %d", &ms); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if ms < 2500 {
		t.Errorf("32 MB written in %d ms at a bound of 8 MB/s", ms)
	}
	t.Logf("32 MB at 8 MB/s: %d ms", ms)
	for file, want := range map[string]string{
		"blkio.throttle.write_bps_device":  " 8388608",
		"blkio.throttle.read_bps_device":   " 8388608",
		"blkio.throttle.write_iops_device": " 300",
	} {
		b, err := os.ReadFile(filepath.Join(cgroupfs.Root, "blkio", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("%s has no device at%s:\n%s", file, want, b)
		}
	}
}

// Memory reports a sandbox's use and the kernel's OOM kills in it.
func TestMemoryReadings(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, out, _ := spec("memread", "python3", "-c", `
import sys, time
b = bytearray(80 << 20)
print("holding", flush=True)
time.sleep(30)`)
	sp.MemoryMB = 256
	s := start(t, m, sp)
	out.waitFor(t, "holding", 10*time.Second)
	mem, err := s.Memory()
	if err != nil {
		t.Fatal(err)
	}
	if mem.RSS < 80<<20 || mem.Used() < mem.RSS || mem.OOMKills != 0 {
		t.Errorf("memory %+v, want rss ≥ 80 MB and no OOM kill", mem)
	}
}

func TestCPUIdleAndLimit(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("cpuidle", "sleep", "1000")
	sp.CPUMilli, sp.CPUs = 500, "0"
	s := start(t, m, sp)
	if got := s.CPULimit(); got != 0.5 {
		t.Errorf("CPULimit %v, want 0.5 (the cap)", got)
	}
	for _, idle := range []bool{true, false} {
		if err := s.SetCPUIdle(idle); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "1", false: "0"}[idle]
		if got := cgroupFile(t, m, s, "cpu", "cpu.idle"); got != want {
			t.Errorf("cpu.idle %s, want %s", got, want)
		}
	}
	if used, err := s.CPUTime(); err != nil || used <= 0 {
		t.Errorf("CPUTime %v %v", used, err)
	}
	sp2, _, _ := spec("cpulimit", "sleep", "1000")
	sp2.CPUMilli, sp2.CPUs = 8000, "0"
	if got := start(t, m, sp2).CPULimit(); got != 1 {
		t.Errorf("CPULimit %v, want 1 (one core pinned)", got)
	}
}

// TestIdleScheduling: an Idle sandbox's processes, and their children,
// run at SCHED_IDLE and cannot leave it, under a parent cgroup of the
// idle class; others run at SCHED_OTHER under an ordinary parent.
func TestIdleScheduling(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	const probe = `
import os
print("policy", os.sched_getscheduler(0), flush=True)
if os.fork() == 0:
    print("child", os.sched_getscheduler(0), flush=True)
    os._exit(0)
os.wait()
try:
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    print("left", os.sched_getscheduler(0))
except PermissionError:
    print("stayed")
`
	for _, c := range []struct {
		idle          bool
		want, cpuIdle string
	}{
		{true, "policy 5\nchild 5\nstayed\n", "1"},
		{false, "policy 0\nchild 0\nleft 0\n", "0"},
	} {
		sp, out, _ := spec(fmt.Sprintf("sched%v", c.idle), "sh", "-c", `python3 -c "$PROBE" && exec sleep 1000`)
		sp.Env = append(sp.Env, "PROBE="+probe)
		sp.Idle = c.idle
		s := start(t, m, sp)
		eventually(t, 30*time.Second, "the probe's three lines", func() bool { return strings.Count(out.String(), "\n") >= 3 })
		if got := out.String(); got != c.want {
			t.Errorf("Idle=%v: output %q, want %q", c.idle, got, c.want)
		}
		if got := cgroupFile(t, m, s, "cpu", "../cpu.idle"); got != c.cpuIdle {
			t.Errorf("Idle=%v: the parent's cpu.idle %s, want %s", c.idle, got, c.cpuIdle)
		}
	}
}
