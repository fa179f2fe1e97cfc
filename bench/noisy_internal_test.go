package bench

import (
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
