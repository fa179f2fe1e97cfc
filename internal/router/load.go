package router

import "time"

// Defaults for load and hung dynos (Config fields of the same names).
const (
	// DefaultMaxInflight is Heroku's 50 active requests per dyno.
	DefaultMaxInflight = 50
	// DefaultBacklog is requests waiting per dyno (Heroku: 50 × dynos).
	DefaultBacklog = 50
	// DefaultBacklogTimeout bounds a wait in the backlog. A request still
	// waiting after a third of the H12 budget is on an app that cannot
	// keep up; failing it fast (H11) sheds load and tells the client to
	// come back, rather than let it hang on towards H12.
	DefaultBacklogTimeout = 10 * time.Second
	// DefaultSlowStart is within the 10–30 s that proxies with slow start
	// use (Envoy, HAProxy examples): long enough for a cold runtime to
	// warm, short enough that a scale-up helps at once.
	DefaultSlowStart = 20 * time.Second
	// DefaultRollingTimeout is Heroku's (vegur's) 55 s idle window.
	DefaultRollingTimeout = 55 * time.Second
	// DefaultHangLimit is the hangs in a row that make a dyno hung.
	DefaultHangLimit = 3
	// DefaultProbeInterval is how often a hung dyno is probed: one that
	// recovers is back in rotation within about 5 s.
	DefaultProbeInterval = 5 * time.Second
)

func (c Config) withLoadDefaults() Config {
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.Backlog <= 0 {
		c.Backlog = DefaultBacklog
	}
	if c.HangLimit <= 0 {
		c.HangLimit = DefaultHangLimit
	}
	c.BacklogTimeout = cmpOr(c.BacklogTimeout, DefaultBacklogTimeout)
	c.SlowStart = cmpOr(c.SlowStart, DefaultSlowStart)
	c.RollingTimeout = cmpOr(c.RollingTimeout, DefaultRollingTimeout)
	c.ProbeInterval = cmpOr(c.ProbeInterval, DefaultProbeInterval)
	return c
}

// initLoad sets up the balancer and hung-dyno bookkeeping (New).
func (r *Router) initLoad() {
	r.bal = balancer{now: r.cfg.Now, rnd: r.cfg.Rand, limit: int64(r.cfg.MaxInflight), slowStart: r.cfg.SlowStart}
	r.hung.changed = make(chan struct{}, 1)
	r.stopping = make(chan struct{})
}

// stopProbes ends the hung-dyno probes and waits for them (Run's end).
func (r *Router) stopProbes() {
	r.stopOnce.Do(func() { close(r.stopping) })
	r.probes.Wait()
}
