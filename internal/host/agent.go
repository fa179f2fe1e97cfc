// Package host is the host agent: it registers its server, heartbeats,
// and runs the dynos the manager assigns to it, each in its own sandbox,
// reporting their states (starting, up, crashed, down) and addresses as
// dyno records and their state changes as heroku[<dyno>] log lines. It
// restarts crashed dynos with Heroku's back-off and stops removed ones
// gracefully (down first, SIGTERM, grace, SIGKILL).
//
// It must never decide which dynos run or where (the manager does), never
// write or delete an assignment, and never touch another host's dynos.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
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
}

var hostIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// writeTimeout bounds one store write. Writes during a stop use a context
// that outlives the agent's, so a shutdown still records what happened.
const writeTimeout = 10 * time.Second

// Agent runs one host's dynos.
type Agent struct {
	started time.Time
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
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
	if a.now == nil {
		a.now = time.Now
	}
	c := &a.cfg
	c.BootTimeout = orDefault(c.BootTimeout, 60*time.Second)
	c.StopGrace = orDefault(c.StopGrace, 30*time.Second)
	c.Heartbeat = orDefault(c.Heartbeat, 2*time.Second)
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
// ends. Then it stops every dyno gracefully, all at once, and returns nil
// once they are stopped; the assignments stay in the store, so the next
// Run of this host starts them again. It returns an error only if the
// host cannot register or its watch fails.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.heartbeat(ctx); err != nil {
		return fmt.Errorf("host %s: register: %w", a.cfg.ID, err)
	}
	watch, err := a.cfg.Store.WatchAssignments(ctx, a.cfg.ID)
	if err != nil {
		return fmt.Errorf("host %s: %w", a.cfg.ID, err)
	}
	// Heartbeats go on while the dynos stop, so that the manager does not
	// declare the host lost and move its dynos during an orderly restart.
	hbCtx, stopHeartbeats := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Go(func() { a.heartbeats(hbCtx) })
	a.log.Info("host agent started", "cores", a.cfg.Cores, "memory_mb", a.cfg.MemoryMB)
	l := &loop{a: a, dynos: map[string]*dyno{}, ended: make(chan string)}
	lctx, stopDynos := context.WithCancel(ctx)
	err = l.run(lctx, watch)
	stopDynos() // also when the watch failed: no dyno outlives Run
	l.wg.Wait()
	stopHeartbeats()
	hb.Wait()
	a.log.Info("host agent stopped")
	return err
}

// heartbeats refreshes the host record until ctx ends.
func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.heartbeat(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("heartbeat failed", "err", err)
			}
		}
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

// loop is the watch loop's state; only Run's goroutine touches dynos.
type loop struct {
	a     *Agent
	dynos map[string]*dyno // by dyno ID, until its goroutine has ended
	ended chan string      // dyno IDs whose goroutines end
	wg    sync.WaitGroup   // every dyno goroutine
}

func (l *loop) run(ctx context.Context, watch <-chan store.Event[grid.Assignment]) error {
	for {
		select {
		case <-ctx.Done():
			return nil // the deferred waits see every dyno stopped
		case id := <-l.ended:
			delete(l.dynos, id)
			l.pruneSlugs(ctx)
		case ev, ok := <-watch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("host %s: assignment watch ended: %w", l.a.cfg.ID, grid.ErrUnavailable)
			}
			l.event(ctx, ev)
		}
	}
}

func (l *loop) event(ctx context.Context, ev store.Event[grid.Assignment]) {
	switch {
	case ev.Synced:
		l.a.forgetStale(ctx, l.dynos)
		l.pruneSlugs(ctx)
	case ev.Deleted:
		if d := l.dynos[afterLastDot(ev.Key)]; d != nil {
			d.stop()
		}
	default:
		// Assignments are immutable: a second put of a known dyno ID
		// (or one still stopping) changes nothing.
		if _, ok := l.dynos[ev.Value.DynoID]; !ok && ev.Value.DynoID != "" {
			l.start(ctx, ev.Value)
		}
	}
}

// start runs a dyno in its own goroutine; the watch loop never waits for
// a dyno to start or stop.
func (l *loop) start(ctx context.Context, asg grid.Assignment) {
	dctx, cancel := context.WithCancel(ctx)
	d := newDyno(l.a, asg, cancel)
	l.dynos[asg.DynoID] = d
	l.wg.Go(func() {
		defer cancel()
		d.run(dctx)
		select {
		case l.ended <- asg.DynoID:
		case <-ctx.Done(): // Run is shutting down and no longer listens
		}
	})
}

// forgetStale deletes dyno records of this host that no assignment
// accounts for: left by a previous run that ended without stopping them.
// Records of assigned dynos are overwritten as those start.
func (a *Agent) forgetStale(ctx context.Context, running map[string]*dyno) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	ds, err := a.cfg.Store.HostDynos(ctx, a.cfg.ID)
	if err != nil {
		a.log.Warn("listing stale dyno records failed", "err", err)
		return
	}
	for _, d := range ds {
		if d.Host != a.cfg.ID || running[d.ID] != nil {
			continue
		}
		if err := a.cfg.Store.DeleteDyno(ctx, d); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Warn("deleting stale dyno record failed", "app", d.App, "dyno", d.Name, "err", err)
			continue
		}
		a.log.Info("stale dyno record deleted", "app", d.App, "dyno", d.Name, "dyno_id", d.ID)
	}
}

// pruneSlugs removes, in the background, unpacked slug trees that no dyno
// of this host uses and whose slug is gone from the store (its app was
// destroyed). Trees of live slugs stay: they make scaling and rollbacks
// start from the cache.
func (l *loop) pruneSlugs(ctx context.Context) {
	inUse := map[string]bool{}
	for _, d := range l.dynos {
		inUse[d.asg.SlugID] = true
	}
	l.wg.Go(func() { l.a.pruneSlugs(ctx, inUse) })
}

func (a *Agent) pruneSlugs(ctx context.Context, inUse map[string]bool) {
	ids, err := a.cfg.Slugs.IDs()
	if err != nil {
		a.log.Warn("listing cached slugs failed", "err", err)
		return
	}
	for _, id := range ids {
		if inUse[id] {
			continue
		}
		if _, err := a.cfg.Store.Slug(ctx, id); !errors.Is(err, grid.ErrNotFound) {
			continue
		}
		if err := a.cfg.Slugs.Remove(id); err != nil {
			a.log.Warn("removing cached slug failed", "slug", id, "err", err)
			continue
		}
		a.log.Info("cached slug removed", "slug", id)
	}
}

func afterLastDot(key string) string {
	return key[strings.LastIndexByte(key, '.')+1:]
}
