package router

import (
	"context"
	"errors"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// writeTimeout bounds one write of the router's record.
const writeTimeout = 2 * time.Second

var errNotConnected = errors.New("router: store not connected")

// setRevision records that the published table includes every dynos
// bucket change up to rev, and wakes the reporter. Called only after the
// table is published, so the reporter can never claim a revision before
// requests are routed by it.
func (r *Router) setRevision(rev uint64) {
	if r.revision.Swap(rev) == rev {
		return
	}
	select {
	case r.published <- struct{}{}:
	default: // the reporter has a wake-up pending; it reads the latest
	}
}

// report keeps the router's record, routers/<id>, current until ctx
// ends. The dyno manager stops an old dyno only once every live router's
// record shows a revision at or past the one where its replacement came
// up, so a new revision is written promptly: as soon as it is published,
// but at most once per AckInterval, so a burst of changes costs one write.
// Without changes the record is rewritten every Heartbeat as a sign of
// life. The record also lists the dynos this router holds hung
// (hang.go), rewritten as soon as that list changes. Nothing is written before the first table, nor while the store is
// unreachable (a write queued then would land late with a stale
// heartbeat).
//
// A record that claims a revision is always true: the revision is read
// after the table including it was published (setRevision), and a
// re-sync that cannot complete leaves the old table and the old revision
// in place.
func (r *Router) report(ctx context.Context) {
	var (
		sent    uint64    // last revision written
		written time.Time // when (monotonic, for AckInterval)
		failing bool      // the last write failed; logged once
	)
	beat := time.NewTimer(r.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
		case <-r.published:
			if r.revision.Load() == sent {
				continue
			}
			if !sleep(ctx, r.cfg.AckInterval-time.Since(written)) {
				return
			}
		case <-r.hung.changed:
			if !sleep(ctx, r.cfg.AckInterval-time.Since(written)) {
				return
			}
		}
		beat.Reset(r.cfg.Heartbeat)
		if !r.isReady() {
			continue
		}
		rev := r.revision.Load()
		written = time.Now()
		err := r.writeState(ctx, rev)
		switch {
		case err == nil:
			if failing {
				r.cfg.Logger.Info("router record written again", "revision", rev)
			}
			sent, failing = rev, false
		case ctx.Err() != nil:
			return
		case !failing:
			r.cfg.Logger.Warn("cannot write router record, retrying every heartbeat", "err", err)
			failing = true
		}
	}
}

func (r *Router) writeState(ctx context.Context, rev uint64) error {
	st := r.cfg.Store
	if !st.Conn().IsConnected() {
		return errNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return st.PutRouterState(ctx, grid.RouterState{ID: st.Role().ID, Revision: rev, HeartbeatAt: r.cfg.Now().UTC(), Hung: r.hung.list()})
}

func (r *Router) isReady() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// sleep waits d (nothing when d ≤ 0); false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
