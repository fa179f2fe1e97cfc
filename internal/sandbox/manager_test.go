package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/mounts"
)

func TestCollectGarbageRemovesLeftovers(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, int(testSeq.Add(1)))
	crashed, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A run that dies without Destroy or Close leaves a live sandbox with
	// its cgroup, veth, netns mount and state.
	sp, out, _ := spec("leftover", "sh", "-c", "echo up; exec sleep 1000")
	sp.Network = true
	sp.AppDir = appDir(t)
	sp.Labels = map[string]string{"dyno": "web.1"}
	old, err := crashed.Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "up", 10*time.Second)
	t.Cleanup(func() { _ = old.Destroy() })

	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	want := []Leftover{{ID: "leftover", Labels: sp.Labels, Running: true, Pid: old.Pid(), Addr: old.Addr(), Started: old.Started()}}
	if diff := cmp.Diff(want, m.Leftovers(), cmpopts.EquateApproxTime(time.Millisecond), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("Leftovers (-want +got):\n%s", diff)
	}
	// New stops nothing; the leftover's ID is reserved.
	if _, err := m.Start(context.Background(), sp); !errors.Is(err, grid.ErrConflict) {
		t.Errorf("Start of a leftover's ID: %v, want ErrConflict", err)
	}
	if n, err := m.CollectGarbage(); n != 1 || err != nil {
		t.Fatalf("CollectGarbage = %d, %v", n, err)
	}
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover sandbox still runs")
	}
	assertNothingLeft(t, m)

	// The ID and address are free again.
	sp2, _, _ := spec("leftover", "true")
	sp2.Network = true
	s := start(t, m, sp2)
	if s.Addr() != old.Addr() {
		t.Errorf("new sandbox got %v, want the freed %v", s.Addr(), old.Addr())
	}
	waitExit(t, s, 10*time.Second)
}

func TestBadSpecsRejected(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := func(f func(*Spec)) Spec {
		sp, _, _ := spec("bad", "true")
		sp.Network = true
		f(&sp)
		return sp
	}
	cases := []struct {
		name string
		spec Spec
	}{
		{"empty args", ok(func(s *Spec) { s.Args = nil })},
		{"empty command", ok(func(s *Spec) { s.Args = []string{""} })},
		{"uid 0", ok(func(s *Spec) { s.UID = 0 })},
		{"negative gid", ok(func(s *Spec) { s.GID = -1 })},
		{"uppercase id", ok(func(s *Spec) { s.ID = "Web-1" })},
		{"slash in id", ok(func(s *Spec) { s.ID = "../x" })},
		{"empty id", ok(func(s *Spec) { s.ID = "" })},
		{"long id", ok(func(s *Spec) { s.ID = strings.Repeat("a", 65) })},
		{"relative mount target", ok(func(s *Spec) { s.Mounts = []Mount{{Source: "/usr", Target: "data"}} })},
		{"mount over proc", ok(func(s *Spec) { s.Mounts = []Mount{{Source: "/usr", Target: "/proc/x"}} })},
		{"mount over root", ok(func(s *Spec) { s.Mounts = []Mount{{Source: "/usr", Target: "/"}} })},
		{"missing mount source", ok(func(s *Spec) { s.Mounts = []Mount{{Source: "/nonexistent", Target: "/data"}} })},
		{"missing app dir", ok(func(s *Spec) { s.AppDir = "/nonexistent/slug" })},
		{"app dir is a file", ok(func(s *Spec) { s.AppDir = file })},
		{"relative app dir", ok(func(s *Spec) { s.AppDir = "slug" })},
		{"relative dir", ok(func(s *Spec) { s.Dir = "app" })},
		{"bad env", ok(func(s *Spec) { s.Env = []string{"NOEQUALS"} })},
		{"reserved env", ok(func(s *Spec) { s.Env = []string{"_LIBCONTAINER_INITPIPE=3"} })},
		{"negative memory", ok(func(s *Spec) { s.MemoryMB = -1 })},
		{"tiny memory", ok(func(s *Spec) { s.MemoryMB = 4 })},
		{"negative disk rate", ok(func(s *Spec) { s.DiskMBps = -1 })},
		{"huge disk rate", ok(func(s *Spec) { s.DiskIOPS = maxDiskIOPS + 1 })},
		{"bad hostname", ok(func(s *Spec) { s.Hostname = "a_b" })},
		{"cpus not a list", ok(func(s *Spec) { s.CPUs = "one" })},
		{"cpus backwards", ok(func(s *Spec) { s.CPUs = "1-0" })},
		{"cpus offline", ok(func(s *Spec) { s.CPUs = "4095" })},
		{"cpus empty item", ok(func(s *Spec) { s.CPUs = "0," })},
		{"too many labels", ok(func(s *Spec) {
			s.Labels = map[string]string{}
			for i := range maxLabels + 1 {
				s.Labels[fmt.Sprint(i)] = "x"
			}
		})},
		{"reach without network", ok(func(s *Spec) { s.Network, s.Reach = false, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:5432")} })},
		{"reach without port", ok(func(s *Spec) { s.Network, s.Reach = true, []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:0")} })},
		{"reach ipv6", ok(func(s *Spec) { s.Network, s.Reach = true, []netip.AddrPort{netip.MustParseAddrPort("[::1]:5432")} })},
		{"long label", ok(func(s *Spec) { s.Labels = map[string]string{"k": strings.Repeat("v", maxLabelBytes)} })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Start(context.Background(), c.spec)
			if !errors.Is(err, grid.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	assertNothingLeft(t, m)
}

func TestFailedStartLeavesNothing(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	// Valid, but libcontainer cannot make the mount point inside the
	// read-only /usr: the start fails after network, root and cgroups
	// exist.
	sp, _, _ := spec("fails", "true")
	sp.Network = true
	sp.AppDir = appDir(t)
	sp.Mounts = []Mount{{Source: t.TempDir(), Target: "/usr/grid-test-mount"}}
	_, err := m.Start(context.Background(), sp)
	if err == nil {
		t.Fatal("Start succeeded")
	}
	t.Logf("start error: %v", err)
	assertNothingLeft(t, m)
}

func TestConcurrentStarts(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	const n = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		addrs = map[string]bool{}
		boxes []*Sandbox
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sp, _, _ := spec(fmt.Sprintf("conc-%d", i), "sleep", "1000")
			sp.Network = true
			s, err := m.Start(context.Background(), sp)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			addrs[s.Addr().String()] = true
			boxes = append(boxes, s)
		}()
	}
	wg.Wait()
	if len(addrs) != n {
		t.Errorf("%d distinct addresses for %d sandboxes", len(addrs), n)
	}
	for _, s := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Destroy(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	assertNothingLeft(t, m)
}

func TestFirewallTableReplacedAndRemoved(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, int(testSeq.Add(1)))
	for range 2 { // a second New replaces the table instead of failing
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !tableExists(t, m.fw) {
			t.Fatal("firewall table missing after New")
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if tableExists(t, m.fw) {
			t.Fatal("firewall table left after Close")
		}
	}
}

// TestDetachAndAdopt leaves a sandbox running, as a caller that restarts
// in the same process does, and takes it back.
func TestDetachAndAdopt(t *testing.T) {
	t.Parallel()
	m, err := New(testConfig(t, int(testSeq.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	sp, out, _ := spec("detached", "sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.01; done")
	sp.Network = true
	sp.Labels = map[string]string{"dyno": "worker.1"}
	s, err := m.Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "tick 1\n", 10*time.Second)
	s.Detach()
	los := m.Leftovers()
	if len(los) != 1 || los[0].ID != "detached" || !los[0].Running || los[0].Pid != s.Pid() || los[0].Addr != s.Addr() || los[0].Labels["dyno"] != "worker.1" {
		t.Fatalf("leftovers after Detach: %+v", los)
	}
	// Close leaves the firewall and the run dir to the leftover.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !tableExists(t, m.fw) {
		t.Fatal("Close removed the firewall of a running leftover")
	}
	again := newSyncBuffer()
	s2, err := m.Adopt("detached", again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2 != s {
		t.Error("Adopt of a sandbox detached in this process returned another Sandbox")
	}
	again.waitFor(t, "tick", 10*time.Second)
	code, killed := s.Stop(5 * time.Second)
	if killed || code != 128+int(syscall.SIGTERM) {
		t.Errorf("Stop = %d, killed %v", code, killed)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, m.fw) {
		t.Error("firewall table left after the last Close")
	}
}

// TestCloseIgnoresForeignCgroups: a sandbox's cgroups under the
// Manager's parent with nothing of it in the state dir (another
// Manager's, on the same parent, whose processes outlived SIGKILL) are
// a leftover to collect, but nothing a later Manager adopts: Close takes
// the firewall and the run tmpfs down all the same.
func TestCloseIgnoresForeignCgroups(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, int(testSeq.Add(1)))
	foreign := filepath.Join(cfg.CgroupParent, "foreign")
	for _, dir := range cgroupfs.Dirs(foreign) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		removeSandboxCgroups(cfg.CgroupParent, "foreign")
		for _, dir := range cgroupfs.Dirs(cfg.CgroupParent) {
			os.Remove(dir)
		}
	})
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if los := m.Leftovers(); len(los) != 1 || los[0].ID != "foreign" {
		t.Fatalf("leftovers: %+v", los)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, m.fw) {
		t.Error("firewall table left after Close")
	}
	if ms, err := mounts.Below(cfg.StateDir); err != nil || len(ms) > 0 {
		t.Errorf("mounted below the state dir after Close: %v %v", ms, err)
	}
}

// TestOutputWaitsWhileDropped: while the writer says it drops what it
// gets, the copier reads once per dropPause, and a command that writes
// as fast as it can for a second waits on its pipe instead, never for as
// long as a second in one write (reliability.md I-9).
func TestOutputWaitsWhileDropped(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	w := &droppingWriter{}
	sp, _, errOut := spec("dropped", "python3", "-c", `
import os, time
chunk, end, worst = b"y\n" * 32768, time.monotonic() + 1, 0
while time.monotonic() < end:
    t = time.monotonic()
    os.write(1, chunk)
    worst = max(worst, time.monotonic() - t)
os.write(2, b"%f" % worst)`)
	sp.Stdout = w
	t0 := time.Now()
	if code := waitExit(t, start(t, m, sp), 30*time.Second); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	took := time.Since(t0)
	w.mu.Lock()
	defer w.mu.Unlock()
	if most := int(took/dropPause) + 2; w.writes > most || w.writes == 0 {
		t.Errorf("%d writes (%d bytes) in %v: want 1 to %d, one per %v", w.writes, w.bytes, took, most, dropPause)
	}
	t.Logf("%d writes (%d bytes) in %v; the command's longest write %s s", w.writes, w.bytes, took, errOut)
	if worst, err := strconv.ParseFloat(errOut.String(), 64); err != nil || worst >= 1 {
		t.Errorf("the command's longest write: %q s, want under 1 s", errOut)
	}
}

// droppingWriter counts its writes and always says it drops them.
type droppingWriter struct {
	mu            sync.Mutex
	writes, bytes int
}

func (w *droppingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	w.bytes += len(p)
	return len(p), nil
}

func (w *droppingWriter) Dropping() bool { return true }

// TestOutputLossless checks that output is complete and in order while
// it is read, however fast it comes: the relay waits for the reader.
func TestOutputLossless(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	const n = 300000 // ~2 MB
	sp, _, _ := spec("lossless", "sh", "-c", fmt.Sprintf("seq 1 %d; seq 1 1000 >&2; printf 'no newline'", n))
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	want.WriteString("no newline")
	code, out, errOut := run(t, m, sp)
	if code != 0 || out != want.String() || !strings.HasSuffix(errOut, "\n999\n1000\n") {
		t.Errorf("exit %d, %d bytes of stdout (want %d), stderr ends %q", code, len(out), want.Len(), errOut[max(0, len(errOut)-20):])
	}
}
