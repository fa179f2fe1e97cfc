package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// The watches the manager follows; a session acts once all have synced.
const (
	wApps = iota
	wFormations
	wAssignments
	wDynos
	wHosts
	wControls
	wRouters
	nWatches
)

type watches struct {
	apps        <-chan store.Event[grid.App]
	formations  <-chan store.Event[grid.Formation]
	assignments <-chan store.Event[grid.Assignment]
	dynos       <-chan store.Event[grid.Dyno]
	hosts       <-chan store.Event[grid.Host]
	controls    <-chan store.Event[grid.HostControl]
	routers     <-chan store.Event[grid.RouterState]
}

func (m *Manager) watch(ctx context.Context) (watches, error) {
	var w watches
	var err error
	st := m.cfg.Store
	set := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	set(func() (e error) { w.apps, e = st.WatchApps(ctx); return })
	set(func() (e error) { w.formations, e = st.WatchFormations(ctx); return })
	set(func() (e error) { w.assignments, e = st.WatchAssignments(ctx, ""); return })
	set(func() (e error) { w.dynos, e = st.WatchDynos(ctx); return })
	set(func() (e error) { w.hosts, e = st.WatchHosts(ctx); return })
	set(func() (e error) { w.controls, e = st.WatchHostControls(ctx); return })
	set(func() (e error) { w.routers, e = st.WatchRouters(ctx); return })
	return w, err
}

// Reasons a session ends.
var (
	errWatchEnded  = fmt.Errorf("a store watch ended: %w", grid.ErrUnavailable)
	errOffline     = fmt.Errorf("the NATS connection is down: %w", grid.ErrUnavailable)
	errSilence     = fmt.Errorf("every host fell silent at once: %w", grid.ErrUnavailable)
	errSyncTimeout = fmt.Errorf("the watches did not deliver their current values within %v: %w", syncTimeout, grid.ErrUnavailable)
)

// syncTimeout bounds how long a session waits for its watches' current
// values.
const syncTimeout = time.Minute

// runState is what one Run keeps. Only Run's goroutine touches it;
// background work reports back through done. The session fields are
// reset by every fresh sync; the rest lasts for the whole Run.
type runState struct {
	m    *Manager
	done chan func(*runState) // results of background work
	bg   sync.WaitGroup       // background work

	unplaced map[string]string // "<app>/<dyno>" → reason last logged
	short    map[string]int    // app → MB of its dynos that found no host
	cap      capacity
	gcLast   time.Time
	gcBusy   bool

	// Session state.
	started  time.Time
	view     *view
	synced   [nWatches]bool
	syncedAt time.Time       // zero until every watch has synced
	settled  bool            // placement may start (see settle)
	dirty    map[string]bool // apps to reconcile at the next debounce
	retry    map[string]bool // apps whose writes failed; retried at the next tick
	waiting  map[string]bool // apps with dynos waiting for routers
	live     []string        // hosts not lost at the last tick
	resynced time.Time       // start of the current resync round
	resyncQ  []string        // apps the current round has yet to mark
	resyncN  int             // apps to mark per tick in this round
	heard    time.Time       // last live heartbeat from any host; zero if none yet
	returned time.Time       // last time a lost host was heard from again

	marking   map[string]bool // hosts whose Lost mark is being written (markLost)
	replacing replacements    // dynos being replaced: hung, cycled (replace.go)
}

func newRunState(m *Manager) *runState {
	return &runState{
		m:         m,
		done:      make(chan func(*runState)),
		unplaced:  map[string]string{},
		short:     map[string]int{},
		cap:       newCapacity(),
		marking:   map[string]bool{},
		replacing: newReplacements(),
	}
}

func (r *runState) reset() {
	r.started = r.m.now()
	r.view = newView()
	r.synced = [nWatches]bool{}
	r.syncedAt, r.resynced, r.heard, r.returned = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	r.settled = false
	r.dirty, r.retry, r.waiting = map[string]bool{}, map[string]bool{}, map[string]bool{}
	r.live, r.resyncQ = nil, nil
}

// session runs one session (see Run) and reports whether it got as far as
// a full sync. Background work it starts runs under bctx.
func (r *runState) session(ctx, bctx context.Context) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.reset()
	w, err := r.m.watch(sctx)
	if err != nil {
		return false, err
	}
	err = r.loop(sctx, bctx, w)
	return !r.syncedAt.IsZero(), err
}

func (r *runState) loop(ctx, bctx context.Context, w watches) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	ticker := time.NewTicker(r.m.tick)
	defer ticker.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.apps:
			err = r.event(wApps, ok, ev.Synced, func() { r.mark(r.view.applyApp(ev)) })
		case ev, ok := <-w.formations:
			err = r.event(wFormations, ok, ev.Synced, func() { r.mark(r.view.applyFormation(ev)) })
		case ev, ok := <-w.assignments:
			err = r.event(wAssignments, ok, ev.Synced, func() { r.mark(r.view.applyAssignment(ev)) })
		case ev, ok := <-w.dynos:
			err = r.event(wDynos, ok, ev.Synced, func() { r.mark(r.view.applyDyno(ev, r.m.now())) })
		case ev, ok := <-w.hosts:
			err = r.event(wHosts, ok, ev.Synced, func() { r.host(ev) })
		case ev, ok := <-w.controls:
			err = r.event(wControls, ok, ev.Synced, func() { r.markHost(r.view.applyControl(ev, r.m.now())) })
		case ev, ok := <-w.routers:
			err = r.event(wRouters, ok, ev.Synced, func() {
				r.view.applyRouter(ev, r.m.now(), !r.synced[wRouters])
				for app := range r.waiting {
					r.dirty[app] = true
				}
				for _, h := range ev.Value.Hung {
					r.dirty[h.App] = true
				}
			})
		case fn := <-r.done:
			fn(r)
		case <-ticker.C:
			err = r.tick(bctx)
		case <-timer.C:
			armed = false
			err = r.reconcileDirty(ctx)
		}
		if err != nil {
			return err
		}
		if !r.syncedAt.IsZero() && len(r.dirty) > 0 && !armed {
			timer.Reset(debounce)
			armed = true
		}
	}
}

// event applies one watch event. The Synced markers count towards the
// first reconcile, which waits for every watch so that a partial view
// never deletes anything.
func (r *runState) event(w int, open, synced bool, apply func()) error {
	if !open {
		return errWatchEnded
	}
	if !synced {
		apply()
		return nil
	}
	r.synced[w] = true
	for _, s := range r.synced {
		if !s {
			return nil
		}
	}
	now := r.m.now()
	r.m.log.Info("manager synced", "apps", len(r.view.apps), "assignments", len(r.view.assignments), "hosts", len(r.view.hosts), "routers", len(r.view.routers))
	r.syncedAt, r.resynced = now, now
	r.live = r.view.liveSet(now, r.m.cfg.HostTimeout)
	r.markAll()
	r.settle(now)
	return nil
}

// settle lets placement start once every host known at the sync has been
// heard from again (or is lost), or half the host timeout has passed:
// dynos missing after a manager start are spread over all live hosts,
// not given to whichever heartbeats first.
func (r *runState) settle(now time.Time) {
	if r.settled || r.syncedAt.IsZero() {
		return
	}
	if now.Sub(r.syncedAt) < r.m.cfg.HostTimeout/2 {
		for id, h := range r.view.hosts {
			if !h.Heard && r.view.hostState(id, now, r.m.cfg.HostTimeout) != grid.HostLost {
				return
			}
		}
	}
	r.settled = true
	r.markAll()
}

// host applies a host event. A host that can take dynos now and could not
// before (first heartbeat, returning), or the reverse, concerns the apps
// on it and those waiting for room.
func (r *runState) host(ev store.Event[grid.Host]) {
	now := r.m.now()
	initial := !r.synced[wHosts]
	_, known := r.view.hosts[ev.Key]
	wasLost := known && r.view.hostState(ev.Key, now, r.m.cfg.HostTimeout) == grid.HostLost
	if r.view.applyHost(ev, now, r.m.cfg.HostTimeout, initial) {
		r.markHost(ev.Key)
	}
	if wasLost && !ev.Deleted {
		r.m.log.Info("host returned", "host", ev.Key)
		r.returned = now
	}
	if !initial && !ev.Deleted {
		r.heard = now
	}
	r.settle(now)
}

func (r *runState) mark(app string) {
	if app != "" {
		r.dirty[app] = true
	}
}

func (r *runState) markAll() {
	for _, app := range r.view.appNames() {
		r.dirty[app] = true
	}
}

// markHost marks the apps on a host and those with dynos waiting for room.
func (r *runState) markHost(host string) {
	for _, app := range r.view.appsOn(host) {
		r.dirty[app] = true
	}
	for app := range r.short {
		r.dirty[app] = true
	}
}

// silent reports whether hosts were heard from in this session but none
// for two thirds of the host timeout (two heartbeats): then the manager's
// own view has most likely stalled, and it must not declare every host
// lost on its strength. It trips before the last host heard would be
// lost.
func (r *runState) silent(now time.Time) bool {
	return !r.heard.IsZero() && now.Sub(r.heard) > r.m.cfg.HostTimeout*2/3
}

// fresh returns an error when the view may be stale (see silent), so the
// session ends before anything is decided on it.
func (r *runState) fresh(now time.Time) error {
	if !r.m.cfg.Store.Conn().IsConnected() {
		return errOffline
	}
	if r.silent(now) {
		return errSilence
	}
	return nil
}

// tick notices hosts becoming lost and router waits running out, retries
// failed writes, resyncs, and manages capacity and slug collection.
func (r *runState) tick(bctx context.Context) error {
	now := r.m.now()
	if err := r.fresh(now); err != nil {
		return err
	}
	if r.syncedAt.IsZero() {
		if now.Sub(r.started) > syncTimeout {
			return errSyncTimeout
		}
		return nil
	}
	r.settle(now)
	live := r.view.liveSet(now, r.m.cfg.HostTimeout)
	if !slices.Equal(live, r.live) {
		r.m.log.Info("live hosts changed", "hosts", live)
		r.live = live
		r.markAll()
	}
	r.markLost(bctx, now)
	r.resync(now)
	for app := range r.waiting {
		r.dirty[app] = true
	}
	for app := range r.retry {
		r.dirty[app] = true
	}
	clear(r.retry)
	r.capacity(bctx, now)
	r.collectSlugs(bctx, now)
	return nil
}

// resync marks every app for reconciling once per Resync, a share at
// each tick rather than all at once, so a large grid sees no burst.
func (r *runState) resync(now time.Time) {
	if len(r.resyncQ) == 0 {
		if now.Sub(r.resynced) < r.m.cfg.Resync {
			return
		}
		r.resynced = now
		r.resyncQ = r.view.appNames()
		ticks := max(int(r.m.cfg.Resync/r.m.tick), 1)
		r.resyncN = (len(r.resyncQ) + ticks - 1) / ticks
	}
	n := min(r.resyncN, len(r.resyncQ))
	for _, app := range r.resyncQ[:n] {
		r.dirty[app] = true
	}
	r.resyncQ = r.resyncQ[n:]
}

// reconcileDirty decides for every dirty app, applies the decisions to the
// view at once (so the next decision builds on them), then writes them all
// in parallel and undoes in the view what failed to write.
func (r *runState) reconcileDirty(ctx context.Context) error {
	now := r.m.now()
	if err := r.fresh(now); err != nil {
		return err
	}
	r.replacing.prune(r.view)
	r.takeHung(now)
	apps := make([]string, 0, len(r.dirty))
	for app := range r.dirty {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	clear(r.dirty)
	p := newPolicy(r.view, now, r.m.timing(), store.NewID)
	p.Hold = !r.settled
	p.HoldLost = !r.returned.IsZero() && now.Sub(r.returned) < r.m.cfg.HostTimeout/2
	p.Replacing = r.replacing.dynos
	var acts []action
	for _, app := range apps {
		r.takeCycle(app, p)
		d := reconcile(r.view, app, p)
		r.report(app, d)
		for _, a := range d.Actions {
			r.view.do(a)
		}
		acts = append(acts, d.Actions...)
	}
	if len(acts) == 0 {
		return nil
	}
	failed := r.m.write(ctx, acts)
	for i, a := range acts {
		if failed[i] {
			r.view.undo(a)
			r.retry[a.app()] = true
		}
	}
	return nil
}

// report notes what a decision says beyond its actions: whether the app
// waits for routers, how much of it found no host (logged once per
// reason).
func (r *runState) report(app string, d decision) {
	if d.Waiting {
		r.waiting[app] = true
	} else {
		delete(r.waiting, app)
	}
	cur := map[string]string{}
	mb := 0
	for _, pl := range d.Unplaced {
		cur[app+"/"+pl.Request.Name] = pl.Reason
		mb += pl.Request.MemoryMB
	}
	if mb > 0 {
		r.short[app] = mb
	} else {
		delete(r.short, app)
	}
	for k := range r.unplaced {
		if _, ok := cur[k]; !ok && strings.HasPrefix(k, app+"/") {
			delete(r.unplaced, k)
		}
	}
	for _, pl := range d.Unplaced {
		k := app + "/" + pl.Request.Name
		if r.unplaced[k] != pl.Reason {
			r.unplaced[k] = pl.Reason
			r.m.log.Warn("dyno unplaceable", "app", app, "dyno", pl.Request.Name, "reason", pl.Reason)
		}
	}
}

// pause waits d between sessions, still taking in background results.
func (r *runState) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case fn := <-r.done:
			fn(r)
		case <-t.C:
			return true
		}
	}
}

// background runs work in its own goroutine under ctx; the function it
// returns is applied by Run's goroutine (never while a session is being
// reset, so it must touch only what outlives sessions, or check r.view).
func (r *runState) background(ctx context.Context, work func(ctx context.Context) func(*runState)) {
	r.bg.Go(func() {
		res := work(ctx)
		select {
		case r.done <- res:
		case <-ctx.Done():
		}
	})
}

// isCanceled reports whether err only says the manager is stopping.
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled)
}
