package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// helperEnv makes the test binary a helper process that stands for a run
// of grid that gets killed: it starts the sandboxes described in the
// variable (helperConfig, JSON) on its own Manager, reports "ready" on
// stdout, and then waits to be killed.
const helperEnv = "GRID_SANDBOX_TEST_HELPER"

type helperConfig struct {
	StateDir     string
	Subnet       string
	CgroupParent string
	Services     []Service
	Specs        []helperSpec
}

type helperSpec struct {
	ID      string
	Args    []string
	Network bool
	Reach   []netip.AddrPort
	Labels  map[string]string
	Mounts  []Mount
	Idle    bool
}

func runHelper(js string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(js), &hc); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	m, err := New(Config{StateDir: hc.StateDir, Subnet: netip.MustParsePrefix(hc.Subnet), CgroupParent: hc.CgroupParent, Services: hc.Services})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper manager:", err)
		return 2
	}
	for _, hs := range hc.Specs {
		sp := Spec{
			ID: hs.ID, Args: hs.Args, Network: hs.Network, Reach: hs.Reach, Labels: hs.Labels, Mounts: hs.Mounts, Idle: hs.Idle,
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, UID: testUID, Dir: "/usr/share",
			Stdout: io.Discard, Stderr: io.Discard,
		}
		if _, err := m.Start(context.Background(), sp); err != nil {
			fmt.Fprintln(os.Stderr, "helper start:", err)
			return 2
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed (or the test gives up)
	return 3
}

// startHelper runs a helper process with hc and waits until its sandboxes
// run.
func startHelper(t *testing.T, hc helperConfig) *exec.Cmd {
	t.Helper()
	js, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(js))
	cmd.Stderr = testWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	return cmd
}

// startSpecs starts the sandboxes of TestAdoptAfterKill in a helper
// process. shared is mounted writable at /shared in the spam and dies
// sandboxes. Spam and unwanted are Idle: their cgroups are under the
// other parent.
func startSpecs(t *testing.T, cfg Config, shared string) *exec.Cmd {
	t.Helper()
	rw := []Mount{{Source: shared, Target: "/shared", Writable: true}}
	return startHelper(t, helperConfig{
		StateDir: cfg.StateDir, Subnet: cfg.Subnet.String(), CgroupParent: cfg.CgroupParent,
		Specs: []helperSpec{
			{ID: "web", Args: []string{"python3", "-m", "http.server", strconv.Itoa(webPort)}, Network: true,
				Labels: map[string]string{"dyno": "web.1"}, Mounts: []Mount{localResolver(t)}},
			// Output as fast as it goes, progress in /shared/n every 100 lines.
			{ID: "spam", Labels: map[string]string{"dyno": "spam.1"}, Mounts: rw, Idle: true, Args: []string{"sh", "-c", `pad=$(printf '%0900d' 0); i=0
while :; do echo "line $i $pad"; i=$((i+1)); [ $((i % 100)) -ne 0 ] || { echo $i > /shared/n.tmp; mv /shared/n.tmp /shared/n; }; done`}},
			{ID: "dies", Mounts: rw, Args: []string{"sh", "-c", "echo last words; until [ -e /shared/die ]; do sleep 0.01; done; echo bye; exit 5"}},
			{ID: "unwanted", Args: []string{"sleep", "1000"}, Network: true, Idle: true},
		},
	})
}

// alive reports whether process pid exists and has not exited.
func alive(pid int) bool {
	_, state, err := procStart(pid)
	return err == nil && state != "Z" && state != "X"
}

// spamProgress reads how many lines the spam sandbox has written.
func spamProgress(shared string) func() int {
	return func() int {
		b, _ := os.ReadFile(filepath.Join(shared, "n"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
}

// writesWithoutReader checks that the spam sandbox goes on writing, with
// nobody reading, far more than the FIFO and pipe hold (~0.3 MB): its
// output is dropped, it does not block.
func writesWithoutReader(t *testing.T, progress func() int) {
	t.Helper()
	begin, from := time.Now(), progress()
	eventually(t, 20*time.Second, "spam output to go on without a reader", func() bool { return progress() > from+2000 })
	n := progress() - from
	t.Logf("without a reader the spam sandbox wrote %d more lines (%.1f MB) in %v", n, float64(n*910)/(1<<20), time.Since(begin))
}

// outputAfterAdoption checks that the spam sandbox's output reaches out
// after its adoption at line at, in whole lines: lines dropped while
// nobody read go whole; only the first may be the tail of one the killed
// process had read the head of.
func outputAfterAdoption(t *testing.T, out *syncBuffer, at int) {
	t.Helper()
	eventually(t, 20*time.Second, "spam output after adoption", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if m := spamLine.FindStringSubmatch(l); m != nil {
				if n, _ := strconv.Atoi(m[1]); n > at {
					return true
				}
			}
		}
		return false
	})
	lines := strings.Split(out.String(), "\n")
	for i, l := range lines[1 : len(lines)-1] {
		if !spamLine.MatchString(l) {
			t.Errorf("line %d after adoption is cut: %.60q...", i+1, l)
		}
	}
}

// spamLine is one line of the spam sandbox: "line <n> <900 zeros>".
var spamLine = regexp.MustCompile(`^line ([0-9]+) 0{900}$`)

// TestAdoptAfterKill kills the process that started some sandboxes with
// SIGKILL, as a crash or an upgrade gone wrong would, and adopts them in
// a new Manager: they run on with the same process and address, their
// output flows to the new writers, and what is not adopted is collected.
func TestAdoptAfterKill(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, int(testSeq.Add(1)))
	shared := t.TempDir() // the spam sandbox's progress file, the dies sandbox's trigger
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	killer := startSpecs(t, cfg, shared)
	if err := killer.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = killer.Wait()
	progress := spamProgress(shared)
	writesWithoutReader(t, progress)
	// The dies sandbox exits while nobody watches.
	if err := os.WriteFile(filepath.Join(shared, "die"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	los := map[string]Leftover{}
	for _, lo := range m.Leftovers() {
		los[lo.ID] = lo
	}
	if len(los) != 4 || !los["web"].Running || !los["spam"].Running || !los["unwanted"].Running ||
		los["web"].Labels["dyno"] != "web.1" || !los["web"].Addr.IsValid() || los["web"].Started.IsZero() {
		t.Fatalf("leftovers %+v", los)
	}
	if _, err := m.Adopt("nonesuch", nil, nil); !errors.Is(err, grid.ErrNotFound) {
		t.Errorf("Adopt of no leftover: %v", err)
	}

	adoptBegin := time.Now()
	web, err := m.Adopt("web", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adopt took %v", time.Since(adoptBegin))
	t.Cleanup(func() { _ = web.Destroy() })
	if web.Pid() != los["web"].Pid || web.Addr() != los["web"].Addr || web.ID() != "web" {
		t.Errorf("adopted web: pid %d addr %v, want %d %v", web.Pid(), web.Addr(), los["web"].Pid, los["web"].Addr)
	}
	waitListening(t, web, webPort)
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://%s/", netip.AddrPortFrom(web.Addr(), webPort)))
	if err != nil {
		t.Fatalf("adopted web sandbox unreachable: %v", err)
	}
	res.Body.Close()

	spamOut := newSyncBuffer()
	spam, err := m.Adopt("spam", spamOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = spam.Destroy() })
	outputAfterAdoption(t, spamOut, progress())
	// Its cgroups are found under the idle parent the record names.
	if used, err := spam.CPUTime(); err != nil || used <= 0 {
		t.Errorf("adopted idle sandbox's CPU time: %v, %v", used, err)
	}
	if _, err := spam.Memory(); err != nil {
		t.Errorf("adopted idle sandbox's memory: %v", err)
	}

	// The exited one is adopted as exited, with the status its init recorded.
	eventually(t, 10*time.Second, "dies to exit", func() bool { return !alive(los["dies"].Pid) })
	dies, err := m.Adopt("dies", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, dies, time.Second); code != 5 {
		t.Errorf("dies exited %d, want 5", code)
	}
	if err := dies.Destroy(); err != nil {
		t.Error(err)
	}

	// Addresses of adopted sandboxes and of leftovers stay taken.
	fresh, _, _ := spec("fresh", "true")
	fresh.Network = true
	if s := start(t, m, fresh); s.Addr() == web.Addr() || s.Addr() == los["unwanted"].Addr {
		t.Errorf("a new sandbox got %v, an address in use", s.Addr())
	} else if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}

	// Not adopted: collected.
	unwanted := los["unwanted"]
	if n, err := m.CollectGarbage(); n != 1 || err != nil {
		t.Fatalf("CollectGarbage = %d, %v", n, err)
	}
	if alive(unwanted.Pid) {
		t.Error("unwanted sandbox still runs")
	}

	// Adopted sandboxes stop as others do; the status comes from the init.
	code, killed := web.Stop(10 * time.Second)
	if killed || code != 128+int(syscall.SIGTERM) {
		t.Errorf("Stop of adopted web = %d, killed %v; want 143", code, killed)
	}
	if err := spam.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, spam, 10*time.Second); code != 137 {
		t.Errorf("killed spam exited %d, want 137", code)
	}
	for _, s := range []*Sandbox{web, spam} {
		if err := s.Destroy(); err != nil {
			t.Error(err)
		}
	}
	assertNothingLeft(t, m)
}
