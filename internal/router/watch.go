package router

import (
	"context"
	"fmt"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

const (
	maxBatch     = 1024            // watch events coalesced into one table
	rewatchDelay = 1 * time.Second // before re-opening watches that ended
)

// Run keeps the routing table current from the store's watches until ctx
// ends, then returns nil. If the watches end early (the store went away),
// it re-opens them and rebuilds the table from scratch, serving the last
// table meanwhile.
func (r *Router) Run(ctx context.Context) error {
	if r.cfg.Store == nil {
		return fmt.Errorf("router: no store configured: %w", grid.ErrInvalid)
	}
	b := newBuilder()
	for {
		err := r.follow(ctx, b)
		if ctx.Err() != nil {
			return nil
		}
		r.cfg.Logger.Warn("router watches ended, re-opening", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(rewatchDelay):
		}
	}
}

// watches are the three streams the table is made from.
type watches struct {
	apps  <-chan store.Event[grid.AppMeta]
	forms <-chan store.Event[grid.Formation]
	dynos <-chan store.Event[grid.Dyno]
}

// follow applies watch events to a fresh state, publishing a table once
// every watch has delivered its initial values and after each batch of
// changes from then on. It returns when a watch ends.
func (r *Router) follow(ctx context.Context, b *builder) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := r.openWatches(ctx)
	if err != nil {
		return err
	}
	s := newState()
	first := true
	for {
		if err := w.next(ctx, s); err != nil {
			return err
		}
		for i := 0; i < maxBatch; i++ { // coalesce what is already waiting
			if !w.poll(s) {
				break
			}
		}
		if !s.loaded() {
			continue
		}
		base := r.table.Load().routes
		switch {
		case first:
			// A fresh start (or restart) knows nothing of the old table:
			// apps deleted while the watches were down must go too.
			s.allApps()
			b.forgetExcept(s.dirty)
			base, first = nil, false
		case len(s.dirty) == 0:
			continue
		}
		r.publish(b.next(s, base))
	}
}

func (r *Router) openWatches(ctx context.Context) (w watches, err error) {
	st := r.cfg.Store
	if w.apps, err = st.WatchAppMeta(ctx); err != nil {
		return w, err
	}
	if w.forms, err = st.WatchFormations(ctx); err != nil {
		return w, err
	}
	w.dynos, err = st.WatchDynos(ctx)
	return w, err
}

var errWatchEnded = fmt.Errorf("router: store watch ended: %w", grid.ErrUnavailable)

// next waits for one event and applies it.
func (w watches) next(ctx context.Context, s *state) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
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
	default:
		return false
	}
}

// publish makes routes the current table and wakes requests waiting on
// the old one.
func (r *Router) publish(routes map[string]*route) {
	old := r.table.Swap(&table{routes: routes, changed: make(chan struct{})})
	close(old.changed)
	r.readyOnce.Do(func() { close(r.ready) })
}
