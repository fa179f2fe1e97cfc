package manager

import (
	"context"
	"sort"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/scheduler"
)

// capacity is what the manager remembers about hosts coming and going,
// across sessions:
//
//	Provision ─► joining ─► (heartbeats) up ─► empty for EmptyGrace ─► draining
//	                │                                                    │
//	                │ not heard within ProvisionTimeout                  │ empty
//	                ▼                                                    ▼
//	             Release ─► control and host records deleted ◄──── Release
//
// A host drained by hand (grid hosts:drain) enters at draining; one added
// by hand (grid hosts:add) at joining. While any provisioned host has not
// joined, no other is provisioned.
type capacity struct {
	provisioning bool                 // a Provision call is in flight
	retryAt      time.Time            // no Provision before, after a failure
	joining      map[string]time.Time // provisioned, not heard from yet → since
	draining     map[string]bool      // drain requested, control echo pending
	releasing    map[string]bool      // Release in flight
	releaseAt    map[string]time.Time // no Release before, after a failure
	emptySince   map[string]time.Time // up hosts without dynos → since
	short        bool                 // capacity was short at the last check
}

func newCapacity() capacity {
	return capacity{
		joining:    map[string]time.Time{},
		draining:   map[string]bool{},
		releasing:  map[string]bool{},
		releaseAt:  map[string]time.Time{},
		emptySince: map[string]time.Time{},
	}
}

// provisionRetry is the pause after a failed Provision or Release.
const provisionRetry = 30 * time.Second

// capacity releases drained hosts, and compares free capacity with the
// headroom to provision a host or drain empty ones. It waits one host
// timeout after a sync, so that every live host has been heard from and
// every dead one is lost before capacity is judged.
func (r *runState) capacity(bctx context.Context, now time.Time) {
	if now.Sub(r.syncedAt) < r.m.cfg.HostTimeout {
		return
	}
	r.joined(now)
	r.cap.trackEmpty(r.view, now, r.m.cfg.HostTimeout)
	d := decideCapacity(r.view, &r.cap, now, r.m.cfg, sum(r.short))
	if d.Plan.Provision != r.cap.short {
		r.cap.short = d.Plan.Provision
		if d.Plan.Provision {
			r.m.log.Warn("capacity below headroom", "free_mb", d.Plan.FreeMB, "headroom_mb", d.Plan.WantMB, "unplaced_mb", sum(r.short), "provider", r.m.cfg.Provider != nil)
		} else {
			r.m.log.Info("capacity back above headroom", "free_mb", d.Plan.FreeMB, "headroom_mb", d.Plan.WantMB)
		}
	}
	for _, c := range d.Release {
		why := "drained"
		if h, ok := r.view.hosts[c.ID]; !ok {
			why = "never joined"
		} else if lost := now.Sub(h.Seen); lost > r.m.cfg.LostRelease {
			why = "lost for " + lost.Round(time.Second).String()
		}
		r.release(bctx, c, why)
	}
	if d.Provision {
		r.provision(bctx)
	}
	for _, id := range d.Drain {
		r.drain(bctx, id, now)
	}
}

// capacityDecision is what decideCapacity asks for.
type capacityDecision struct {
	Plan      scheduler.HeadroomPlan
	Provision bool               // call Provider.Provision
	Drain     []string           // empty hosts to mark draining
	Release   []grid.HostControl // drained, empty hosts to release
}

// decideCapacity decides from the view and what is in flight; it changes
// nothing. Without a Provider it only reports the plan: hosts joined by
// hand are neither provisioned nor released.
func decideCapacity(v *view, c *capacity, now time.Time, cfg Config, unplacedMB int) capacityDecision {
	d := capacityDecision{Plan: scheduler.Headroom(c.capacities(v, now, cfg.HostTimeout), scheduler.HeadroomPolicy{
		HeadroomMB: cfg.Headroom,
		EmptyGrace: cfg.EmptyGrace,
		MinHosts:   cfg.MinHosts,
		UnplacedMB: unplacedMB,
	})}
	if cfg.Provider == nil {
		return d
	}
	pending := c.provisioning || len(c.joining) > 0
	for _, id := range sortedKeys(v.controls) {
		hc := v.controls[id]
		_, registered := v.hosts[id]
		releasable := hc.Provider != "" && !c.releasing[id] && !now.Before(c.releaseAt[id])
		switch {
		case releasable && registered && now.Sub(v.hosts[id].Seen) > cfg.LostRelease:
			d.Release = append(d.Release, hc) // lost too long: presumed dead
		case hc.Provider == "" || registered && !hc.Draining:
		case !registered && !hc.Draining && now.Sub(v.controlSeen[id]) <= cfg.ProvisionTimeout:
			pending = true // provisioned (by the manager or hosts:add), not joined yet
		case releasable && (!registered || v.empty(id)):
			d.Release = append(d.Release, hc) // drained and empty, or never joined
		}
	}
	d.Provision = d.Plan.Provision && !pending && !now.Before(c.retryAt)
	for _, id := range d.Plan.Release {
		if !c.draining[id] {
			d.Drain = append(d.Drain, id)
		}
	}
	return d
}

// joined stops waiting for provisioned hosts that heartbeat, or that took
// longer than ProvisionTimeout.
func (r *runState) joined(now time.Time) {
	for id, since := range r.cap.joining {
		switch {
		case r.view.placeable(id, now, r.m.cfg.HostTimeout):
			r.m.log.Info("provisioned host joined", "host", id, "after", now.Sub(since))
			delete(r.cap.joining, id)
		case now.Sub(since) > r.m.cfg.ProvisionTimeout:
			r.m.log.Warn("provisioned host did not join", "host", id, "waited", now.Sub(since))
			delete(r.cap.joining, id)
		}
	}
}

// trackEmpty notes since when each up host has had neither assignments
// nor dyno records.
func (c *capacity) trackEmpty(v *view, now time.Time, timeout time.Duration) {
	for id := range v.hosts {
		if v.empty(id) && v.hostState(id, now, timeout) == grid.HostUp {
			if _, ok := c.emptySince[id]; !ok {
				c.emptySince[id] = now
			}
		} else {
			delete(c.emptySince, id)
		}
	}
	for id := range c.emptySince {
		if _, ok := v.hosts[id]; !ok {
			delete(c.emptySince, id)
		}
	}
}

// capacities describes every known host to scheduler.Headroom.
func (c *capacity) capacities(v *view, now time.Time, timeout time.Duration) []scheduler.Capacity {
	var out []scheduler.Capacity
	for _, id := range sortedKeys(v.hosts) {
		hc := scheduler.Capacity{ID: id, MemoryMB: v.hosts[id].MemoryMB, State: v.hostState(id, now, timeout)}
		if c.draining[id] || c.releasing[id] {
			hc.State = grid.HostDraining
		}
		if u := v.use[id]; u != nil {
			hc.ReservedMB, hc.Dynos = u.reservedMB, u.dynos
		}
		hc.Dynos += v.records[id] // so that a dyno still stopping counts
		if since, ok := c.emptySince[id]; ok && hc.Dynos == 0 {
			hc.EmptyFor = now.Sub(since)
		}
		hc.Releasable = v.controls[id].Provider != ""
		out = append(out, hc)
	}
	return out
}

// provision asks the provider for one more host and records its control
// record; the host then counts as joining until it heartbeats.
func (r *runState) provision(bctx context.Context) {
	r.cap.provisioning = true
	r.m.log.Info("provisioning a host")
	r.background(bctx, func(ctx context.Context) func(*runState) {
		c, err := r.m.cfg.Provider.Provision(ctx)
		if err == nil {
			c, err = r.m.recordProvisioned(ctx, c)
		}
		return func(r *runState) {
			r.cap.provisioning = false
			now := r.m.now()
			if c.ID != "" {
				r.cap.joining[c.ID] = now
			}
			if err != nil {
				r.cap.retryAt = now.Add(provisionRetry)
				if !isCanceled(err) {
					r.m.log.Error("provisioning failed", "host", c.ID, "err", err)
				}
				return
			}
			r.m.log.Info("host provisioned", "host", c.ID, "provider", c.Provider, "handle", c.Handle)
		}
	})
}

func (m *Manager) recordProvisioned(ctx context.Context, c grid.HostControl) (grid.HostControl, error) {
	if c.Since.IsZero() {
		c.Since = m.now().UTC()
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return m.cfg.Store.UpdateHostControl(wctx, c.ID, func(cur *grid.HostControl) error {
		*cur = c
		return nil
	})
}

// drain marks an empty host draining so it gets no new dynos; once it is
// (still) empty, releaseDrained releases it. The view is changed at once,
// like for the manager's own assignment writes.
func (r *runState) drain(bctx context.Context, id string, now time.Time) {
	if r.cap.draining[id] {
		return
	}
	r.cap.draining[id] = true
	r.m.log.Info("draining empty host", "host", id, "empty_for", now.Sub(r.cap.emptySince[id]))
	v, before := r.view, r.view.controls[id]
	after := before
	after.ID, after.Draining = id, true
	v.controls[id] = after
	r.background(bctx, func(ctx context.Context) func(*runState) {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		_, err := r.m.cfg.Store.UpdateHostControl(wctx, id, func(c *grid.HostControl) error {
			if !c.Draining {
				c.Draining, c.Since = true, now.UTC()
			}
			return nil
		})
		return func(r *runState) {
			delete(r.cap.draining, id)
			if err == nil {
				return
			}
			if r.view == v && v.controls[id] == after {
				if v.controls[id] = before; before.ID == "" {
					delete(v.controls, id)
				}
			}
			if !isCanceled(err) {
				r.m.log.Error("draining host failed", "host", id, "err", err)
			}
		}
	})
}

func (r *runState) release(bctx context.Context, c grid.HostControl, why string) {
	r.cap.releasing[c.ID] = true
	r.m.log.Info("releasing host", "host", c.ID, "provider", c.Provider, "handle", c.Handle, "reason", why)
	r.background(bctx, func(ctx context.Context) func(*runState) {
		err := r.m.cfg.Provider.Release(ctx, c)
		if err == nil {
			err = r.m.forgetHost(ctx, c.ID)
		}
		return func(r *runState) {
			delete(r.cap.releasing, c.ID)
			if err != nil {
				r.cap.releaseAt[c.ID] = r.m.now().Add(provisionRetry)
				if !isCanceled(err) {
					r.m.log.Error("releasing host failed", "host", c.ID, "err", err)
				}
				return
			}
			delete(r.cap.releaseAt, c.ID)
			r.m.log.Info("host released", "host", c.ID)
		}
	})
}

// forgetHost deletes a released host's control and host records.
func (m *Manager) forgetHost(ctx context.Context, id string) error {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := m.cfg.Store.DeleteHostControl(wctx, id); err != nil {
		return err
	}
	return m.cfg.Store.DeleteHost(wctx, id)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
