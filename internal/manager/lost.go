package manager

import (
	"context"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// markLost keeps each registered host's control record saying whether the
// manager holds it lost. Routers read it: without it they would go on
// sending requests to a dead host's dynos until their records are
// forgotten (ForgetAfter), each such request paying a failed connection
// before it is retried elsewhere. The manager is the one judge of
// liveness, so a router that cannot see heartbeats (NATS down) prunes
// nothing, and a manager whose view went stale stops before this runs
// (runState.fresh).
func (r *runState) markLost(bctx context.Context, now time.Time) {
	for id := range r.view.hosts {
		lost := r.view.hostState(id, now, r.m.cfg.HostTimeout) == grid.HostLost
		if r.view.controls[id].Lost == lost || r.marking[id] {
			continue
		}
		r.marking[id] = true
		v := r.view
		r.background(bctx, func(ctx context.Context) func(*runState) {
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			defer cancel()
			c, err := r.m.cfg.Store.UpdateHostControl(wctx, id, func(c *grid.HostControl) error {
				c.Lost = lost
				return nil
			})
			return func(r *runState) {
				delete(r.marking, id)
				switch {
				case err != nil:
					if !isCanceled(err) {
						r.m.log.Error("marking host for routers failed; retrying", "host", id, "lost", lost, "err", err)
					}
				case r.view == v:
					v.controls[id] = c // ahead of the watch, so the next tick does not write again
					r.m.log.Info("host marked for routers", "host", id, "lost", lost)
				}
			}
		})
	}
}
