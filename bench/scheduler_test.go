package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/scheduler"
)

// BenchmarkPlace100kOn1000Hosts times the pure scheduler placing 100,000
// dynos of a mixed population of apps on 1,000 empty simulated hosts
// (64 GB, 32 cores each; about 94% of their memory ends up used), in one
// Place call. The budget is one second.
func BenchmarkPlace100kOn1000Hosts(b *testing.B) {
	hosts, want := schedulerWorkload(1000, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	var plan scheduler.Plan
	for b.Loop() {
		plan = scheduler.Place(hosts, want)
	}
	b.StopTimer()
	if n := len(plan.Unplaced()); n > 0 {
		b.Fatalf("%d dynos unplaced: %s", n, plan.Unplaced()[0].Reason)
	}
	per := b.Elapsed() / time.Duration(b.N)
	rate := float64(len(want)) / per.Seconds()
	b.ReportMetric(rate, "dynos/s")
	fmt.Printf("scheduler: %d dynos on %d hosts in %v (%.0f dynos/s); ratio to the 1 s budget %.3f\n",
		len(want), len(hosts), per.Round(time.Millisecond), rate, per.Seconds()/1)
}

// schedulerWorkload makes n hosts and about dynos requests: apps of 1 to
// 30 web dynos and 0 to 4 workers (one in 499 has 1,500 web dynos), four in five
// standard-1x (512 MB) and the rest standard-2x (1 GB, 2 cores). It is
// deterministic, so runs compare.
func schedulerWorkload(n, dynos int) ([]scheduler.HostState, []scheduler.Request) {
	hosts := make([]scheduler.HostState, n)
	for i := range hosts {
		hosts[i] = scheduler.HostState{ID: fmt.Sprintf("host-%04d", i), MemoryMB: 65536, Cores: 32}
	}
	want := make([]scheduler.Request, 0, dynos)
	for app := 0; len(want) < dynos; app++ {
		name := fmt.Sprintf("app-%05d", app)
		mem, cores := 512, 1
		if app%5 == 4 {
			mem, cores = 1024, 2
		}
		web := 1 + app*7919%30
		if app%499 == 0 {
			web = 1500 // a few big apps with more dynos than hosts
		}
		for _, t := range []struct {
			typ string
			q   int
		}{{"web", web}, {"worker", app * 31 % 5}} {
			typ := t.typ
			for i := 1; i <= t.q && len(want) < dynos; i++ {
				want = append(want, scheduler.Request{Name: fmt.Sprintf("%s.%d", typ, i), App: name, Type: typ, MemoryMB: mem, Cores: cores})
			}
		}
	}
	return hosts, want
}
