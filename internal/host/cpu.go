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
// The share is taken over the last cpuWindow checks: a capped dyno runs
// in bursts of the CFS period (100 ms), so a single 250 ms reading swings
// between 0.8 and 1.2 of its cap. With the default CPUCheck (250 ms) a
// busy dyno is demoted after about 1 s and restored after 5 s below a
// quarter of its limit.
const (
	cpuWindow  = 4   // checks the share is measured over
	busyShare  = 0.8 // of its limit: CPU-bound
	calmShare  = 0.25
	busyChecks = 1  // consecutive checks to demote
	calmChecks = 20 // and to restore
)

// cpuWatch is a dyno's recent CPU readings.
type cpuWatch struct {
	sb         *sandbox.Sandbox
	limit      float64                      // cores: sb.CPULimit(), read once
	used       [cpuWindow + 1]time.Duration // a ring of readings
	at         [cpuWindow + 1]time.Time
	n          int // readings taken
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
	i, oldest := w.n%len(w.at), (w.n+1)%len(w.at)
	w.used[i], w.at[i] = used, now
	w.n++
	if w.n < len(w.at) {
		return
	}
	share := (used - w.used[oldest]).Seconds() / now.Sub(w.at[oldest]).Seconds() / w.limit
	if !w.observe(share) {
		return
	}
	if err := w.sb.SetCPUIdle(w.idle); err != nil {
		d.log.Warn("cpu priority change failed", "err", err)
		return
	}
	d.log.Info("dyno cpu priority", "cpu_bound", w.idle, "share_of_limit", share)
}

// observe takes one reading (the share of its limit the dyno used since
// the last) and reports whether the dyno's class changes (w.idle says to
// which).
func (w *cpuWatch) observe(share float64) bool {
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
		return false
	}
	return true
}
