package router

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// repace paces only what holds more than an even share of the router's
// requests, only while the router lags, and lets go once it keeps up.
func TestRepace(t *testing.T) {
	t.Parallel()
	const window = 100 * time.Millisecond
	flood := func(pace rate.Limit) appLoad { return appLoad{requests: 1000, load: 500, pace: pace} }
	light := appLoad{requests: 20, load: 1}
	cases := []struct {
		name  string
		loads []appLoad
		lag   time.Duration
		want  []rate.Limit
	}{
		{"lagging: the flood is cut to 0.7 of its demand", []appLoad{flood(0), light}, 5 * time.Millisecond, []rate.Limit{7000, 0}},
		{"lagging again: cut from its pace", []appLoad{flood(2000), light}, 5 * time.Millisecond, []rate.Limit{1400, 0}},
		{"never below the floor", []appLoad{flood(60), light}, 5 * time.Millisecond, []rate.Limit{minPace, 0}},
		{"alone: never paced", []appLoad{flood(0)}, 5 * time.Millisecond, []rate.Limit{0}},
		{"few requests held: never paced", []appLoad{{requests: 1000, load: minPacedLoad - 1}, light}, 5 * time.Millisecond, []rate.Limit{0, 0}},
		{"an even share: not paced", []appLoad{{requests: 500, load: 50}, {requests: 500, load: 50}}, 5 * time.Millisecond, []rate.Limit{0, 0}},
		{"keeping up: the pace grows", []appLoad{flood(2000), light}, 100 * time.Microsecond, []rate.Limit{2500, 0}},
		{"keeping up, pace far above demand: freed", []appLoad{flood(18000), light}, 100 * time.Microsecond, []rate.Limit{0, 0}},
		{"in between: held", []appLoad{flood(2000), light}, 700 * time.Microsecond, []rate.Limit{2000, 0}},
	}
	for _, tc := range cases {
		repace(tc.loads, tc.lag, window)
		for i, l := range tc.loads {
			if l.pace != tc.want[i] {
				t.Errorf("%s: app %d paced at %v, want %v", tc.name, i, l.pace, tc.want[i])
			}
		}
	}
}

// A paced app's requests wait for their tokens; one that would wait more
// than maxPaceWait is refused after that long. (A router that is not Run
// has no lag watcher to change the pace meanwhile.)
func TestPacedWaitsThenRefuses(t *testing.T) {
	t.Parallel()
	r := New(Config{Domain: "localhost"})
	q := r.backlog("paced")
	q.setPace(1) // 1 a second, after a burst of paceBurst
	start := time.Now()
	for range paceBurst {
		if !r.paced(q) {
			t.Fatal("refused within the burst")
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("the burst waited %v", took)
	}
	// Two more at once: the next token is a second away, the one after
	// two seconds, too long.
	start = time.Now()
	results := make(chan bool, 2)
	for range 2 {
		go func() { results <- r.paced(q) }()
	}
	if a, b := <-results, <-results; a == b {
		t.Errorf("paced %v and %v, want one let through and one refused", a, b)
	}
	if took := time.Since(start); took < maxPaceWait || took > maxPaceWait+500*time.Millisecond {
		t.Errorf("answered after %v, want %v", took, maxPaceWait)
	}
	for range paceBurst + 2 {
		q.done()
	}
	if n, reqs := q.load.Load(), q.requests.Load(); n != 0 || reqs != paceBurst+2 {
		t.Errorf("load %d, requests %d", n, reqs)
	}
}
