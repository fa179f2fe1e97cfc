package build

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
)

// A build uses the app's buildpack list if it has one, else the list in
// the pushed source's .buildpacks file, else the first built-in whose
// bin/detect accepts the app. Listed buildpacks other than built-ins are
// fetched for each build, by a sandbox like the build's own: as the
// app's uid, with the build's network (the internet, never the grid's
// services), into the sandbox's size-limited /tmp, and only then copied
// out to the build's work dir. A hostile URL or archive thus meets the
// same walls as hostile app code, and the host never follows a symlink
// the buildpack brought.

// maxBuildpackBytes bounds a fetched buildpack, unpacked.
const maxBuildpackBytes = 100 << 20

// listed is the build's explicit buildpack list and where it came from
// ("" when the build detects one).
func (b *Builder) listed(j *job, out *output) ([]grid.BuildpackRef, string, error) {
	if len(j.buildpacks) > 0 {
		refs, err := grid.ParseBuildpacks(j.buildpacks)
		if err != nil {
			return nil, "", reject(err, out, "Build rejected: "+explain(err))
		}
		return refs, "the build request", nil
	}
	if len(j.app.Buildpacks) > 0 {
		refs, err := grid.ParseBuildpacks(j.app.Buildpacks)
		if err != nil {
			return nil, "", reject(err, out, "Push rejected: the app's buildpack list is unusable: "+explain(err))
		}
		return refs, "the app's settings", nil
	}
	lines, err := readBuildpacksFile(j.dir)
	if err != nil {
		return nil, "", err
	}
	if len(lines) == 0 {
		return nil, "", nil
	}
	refs, err := grid.ParseBuildpacks(lines)
	if err != nil {
		return nil, "", reject(err, out, "Push rejected: .buildpacks: "+explain(err))
	}
	return refs, ".buildpacks", nil
}

// readBuildpacksFile reads BUILD_DIR/.buildpacks: one reference per line,
// blank lines and # comments skipped. None (nil, nil) when there is no
// such regular file.
func readBuildpacksFile(dir string) ([]string, error) {
	p := filepath.Join(dir, ".buildpacks")
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Size() > 64<<10 {
		return nil, fmt.Errorf(".buildpacks is larger than 64 KB: %w", grid.ErrInvalid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf(".buildpacks: %w", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// materialize makes ref usable by this build: a built-in as installed,
// anything else fetched into j.work/buildpacks/<n>.
func (b *Builder) materialize(ctx context.Context, j *job, n int, ref grid.BuildpackRef, out *output) (Buildpack, error) {
	if ref.Kind == grid.BuildpackBuiltin {
		bp, ok := b.builtins[ref.URL]
		if !ok {
			return Buildpack{}, reject(fmt.Errorf("buildpack %s is not installed on this grid: %w", ref.URL, grid.ErrInvalid), out,
				"Push rejected: buildpack "+ref.URL+" is not installed on this grid")
		}
		bp.URL = ref.URL
		return bp, nil
	}
	bp := Buildpack{Name: "custom-" + strconv.Itoa(n), URL: ref.URL, own: true}
	bp.Dir = filepath.Join(j.work, "buildpacks", bp.Name)
	if err := os.MkdirAll(bp.Dir, 0o700); err != nil {
		return Buildpack{}, fmt.Errorf("buildpack dir: %w", err)
	}
	if err := os.Lchown(bp.Dir, j.app.UID, j.app.UID); err != nil {
		return Buildpack{}, fmt.Errorf("buildpack dir: %w", err)
	}
	mounts := []sandbox.Mount{{Source: bp.Dir, Target: "/tmp/out", Writable: true}}
	kind := map[grid.BuildpackKind]string{grid.BuildpackGit: "git", grid.BuildpackTarball: "tarball", grid.BuildpackLocal: "local"}[ref.Kind]
	src := ref.Fetch
	if ref.Kind == grid.BuildpackLocal {
		dir, err := b.localBuildpack(ref.Fetch)
		if err != nil {
			return Buildpack{}, reject(err, out, "Push rejected: "+explain(err))
		}
		mounts = append(mounts, sandbox.Mount{Source: dir, Target: "/tmp/src"})
		src = "/tmp/src"
	}
	errs := &tail{n: 10}
	code, err := b.run(ctx, j, sandbox.Spec{
		Args:    []string{"/bin/bash", "-c", fetchScript, "fetch", kind, src, ref.Ref, strconv.Itoa(maxBuildpackBytes)},
		Env:     []string{"GIT_ALLOW_PROTOCOL=http:https", "GIT_TERMINAL_PROMPT=0"},
		Mounts:  mounts,
		Network: ref.Kind != grid.BuildpackLocal,
		Stdout:  errs, Stderr: errs,
	})
	if err != nil {
		return Buildpack{}, err
	}
	if code != 0 {
		lines := []string{"Push rejected: could not fetch buildpack " + ref.URL + ":"}
		for _, l := range errs.Lines() {
			lines = append(lines, "  "+l)
		}
		return Buildpack{}, reject(fmt.Errorf("fetch buildpack %s: exit status %d: %w", ref.URL, code, grid.ErrInvalid), out, lines...)
	}
	return bp, nil
}

// localBuildpack resolves a local buildpack's directory, which must lie
// under one of the operator's LocalBuildpackRoots: a tenant must not be
// able to name, say, another user's home as its buildpack.
func (b *Builder) localBuildpack(p string) (string, error) {
	if len(b.cfg.LocalBuildpackRoots) == 0 {
		return "", fmt.Errorf("local buildpack %s: this grid allows none (the operator names directories with --buildpack-root): %w", p, grid.ErrInvalid)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("local buildpack %s: %w", p, grid.ErrInvalid)
	}
	for _, root := range b.cfg.LocalBuildpackRoots {
		if r, err := filepath.EvalSymlinks(root); err == nil && (real == r || strings.HasPrefix(real, r+"/")) {
			return real, nil
		}
	}
	return "", fmt.Errorf("local buildpack %s is not under a directory this grid allows (%s): %w", p, strings.Join(b.cfg.LocalBuildpackRoots, ", "), grid.ErrInvalid)
}

// fetchScript runs in the fetch sandbox: fetch KIND SRC REF MAXBYTES. It
// gets the buildpack into /tmp (a size-limited tmpfs), accepts bin/ at the
// top or under a single top directory, and copies the result to /tmp/out.
const fetchScript = `set -eo pipefail
kind=$1 src=$2 ref=$3 max=$4
f=/tmp/fetch
mkdir -p "$f"
case $kind in
git)
  git init -q "$f"
  git -C "$f" -c http.lowSpeedLimit=1000 -c http.lowSpeedTime=60 fetch -q --depth 1 "$src" "${ref:-HEAD}"
  git -C "$f" -c advice.detachedHead=false checkout -q FETCH_HEAD
  rm -rf "$f/.git" ;;
tarball)
  curl -fsSL --proto =http,https --proto-redir =http,https --max-filesize "$max" --max-time 600 -o /tmp/bp.tar "$src"
  tar -xf /tmp/bp.tar -C "$f" --no-same-owner --no-same-permissions --no-overwrite-dir
  rm -f /tmp/bp.tar ;;
local)
  cp -R /tmp/src/. "$f/" ;;
esac
if [ ! -e "$f/bin" ]; then
  set -- "$f"/*
  if [ $# = 1 ] && [ -d "$1/bin" ]; then f=$1; fi
fi
if [ ! -f "$f/bin/compile" ]; then
  echo "it has no bin/compile (at its root or under one top directory)" >&2
  exit 3
fi
if [ "$(du -sb "$f" | cut -f1)" -gt "$max" ]; then
  echo "it is larger than $((max >> 20)) MB unpacked" >&2
  exit 4
fi
cp -R "$f/." /tmp/out/
chmod -R u+rwX /tmp/out
`
