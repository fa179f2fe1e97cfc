package router

import (
	"sync"
	"sync/atomic"
	"time"
)

// The latency EWMA the balancer weighs dynos by.
const (
	// latencyAlpha is the weight of each new sample: the last ten or so
	// responses dominate, so a dyno that slows down (a GC storm, a noisy
	// neighbour) is avoided within a few requests, and one slow request
	// is not held against it for long.
	latencyAlpha = 0.3
	// latencyMemory is how long a latency counts without a new sample.
	// After it the dyno's latency is unknown and it competes on requests
	// in flight alone, so a dyno that was slow once is not starved of the
	// requests that would show it has recovered.
	latencyMemory = 10 * time.Second
)

// latency is an exponentially weighted moving average of a dyno's
// response latency (attempt start to response headers), as this router
// measured it. Reads are lock-free; updates take a lock, since the
// average and its timestamp change together.
type latency struct {
	mu   sync.Mutex
	ewma atomic.Int64 // nanoseconds; 0: no sample yet
	at   atomic.Int64 // Unix nanoseconds of the last sample
}

// observe folds one sample in.
func (l *latency) observe(d time.Duration, now time.Time) {
	d = max(d, time.Microsecond) // 0 means "none"
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.ewma.Load()
	if old == 0 || now.UnixNano()-l.at.Load() > int64(latencyMemory) {
		l.ewma.Store(int64(d))
	} else {
		l.ewma.Store(old + int64(latencyAlpha*float64(int64(d)-old)))
	}
	l.at.Store(now.UnixNano())
}

// forget drops the average: what it said no longer holds (a hung dyno
// that answers again).
func (l *latency) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ewma.Store(0)
	l.at.Store(0)
}

// get returns the average in nanoseconds, or 0 when unknown: no sample,
// or none within latencyMemory.
func (l *latency) get(now time.Time) float64 {
	if now.UnixNano()-l.at.Load() > int64(latencyMemory) {
		return 0
	}
	return float64(l.ewma.Load())
}
