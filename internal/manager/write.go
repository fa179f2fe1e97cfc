package manager

import (
	"context"

	"golang.org/x/sync/errgroup"
)

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
		m.log.Info("assignment created", "app", a.Assignment.App, "dyno", a.Assignment.Name, "dyno_id", a.Assignment.DynoID, "host", a.Assignment.Host, "cpus", a.Assignment.CPUs, "release", a.Assignment.Release, "epoch", a.Assignment.Epoch)
		return st.PutAssignment(ctx, a.Assignment)
	case opDelete:
		m.log.Info("assignment deleted", "app", a.Assignment.App, "dyno", a.Assignment.Name, "dyno_id", a.Assignment.DynoID, "host", a.Assignment.Host, "reason", a.Why)
		return st.DeleteAssignment(ctx, a.Assignment.Host, a.Assignment.DynoID)
	default:
		m.log.Info("dyno record forgotten", "app", a.Dyno.App, "dyno", a.Dyno.Name, "dyno_id", a.Dyno.ID, "host", a.Dyno.Host, "reason", a.Why)
		return st.DeleteDyno(ctx, a.Dyno)
	}
}
