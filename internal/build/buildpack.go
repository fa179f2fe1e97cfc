package build

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
)

// builtins are the buildpacks shipped in the binary, in detection order.
//
//go:embed buildpacks
var builtins embed.FS

var builtinOrder = []string{"go", "nodejs", "python", "static", "procfile"}

// Buildpack is a classic buildpack: a directory with bin/detect,
// bin/compile and optionally bin/release.
type Buildpack struct {
	Name string // [a-z0-9-]; it is mounted at /tmp/buildpacks/<Name>
	Dir  string // host path
	// URL is how the app's list named it ("heroku/go"); empty for one
	// found by detection.
	URL string
	own bool // fetched for this build: it may write to Dir
}

var buildpackNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func checkBuildpacks(packs []Buildpack) error {
	for _, bp := range packs {
		if !buildpackNameRE.MatchString(bp.Name) || !filepath.IsAbs(bp.Dir) {
			return fmt.Errorf("buildpack %q at %q: name must be [a-z0-9-] and dir absolute: %w", bp.Name, bp.Dir, grid.ErrInvalid)
		}
		if _, err := os.Stat(filepath.Join(bp.Dir, "bin", "compile")); err != nil {
			return fmt.Errorf("buildpack %s has no bin/compile: %w", bp.Name, grid.ErrInvalid)
		}
	}
	return nil
}

// Paths inside a build sandbox.
const (
	sbBuild      = "/tmp/build"
	sbCache      = "/tmp/cache"
	sbEnv        = "/tmp/env"
	sbBuildpacks = "/tmp/buildpacks"
	buildPath    = "/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin"
)

// Build sandbox limits: a build needs more than a dyno.
const (
	buildMemoryMB = 2048
	buildPidsMax  = 1024
	buildTmpMB    = 1024
)

// installBuiltins writes the embedded buildpacks to dir/<name>, replacing
// what an earlier version left there, scripts executable.
func installBuiltins(dir string) ([]Buildpack, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("build: buildpacks: %w", err)
	}
	err := fs.WalkDir(builtins, "buildpacks", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, "buildpacks"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := builtins.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if path.Base(path.Dir(p)) == "bin" {
			mode = 0o755
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			return err
		}
		return os.Chmod(dst, mode) // WriteFile's mode is masked by the umask
	})
	if err != nil {
		return nil, fmt.Errorf("build: install buildpacks: %w", err)
	}
	packs := make([]Buildpack, len(builtinOrder))
	for i, n := range builtinOrder {
		packs[i] = Buildpack{Name: n, Dir: filepath.Join(dir, n)}
	}
	return packs, nil
}

// job is one build's places on the host and its identity.
type job struct {
	app    grid.App
	commit string
	work   string // WorkDir/builds/<app>-<rand>: everything below is removed at the end
	dir    string // work/app: BUILD_DIR, later the slug tree
	env    string // work/env: ENV_DIR
	cache  string // CacheDir/<app>: CACHE_DIR
	// From Build API requests (see Request).
	archive    bool
	checksum   string
	buildpacks []string
}

// script runs bin/<name> of packs[i] in a fresh build sandbox with args
// (paths inside the sandbox) and waits for it. The buildpacks before it
// are mounted too, and their export files, if any, are sourced first, so
// that a later buildpack finds what an earlier one installed. A
// buildpack fetched for this build may write to its own directory (where
// buildpacks leave their export file); built-ins are read-only. A
// missing bin/release is an empty answer (it is optional); the check is
// made inside the sandbox, as the host never looks into a fetched
// buildpack's tree.
func (b *Builder) script(ctx context.Context, j *job, packs []Buildpack, i int, name string, network bool, stdout, stderr io.Writer, args ...string) (int, error) {
	bp := packs[i]
	mountAt := path.Join(sbBuildpacks, bp.Name)
	mounts := []sandbox.Mount{
		{Source: j.dir, Target: sbBuild, Writable: true},
		// The same tree at /app, where the dynos will see it: buildpacks
		// that write absolute paths (a Python venv) install there.
		{Source: j.dir, Target: "/app", Writable: true},
		{Source: j.cache, Target: sbCache, Writable: true},
		{Source: j.env, Target: sbEnv},
	}
	need := "required"
	if name == "release" {
		need = "optional"
	}
	cmd := []string{"/bin/bash", "-c", scriptWrapper, "buildpack", need}
	for _, prev := range packs[:i] {
		at := path.Join(sbBuildpacks, prev.Name)
		mounts = append(mounts, sandbox.Mount{Source: prev.Dir, Target: at})
		cmd = append(cmd, path.Join(at, "export"))
	}
	mounts = append(mounts, sandbox.Mount{Source: bp.Dir, Target: mountAt, Writable: bp.own})
	if seed := b.goSeed(); seed != "" && name == "compile" {
		mounts = append(mounts, sandbox.Mount{Source: seed, Target: sbGoSeed}) // read-only: see goseed.go
	}
	cmd = append(cmd, "--", path.Join(mountAt, "bin", name))
	return b.run(ctx, j, sandbox.Spec{
		Args:    append(cmd, args...),
		Env:     []string{"STACK=" + grid.Stack, "SOURCE_VERSION=" + j.commit, "BUILDPACK_DIR=" + mountAt},
		Dir:     sbBuild,
		Mounts:  mounts,
		Network: network,
		Stdout:  stdout, Stderr: stderr,
	})
}

// scriptWrapper runs a buildpack script: wrapper required|optional
// EXPORT... -- SCRIPT ARGS... sources each export file that exists, then
// runs the script; an optional script that does not exist succeeds.
const scriptWrapper = `need=$1
shift
while [ "$1" != -- ]; do
  if [ -f "$1" ]; then . "$1" || exit 1; fi
  shift
done
shift
if [ "$need" = optional ] && [ ! -e "$1" ]; then exit 0; fi
exec "$@"`

// hostCABundle is the host's CA bundle, which sandboxes see (the
// operator's own CAs included: a TLS-inspecting proxy's, say).
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// trustEnv makes the tools that carry their own CA lists (node and npm,
// pip) trust the host's bundle, as curl, git and Go already do.
var trustEnv = []string{"NODE_EXTRA_CA_CERTS=" + hostCABundle, "PIP_CERT=" + hostCABundle}

// run runs spec as the build's app (runAs).
func (b *Builder) run(ctx context.Context, j *job, spec sandbox.Spec) (int, error) {
	spec.UID, spec.GID = j.app.UID, j.app.UID
	return b.runAs(ctx, j.app.Name, spec)
}

// runAs completes spec with a build's environment and limits, runs it in
// a fresh build sandbox named for owner (an app, or the grid's own job)
// and waits for it. The sandbox is destroyed before runAs returns, so no
// process is left touching the build's files. It returns the exit code;
// an error means the sandbox could not be run or ctx ended.
func (b *Builder) runAs(ctx context.Context, owner string, spec sandbox.Spec) (int, error) {
	spec.ID = sandboxID("build", owner)
	spec.Env = append(append([]string{"PATH=" + buildPath, "HOME=/tmp", "LANG=C.UTF-8"}, trustEnv...), spec.Env...)
	spec.MemoryMB, spec.PidsMax, spec.TmpMB = buildMemoryMB, buildPidsMax, buildTmpMB
	if spec.Dir == "" {
		spec.Dir = "/tmp"
	}
	sb, err := b.cfg.Sandboxes.Start(ctx, spec)
	if err != nil {
		return -1, fmt.Errorf("build sandbox %s: %w", firstLine(strings.Join(spec.Args, " ")), err)
	}
	defer func() {
		if err := sb.Destroy(); err != nil {
			b.log.Warn("build sandbox destroy failed", "owner", owner, "err", err)
		}
	}()
	select {
	case <-sb.Done():
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	return sb.Wait()
}

// sandboxID is a fresh sandbox ID: kind-app-random, within [a-z0-9-]{1,64}.
func sandboxID(kind, app string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return kind + "-" + app + "-" + hex.EncodeToString(r[:])
}

// limited keeps at most n bytes written to it and drops the rest.
type limited struct {
	buf []byte
	n   int
}

func (l *limited) Write(b []byte) (int, error) {
	if room := l.n - len(l.buf); room > 0 {
		l.buf = append(l.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}
