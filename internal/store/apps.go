package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// CreateApp stores a new app. ErrConflict if the name is taken.
func (s *Store) CreateApp(ctx context.Context, app grid.App) error {
	_, err := s.apps.create(ctx, app.Name, app)
	if errors.Is(err, grid.ErrConflict) {
		return fmt.Errorf("name %s is already taken: %w", app.Name, grid.ErrConflict)
	}
	if err != nil {
		return err
	}
	return s.putMeta(ctx, app)
}

// putMeta refreshes the app's AppMeta, the secret-free copy routers and
// hosts watch. It is derived from the app record after every change; a
// crash between the two writes is repaired by the next change or by
// RepairAppMeta.
func (s *Store) putMeta(ctx context.Context, app grid.App) error {
	_, err := s.appmeta.put(ctx, app.Name, app.Meta())
	return err
}

// RepairAppMeta rewrites every app's AppMeta from the app records and drops
// metas of apps that are gone. Servers run it at start.
func (s *Store) RepairAppMeta(ctx context.Context) error {
	apps, err := s.Apps(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, a := range apps {
		have[a.Name] = true
		if err := s.putMeta(ctx, a); err != nil {
			return err
		}
	}
	metas, err := s.appmeta.list(ctx, ">")
	if err != nil {
		return err
	}
	for _, m := range metas {
		if !have[m.Name] {
			if err := s.appmeta.delete(ctx, m.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// WatchAppMeta streams changes to apps' secret-free metadata.
func (s *Store) WatchAppMeta(ctx context.Context) (<-chan Event[grid.AppMeta], error) {
	return s.appmeta.watch(ctx, ">")
}

// App returns the app with that name.
func (s *Store) App(ctx context.Context, name string) (grid.App, error) {
	if grid.ValidateAppName(name) != nil {
		return grid.App{}, fmt.Errorf("app %q: %w", name, grid.ErrNotFound)
	}
	a, _, err := s.apps.get(ctx, name)
	return a, err
}

// Apps lists every app, sorted by name.
func (s *Store) Apps(ctx context.Context) ([]grid.App, error) {
	apps, err := s.apps.list(ctx, ">")
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	return apps, err
}

// UpdateApp changes an app with compare-and-set. fn may run more than once.
func (s *Store) UpdateApp(ctx context.Context, name string, fn func(*grid.App) error) (grid.App, error) {
	a, err := s.apps.update(ctx, name, false, func(a *grid.App) error {
		if err := fn(a); err != nil {
			return err
		}
		a.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		return a, err
	}
	return a, s.putMeta(ctx, a)
}

// DeleteApp removes the app record. Its releases, formation, slugs and
// dynos are removed by their owners (see DeleteAppData and the manager).
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	if err := s.apps.delete(ctx, name); err != nil {
		return err
	}
	return s.appmeta.delete(ctx, name)
}

// WatchApps streams changes to app records.
func (s *Store) WatchApps(ctx context.Context) (<-chan Event[grid.App], error) {
	return s.apps.watch(ctx, ">")
}

// CommitRelease makes a new release current. next receives the app as it is
// now and returns the release to create; CommitRelease numbers it, stamps
// it and commits it by compare-and-set on the app record, which is the one
// point of truth (so two concurrent config changes can never both build on
// the same base). The release history record is written after the commit.
// next may be called more than once. The release's Reach is set here, from
// the app's attachments as they are now.
func (s *Store) CommitRelease(ctx context.Context, app string, next func(cur grid.App) (grid.Release, error)) (grid.Release, error) {
	var rel grid.Release
	a, err := s.UpdateApp(ctx, app, func(a *grid.App) error {
		r, err := next(*a)
		if err != nil {
			return err
		}
		r.Version = a.ReleaseSeq + 1
		r.ID = NewID()
		r.CreatedAt = time.Now().UTC()
		if r.Status == "" {
			r.Status = grid.ReleaseSucceeded
		}
		if r.Config == nil {
			r.Config = map[string]string{}
		}
		if r.Reach, err = s.reach(ctx, app); err != nil {
			return err
		}
		a.ReleaseSeq, a.Release, rel = r.Version, r, r
		return nil
	})
	if err != nil {
		return grid.Release{}, err
	}
	return rel, s.recordRelease(ctx, a.Name, a.Release)
}

// RecordFailedRelease numbers r and records it as failed, without making
// it current: a release whose release command failed keeps its version,
// as on Heroku, and the app keeps running the release before it.
func (s *Store) RecordFailedRelease(ctx context.Context, app string, r grid.Release) (grid.Release, error) {
	_, err := s.UpdateApp(ctx, app, func(a *grid.App) error {
		a.ReleaseSeq++
		r.Version = a.ReleaseSeq
		return nil
	})
	if err != nil {
		return grid.Release{}, err
	}
	r.ID, r.CreatedAt, r.Status = NewID(), time.Now().UTC(), grid.ReleaseFailed
	if r.Config == nil {
		r.Config = map[string]string{}
	}
	return r, s.recordRelease(ctx, app, r)
}

func (s *Store) recordRelease(ctx context.Context, app string, r grid.Release) error {
	_, err := s.releases.put(ctx, releaseKey(app, r.Version), r)
	return err
}

func releaseKey(app string, v int) string { return app + "." + strconv.Itoa(v) }

// Release returns version v of an app's releases.
func (s *Store) Release(ctx context.Context, app string, v int) (grid.Release, error) {
	r, _, err := s.releases.get(ctx, releaseKey(app, v))
	if errors.Is(err, grid.ErrNotFound) {
		return r, fmt.Errorf("release v%d of app %s: %w", v, app, grid.ErrNotFound)
	}
	return r, err
}

// Releases lists an app's releases, oldest first. If the current release's
// history record was lost (a crash between commit and record), it is
// restored from the app record here.
func (s *Store) Releases(ctx context.Context, app string) ([]grid.Release, error) {
	a, err := s.App(ctx, app)
	if err != nil {
		return nil, err
	}
	rs, err := s.releases.list(ctx, app+".*")
	if err != nil {
		return nil, err
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Version < rs[j].Version })
	if a.Release.Version > 0 && (len(rs) == 0 || rs[len(rs)-1].Version < a.Release.Version) {
		if err := s.recordRelease(ctx, app, a.Release); err != nil {
			return nil, err
		}
		rs = append(rs, a.Release)
	}
	return rs, nil
}

// DeleteAppData removes an app's releases, formation, slugs, domains,
// certificates and builds. Call it after DeleteApp; it is safe to repeat.
func (s *Store) DeleteAppData(ctx context.Context, app string) error {
	rs, err := s.releases.list(ctx, app+".*")
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := s.releases.delete(ctx, releaseKey(app, r.Version)); err != nil {
			return err
		}
	}
	slugs, err := s.Slugs(ctx, app)
	if err != nil {
		return err
	}
	for _, sl := range slugs {
		if err := s.DeleteSlug(ctx, sl.ID); err != nil {
			return err
		}
	}
	if err := s.deleteAppDomains(ctx, app); err != nil {
		return err
	}
	if err := s.deleteAppCerts(ctx, app); err != nil {
		return err
	}
	if s.create {
		if err := s.deleteAppBuilds(ctx, app); err != nil {
			return err
		}
		if err := s.deleteAppDrains(ctx, app); err != nil {
			return err
		}
	}
	return s.formations.delete(ctx, app)
}

// Formation returns an app's formation; an app without one has no types.
func (s *Store) Formation(ctx context.Context, app string) (grid.Formation, error) {
	f, _, err := s.formations.get(ctx, app)
	if errors.Is(err, grid.ErrNotFound) {
		return grid.Formation{App: app, Types: map[string]grid.FormationType{}}, nil
	}
	return f, err
}

// UpdateFormation changes an app's formation with compare-and-set.
func (s *Store) UpdateFormation(ctx context.Context, app string, fn func(*grid.Formation) error) (grid.Formation, error) {
	return s.formations.update(ctx, app, true, func(f *grid.Formation) error {
		f.App = app
		if f.Types == nil {
			f.Types = map[string]grid.FormationType{}
		}
		return fn(f)
	})
}

// WatchFormations streams changes to formations.
func (s *Store) WatchFormations(ctx context.Context) (<-chan Event[grid.Formation], error) {
	return s.formations.watch(ctx, ">")
}

// NewID returns a random UUID (version 4) as text.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b)
	return strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-")
}
