package host

import "testing"

func TestCPUWatchObserve(t *testing.T) {
	var w cpuWatch
	step := func(share float64, wantChange, wantIdle bool) {
		t.Helper()
		if got := w.observe(share); got != wantChange || w.idle != wantIdle {
			t.Fatalf("observe(%.2f): change %v idle %v, want %v %v", share, got, w.idle, wantChange, wantIdle)
		}
	}
	step(0.5, false, false) // not busy
	step(0.7, false, false)
	for range busyChecks - 1 {
		step(1.0, false, false)
	}
	step(0.85, true, true) // demoted after busyChecks in a row
	step(0.95, false, true)
	for range calmChecks - 1 {
		step(0.1, false, true)
	}
	step(0.5, false, true) // between the thresholds: stays, count reset
	for range calmChecks - 1 {
		step(0.2, false, true)
	}
	step(0.0, true, false) // restored after calmChecks in a row
}
