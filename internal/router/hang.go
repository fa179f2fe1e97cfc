package router

import (
	"bufio"
	"context"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// A dyno that accepts connections but does not answer (frozen, deadlocked,
// every worker stuck) is not caught by connect failures and quarantine.
// This router's rule for it:
//
//	request ─► H12 (no headers in RequestTimeout) or H15 (response went idle)
//	              │ counts a hang; any response headers reset the count
//	              ▼ HangLimit (3) in a row
//	          hung: reported in routers/<id> (the dyno manager replaces it,
//	              │ start-before-stop), and ejected from this router's
//	              │ rotation unless it is the app's last dyno not ejected
//	              ▼ every ProbeInterval (5 s)
//	          probe: TCP connect + "OPTIONS * HTTP/1.1", any response within
//	              │ ProbeInterval counts
//	              ▼ answered
//	          back in rotation, count reset, report withdrawn
//
// Three in a row rather than one: a single H12 is most often the app's
// own slow endpoint, and ejecting on it would move the load (and the
// slowness) to the other dynos. Requests already on an ejected dyno run
// their course. The probe asks "OPTIONS *", which servers answer without
// running application code (Go answers it itself; others route it to the
// app like any path), so it never acts on the app's data.
type hangState struct {
	strikes atomic.Int64 // hangs in a row
	ejected atomic.Bool
	mu      sync.Mutex
	since   time.Time // when it was found hung; zero: not hung
}

// answered resets the count: the dyno sent response headers. One atomic
// load per request while there is nothing to reset.
func (h *hangState) answered() {
	if h.strikes.Load() != 0 {
		h.strikes.Store(0)
	}
}

// strike counts a hang and reports whether it makes the dyno hung just
// now (it was not already).
func (h *hangState) strike(limit int, now time.Time) bool {
	if h.strikes.Add(1) < int64(limit) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.since.IsZero() {
		return false
	}
	h.since = now
	return true
}

// hungSince returns when the dyno was found hung; zero when it is not.
func (h *hangState) hungSince() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since
}

// recovered clears the hang: the probe got an answer.
func (h *hangState) recovered() {
	h.mu.Lock()
	h.since = time.Time{}
	h.mu.Unlock()
	h.strikes.Store(0)
	h.ejected.Store(false)
}

// hung is the set of dynos this router found hung and has not seen
// recover, for its record. Owned by no goroutine: guarded by mu.
type hung struct {
	mu      sync.Mutex
	eps     map[*endpoint]string // → app
	changed chan struct{}        // signalled (never blocking) on change
}

// maxHungReported bounds the hung dynos one record lists.
const maxHungReported = 100

func (s *hung) add(app string, ep *endpoint) {
	s.mu.Lock()
	if s.eps == nil {
		s.eps = map[*endpoint]string{}
	}
	s.eps[ep] = app
	s.mu.Unlock()
	s.notify()
}

func (s *hung) remove(ep *endpoint) {
	s.mu.Lock()
	_, ok := s.eps[ep]
	delete(s.eps, ep)
	s.mu.Unlock()
	if ok {
		s.notify()
	}
}

func (s *hung) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// list returns the report: the hung dynos still in the table, oldest
// first, at most maxHungReported.
func (s *hung) list() []grid.HungDyno {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []grid.HungDyno
	for ep, app := range s.eps {
		if ep.id == "" || ep.retired.Load() {
			continue
		}
		out = append(out, grid.HungDyno{ID: ep.id, App: app, Name: ep.dyno, Since: ep.hang.hungSince().UTC()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > maxHungReported {
		out = out[:maxHungReported]
	}
	return out
}

// hangStrike counts a hang of ep (H12 or H15) for app and, at the
// HangLimit'th in a row, declares it hung: reported, ejected unless it is
// the app's last dyno in rotation, and probed until it answers.
func (r *Router) hangStrike(app string, ep *endpoint) {
	if !ep.hang.strike(r.cfg.HangLimit, r.cfg.Now()) {
		// Hung already but kept as the app's last dyno: another may have
		// come up since.
		if !ep.hang.hungSince().IsZero() && !ep.hang.ejected.Load() && r.eject(app, ep) {
			r.cfg.Logger.Warn("hung dyno ejected", "app", app, "dyno", ep.dyno, "addr", ep.addr)
		}
		return
	}
	ejected := r.eject(app, ep)
	r.cfg.Logger.Warn("dyno hung", "app", app, "dyno", ep.dyno, "addr", ep.addr, "ejected", ejected)
	r.hung.add(app, ep)
	select {
	case <-r.stopping:
		return // Run has ended: nobody would stop a probe
	default:
	}
	r.probes.Add(1)
	go func() {
		defer r.probes.Done()
		r.probe(app, ep)
	}()
}

// eject takes ep out of rotation unless no other dyno of app would be
// left in it. One lock for all apps: ejections are rare, and two dynos of
// an app ejecting at once must not both see the other still in.
func (r *Router) eject(app string, ep *endpoint) bool {
	r.ejectMu.Lock()
	defer r.ejectMu.Unlock()
	rt := r.table.Load().routes[app]
	if rt == nil {
		return false
	}
	for _, e := range rt.endpoints {
		if e != ep && !e.hang.ejected.Load() && !e.retired.Load() {
			ep.hang.ejected.Store(true)
			return true
		}
	}
	return false
}

// probe checks a hung dyno every ProbeInterval until it answers, leaves
// the table, or the router stops; then withdraws the report.
func (r *Router) probe(app string, ep *endpoint) {
	defer r.hung.remove(ep)
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stopping:
			return
		case <-t.C:
		}
		if ep.retired.Load() {
			return
		}
		if r.probeOnce(app, ep) {
			ep.lat.forget() // its timeouts say nothing about it now
			ep.hang.recovered()
			r.cfg.Logger.Info("hung dyno answers again", "app", app, "dyno", ep.dyno, "addr", ep.addr)
			return
		}
	}
}

// probeOnce sends one probe request on a fresh connection and reports
// whether any response came back within ProbeInterval.
func (r *Router) probeOnce(app string, ep *endpoint) bool {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ProbeInterval)
	defer cancel()
	c, err := r.dialer.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	host := app
	if r.cfg.Domain != "" {
		host += "." + r.cfg.Domain
	}
	req := "OPTIONS * HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: grid-router-probe\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return false
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	res.Body.Close()
	return true
}
