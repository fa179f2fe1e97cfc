package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

// Request is one push to deploy.
type Request struct {
	App    string
	User   string    // email of the pusher
	Commit string    // full sha of the pushed commit
	Source io.Reader // uncompressed tar of the commit's tree (git archive)
	// Output receives the build output as it happens, without "remote: "
	// prefixes. Nil discards it.
	Output io.Writer

	// Build API requests (the rest is for them):

	// Archive says Source is a user's tarball: gzip'd or plain tar, the
	// app at its root or under one top directory (as GitHub's archives
	// are). Otherwise Source is git archive's plain tar.
	Archive bool
	// SourceURL, when Source is nil, is an http(s) URL of such a tarball:
	// it is fetched inside a build sandbox, so that it can reach the
	// internet but not the grid's own services.
	SourceURL string
	// Checksum, when set ("SHA256:<hex>"), must match the tarball.
	Checksum string
	// Buildpacks, when set, replaces the app's buildpack list for this
	// build.
	Buildpacks []string
}

// built is what a successful build hands to the launch.
type built struct {
	buildpack string // "Go"
	types     map[string]string
	// configVars are bin/release's config_vars: set where the app has
	// none of that name.
	configVars map[string]string
	archive    string // path of the packed slug
	info       slug.Info
}

// Deploy builds req.Source into a slug and, if it builds, packs within
// limits and its web process binds $PORT, makes it the app's new release.
// It streams Heroku-style output to req.Output throughout. On failure
// nothing is committed, the build tree is removed and the error wraps
// ErrInvalid for faults of the pushed app (compile error, no process
// types, boot failure, too large: ErrTooLarge), ErrConflict when another
// build of the app did not finish in time, or whatever the store or
// sandbox returned.
func (b *Builder) Deploy(ctx context.Context, req Request) (grid.Release, error) {
	out := newOutput(req.Output, b.cfg.MaxOutputBytes)
	rel, web, err := b.deploy(ctx, req, out)
	if err != nil {
		if !told(err) {
			out.fail("Push rejected: %s", explain(err))
		}
		out.line("", "")
		out.fail("Push failed")
		b.log.Info("deploy failed", "app", req.App, "commit", req.Commit, "err", err)
		return rel, err
	}
	// Outside the app's build lock: the next push need not wait for this.
	if web && b.cfg.WaitForDynos > 0 {
		b.waitForDynos(ctx, req.App, rel.Version, out)
	}
	return rel, nil
}

// deploy does the work of Deploy under the app's build lock; web reports
// whether the new release has a web process.
func (b *Builder) deploy(ctx context.Context, req Request, out *output) (rel grid.Release, web bool, err error) {
	if err := grid.ValidateAppName(req.App); err != nil {
		return grid.Release{}, false, err
	}
	unlock, err := b.lockApp(ctx, req.App, out)
	if err != nil {
		return grid.Release{}, false, err
	}
	defer unlock()
	app, err := b.cfg.Store.App(ctx, req.App)
	if err != nil {
		return grid.Release{}, false, err
	}
	work, err := b.workVolume(app.Name)
	if err != nil {
		return grid.Release{}, false, err
	}
	defer b.removeVolume(work)
	j := &job{app: app, commit: req.Commit, work: work, dir: filepath.Join(work, "app"),
		env: filepath.Join(work, "env"), cache: filepath.Join(b.cfg.CacheDir, app.Name),
		archive: req.Archive, checksum: req.Checksum, buildpacks: req.Buildpacks}

	unmount, err := b.mountCache(j)
	if err != nil {
		return grid.Release{}, false, err
	}
	defer unmount()

	b.apiLog(app.Name, "Build started by user %s", req.User)
	begin := time.Now()
	source := req.Source
	if source == nil {
		f, err := b.fetchSource(ctx, j, req.SourceURL, out)
		if err != nil {
			return grid.Release{}, false, err
		}
		defer f.Close()
		source, j.archive = f, true
	}
	res, err := b.build(ctx, j, source, out)
	if err != nil {
		b.apiLog(app.Name, "Build failed -- check your build output")
		return grid.Release{}, false, err
	}
	b.apiLog(app.Name, "Build succeeded")
	b.log.Info("build succeeded", "app", app.Name, "commit", req.Commit, "took", time.Since(begin))
	if cmd, ok := res.types["release"]; ok {
		if err := b.runRelease(ctx, j, req, cmd, out); err != nil {
			return grid.Release{}, false, err
		}
	}
	rel, err = b.launch(ctx, j, req, res, out)
	_, web = res.types["web"]
	return rel, web, err
}

// build runs everything up to and including the boot check; nothing is
// stored yet.
func (b *Builder) build(ctx context.Context, j *job, source io.Reader, out *output) (*built, error) {
	if err := b.prepare(j, source, out); err != nil {
		return nil, err
	}
	out.step("Building on the %s stack", grid.Stack)
	bctx, cancel := context.WithTimeout(ctx, b.cfg.BuildTimeout)
	defer cancel()
	res, err := b.compile(bctx, j, out)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, reject(fmt.Errorf("build of app %s timed out: %w", j.app.Name, grid.ErrInvalid), out,
				fmt.Sprintf("Push rejected: the build took longer than the %s limit", b.cfg.BuildTimeout))
		}
		return nil, err
	}
	if err := stripSpecialBits(j.dir); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	out.step("Compressing...")
	if err := b.pack(j, res); err != nil {
		switch {
		case errors.Is(err, grid.ErrTooLarge):
			return nil, reject(err, out, "Push rejected: the compiled "+explain(err))
		case errors.Is(err, grid.ErrInvalid):
			return nil, reject(err, out, "Push rejected: the slug cannot be packed: "+explain(err))
		}
		return nil, err
	}
	out.detail("Done: %s", slug.HumanBytes(res.info.Size))
	out.step("Checking that the app boots...")
	web, ok := res.types["web"]
	if !ok {
		out.detail("No web process type: skipped")
		return res, nil
	}
	return res, b.bootCheck(ctx, j, web, out)
}

// compile chooses the buildpacks (the app's list, .buildpacks, or
// detection), runs each one's bin/compile in order, and discovers the
// process types from the last one's bin/release and the Procfile.
func (b *Builder) compile(ctx context.Context, j *job, out *output) (*built, error) {
	refs, from, err := b.listed(j, out)
	if err != nil {
		return nil, err
	}
	var packs []Buildpack
	name := ""
	switch {
	case len(refs) == 0:
		out.step("Determining which buildpack to use for this app")
		var bp *Buildpack
		if bp, name, err = b.detect(ctx, j); err != nil {
			return nil, err
		}
		if bp == nil {
			return nil, reject(fmt.Errorf("app %s: no buildpack detected: %w", j.app.Name, grid.ErrInvalid), out,
				"No default language could be detected for this app.",
				"Add a go.mod, a package.json, a requirements.txt or a Procfile at the root of the repository.")
		}
		packs = []Buildpack{*bp}
	case len(refs) == 1:
		out.step("Using buildpack: %s", refs[0].URL)
	default:
		out.step("Using buildpacks from %s:", from)
		for i, r := range refs {
			out.detail("%d. %s", i+1, r.URL)
		}
	}
	for i, ref := range refs {
		bp, err := b.materialize(ctx, j, i+1, ref, out)
		if err != nil {
			return nil, err
		}
		packs = append(packs, bp)
	}
	for i, bp := range packs {
		if bp.URL != "" {
			// A listed buildpack must still accept the app.
			if name, err = b.detectOne(ctx, j, packs, i); err != nil {
				return nil, err
			}
			if name == "" {
				return nil, reject(fmt.Errorf("app %s: buildpack %s does not accept it (bin/detect failed): %w", j.app.Name, bp.URL, grid.ErrInvalid), out,
					"App not compatible with buildpack: "+bp.URL)
			}
		}
		out.step("%s app detected", name)
		code, err := b.script(ctx, j, packs, i, "compile", true, out, out, sbBuild, sbCache, sbEnv)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return nil, reject(fmt.Errorf("app %s: bin/compile of %s exited with status %d: %w", j.app.Name, bp.Name, code, grid.ErrInvalid),
				out, fmt.Sprintf("Push rejected, failed to compile %s app.", name))
		}
	}
	info, err := b.release(ctx, j, packs)
	if err != nil {
		return nil, reject(err, out, "Push rejected: "+explain(err))
	}
	types, err := b.discover(j, info.ProcessTypes, out)
	if err != nil {
		return nil, err
	}
	return &built{buildpack: name, types: types, configVars: info.ConfigVars}, nil
}

// detect runs each built-in's bin/detect in order; the first to accept
// the app wins.
func (b *Builder) detect(ctx context.Context, j *job) (*Buildpack, string, error) {
	for i := range b.packs {
		name, err := b.detectOne(ctx, j, b.packs[i:i+1], 0)
		if err != nil || name != "" {
			return &b.packs[i], name, err
		}
	}
	return nil, "", nil
}

// detectOne runs bin/detect of packs[i]: the name it prints for the
// app's language (its own name if it prints none), or "" if it exits
// non-zero.
func (b *Builder) detectOne(ctx context.Context, j *job, packs []Buildpack, i int) (string, error) {
	stdout := &limited{n: 1024}
	code, err := b.script(ctx, j, packs, i, "detect", false, stdout, io.Discard, sbBuild)
	if err != nil || code != 0 {
		return "", err
	}
	if name := firstLine(string(stdout.buf)); name != "" {
		return name, nil
	}
	return packs[i].Name, nil
}

// release runs bin/release of the last buildpack, if it has one, and
// returns what it says.
func (b *Builder) release(ctx context.Context, j *job, packs []Buildpack) (ReleaseInfo, error) {
	last := len(packs) - 1
	bp := packs[last]
	stdout := &limited{n: 64 << 10}
	code, err := b.script(ctx, j, packs, last, "release", false, stdout, io.Discard, sbBuild)
	if err != nil {
		return ReleaseInfo{}, err
	}
	if code != 0 {
		return ReleaseInfo{}, fmt.Errorf("bin/release of buildpack %s exited with status %d: %w", bp.Name, code, grid.ErrInvalid)
	}
	return ParseRelease(stdout.buf)
}

// discover merges the Procfile over the buildpack's defaults and tells
// the pusher what it found.
func (b *Builder) discover(j *job, defaults map[string]string, out *output) (map[string]string, error) {
	out.step("Discovering process types")
	procfile, ok, err := readProcfile(j.dir)
	if err != nil {
		return nil, reject(err, out, "Push rejected: "+explain(err))
	}
	types := mergeTypes(defaults, procfile)
	if ok {
		out.detail("Procfile declares types -> %s", orNone(typeNames(procfile)))
	}
	extra := map[string]string{}
	for t, c := range defaults {
		if _, dup := procfile[t]; !dup {
			extra[t] = c
		}
	}
	if len(extra) > 0 {
		out.detail("Default types for buildpack -> %s", typeNames(extra))
	}
	if len(types) == 0 {
		return nil, reject(fmt.Errorf("app %s: no process types: %w", j.app.Name, grid.ErrInvalid), out,
			"No process types: add a Procfile or use a buildpack that declares a default web process")
	}
	return types, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// pack writes the slug archive next to the build dir.
func (b *Builder) pack(j *job, res *built) error {
	res.archive = filepath.Join(j.work, "slug.tgz")
	f, err := os.OpenFile(res.archive, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("slug file: %w", err)
	}
	info, err := slug.Pack(j.dir, f, b.cfg.MaxSlugBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	res.info = info
	return err
}

// firstLine returns the first line of s, trimmed.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}
