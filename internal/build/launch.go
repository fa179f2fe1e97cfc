package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
)

// launch stores the slug, adopts the tree into the slug cache, and
// commits the release and the formation.
func (b *Builder) launch(ctx context.Context, j *job, req Request, res *built, out *output) (grid.Release, error) {
	out.step("Launching...")
	meta := grid.Slug{
		ID: store.NewID(), App: j.app.Name, Commit: req.Commit, BuildpackDescription: res.buildpack,
		ProcessTypes: res.types, Size: res.info.Size, Checksum: res.info.Checksum, Stack: grid.Stack,
		CreatedAt: time.Now().UTC(),
	}
	if err := b.storeSlug(ctx, meta, res.archive); err != nil {
		return grid.Release{}, err
	}
	// Unpacked here before committing, so this host's agent finds the
	// tree when the manager places the first dyno here. (The built tree
	// itself is on the build's volume, which goes.)
	cached := true
	if _, err := b.cfg.Slugs.Path(ctx, meta.ID, j.app.UID, func(context.Context) (io.ReadCloser, error) { return os.Open(res.archive) }); err != nil {
		cached = false
		b.log.Warn("slug not unpacked into this host's cache; its agent will fetch it", "app", j.app.Name, "slug", meta.ID, "err", err)
	}
	var added []string
	rel, err := b.cfg.Store.CommitRelease(ctx, j.app.Name, func(cur grid.App) (grid.Release, error) {
		config, names, err := withDefaults(cur.Release.Config, res.configVars)
		if err != nil {
			return grid.Release{}, fmt.Errorf("bin/release's config_vars: %w", err)
		}
		added = names
		return grid.Release{Description: grid.DeployDescription(req.Commit), SlugID: meta.ID, Commit: req.Commit,
			Config: config, User: req.User}, nil
	})
	if err != nil {
		b.forgetSlug(meta.ID)
		if cached {
			if rerr := b.cfg.Slugs.Remove(meta.ID); rerr != nil {
				b.log.Warn("unreleased slug tree not removed", "slug", meta.ID, "err", rerr)
			}
		}
		return grid.Release{}, err
	}
	// The release is committed: from here on the deploy has succeeded, so
	// later failures are logged, not returned.
	if len(added) > 0 {
		out.detail("Set config vars the buildpack asks for: %s", strings.Join(added, ", "))
	}
	b.apiLog(j.app.Name, "Deploy %s by user %s", short(req.Commit), req.User)
	b.apiLog(j.app.Name, "Release v%d created by user %s", rel.Version, req.User)
	b.updateFormation(ctx, j.app.Name, res.types, req.User)
	out.detail("Released v%d", rel.Version)
	if b.cfg.WebURL != nil {
		out.detail("%s deployed to Grid", b.cfg.WebURL(j.app.Name))
	}
	return rel, nil
}

// withDefaults returns config with the defaults it lacks added, and
// their names, sorted; within the limits config:set has.
func withDefaults(config, defaults map[string]string) (map[string]string, []string, error) {
	patch := map[string]*string{}
	var added []string
	for k, v := range defaults {
		if _, ok := config[k]; !ok {
			patch[k] = &v
			added = append(added, k)
		}
	}
	if len(added) == 0 {
		return config, nil, nil
	}
	sort.Strings(added)
	next, _, err := grid.PatchConfig(config, patch)
	return next, added, err
}

func (b *Builder) storeSlug(ctx context.Context, meta grid.Slug, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := b.cfg.Store.PutSlug(ctx, meta, f); err != nil {
		b.forgetSlug(meta.ID)
		return fmt.Errorf("store slug: %w", err)
	}
	return nil
}

// forgetSlug removes a slug that will not be released. Best effort: a
// slug without a release is garbage, not corruption.
func (b *Builder) forgetSlug(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.cfg.Store.DeleteSlug(ctx, id); err != nil {
		b.log.Warn("unreleased slug not deleted", "slug", id, "err", err)
	}
}

// updateFormation gives the formation the slug's process types; the
// first deploy also scales web to 1, which is logged as Heroku does.
func (b *Builder) updateFormation(ctx context.Context, app string, types map[string]string, user string) {
	var first bool
	f, err := b.cfg.Store.UpdateFormation(ctx, app, func(f *grid.Formation) error {
		first = len(f.Types) == 0
		*f = f.WithProcessTypes(types)
		return nil
	})
	if err != nil {
		b.log.Error("formation not updated", "app", app, "err", err)
		return
	}
	if first && len(f.Types) > 0 {
		b.apiLog(app, "Scaled to %s by user %s", scaledTo(f), user)
	}
}

// waitForDynos waits until a web dyno of release version is up, polling
// the dyno records, for at most WaitForDynos.
func (b *Builder) waitForDynos(ctx context.Context, app string, version int, out *output) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.WaitForDynos)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ds, err := b.cfg.Store.Dynos(ctx, app)
		for _, d := range ds {
			if err == nil && d.Type == "web" && d.Release == version && d.State == grid.DynoUp {
				out.detail("Waiting for web dynos... done")
				return
			}
		}
		select {
		case <-ctx.Done():
			out.detail("Waiting for web dynos... not up after %s; see `grid ps` and `grid logs`", b.cfg.WaitForDynos)
			return
		case <-tick.C:
		}
	}
}

// apiLog writes an app[api] event line.
func (b *Builder) apiLog(app, format string, args ...any) {
	b.cfg.Logs.Write(logs.Line{App: app, Source: "app", Dyno: "api", Text: fmt.Sprintf(format, args...)})
}

func short(commit string) string {
	if len(commit) > 8 {
		return commit[:8]
	}
	return commit
}
