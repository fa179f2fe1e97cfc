package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
)

// TestCluster runs the roles as separate processes: three servers forming
// one NATS JetStream cluster, a host agent and a router. It checks the
// control plane survives losing a server, the data plane survives losing
// every server, a host agent restart keeps its dynos, and deploys under
// load fail no request.
func TestCluster(t *testing.T) {
	c := gridtest.StartCluster(t, 3, "10.221.0.0/16")
	g := c.Grid(0)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	repo := g.Repo("testdata/go-hello")
	step("push and scale", func(t *testing.T) {
		g.MustCLI("apps:create", "hello")
		if out, err := g.Push("hello", repo); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		g.MustCLI("ps:scale", "web=2", "-a", "hello")
		waitDynosServe(t, g, "hello", 2)
	})

	step("deploys under load fail no request", func(t *testing.T) {
		stop, failures := hammer(g, "hello")
		g.MustCLI("config:set", "GREETING=one", "-a", "hello")
		g.WaitBody("hello", "/", `greeting="one"`, time.Minute)
		g.Commit(repo, "second deploy")
		if out, err := g.Push("hello", repo); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		g.MustCLI("config:set", "GREETING=two", "-a", "hello")
		g.WaitBody("hello", "/", `greeting="two"`, time.Minute)
		waitSettled(t, g, "hello", 2)
		g.MustCLI("rollback", "-a", "hello") // to GREETING=one
		g.WaitBody("hello", "/", `greeting="one"`, time.Minute)
		waitSettled(t, g, "hello", 2)
		n, failed, slowest := stop()
		t.Logf("%d requests during 4 deploys (config, push, config, rollback), %d failed, slowest %v", n, failed, slowest)
		if failed > 0 {
			t.Errorf("%d of %d requests failed during deploys: %v", failed, n, failures())
		}
	})

	step("API serves while one of three servers is down", func(t *testing.T) {
		stop, failures := apiHammer(c, 1, 2)
		time.Sleep(time.Second) // some load before the kill (a measurement window, not synchronisation)
		c.Kill(c.Servers[0])
		g2 := c.Grid(1)
		g2.MustCLI("config:set", "GREETING=three", "-a", "hello")
		g2.WaitBody("hello", "/", `greeting="three"`, time.Minute)
		n, failed, slowest := stop()
		t.Logf("%d API requests to the two live servers, %d failed, slowest %v", n, failed, slowest)
		if failed > 0 {
			t.Errorf("%d of %d API requests failed with one server down: %v", failed, n, failures())
		}
		c.Start(c.Servers[0])
		gridtest.WaitFor(t, time.Minute, "s1 back", func() error {
			if code, body := c.API(0, "GET", "/apps/hello", ""); code != 200 {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		})
	})

	step("host agent restart keeps dynos running", func(t *testing.T) {
		waitSettled(t, g, "hello", 2) // the last deploy's old dynos gone
		before := dynoStarts(t, g, "hello", 2, "three")
		c.Kill(c.Host)
		c.Start(c.Host)
		time.Sleep(3 * time.Second) // let the new agent settle; then nothing may have restarted
		after := dynoStarts(t, g, "hello", 2, "three")
		for dyno, started := range before {
			if after[dyno] != started {
				t.Errorf("%s restarted: started %s before, %s after", dyno, started, after[dyno])
			}
		}
	})

	step("routing survives every server down", func(t *testing.T) {
		stop, failures := hammer(g, "hello")
		for _, s := range c.Servers {
			c.Kill(s)
		}
		time.Sleep(5 * time.Second) // traffic flows through the outage window
		n, failed, slowest := stop()
		t.Logf("%d requests with every server down, %d failed, slowest %v", n, failed, slowest)
		if failed > 0 {
			t.Errorf("%d of %d requests failed with the control plane down: %v", failed, n, failures())
		}
		for _, s := range c.Servers {
			c.Start(s)
		}
		gridtest.WaitFor(t, 2*time.Minute, "control plane back", func() error {
			if code, body := c.API(1, "GET", "/apps/hello/dynos", ""); code != 200 {
				return fmt.Errorf("%d %s", code, body)
			}
			return nil
		})
		g.MustCLI("config:set", "GREETING=four", "-a", "hello")
		g.WaitBody("hello", "/", `greeting="four"`, time.Minute)
	})
}

// waitDynosServe waits until n distinct web dynos answer through the router.
func waitDynosServe(t *testing.T, g *gridtest.Grid, app string, n int) {
	t.Helper()
	dynoStarts(t, g, app, n, "")
}

// dynoStarts asks web dynos (through the router) when their processes
// started, until n distinct dynos answered in one round of requests. With
// greeting set, a round counts only if every answer came from a process
// with that GREETING and no name answered from two processes: a deploy's
// old dynos serve until the manager deletes them, and a start taken from
// one of those would change under the caller for reasons of its own.
func dynoStarts(t *testing.T, g *gridtest.Grid, app string, n int, greeting string) map[string]string {
	t.Helper()
	var seen map[string]string
	re := regexp.MustCompile(`^(web\.\d+) (\d+) greeting="(.*)"`)
	gridtest.WaitFor(t, time.Minute, fmt.Sprintf("%d web dynos answer", n), func() error {
		seen = map[string]string{}
		for i := 0; i < 8*n; i++ {
			_, body, _, err := g.Get(app, "/started")
			if err != nil {
				return err
			}
			m := re.FindStringSubmatch(strings.TrimSpace(body))
			if m == nil {
				return fmt.Errorf("/started answered %q", body)
			}
			if greeting == "" {
				seen[m[1]] = m[2]
				continue
			}
			if m[3] != greeting {
				return fmt.Errorf("%s still serves greeting %q", m[1], m[3])
			}
			if s, ok := seen[m[1]]; ok && s != m[2] {
				return fmt.Errorf("%s answers from two processes (started %s and %s)", m[1], s, m[2])
			}
			seen[m[1]] = m[2]
		}
		if len(seen) < n {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	return seen
}

// apiHammer sends GET /apps/hello to the given servers in turn until stop.
func apiHammer(c *gridtest.Cluster, servers ...int) (stop func() (n, failed int64, slowest time.Duration), failures func() []string) {
	var n, failed atomic.Int64
	var slow atomic.Int64
	var mu sync.Mutex
	var errs []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			start := time.Now()
			code, body := c.API(servers[i%len(servers)], "GET", "/apps/hello", "")
			if d := time.Since(start); int64(d) > slow.Load() {
				slow.Store(int64(d))
			}
			n.Add(1)
			if code != 200 {
				failed.Add(1)
				mu.Lock()
				if len(errs) < 10 {
					errs = append(errs, fmt.Sprintf("server %d: %d %.120s", servers[i%len(servers)], code, body))
				}
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() (int64, int64, time.Duration) {
			close(done)
			wg.Wait()
			return n.Load(), failed.Load(), time.Duration(slow.Load())
		},
		func() []string { mu.Lock(); defer mu.Unlock(); return errs }
}
