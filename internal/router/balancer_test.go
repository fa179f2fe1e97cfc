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
		eps[i] = &endpoint{dyno: fmt.Sprintf("web.%d", i+1), addr: "x"}
	}
	return eps
}

func seeded() func(int) int {
	r := rand.New(rand.NewPCG(1, 2))
	return r.IntN
}

// With equal load, choices spread evenly.
func TestPickSpreadsEvenly(t *testing.T) {
	t.Parallel()
	eps := endpoints(4)
	rnd, now := seeded(), time.Now()
	counts := map[*endpoint]int{}
	const n = 40000
	for i := 0; i < n; i++ {
		counts[pick(eps, nil, now, rnd)]++
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
	rnd, now := seeded(), time.Now()
	counts := make([]int, len(eps))
	const n = 12000
	for i := 0; i < n; i++ {
		e := pick(eps, nil, now, rnd)
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
	rnd, now := seeded(), time.Now()
	for i := 0; i < 100; i++ {
		pick(eps, nil, now, rnd).inflight.Add(1)
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
	rnd, now := seeded(), time.Now()
	eps[0].quarantine(now, 5*time.Second)
	for i := 0; i < 100; i++ {
		if e := pick(eps, []*endpoint{eps[1]}, now, rnd); e != eps[2] {
			t.Fatalf("picked %s, want web.3 (web.1 quarantined, web.2 tried)", e.dyno)
		}
	}
	// Only quarantined dynos left untried: they are tried after all.
	if e := pick(eps, []*endpoint{eps[1], eps[2]}, now, rnd); e != eps[0] {
		t.Fatalf("picked %v, want the quarantined web.1", e)
	}
	// Quarantine ends.
	if e := pick(eps, []*endpoint{eps[1], eps[2]}, now.Add(6*time.Second), rnd); e != eps[0] || e.quarantined(now.Add(6*time.Second).UnixNano()) {
		t.Fatal("quarantine did not end")
	}
	if e := pick(eps, eps, now, rnd); e != nil {
		t.Fatalf("all tried, picked %s", e.dyno)
	}
	if e := pick(nil, nil, now, rnd); e != nil {
		t.Fatal("picked from nothing")
	}
}
