package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/mounts"
)

func TestMain(m *testing.M) {
	MaybeInit()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "sandbox tests need root (they start real sandboxes)")
		os.Exit(1)
	}
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelper(cfg)) // a process of TestAdoptAfterKill: never returns unless it fails
	}
	os.Exit(m.Run())
}

// testSeq numbers test Managers so that each gets its own subnet
// (10.238.<n>.0/24), cgroup parent and veth prefix, and parallel tests
// never see each other's sandboxes.
var testSeq atomic.Int32

// testSubnetBase keeps test addresses apart from the default subnet that
// other packages' tests (or a running grid) may use.
const testSubnetBase = "10.238.%d.0/24"

func newManager(t *testing.T) *Manager {
	t.Helper()
	return newManagerWith(t, testConfig(t, int(testSeq.Add(1))))
}

// newManagerWith starts a Manager with cfg that is closed when the test
// ends.
func newManagerWith(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	return m
}

func testConfig(t *testing.T, n int) Config {
	return Config{
		StateDir:     t.TempDir(),
		Subnet:       netip.MustParsePrefix(fmt.Sprintf(testSubnetBase, n)),
		CgroupParent: fmt.Sprintf("gridtest-sandbox-%d", n),
		Logger:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// testUID is the uid sandboxes of these tests run as.
const testUID = 10123

// spec returns a Spec for id running args with captured output.
func spec(id string, args ...string) (Spec, *syncBuffer, *syncBuffer) {
	out, errOut := newSyncBuffer(), newSyncBuffer()
	return Spec{
		ID:     id,
		Args:   args,
		Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/app"},
		UID:    testUID,
		Stdout: out,
		Stderr: errOut,
	}, out, errOut
}

// start starts spec and destroys the sandbox when the test ends.
func start(t *testing.T, m *Manager, sp Spec) *Sandbox {
	t.Helper()
	s, err := m.Start(context.Background(), sp)
	if err != nil {
		t.Fatalf("start %s: %v", sp.ID, err)
	}
	t.Cleanup(func() {
		if err := s.Destroy(); err != nil {
			t.Errorf("destroy %s: %v", sp.ID, err)
		}
	})
	return s
}

// run starts spec, waits for it to exit and returns its exit code and
// output.
func run(t *testing.T, m *Manager, sp Spec) (int, string, string) {
	t.Helper()
	out, errOut := sp.Stdout.(*syncBuffer), sp.Stderr.(*syncBuffer)
	s := start(t, m, sp)
	code := waitExit(t, s, 30*time.Second)
	return code, out.String(), errOut.String()
}

func waitExit(t *testing.T, s *Sandbox, limit time.Duration) int {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(limit):
		t.Fatalf("sandbox %s still running after %v", s.ID(), limit)
	}
	code, err := s.Wait()
	if err != nil {
		t.Fatalf("wait %s: %v", s.ID(), err)
	}
	return code
}

// syncBuffer is a goroutine-safe buffer whose readers can wait for
// content.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer contains s.
func (b *syncBuffer) waitFor(t *testing.T, s string, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for {
		b.mu.Lock()
		has, changed := strings.Contains(b.buf.String(), s), b.changed
		b.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("output never contained %q; got %q", s, b.String())
		}
	}
}

// eventually polls cond until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(wait)
	}
}

// assertNothingLeft checks that m holds no sandbox and that none left a
// trace on the host: state, cgroups, links, mounts, addresses.
func assertNothingLeft(t *testing.T, m *Manager) {
	t.Helper()
	m.mu.Lock()
	live, left := len(m.live), len(m.leftovers)+len(m.orphans)
	m.mu.Unlock()
	if live != 0 || left != 0 {
		t.Errorf("%d sandboxes still registered, %d leftovers", live, left)
	}
	if n := m.pool.inUse(); n != 0 {
		t.Errorf("%d address slots still allocated", n)
	}
	if entries, _ := os.ReadDir(m.cfg.StateDir); len(entries) != 1 || entries[0].Name() != runDirName {
		t.Errorf("state dir holds more than %s: %v", runDirName, entries)
	}
	if entries, _ := os.ReadDir(m.runDir()); len(entries) != 0 {
		t.Errorf("run dir not empty: %v", entries)
	}
	for _, parent := range m.cgroupParents() {
		for _, dir := range cgroupfs.Dirs(parent) {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.IsDir() {
					t.Errorf("cgroup %s/%s left", dir, e.Name())
				}
			}
		}
	}
	if links := linksWithPrefix(t, m.linkPrefix); len(links) != 0 {
		t.Errorf("links left: %v", links)
	}
	if points, _ := mounts.Below(m.cfg.StateDir); len(points) != 1 || points[0] != m.runDir() {
		t.Errorf("mounts other than the run dir tmpfs: %v", points)
	}
}

func linksWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	links, err := listLinks()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}
