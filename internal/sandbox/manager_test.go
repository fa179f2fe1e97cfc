package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

func TestNewRemovesLeftovers(t *testing.T) {
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
		{"bad hostname", ok(func(s *Spec) { s.Hostname = "a_b" })},
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
