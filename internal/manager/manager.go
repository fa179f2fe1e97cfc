// Package manager is the dyno manager: it turns each app's formation and
// current release into assignments (which host runs which dyno, on which
// cores), replaces dynos start-before-stop when the release or a type's
// restart epoch changes, routers report them hung (hung.go) or they are
// due for their daily cycle (cycle.go), moves dynos off lost and
// draining hosts, keeps
// spare capacity by asking a host provider for hosts and releasing empty
// ones, forgets dyno records nobody owns and deletes old releases' slugs.
//
// It writes assignments and host control records and deletes orphaned
// dyno records, released hosts' records and old slugs. It must never
// start, stop or signal a process itself (hosts do), never write an app's
// formation, release or config, never write app log lines, and never act
// on a view of the store that may be stale: after any doubt (a watch
// ended, the connection dropped, every host fell silent at once) it
// throws its view away and acts again only after a fresh sync.
package manager

import (
	"context"
	"log/slog"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// Provider makes and removes hosts on demand (a cloud API, a pool of
// spare machines, network namespaces in tests).
type Provider interface {
	// Provision starts one more host, which then joins by itself and
	// heartbeats. It returns the control record to keep (Provider,
	// Handle, ID set).
	Provision(ctx context.Context) (grid.HostControl, error)
	// Release stops and removes a host that the manager drained.
	Release(ctx context.Context, h grid.HostControl) error
}

// Config configures a Manager.
type Config struct {
	// Store is where the manager watches state and writes assignments.
	// Required.
	Store *store.Store
	// Logger receives the manager's own diagnostics. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// HostTimeout is how long a host may go unheard (no heartbeat) before
	// it is lost and its dynos are placed elsewhere; also how long a
	// router's report counts. Zero means 6s (hosts heartbeat every 2s).
	HostTimeout time.Duration
	// ForgetAfter is how long a dyno record without an assignment may stay
	// down or crashed, or on a lost host, before the manager deletes it.
	// Zero means 45s (longer than a host's 30s stop grace).
	ForgetAfter time.Duration
	// Resync is the period of a full reconcile of every app, which catches
	// time-based changes and anything a missed event would hide; each
	// tick takes its share of the apps. Zero means 5s.
	Resync time.Duration
	// RouterWait is how long a replaced web dyno waits, once its successor
	// is up, for every live router to confirm it routes to the successor;
	// then the manager proceeds anyway and logs it. Zero means 5s.
	RouterWait time.Duration
	// HungEvery is the least time between two replacements of hung dynos
	// (reported by routers, hung.go) of one app. Zero means 1 minute.
	HungEvery time.Duration
	// CycleAfter is how long a dyno runs before the manager cycles it
	// (replaces it start-before-stop, cycle.go), as Heroku restarts every
	// dyno daily; one-off dynos are never cycled. Zero means 24h;
	// negative disables cycling.
	CycleAfter time.Duration
	// CycleJitter bounds the delay added to CycleAfter per dyno (derived
	// from its ID), which spreads the cycles of dynos started together.
	// Zero means 216 minutes, as on Heroku; negative means none.
	CycleJitter time.Duration

	// Provider makes and removes hosts. Nil means hosts only join by hand:
	// the manager then never provisions, and drained hosts stay drained.
	Provider Provider
	// Headroom is the free memory (MB) to keep on up hosts; below it the
	// manager provisions a host. Zero means the memory of the largest up
	// host, so that losing any one host can be absorbed.
	Headroom int
	// EmptyGrace is how long a provisioned host may sit without dynos
	// before it is drained and released. Zero means 5 minutes.
	EmptyGrace time.Duration
	// MinHosts is the fewest up hosts to keep. Zero means 1.
	MinHosts int
	// ProvisionTimeout is how long a provisioned host may take to join
	// (heartbeat) before the manager stops waiting for it and may
	// provision another. Zero means 2 minutes.
	ProvisionTimeout time.Duration
	// LostRelease is how long a provisioned host may stay lost before the
	// manager presumes it dead and asks the provider to release it (a
	// machine that is gone still costs money; one that comes back later
	// joins as a new host). Zero means 10 minutes.
	LostRelease time.Duration

	// SlugRetention is how many of each app's newest releases keep their
	// slugs; older releases' slugs are deleted unless a dyno runs them.
	// Zero means 10.
	SlugRetention int
	// SlugGCInterval is the period of slug garbage collection, whose first
	// run is one period after Run starts. Zero means 1 minute.
	SlugGCInterval time.Duration
}

// debounce is how long the manager waits after a change for more changes
// before reconciling: a burst of events becomes one decision per app.
const debounce = 2 * time.Millisecond

// writeTimeout bounds one store write.
const writeTimeout = 10 * time.Second

// retryMin and retryMax bound the pause between two attempts to build a
// fresh view after one was lost.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
)

// Manager is the dyno manager. Exactly one may run per grid: cmd/grid
// runs it only while holding the "manager" lease.
type Manager struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// tick is how often host liveness, router waits, capacity and retries
	// are checked: a twelfth of HostTimeout, between 10ms and 500ms.
	tick time.Duration
}

// New returns a manager; it does nothing until Run.
func New(cfg Config) *Manager {
	m := &Manager{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&m.cfg.HostTimeout, 6*time.Second)
	def(&m.cfg.ForgetAfter, 45*time.Second)
	def(&m.cfg.Resync, 5*time.Second)
	def(&m.cfg.RouterWait, 5*time.Second)
	def(&m.cfg.HungEvery, time.Minute)
	// Negative cycle settings mean off and none; from here on a zero
	// CycleJitter means none.
	if m.cfg.CycleAfter == 0 {
		m.cfg.CycleAfter = 24 * time.Hour
	}
	if m.cfg.CycleJitter == 0 {
		m.cfg.CycleJitter = 216 * time.Minute
	}
	m.cfg.CycleJitter = max(m.cfg.CycleJitter, 0)
	def(&m.cfg.EmptyGrace, 5*time.Minute)
	def(&m.cfg.ProvisionTimeout, 2*time.Minute)
	def(&m.cfg.LostRelease, 10*time.Minute)
	def(&m.cfg.SlugGCInterval, time.Minute)
	m.cfg.MinHosts = max(m.cfg.MinHosts, 1)
	if m.cfg.SlugRetention <= 0 {
		m.cfg.SlugRetention = 10
	}
	m.tick = min(max(m.cfg.HostTimeout/12, 10*time.Millisecond), 500*time.Millisecond)
	return m
}

func (m *Manager) timing() timing {
	return timing{HostTimeout: m.cfg.HostTimeout, ForgetAfter: m.cfg.ForgetAfter, RouterWait: m.cfg.RouterWait}
}

// Run watches the store and reconciles until ctx ends; then it waits for
// its background work (provisioning, releases, slug collection) to stop
// and returns nil.
//
// It works in sessions: watch everything, wait until every watch has
// delivered its current values, then act on changes. A session ends when
// a watch ends, the NATS connection drops, or every host falls silent at
// once (more likely the manager's view stalled than all hosts died); the
// next one starts from an empty view after a short pause, so nothing is
// ever decided on what was seen before an outage, and hosts' silence
// during it is not held against them.
func (m *Manager) Run(ctx context.Context) error {
	r := newRunState(m)
	defer r.bg.Wait()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	delay := retryMin
	for {
		synced, err := r.session(ctx, bctx)
		if ctx.Err() != nil {
			return nil
		}
		if synced {
			delay = retryMin
		}
		m.log.Warn("manager view lost; starting again from a fresh sync", "err", err, "retry_in", delay)
		if !r.pause(ctx, delay) {
			return nil
		}
		delay = min(2*delay, retryMax)
	}
}
