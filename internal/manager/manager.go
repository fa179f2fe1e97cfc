// Package manager is the dyno manager: it turns each app's formation and
// current release into assignments (which host runs which dyno), replaces
// dynos start-before-stop when the release or a type's restart epoch
// changes, moves dynos off lost hosts and forgets dyno records nobody owns.
//
// It only writes assignments and deletes orphaned dyno records. It must
// never start, stop or signal a process itself (hosts do), never write an
// app's formation, release or config, and never write app log lines.
package manager

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

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
	// it is lost and its dynos are placed elsewhere. Zero means 6s.
	HostTimeout time.Duration
	// ForgetAfter is how long a dyno record without an assignment may stay
	// down or crashed on a live host before the manager deletes it. Zero
	// means 45s (longer than a host's 30s stop grace).
	ForgetAfter time.Duration
	// Resync is the period of a full reconcile of every app, which catches
	// time-based changes (lost hosts, records to forget) and failed writes.
	// Zero means 5s.
	Resync time.Duration
}

// debounce is how long the manager waits after a change for more changes
// before reconciling: a burst of events becomes one decision per app.
const debounce = 2 * time.Millisecond

// tick is how often host liveness and retries are checked.
const tick = time.Second

// writeTimeout bounds one store write.
const writeTimeout = 10 * time.Second

// Manager is the dyno manager. Run exactly one per grid (leader election
// is not implemented yet).
type Manager struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
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
	if m.cfg.HostTimeout <= 0 {
		m.cfg.HostTimeout = 6 * time.Second
	}
	if m.cfg.ForgetAfter <= 0 {
		m.cfg.ForgetAfter = 45 * time.Second
	}
	if m.cfg.Resync <= 0 {
		m.cfg.Resync = 5 * time.Second
	}
	return m
}

// Run watches the store and reconciles every app whose state changes until
// ctx ends; then it returns nil. It returns an error only if a watch
// cannot be set up or ends on its own.
func (m *Manager) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := m.watch(ctx)
	if err != nil {
		return err
	}
	r := &runState{m: m, view: newView(), dirty: map[string]bool{}, retry: map[string]bool{}, unplaced: map[string]string{}}
	return r.loop(ctx, w)
}

// watches are the five streams the manager follows.
type watches struct {
	apps        <-chan store.Event[grid.App]
	formations  <-chan store.Event[grid.Formation]
	assignments <-chan store.Event[grid.Assignment]
	dynos       <-chan store.Event[grid.Dyno]
	hosts       <-chan store.Event[grid.Host]
}

func (m *Manager) watch(ctx context.Context) (watches, error) {
	var w watches
	var err error
	st := m.cfg.Store
	if w.apps, err = st.WatchApps(ctx); err != nil {
		return w, err
	}
	if w.formations, err = st.WatchFormations(ctx); err != nil {
		return w, err
	}
	if w.assignments, err = st.WatchAssignments(ctx, ""); err != nil {
		return w, err
	}
	if w.dynos, err = st.WatchDynos(ctx); err != nil {
		return w, err
	}
	w.hosts, err = st.WatchHosts(ctx)
	return w, err
}

// runState is what one Run keeps; only Run's goroutine touches it.
type runState struct {
	m        *Manager
	view     *view
	synced   int             // watches that have delivered their initial values
	dirty    map[string]bool // apps to reconcile at the next debounce
	retry    map[string]bool // apps whose writes failed; retried at the next tick
	live     []string        // live hosts at the last tick
	resynced time.Time
	unplaced map[string]string // "<app>/<dyno>" → reason last logged
}

func (r *runState) loop(ctx context.Context, w watches) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		ok := true
		select {
		case <-ctx.Done():
			return nil
		case ev, open := <-w.apps:
			if ok = open; ok {
				r.event(ev.Synced, func() { r.mark(r.view.applyApp(ev)) })
			}
		case ev, open := <-w.formations:
			if ok = open; ok {
				r.event(ev.Synced, func() { r.mark(r.view.applyFormation(ev)) })
			}
		case ev, open := <-w.assignments:
			if ok = open; ok {
				r.event(ev.Synced, func() { r.mark(r.view.applyAssignment(ev)) })
			}
		case ev, open := <-w.dynos:
			if ok = open; ok {
				r.event(ev.Synced, func() { r.mark(r.view.applyDyno(ev, r.m.now())) })
			}
		case ev, open := <-w.hosts:
			if ok = open; ok {
				r.event(ev.Synced, func() {
					if r.view.applyHost(ev, r.m.now(), r.m.cfg.HostTimeout) {
						r.markAll()
					}
				})
			}
		case <-ticker.C:
			r.tick(r.m.now())
		case <-timer.C:
			armed = false
			r.reconcileDirty(ctx)
		}
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("manager: a store watch ended: %w", grid.ErrUnavailable)
		}
		if r.synced == 5 && len(r.dirty) > 0 && !armed {
			timer.Reset(debounce)
			armed = true
		}
	}
}

// event applies one watch event; the Synced marker counts towards the
// first reconcile, which waits for all five watches so that a partial
// view never deletes anything.
func (r *runState) event(synced bool, apply func()) {
	if !synced {
		apply()
		return
	}
	r.synced++
	if r.synced == 5 {
		r.m.log.Info("manager synced", "apps", len(r.view.apps), "assignments", len(r.view.assignments), "hosts", len(r.view.hosts))
		r.resynced = r.m.now()
		r.live = r.view.liveSet(r.resynced, r.m.cfg.HostTimeout)
		r.markAll()
	}
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

// tick notices hosts becoming lost, retries failed writes and resyncs.
func (r *runState) tick(now time.Time) {
	if r.synced < 5 {
		return
	}
	live := r.view.liveSet(now, r.m.cfg.HostTimeout)
	if !slices.Equal(live, r.live) {
		r.m.log.Info("live hosts changed", "hosts", live)
		r.live = live
		r.markAll()
	}
	if now.Sub(r.resynced) >= r.m.cfg.Resync {
		r.resynced = now
		r.markAll()
	}
	for app := range r.retry {
		r.dirty[app] = true
	}
	clear(r.retry)
}

func (r *runState) policy() policy {
	return policy{
		Now:         r.m.now(),
		HostTimeout: r.m.cfg.HostTimeout,
		ForgetAfter: r.m.cfg.ForgetAfter,
		NewID:       store.NewID,
	}
}

// reconcileDirty decides for every dirty app, applies the decisions to the
// view at once (so the next decision builds on them), then writes them all
// in parallel and undoes in the view what failed to write.
func (r *runState) reconcileDirty(ctx context.Context) {
	apps := make([]string, 0, len(r.dirty))
	for app := range r.dirty {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	clear(r.dirty)
	var acts []action
	for _, app := range apps {
		d := reconcile(r.view, app, r.policy())
		r.report(app, d)
		for _, a := range d.Actions {
			r.view.do(a)
		}
		acts = append(acts, d.Actions...)
	}
	if len(acts) == 0 {
		return
	}
	failed := r.m.write(ctx, acts)
	for i, a := range acts {
		if failed[i] {
			r.view.undo(a)
			r.retry[a.app()] = true
		}
	}
}

// report logs the dynos that could not be placed, once per reason.
func (r *runState) report(app string, d decision) {
	cur := map[string]string{}
	for _, pl := range d.Unplaced {
		cur[app+"/"+pl.Request.Name] = pl.Reason
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

// write performs the actions in parallel and reports which failed.
func (m *Manager) write(ctx context.Context, acts []action) []bool {
	failed := make([]bool, len(acts))
	var g errgroup.Group
	g.SetLimit(16)
	for i, a := range acts {
		g.Go(func() error {
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			defer cancel()
			if err := m.writeOne(wctx, a); err != nil {
				failed[i] = true
				if ctx.Err() == nil {
					m.log.Error("store write failed", "app", a.app(), "action", a.String(), "err", err)
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	return failed
}

func (m *Manager) writeOne(ctx context.Context, a action) error {
	st := m.cfg.Store
	switch a.Op {
	case opPut:
		m.log.Info("assignment created", "app", a.Assignment.App, "dyno", a.Assignment.Name, "dyno_id", a.Assignment.DynoID, "host", a.Assignment.Host, "release", a.Assignment.Release, "epoch", a.Assignment.Epoch)
		return st.PutAssignment(ctx, a.Assignment)
	case opDelete:
		m.log.Info("assignment deleted", "app", a.Assignment.App, "dyno", a.Assignment.Name, "dyno_id", a.Assignment.DynoID, "host", a.Assignment.Host, "reason", a.Why)
		return st.DeleteAssignment(ctx, a.Assignment.Host, a.Assignment.DynoID)
	default:
		m.log.Info("dyno record forgotten", "app", a.Dyno.App, "dyno", a.Dyno.Name, "dyno_id", a.Dyno.ID, "host", a.Dyno.Host, "reason", a.Why)
		return st.DeleteDyno(ctx, a.Dyno)
	}
}
