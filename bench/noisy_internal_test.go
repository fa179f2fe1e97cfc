package bench

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// TestUnstolen keeps a request only when the steal read a reading before
// it was sent equals the one read a reading after it ended.
func TestUnstolen(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Readings every 10 ms; the hypervisor takes a tick between 50 and 60.
	var trace []stealReading
	for ms := 0; ms <= 200; ms += 10 {
		s := time.Duration(0)
		if ms >= 60 {
			s = clockTick
		}
		trace = append(trace, stealReading{at(ms), s})
	}
	// Sent at, lasting (ms): 1: no reading two before it. 15–35: clean.
	// 45–47 and 65–66: the tick read at 60, maybe counted late, is in
	// their margin. 75–76 and 100–104: clean. 195: no reading after it.
	r := pacedResult{
		sent: []time.Time{at(1), at(15), at(45), at(65), at(75), at(100), at(195)},
		lat:  []time.Duration{2, 20, 2, 1, 1, 4, 2},
	}
	for i := range r.lat {
		r.lat[i] *= time.Millisecond
	}
	got := unstolen(r, trace)
	want := []time.Duration{20 * time.Millisecond, time.Millisecond, 4 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("unstolen kept %v, want %v", got, want)
	}
}

// TestStealFit recovers A's factor from rounds whose p99 grows with the
// steal: 2 ms × 1.3 beside A × e^(4·steal).
func TestStealFit(t *testing.T) {
	p99 := func(beside bool, steal float64) round {
		v := 2 * math.Exp(4*steal)
		if beside {
			v *= 1.3
		}
		return round{pacedResult: pacedResult{p99: v}, steal: steal}
	}
	// Beside A meets more steal than alone: the pooled ratio is far off.
	alone := []round{p99(false, 0), p99(false, 0.1), p99(false, 0.05)}
	beside := []round{p99(true, 0.4), p99(true, 0.3), p99(true, 0.5)}
	ratio, perCore, ok := stealFit(alone, beside)
	if !ok || math.Abs(ratio-1.3) > 1e-6 || math.Abs(perCore-math.Exp(4)) > 1e-6 {
		t.Errorf("stealFit = %.4f, ×%.2f per core, %v; want 1.3, ×%.2f", ratio, perCore, ok, math.Exp(4))
	}
	// The same steal on every round: A and steal cannot be told apart.
	same := []round{p99(false, 0.1), p99(false, 0.1), p99(true, 0.1), p99(true, 0.1)}
	if _, _, ok := stealFit(same[:2], same[2:]); ok {
		t.Error("stealFit fitted rounds that all had the same steal")
	}
}

// TestTailBuffer checks that the bare A's output keeps its last lines and
// gives the last whole one with a prefix.
func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	for i := range 10000 {
		fmt.Fprintf(&tb, "hog: stream: %d GB/s\nnoise %d\n", i, i)
	}
	tb.Write([]byte("hog: unfinished"))
	if got := tb.last("hog: "); got != "stream: 9999 GB/s" {
		t.Errorf("last = %q", got)
	}
	if len(tb.buf) > 64<<10 {
		t.Errorf("kept %d bytes", len(tb.buf))
	}
	if got := (&tailBuffer{}).last("hog: "); got != "" {
		t.Errorf("empty buffer: last = %q", got)
	}
}

func TestProcfileCommand(t *testing.T) {
	if got, err := procfileCommand("testdata/hog/Procfile", "mem"); err != nil || got != "python3 hog.py mem 2048" {
		t.Errorf("mem: %q, %v", got, err)
	}
	if _, err := procfileCommand("testdata/hog/Procfile", "me"); err == nil {
		t.Error("a type that is not there: no error")
	}
}
