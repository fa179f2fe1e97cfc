package manager

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// slugsToDelete chooses an app's slugs to delete: those referenced by a
// release older than the newest keep releases, by none of those, not by
// the current release and not by any assignment (a dyno may run it).
// Slugs no release refers to are left alone: a build stores its slug
// before it commits the release, and may be between the two.
func slugsToDelete(releases []grid.Release, current string, slugs []grid.Slug, inUse map[string]bool, keep int) []string {
	rs := append([]grid.Release(nil), releases...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Version > rs[j].Version })
	kept := map[string]bool{current: true}
	old := map[string]bool{}
	for i, r := range rs {
		if i < keep {
			kept[r.SlugID] = true
		} else {
			old[r.SlugID] = true
		}
	}
	var out []string
	for _, s := range slugs {
		if old[s.ID] && !kept[s.ID] && !inUse[s.ID] {
			out = append(out, s.ID)
		}
	}
	sort.Strings(out)
	return out
}

// collectSlugs starts a slug collection every SlugGCInterval (the first
// one interval after Run starts), unless one is running. It decides from
// releases and slugs read fresh from the store, plus the slugs of the
// assignments in the view, which has just been checked fresh.
func (r *runState) collectSlugs(bctx context.Context, now time.Time) {
	if r.gcLast.IsZero() {
		r.gcLast = now
	}
	if r.gcBusy || now.Sub(r.gcLast) < r.m.cfg.SlugGCInterval {
		return
	}
	r.gcLast, r.gcBusy = now, true
	current := map[string]string{}
	for name, a := range r.view.apps {
		current[name] = a.Release.SlugID
	}
	inUse := map[string]bool{}
	for _, a := range r.view.assignments {
		inUse[a.SlugID] = true
	}
	r.background(bctx, func(ctx context.Context) func(*runState) {
		n := r.m.collectSlugs(ctx, current, inUse)
		return func(r *runState) {
			r.gcBusy = false
			if n > 0 {
				r.m.log.Info("old slugs deleted", "slugs", n)
			}
		}
	})
}

// collectSlugs deletes old slugs of the given apps and returns how many.
func (m *Manager) collectSlugs(ctx context.Context, current map[string]string, inUse map[string]bool) int {
	apps := make([]string, 0, len(current))
	for app := range current {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	n := 0
	for _, app := range apps {
		if ctx.Err() != nil {
			break
		}
		ids, err := m.oldSlugs(ctx, app, current[app], inUse)
		for _, id := range ids {
			if err = m.deleteSlug(ctx, app, id); err != nil {
				break
			}
			n++
		}
		if err != nil && !isCanceled(err) && !errors.Is(err, grid.ErrNotFound) {
			m.log.Warn("slug collection failed", "app", app, "err", err)
		}
	}
	return n
}

func (m *Manager) oldSlugs(ctx context.Context, app, current string, inUse map[string]bool) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	rs, err := m.cfg.Store.Releases(rctx, app)
	if err != nil {
		return nil, err
	}
	slugs, err := m.cfg.Store.Slugs(rctx, app)
	if err != nil {
		return nil, err
	}
	return slugsToDelete(rs, current, slugs, inUse, m.cfg.SlugRetention), nil
}

func (m *Manager) deleteSlug(ctx context.Context, app, id string) error {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	m.log.Info("slug deleted", "app", app, "slug", id, "reason", "older than the retained releases")
	return m.cfg.Store.DeleteSlug(wctx, id)
}
