// Package host is the host agent: it registers its server, heartbeats,
// and runs the dynos the manager assigns to it, each in its own sandbox,
// reporting their states (starting, up, crashed, down) and addresses as
// dyno records and their state changes as heroku[<dyno>] log lines. It
// restarts crashed dynos with Heroku's back-off and stops removed ones
// gracefully (down first, SIGTERM, grace, SIGKILL). It fetches each app's
// current slug ahead of need and removes slug trees nobody needs.
//
// Dynos do not depend on the agent or on NATS being up: an agent that
// restarts adopts the sandboxes its predecessor left running, and an
// agent cut off from NATS keeps its dynos running (and restarting) and
// catches up once it is back.
//
// It must never decide which dynos run or where (the manager does), never
// write or delete an assignment, never touch another host's dynos, and
// never stop a dyno because the control plane is silent.
package host

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

// Config configures an Agent.
type Config struct {
	// ID names the host in the store: letters, digits, '-' and '_'.
	// Required.
	ID string
	// Addr is how other servers reach this one; recorded, not used here.
	Addr string
	// Subnet is the CIDR of this host's dyno addresses, recorded so that
	// routers on other servers can route to them through Addr.
	Subnet string
	// Store, Sandboxes and Slugs are required. Logs receives the dynos'
	// output and heroku[<dyno>] lines; nil discards them.
	Store     *store.Store
	Logs      *logs.Log
	Sandboxes *sandbox.Manager
	Slugs     *slug.Cache
	// BootTimeout is how long a web dyno may take to listen on $PORT
	// before R10 kills it. Zero means 60s.
	BootTimeout time.Duration
	// StopGrace is how long a stopping dyno gets between SIGTERM and
	// SIGKILL. Zero means 30s.
	StopGrace time.Duration
	// DrainDelay is how long a stopping web dyno that was up stays alive
	// after being marked down, so routers stop sending it requests before
	// it gets SIGTERM. Zero means 100ms; negative means no wait.
	DrainDelay time.Duration
	// Heartbeat is the period of the host record refresh the manager
	// watches for liveness. Zero means 2s.
	Heartbeat time.Duration
	// MemoryCheck is how often a running dyno's memory is read, for R14
	// (memory.go). Zero means 5s.
	MemoryCheck time.Duration
	// CPUCheck is how often a running dyno's CPU use is read, to run a
	// CPU-bound dyno at idle priority (cpu.go). Zero means 250ms.
	CPUCheck time.Duration
	// Backoff is the crash restart schedule. The zero value is Heroku's.
	Backoff Backoff
	// Logger receives the agent's own diagnostics. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for records and crash timing. Nil means time.Now.
	Now func() time.Time
	// Cores and MemoryMB are what the host offers dynos. Zero means all
	// of the machine's.
	Cores    int
	MemoryMB int
	// StopDynosOnExit makes Run stop every dyno gracefully when ctx ends
	// (grid up; grid host without --keep-dynos). False leaves them running
	// for the next agent of this host to adopt: an agent restart or
	// upgrade then restarts no dyno.
	StopDynosOnExit bool
	// AttachWait is how long an attached one-off dyno (grid run) waits
	// for its client before it gives up. Zero means 2 minutes.
	AttachWait time.Duration
	// RunIdle ends an attached one-off dyno whose session has carried
	// nothing either way for this long; RunMaxAge ends any one-off dyno
	// this long after it was asked for (an Assignment's TimeToLive may
	// make it sooner). Zero means Heroku's 1 hour and 24 hours.
	RunIdle   time.Duration
	RunMaxAge time.Duration
	// SlugKeep is how long an unpacked slug tree that no local dyno uses
	// and that is no app's current slug stays cached (for rollbacks and
	// scaling). Zero means 10 minutes.
	SlugKeep time.Duration
}

var hostIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// writeTimeout bounds one store write. Dyno records that could not be
// written are retried until they are (see reporter).
const writeTimeout = 10 * time.Second

// Agent runs one host's dynos.
type Agent struct {
	started time.Time
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	rep     *reporter
	slugs   *slugKeeper
	runs    *sessions
}

// New checks cfg and returns an agent; it does nothing until Run.
func New(cfg Config) (*Agent, error) {
	if !hostIDRE.MatchString(cfg.ID) {
		return nil, fmt.Errorf("host id %q must be 1 to 64 letters, digits, '-' or '_': %w", cfg.ID, grid.ErrInvalid)
	}
	if cfg.Store == nil || cfg.Sandboxes == nil || cfg.Slugs == nil {
		return nil, fmt.Errorf("host agent needs a store, a sandbox manager and a slug cache: %w", grid.ErrInvalid)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if a.now == nil {
		a.now = time.Now
	}
	a.started = a.now().UTC()
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("host", cfg.ID)
	c := &a.cfg
	c.SlugKeep = orDefault(c.SlugKeep, 10*time.Minute)
	c.BootTimeout = orDefault(c.BootTimeout, 60*time.Second)
	c.StopGrace = orDefault(c.StopGrace, 30*time.Second)
	c.Heartbeat = orDefault(c.Heartbeat, 2*time.Second)
	c.MemoryCheck = orDefault(c.MemoryCheck, 5*time.Second)
	c.CPUCheck = orDefault(c.CPUCheck, 250*time.Millisecond)
	c.AttachWait = orDefault(c.AttachWait, 2*time.Minute)
	c.RunIdle = orDefault(c.RunIdle, time.Hour)
	c.RunMaxAge = orDefault(c.RunMaxAge, 24*time.Hour)
	if c.DrainDelay == 0 {
		c.DrainDelay = 100 * time.Millisecond
	}
	c.Backoff = c.Backoff.withDefaults()
	if c.Cores <= 0 {
		c.Cores = runtime.NumCPU()
	}
	if c.MemoryMB <= 0 {
		c.MemoryMB = machineMemoryMB()
	}
	a.rep = newReporter(cfg.Store, a.log)
	a.slugs = newSlugKeeper(a)
	a.runs = newSessions(cfg.Store.Conn(), cfg.ID)
	return a, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func machineMemoryMB() int {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return int(uint64(si.Totalram) * uint64(si.Unit) >> 20)
}

// Run registers the host, heartbeats, and runs its assignments until ctx
// ends:
//
//	start     adopt the dynos an earlier agent left running, as their
//	          assignments arrive; destroy the rest once the assignments
//	          have synced
//	running   start, restart and stop dynos as assignments come and go;
//	          fetch current slugs ahead of need; remove unused slug trees
//	NATS gone dynos run on and restart as before; records are written
//	          once NATS is back; the watch is reopened and reconciled
//	ctx ends  leave the dynos running for the next agent, or, with
//	          StopDynosOnExit, stop them all at once, gracefully
//
// Assignments stay in the store either way, so the next Run of this host
// runs the same dynos. Run returns nil once done: a control plane that is
// away is waited for, never a reason to give up the dynos.
func (a *Agent) Run(ctx context.Context) error {
	leftovers := a.cfg.Sandboxes.Leftovers()
	records := a.ownRecords(ctx)
	if err := a.heartbeat(ctx); err != nil {
		a.log.Warn("host registration failed; retrying with the heartbeat", "err", err)
	}
	// Heartbeats and record writes go on while the dynos stop, so that
	// the manager does not declare the host lost and move its dynos
	// during an orderly restart.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	background.Go(func() { a.heartbeats(bg) })
	background.Go(func() { a.rep.run(bg) })

	if err := a.runs.listen(); err != nil {
		a.log.Error("one-off sessions unavailable", "err", err)
	}
	defer a.runs.stop()
	var watchers sync.WaitGroup
	assignments := make(chan watchMsg[grid.Assignment])
	watchers.Go(func() { rewatch(ctx, a, "assignments", a.watchAssignments, assignments) })
	watchers.Go(func() { a.slugs.run(ctx) })
	a.log.Info("host agent started", "cores", a.cfg.Cores, "memory_mb", a.cfg.MemoryMB, "leftover_sandboxes", len(leftovers))

	l := newLoop(a, leftovers, records)
	l.run(ctx, assignments)
	watchers.Wait()
	l.exit()
	fctx, cancel := context.WithTimeout(bg, writeTimeout)
	a.rep.flush(fctx)
	cancel()
	stopBackground()
	background.Wait()
	a.log.Info("host agent stopped", "dynos_stopped", a.cfg.StopDynosOnExit)
	return nil
}

func (a *Agent) watchAssignments(ctx context.Context) (<-chan store.Event[grid.Assignment], error) {
	return a.cfg.Store.WatchAssignments(ctx, a.cfg.ID)
}

// ownRecords returns the dyno records an earlier agent of this host left,
// by dyno ID, so that adopted dynos keep theirs. Best effort: none when
// the store cannot say.
func (a *Agent) ownRecords(ctx context.Context) map[string]grid.Dyno {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	ds, err := a.cfg.Store.HostDynos(ctx, a.cfg.ID)
	if err != nil {
		a.log.Warn("reading this host's dyno records failed", "err", err)
	}
	out := map[string]grid.Dyno{}
	for _, d := range ds {
		out[d.ID] = d
	}
	return out
}

// heartbeats refreshes the host record until ctx ends. Failures are
// logged when they start and when they end, not at every beat.
func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.heartbeat(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			a.log.Warn("heartbeats failing", "err", err)
		case err == nil && failing:
			a.log.Info("heartbeats back")
		}
		failing = err != nil
	}
}

func (a *Agent) heartbeat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return a.cfg.Store.PutHost(ctx, grid.Host{
		ID: a.cfg.ID, Addr: a.cfg.Addr, Subnet: a.cfg.Subnet, Cores: a.cfg.Cores, MemoryMB: a.cfg.MemoryMB,
		StartedAt: a.started, HeartbeatAt: a.now().UTC(),
	})
}
