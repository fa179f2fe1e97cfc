package host

import "time"

// Backoff is Heroku's crash restart policy (heroku.md §1.4). A crash within
// BootWindow of the dyno's start is a boot crash; consecutive boot crashes
// are restarted:
//
//	1st, 2nd  at once
//	3rd       after CoolOff (10 min)
//	4th       after 2×CoolOff (20 min)
//	5th       after 4×CoolOff (40 min)
//	…         doubling, at most Max (24 h)
//
// A crash after more than BootWindow of running is restarted at once and
// resets the count (the dyno had proven it can run). A new release or a
// restart makes a new dyno, whose count starts at zero.
type Backoff struct {
	// BootWindow: crashes sooner after the start are boot crashes. Zero
	// means 10 minutes.
	BootWindow time.Duration
	// CoolOff is the wait after the third consecutive boot crash; it
	// doubles with each further one. Zero means 10 minutes.
	CoolOff time.Duration
	// Max caps the wait. Zero means 24 hours.
	Max time.Duration
}

// immediateBootCrashes is how many consecutive boot crashes restart at once.
const immediateBootCrashes = 2

func (b Backoff) withDefaults() Backoff {
	if b.BootWindow <= 0 {
		b.BootWindow = 10 * time.Minute
	}
	if b.CoolOff <= 0 {
		b.CoolOff = 10 * time.Minute
	}
	if b.Max <= 0 {
		b.Max = 24 * time.Hour
	}
	return b
}

// Next returns how long to wait before restarting a dyno that crashed after
// running for ran, when bootCrashes consecutive boot crashes came before
// this crash; and the count to pass to the next call.
func (b Backoff) Next(bootCrashes int, ran time.Duration) (wait time.Duration, next int) {
	b = b.withDefaults()
	if ran >= b.BootWindow {
		return 0, 0
	}
	next = bootCrashes + 1
	if next <= immediateBootCrashes {
		return 0, next
	}
	wait = b.CoolOff
	for i := immediateBootCrashes + 1; i < next && wait < b.Max; i++ {
		wait *= 2
	}
	return min(wait, b.Max), next
}
