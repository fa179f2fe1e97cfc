package router

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func endpoints(n int) []*endpoint {
	eps := make([]*endpoint, n)
	for i := range eps {
		eps[i] = makeEndpoint(fmt.Sprintf("web.%d", i+1), "x")
	}
	return eps
}

func seeded() func(int) int {
	r := rand.New(rand.NewPCG(1, 2))
	return r.IntN
}

// testBalancer draws with a seeded source at a fixed instant (move it
// with *now), with no concurrency limit unless set.
func testBalancer(now *time.Time) *balancer {
	return &balancer{now: func() time.Time { return *now }, rnd: seeded(), slowStart: 20 * time.Second}
}

// pickOne is pick for tests that expect no waiting.
func (b *balancer) pickOne(eps, tried []*endpoint) *endpoint {
	ep, _ := b.pick(eps, tried)
	return ep
}

// With equal load, choices spread evenly.
func TestPickSpreadsEvenly(t *testing.T) {
	t.Parallel()
	eps := endpoints(4)
	now := time.Now()
	b := testBalancer(&now)
	counts := map[*endpoint]int{}
	const n = 40000
	for i := 0; i < n; i++ {
		counts[b.pickOne(eps, nil)]++
	}
	for _, e := range eps {
		if share := float64(counts[e]) / n; share < 0.23 || share > 0.27 {
			t.Errorf("%s got %.3f of picks, want about 0.25", e.dyno, share)
		}
	}
}

// Under load, P2C sends requests to the less busy dynos, and never to the
// busiest (it loses every pairing).
func TestPickPrefersFewerInFlight(t *testing.T) {
	t.Parallel()
	eps := endpoints(4)
	for i, e := range eps {
		e.inflight.Store(int64(i * 10)) // web.1 idle … web.4 busiest
	}
	now := time.Now()
	b := testBalancer(&now)
	counts := make([]int, len(eps))
	const n = 12000
	for i := 0; i < n; i++ {
		e := b.pickOne(eps, nil)
		for j := range eps {
			if eps[j] == e {
				counts[j]++
			}
		}
	}
	// Exact P2C shares for 4 dynos by load rank: 3/6, 2/6, 1/6, 0.
	want := []float64{0.5, 1.0 / 3, 1.0 / 6, 0}
	for i, c := range counts {
		if share := float64(c) / n; share < want[i]-0.02 || share > want[i]+0.02 {
			t.Errorf("%s (inflight %d): share %.3f, want %.3f", eps[i].dyno, eps[i].inflight.Load(), share, want[i])
		}
	}
}

// A dynamic check: requests that stay in flight still end up spread
// evenly, because each pick sees the others' load.
func TestPickBalancesLiveLoad(t *testing.T) {
	t.Parallel()
	eps := endpoints(5)
	now := time.Now()
	b := testBalancer(&now)
	for i := 0; i < 100; i++ {
		b.pickOne(eps, nil).inflight.Add(1)
	}
	for _, e := range eps {
		if got := e.inflight.Load(); got < 19 || got > 21 {
			t.Errorf("%s holds %d of 100 concurrent requests", e.dyno, got)
		}
	}
}

func TestPickSkipsTriedAndQuarantined(t *testing.T) {
	t.Parallel()
	eps := endpoints(3)
	now := time.Now()
	b := testBalancer(&now)
	eps[0].quarantine(now, 5*time.Second)
	for i := 0; i < 100; i++ {
		if e := b.pickOne(eps, []*endpoint{eps[1]}); e != eps[2] {
			t.Fatalf("picked %s, want web.3 (web.1 quarantined, web.2 tried)", e.dyno)
		}
	}
	// Only quarantined dynos left untried: they are tried after all.
	if e := b.pickOne(eps, []*endpoint{eps[1], eps[2]}); e != eps[0] {
		t.Fatalf("picked %v, want the quarantined web.1", e)
	}
	// Quarantine ends.
	now = now.Add(6 * time.Second)
	if e := b.pickOne(eps, []*endpoint{eps[1], eps[2]}); e != eps[0] || e.quarantined(now.UnixNano()) {
		t.Fatal("quarantine did not end")
	}
	if e, full := b.pick(eps, eps); e != nil || full {
		t.Fatalf("all tried, picked %v (full %v)", e, full)
	}
	if e, _ := b.pick(nil, nil); e != nil {
		t.Fatal("picked from nothing")
	}
}

// Ejected (hung) dynos get nothing while another dyno can be tried, and
// are tried when nothing else is left.
func TestPickAvoidsEjected(t *testing.T) {
	t.Parallel()
	eps := endpoints(3)
	now := time.Now()
	b := testBalancer(&now)
	eps[1].hang.ejected.Store(true)
	for i := 0; i < 200; i++ {
		if e := b.pickOne(eps, nil); e == eps[1] {
			t.Fatal("picked the ejected dyno")
		}
	}
	// Quarantined dynos go before ejected ones.
	eps[0].quarantine(now, time.Minute)
	if e := b.pickOne(eps, []*endpoint{eps[2]}); e != eps[0] {
		t.Fatalf("picked %s, want the quarantined web.1 over the ejected web.2", e.dyno)
	}
	if e := b.pickOne(eps, []*endpoint{eps[0], eps[2]}); e != eps[1] {
		t.Fatalf("picked %v, want the ejected web.2 as the last resort", e)
	}
}

// At the concurrency limit a dyno is no candidate; when every untried
// dyno is at it, pick says so (the request waits in the backlog) instead
// of settling for an ejected dyno or giving up.
func TestPickRespectsLimit(t *testing.T) {
	t.Parallel()
	eps := endpoints(3)
	now := time.Now()
	b := testBalancer(&now)
	b.limit = 2
	eps[0].inflight.Store(2)
	eps[1].inflight.Store(2)
	for i := 0; i < 50; i++ {
		if e := b.pickOne(eps, nil); e != eps[2] {
			t.Fatalf("picked %s, want web.3, the only one below the limit", e.dyno)
		}
	}
	eps[2].inflight.Store(2)
	eps[2].tunnels.Store(1) // a WebSocket does not count against the limit
	if e := b.pickOne(eps, nil); e != eps[2] {
		t.Fatalf("picked %v, want web.3 (one of its two is a tunnel)", e)
	}
	eps[2].tunnels.Store(0)
	if e, full := b.pick(eps, nil); e != nil || !full {
		t.Fatalf("all at the limit: picked %v, full %v; want nil, true", e, full)
	}
	eps[1].hang.ejected.Store(true)
	eps[1].inflight.Store(0)
	if e, full := b.pick(eps, nil); e != nil || !full {
		t.Fatalf("picked %v, full %v: an idle ejected dyno must not beat waiting for a healthy one", e, full)
	}
	if !eps[0].acquire(3) || eps[0].acquire(3) {
		t.Error("acquire does not stop at the limit")
	}
}

// Between two equally loaded dynos, the one that answers faster wins;
// under load the slow one still gets requests once the fast one's queue
// outweighs its latency.
func TestPickPrefersLowerLatency(t *testing.T) {
	t.Parallel()
	eps := endpoints(2)
	now := time.Now()
	b := testBalancer(&now)
	for i := 0; i < 5; i++ {
		eps[0].lat.observe(10*time.Millisecond, now)
		eps[1].lat.observe(50*time.Millisecond, now)
	}
	for i := 0; i < 100; i++ {
		if e := b.pickOne(eps, nil); e != eps[0] {
			t.Fatalf("picked %s, want the faster web.1", e.dyno)
		}
	}
	// (4+1)×10 ms = 50 ms ties the idle slow dyno; (5+1)×10 ms loses.
	eps[0].inflight.Store(5)
	if e := b.pickOne(eps, nil); e != eps[1] {
		t.Fatalf("picked %s, want web.2 once web.1 is busy enough", e.dyno)
	}
	// A latency unheard of for latencyMemory is forgotten: load alone.
	eps[0].inflight.Store(0)
	eps[1].inflight.Store(0)
	now = now.Add(latencyMemory + time.Second)
	seen := map[*endpoint]bool{}
	for i := 0; i < 100; i++ {
		seen[b.pickOne(eps, nil)] = true
	}
	if !seen[eps[1]] {
		t.Error("the once-slow dyno is still avoided after its latency expired")
	}
}

func TestLatencyEWMA(t *testing.T) {
	t.Parallel()
	var l latency
	now := time.Now()
	if l.get(now) != 0 {
		t.Fatal("latency known before a sample")
	}
	l.observe(100*time.Millisecond, now)
	if got := time.Duration(l.get(now)); got != 100*time.Millisecond {
		t.Fatalf("first sample: %v", got)
	}
	l.observe(200*time.Millisecond, now)
	if got := time.Duration(l.get(now)); got != 130*time.Millisecond {
		t.Fatalf("after 100 ms and 200 ms: %v, want 130 ms (alpha 0.3)", got)
	}
	// After latencyMemory without samples the old average no longer
	// counts, and the next sample starts afresh.
	later := now.Add(latencyMemory + time.Millisecond)
	if l.get(later) != 0 {
		t.Error("stale latency still known")
	}
	l.observe(20*time.Millisecond, later)
	if got := time.Duration(l.get(later)); got != 20*time.Millisecond {
		t.Errorf("after a gap: %v, want 20 ms", got)
	}
}

// A dyno new to the router starts with a tenth of a share and ramps up
// linearly over SlowStart.
func TestPickSlowStart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	share := func(age time.Duration) float64 {
		eps := endpoints(5)
		for _, e := range eps[:4] {
			e.added = start.Add(-time.Hour)
		}
		eps[4].added = start
		now := start.Add(age)
		b := testBalancer(&now)
		n, hits := 20000, 0
		for i := 0; i < n; i++ {
			if b.pickOne(eps, nil) == eps[4] {
				hits++
			}
		}
		return float64(hits) / float64(n)
	}
	// Idle dynos: the drawn pair's first member wins ties, so a dyno's
	// share is its chance to be drawn first: its weight over the sum.
	cases := []struct {
		age  time.Duration
		want float64
	}{
		{0, 10.0 / 410},
		{10 * time.Second, 50.0 / 450},
		{20 * time.Second, 0.2},
		{time.Hour, 0.2},
	}
	for _, tc := range cases {
		if got := share(tc.age); got < tc.want*0.85 || got > tc.want*1.15 {
			t.Errorf("after %v: share %.3f, want about %.3f", tc.age, got, tc.want)
		}
	}
}
