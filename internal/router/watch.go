package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

const (
	maxBatch = 1024 // watch events coalesced into one table
	// Re-opening watches backs off from minRewatch, doubling up to
	// maxRewatch, with jitter; a session that synced resets it.
	minRewatch = 100 * time.Millisecond
	maxRewatch = 5 * time.Second
	// syncTimeout bounds opening a session's watches and receiving their
	// initial values; a session that takes longer is abandoned and
	// retried (the last table serves meanwhile).
	syncTimeout = 30 * time.Second
)

// Run keeps the routing table current from the store's watches, and the
// router's record in the store current (report), until ctx ends; then it
// returns nil.
//
// The table comes from watch sessions. A session opens the watches (app
// metadata, formations, dynos, host controls, and domains and
// certificates for the host table), builds a fresh state from their
// initial values and publishes its first table only once all have
// synced, whole, in one swap; from then on it publishes a table after
// each batch of changes. Whatever ends a session, the last table keeps
// serving, unchanged and unpruned, for as long as it takes:
//
//	┌─► open the 3 watches ─► all 3 synced ─► publish the whole table ─► apply changes ─┐
//	│                                                                                   │
//	├─────────────── connection re-established: at once ◄───────────────────────────────┤
//	└─ back-off 0.1 s … 5 s, then until connected ◄── watch ended, sync timed out ◄──────┘
//
// A re-established connection (NATS restarted, or the client moved to
// another server) always starts a new session: the re-sync replaces the
// table wholesale, so whatever changed while the router was cut off,
// dynos removed included, is applied at once.
func (r *Router) Run(ctx context.Context) error {
	if r.cfg.Store == nil {
		return fmt.Errorf("router: no store configured: %w", grid.ErrInvalid)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { r.follow(ctx); return nil })
	g.Go(func() error { r.report(ctx); return nil })
	g.Go(func() error { r.watchLag(ctx); return nil })
	err := g.Wait()
	r.stopProbes()
	return err
}

var (
	errWatchEnded  = fmt.Errorf("router: store watch ended: %w", grid.ErrUnavailable)
	errReconnected = errors.New("router: store connection re-established")
	errSyncTimeout = fmt.Errorf("router: watches did not sync within %v: %w", syncTimeout, grid.ErrUnavailable)
)

// follow runs watch sessions until ctx ends.
func (r *Router) follow(ctx context.Context) {
	nc := r.cfg.Store.Conn()
	link := nc.StatusChanged() // any connection state change
	defer nc.RemoveStatusListener(link)
	b := newBuilder(r.newEndpoint)
	delay := minRewatch
	for {
		for len(link) > 0 { // what happened before this session is moot
			<-link
		}
		synced, err := r.session(ctx, b, linkEvents{link, nc.IsConnected})
		if ctx.Err() != nil {
			return
		}
		if synced {
			delay = minRewatch
		}
		if errors.Is(err, errReconnected) {
			r.cfg.Logger.Info("store connection re-established, re-syncing routes")
			continue
		}
		wait := delay/2 + time.Duration(r.cfg.Rand(int(delay/2)))
		r.cfg.Logger.Warn("router watches ended, serving the last table", "err", err, "retry_in", wait)
		if !pause(ctx, linkEvents{link, nc.IsConnected}, wait) {
			return
		}
		delay = min(2*delay, maxRewatch)
	}
}

// linkEvents are the store connection's state changes.
type linkEvents struct {
	changed   <-chan nats.Status
	connected func() bool
}

// pause waits d, or less if the connection is re-established meanwhile,
// and then for as long as the store is not connected (opening watches
// then would only queue requests). false when ctx ended.
func pause(ctx context.Context, link linkEvents, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			if link.connected() {
				return true
			}
			t.Reset(maxRewatch) // recheck now and then, should an event be lost
		case <-link.changed:
			if link.connected() {
				return true
			}
		}
	}
}

// session runs one watch session (see Run) until a watch ends, the
// connection is re-established, the initial sync times out or ctx ends.
// synced reports whether it published a table.
func (r *Router) session(ctx context.Context, b *builder, link linkEvents) (synced bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeout := time.AfterFunc(syncTimeout, func() { cancel(errSyncTimeout) })
	defer timeout.Stop()
	w, err := r.openWatches(ctx)
	if err != nil {
		return false, causeOr(ctx, err)
	}
	w.link = link
	s := newState()
	for {
		if err := w.next(ctx, s); err != nil {
			return synced, causeOr(ctx, err)
		}
		for i := 0; i < maxBatch; i++ { // coalesce what is already waiting
			if !w.poll(s) {
				break
			}
		}
		if s.loaded() { // names before routes: a first table serves custom domains at once
			r.publishHosts(s.hosts)
		}
		switch {
		case !s.loaded():
			continue
		case !synced:
			// The first table of a session is built from its state alone,
			// never merged into the old one: apps and dynos deleted while
			// the router was cut off go too.
			if !timeout.Stop() {
				return false, causeOr(ctx, errSyncTimeout)
			}
			synced = true
			r.publish(b.next(s, nil))
		case len(s.dirty) > 0:
			r.publish(b.next(s, r.table.Load().routes))
		}
		r.setRevision(s.rev)
	}
}

// causeOr prefers the reason ctx was cancelled (our sync timeout) to the
// error it caused.
func causeOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// watches are the four streams the table is made from, and the store
// connection's state changes.
type watches struct {
	apps  <-chan store.Event[grid.AppMeta]
	forms <-chan store.Event[grid.Formation]
	dynos <-chan store.Event[grid.Dyno]
	ctls  <-chan store.Event[grid.HostControl]
	// domains and certs feed the host table (domains.go); badCert reports
	// a certificate that does not parse.
	domains <-chan store.Event[grid.Domain]
	certs   <-chan store.Event[grid.Cert]
	badCert func(app, name string, err error)
	link    linkEvents
}

func (r *Router) openWatches(ctx context.Context) (w watches, err error) {
	st := r.cfg.Store
	if w.apps, err = st.WatchAppMeta(ctx); err != nil {
		return w, err
	}
	if w.forms, err = st.WatchFormations(ctx); err != nil {
		return w, err
	}
	if w.dynos, err = st.WatchDynos(ctx); err != nil {
		return w, err
	}
	if w.ctls, err = st.WatchHostControls(ctx); err != nil {
		return w, err
	}
	if w.domains, err = st.WatchDomains(ctx); err != nil {
		return w, err
	}
	w.badCert = func(app, name string, err error) {
		r.cfg.Logger.Warn("certificate does not parse, not serving it", "app", app, "cert", name, "err", err)
	}
	w.certs, err = st.WatchCerts(ctx)
	return w, err
}

// next waits for one event and applies it. It fails when a watch ends or
// the connection has been re-established.
func (w watches) next(ctx context.Context, s *state) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.link.changed:
		if w.link.connected() {
			return errReconnected
		}
	case ev, ok := <-w.apps:
		if !ok {
			return errWatchEnded
		}
		s.applyApp(ev)
	case ev, ok := <-w.forms:
		if !ok {
			return errWatchEnded
		}
		s.applyFormation(ev)
	case ev, ok := <-w.dynos:
		if !ok {
			return errWatchEnded
		}
		s.applyDyno(ev)
	case ev, ok := <-w.ctls:
		if !ok {
			return errWatchEnded
		}
		s.applyHostControl(ev)
	case ev, ok := <-w.domains:
		if !ok {
			return errWatchEnded
		}
		s.hosts.applyDomain(ev)
	case ev, ok := <-w.certs:
		if !ok {
			return errWatchEnded
		}
		s.hosts.applyCert(ev, w.badCert)
	}
	return nil
}

// poll applies one event if one is ready. A closed watch is left for next
// to report.
func (w watches) poll(s *state) bool {
	select {
	case ev, ok := <-w.apps:
		if ok {
			s.applyApp(ev)
		}
		return ok
	case ev, ok := <-w.forms:
		if ok {
			s.applyFormation(ev)
		}
		return ok
	case ev, ok := <-w.dynos:
		if ok {
			s.applyDyno(ev)
		}
		return ok
	case ev, ok := <-w.ctls:
		if ok {
			s.applyHostControl(ev)
		}
		return ok
	case ev, ok := <-w.domains:
		if ok {
			s.hosts.applyDomain(ev)
		}
		return ok
	case ev, ok := <-w.certs:
		if ok {
			s.hosts.applyCert(ev, w.badCert)
		}
		return ok
	default:
		return false
	}
}

// publish makes routes the current table, wakes requests waiting on the
// old one, and then retires the endpoints that left it.
func (r *Router) publish(routes map[string]*route, gone []*endpoint) {
	old := r.table.Swap(&table{routes: routes, changed: make(chan struct{})})
	close(old.changed)
	r.readyOnce.Do(func() { close(r.ready) })
	for _, ep := range gone {
		ep.retire()
	}
}
