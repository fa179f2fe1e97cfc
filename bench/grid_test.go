package bench

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/schema"
)

// BenchmarkScale times `grid ps:scale web=N` (slug cached on every host)
// until all N dynos answer through the router, for N = 1, 10 and 50 on
// three netns hosts, repeated, and prints p50 and p99 with the ratio to
// the 150 ms target for N = 1. Each run starts from web=0.
func BenchmarkScale(b *testing.B) {
	g := gridtest.Start(b, "--hosts", "3", "--stop-grace", "2s")
	g.MustCLI("apps:create", "hello")
	if out, err := g.Push("hello", g.Repo("../e2e/testdata/go-hello")); err != nil {
		b.Fatalf("push: %v\n%s", err, out)
	}
	g.WaitBody("hello", "/", "hello from web.1", time.Minute)
	fmt.Println("ps:scale web=N until all N serve through the router (3 netns hosts, slug cached):")
	for _, c := range []struct{ n, runs int }{{1, 20}, {10, 10}, {50, 5}} {
		var ds []time.Duration
		for range c.runs {
			scaleTo(b, g, 0)
			ds = append(ds, scaleTo(b, g, c.n))
		}
		p50, p99 := percentile(ds, 50), percentile(ds, 99)
		line := fmt.Sprintf("  N=%-3d %2d runs  p50 %7.1f ms  p99 %7.1f ms", c.n, c.runs, ms(p50), ms(p99))
		if c.n == 1 {
			line += fmt.Sprintf("  ratio p50/target(150 ms) %.2f", ms(p50)/150)
		}
		fmt.Println(line)
		b.ReportMetric(ms(p50), fmt.Sprintf("ms-p50-N%d", c.n))
	}
}

// scaleTo scales web to n and returns how long until n distinct dynos
// answered through the router (for 0: until none is listed).
func scaleTo(b *testing.B, g *gridtest.Grid, n int) time.Duration {
	b.Helper()
	start := time.Now()
	g.MustCLI("ps:scale", fmt.Sprintf("web=%d", n), "-a", "hello")
	if n == 0 {
		gridtest.WaitFor(b, time.Minute, "no web dynos", func() error {
			if ds := dynos(b, g); len(ds) > 0 {
				return fmt.Errorf("%d dynos", len(ds))
			}
			return nil
		})
		return time.Since(start)
	}
	return time.Since(start) + waitServing(b, g, n)
}

var dynoName = regexp.MustCompile(`hello from (web\.\d+)`)

// waitServing returns once n distinct web dynos answered through the
// router, and how long that took. It asks up to
// 4n times per round, so a round costs a few milliseconds.
func waitServing(b *testing.B, g *gridtest.Grid, n int) time.Duration {
	b.Helper()
	start := time.Now()
	seen := map[string]bool{}
	gridtest.WaitFor(b, 2*time.Minute, fmt.Sprintf("%d dynos serving", n), func() error {
		for range 4 * n {
			code, body, _, err := g.Get("hello", "/")
			if err != nil || code != 200 {
				continue
			}
			if m := dynoName.FindStringSubmatch(body); m != nil {
				seen[m[1]] = true
			}
			if len(seen) >= n {
				return nil
			}
		}
		return fmt.Errorf("%d of %d answered", len(seen), n)
	})
	return time.Since(start)
}

func dynos(b *testing.B, g *gridtest.Grid) []schema.Dyno {
	b.Helper()
	var ds []schema.Dyno
	if err := json.Unmarshal([]byte(g.MustCLI("ps", "--json", "-a", "hello")), &ds); err != nil {
		b.Fatal(err)
	}
	return ds
}

// BenchmarkHostLoss cuts a host's power (hosts:fail) while it runs two of
// six web dynos, and times until six dynos are up on the other hosts and
// answer through the router; three rounds, a new host added after each.
// The target is 10 s; a host is declared lost after 6 s without a
// heartbeat (sent every 2 s), which is most of it by design.
func BenchmarkHostLoss(b *testing.B) {
	g := gridtest.Start(b, "--hosts", "3", "--stop-grace", "2s")
	g.MustCLI("apps:create", "hello")
	if out, err := g.Push("hello", g.Repo("../e2e/testdata/go-hello")); err != nil {
		b.Fatalf("push: %v\n%s", err, out)
	}
	g.MustCLI("ps:scale", "web=6", "-a", "hello")
	var ds []time.Duration
	for round := range 3 {
		waitServing(b, g, 6)
		byHost := map[string]int{}
		for _, d := range dynos(b, g) {
			if d.State == "up" && d.Host != nil {
				byHost[d.Host.ID]++
			}
		}
		var victim string
		for id, n := range byHost {
			if victim == "" || n > byHost[victim] || n == byHost[victim] && id < victim {
				victim = id
			}
		}
		start := time.Now()
		g.MustCLI("hosts:fail", victim)
		gridtest.WaitFor(b, 2*time.Minute, "six dynos up elsewhere", func() error {
			up := 0
			for _, d := range dynos(b, g) {
				if d.State == "up" && d.Host != nil && d.Host.ID != victim {
					up++
				}
			}
			if up < 6 {
				return fmt.Errorf("%d up", up)
			}
			return nil
		})
		waitServing(b, g, 6)
		d := time.Since(start)
		ds = append(ds, d)
		fmt.Printf("  round %d: %s had %d dynos; all 6 serving elsewhere after %.2f s\n", round+1, victim, byHost[victim], d.Seconds())
		g.MustCLI("hosts:add")
	}
	p50 := percentile(ds, 50)
	fmt.Printf("host loss → its dynos serving elsewhere: p50 %.2f s, max %.2f s; ratio p50/target(10 s) %.2f\n",
		p50.Seconds(), slices.Max(ds).Seconds(), p50.Seconds()/10)
	b.ReportMetric(p50.Seconds(), "s-p50")
}

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
