package host

import (
	"time"

	"github.com/dynogrid/grid/internal/sandbox"
)

// A dyno that keeps using all the CPU it may (its size's cap, or its
// cores) is CPU-bound: a batch job, a busy loop. Left at normal
// priority, it makes every dyno sharing its cores wait for the end of
// its time slices, milliseconds per request. So while it stays busy it
// runs in the kernel's idle class (sandbox.SetCPUIdle): it still gets
// every cycle nobody else wants, up to its cap, and yields the core the
// moment another process wakes. Dynos that serve requests use their
// CPU in short bursts and keep normal priority; so do two CPU-bound
// dynos relative to each other, both being idle-class.
//
// With the default CPUCheck (250 ms) a busy dyno is demoted within about
// 0.75 s and restored after 5 s below a quarter of its limit.
const (
	busyShare  = 0.9 // of its limit: CPU-bound
	calmShare  = 0.25
	busyChecks = 3  // consecutive checks to demote
	calmChecks = 20 // and to restore
)

// cpuWatch is a dyno's CPU reading between checks.
type cpuWatch struct {
	sb         *sandbox.Sandbox
	last       time.Duration
	at         time.Time
	busy, calm int
	idle       bool
}

// checkCPU reads the dyno's CPU use since the last check and moves it in
// or out of the idle class.
func (d *dyno) checkCPU(w *cpuWatch) {
	used, err := w.sb.CPUTime()
	if err != nil {
		d.log.Debug("cpu reading failed", "err", err)
		return
	}
	now := time.Now()
	if w.at.IsZero() {
		w.last, w.at = used, now
		return
	}
	share := (used - w.last).Seconds() / now.Sub(w.at).Seconds() / w.sb.CPULimit()
	w.last, w.at = used, now
	switch {
	case share >= busyShare:
		w.busy, w.calm = w.busy+1, 0
	case share < calmShare:
		w.busy, w.calm = 0, w.calm+1
	default:
		w.busy, w.calm = 0, 0
	}
	switch {
	case !w.idle && w.busy >= busyChecks:
		w.idle = true
	case w.idle && w.calm >= calmChecks:
		w.idle = false
	default:
		return
	}
	if err := w.sb.SetCPUIdle(w.idle); err != nil {
		d.log.Warn("cpu priority change failed", "err", err)
		return
	}
	d.log.Info("dyno cpu priority", "cpu_bound", w.idle, "share_of_limit", share)
}
