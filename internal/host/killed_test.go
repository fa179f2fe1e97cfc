package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// agentProcessEnv makes the test binary an agent process (JSON
// agentProcess): a host agent of its own, as `grid host` runs one, until
// it is killed.
const agentProcessEnv = "GRID_HOST_TEST_AGENT"

type agentProcess struct {
	NATS         string
	StateDir     string
	Subnet       string
	CgroupParent string
	SlugDir      string
}

func (p agentProcess) sandboxes() sandbox.Config {
	return sandbox.Config{StateDir: p.StateDir, Subnet: netip.MustParsePrefix(p.Subnet), CgroupParent: p.CgroupParent}
}

func runAgentProcess(js string) int {
	var p agentProcess
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	role := store.Role{Kind: store.RoleHost, ID: hostID}
	st, err := store.Open(ctx, store.Config{URL: p.NATS, Role: role, Password: role.Password(storetest.Secret)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lg, err := logs.Open(ctx, st)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sb, err := sandbox.New(p.sandboxes())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a, err := host.New(host.Config{ID: hostID, Store: st, Logs: lg, Sandboxes: sb, Slugs: &slug.Cache{Dir: p.SlugDir}, MemoryMB: 8192})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_ = a.Run(ctx) // until killed
	return 3
}

// An agent killed with SIGKILL (a crash, the OOM killer) leaves its dynos
// running; the next agent adopts them as they are.
func TestAgentKilled(t *testing.T) {
	h := newHarness(t, nil)
	p := agentProcess{
		NATS: h.srv.ClientURL(), StateDir: t.TempDir(), Subnet: "10.237.4.0/22",
		CgroupParent: "gridtest-host-killed", SlugDir: t.TempDir(),
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), agentProcessEnv+"="+string(js))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	as := []grid.Assignment{h.assign(t, "web.1", webCmd, nil), h.assign(t, "worker.1", tickCmd, nil)}
	before := map[string]grid.Dyno{}
	for _, a := range as {
		before[a.DynoID] = h.waitDyno(t, a.DynoID, a.Name+" up", 30*time.Second, up)
	}
	h.waitLines(t, 5*time.Second, "app[worker.1]: tick")

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	changes := h.recordChanges(t)
	get(t, before[as[0].DynoID].Addr) // no agent, still serving
	ticks := count(h.lines(t), "app[worker.1]: tick")

	sb, err := sandbox.New(p.sandboxes())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Error(err)
		}
	})
	left, starts := map[string]sandbox.Leftover{}, map[string]uint64{}
	for _, lo := range sb.Leftovers() {
		left[lo.Labels["dyno"]] = lo
		starts[lo.Labels["dyno"]] = procStartTime(t, lo.Pid)
	}
	if len(left) != len(as) {
		t.Fatalf("leftovers: %+v", left)
	}
	begin := time.Now()
	h.cfg.Sandboxes, h.cfg.Slugs = sb, &slug.Cache{Dir: p.SlugDir}
	h.start(t)
	eventually(t, 30*time.Second, "leftovers adopted", func() bool { return len(sb.Leftovers()) == 0 })
	t.Logf("new agent adopted %d dynos in %v", len(left), time.Since(begin))
	eventually(t, 10*time.Second, "worker output after the restart", func() bool {
		return count(h.lines(t), "app[worker.1]: tick") > ticks+3
	})
	h.untouched(t, as, left, starts, before, changes())
}
