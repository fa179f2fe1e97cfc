package gitrecv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// Layout of ReposDir:
//
//	ReposDir/<app>.git        bare repository of one app
//	ReposDir/.hooks/pre-receive  the only hook git runs: exec HookExe hook pre-receive
//	ReposDir/.tmp/            repositories being created or removed, pushed sources
//
// App names start with a letter, so they never collide with the dot
// directories.

// repoConfig is written into every new repository so that git commands run
// by hand on the server behave like pushes. Pushes do not rely on it: see
// receiveConfig.
const repoConfig = `[receive]
	denyDeletes = true
	denyNonFastForwards = false
	fsckObjects = true
`

// repoAttributes overrides any .gitattributes in the pushed tree, so that
// git archive hands over the tree exactly as committed, as Heroku's
// checkout does: no export-ignore, no export-subst.
const repoAttributes = "* -export-ignore -export-subst\n"

// receiveConfig is the policy every receive-pack runs with, passed with -c
// so no repository config can loosen it: only our hook runs; branches may
// not be deleted; force pushes are allowed (the git client already refuses
// non-fast-forwards without -f, as with Heroku); objects are checked, and
// the pack size is capped.
func (r *Receiver) receiveConfig() []string {
	return []string{
		"core.hooksPath=" + r.hooksDir,
		"receive.denyDeletes=true",
		"receive.denyNonFastForwards=false",
		"receive.fsckObjects=true",
		"receive.maxInputSize=" + strconv.FormatInt(r.maxPush, 10),
	}
}

func (r *Receiver) repoPath(app string) string {
	return filepath.Join(r.dir, app+".git")
}

// prepareDirs creates ReposDir, clears ReposDir/.tmp and writes the hook.
func (r *Receiver) prepareDirs(hookExe string) error {
	fail := func(err error) error {
		return fmt.Errorf("gitrecv: prepare %s: %v: %w", r.dir, err, grid.ErrUnavailable)
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.RemoveAll(r.tmpDir); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(r.tmpDir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(r.hooksDir, 0o755); err != nil {
		return fail(err)
	}
	script := "#!/bin/sh\nexec " + shellQuote(hookExe) + " hook pre-receive\n"
	if err := writeFileAtomic(filepath.Join(r.hooksDir, "pre-receive"), []byte(script), 0o755); err != nil {
		return fail(err)
	}
	return nil
}

// shellQuote quotes s for sh: inside single quotes nothing is special but
// the single quote itself.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFileAtomic replaces path with data, so a concurrent git never runs
// half a hook.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ensureRepo returns app's repository, creating it if needed. Creation is
// atomic: the repository is made in ReposDir/.tmp and renamed into place,
// so concurrent first pushes agree on one and nobody sees half of one.
// app must be valid.
func (r *Receiver) ensureRepo(ctx context.Context, app string) (string, error) {
	path := r.repoPath(app)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return path, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("gitrecv: repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	tmp, err := os.MkdirTemp(r.tmpDir, app+".git-")
	if err != nil {
		return "", fmt.Errorf("gitrecv: create repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	defer os.RemoveAll(tmp) // nothing left after a successful rename
	if err := r.initRepo(ctx, tmp); err != nil {
		return "", fmt.Errorf("gitrecv: create repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	if err := os.Rename(tmp, path); err != nil {
		// A concurrent first push won the race; its repository is as good.
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			return path, nil
		}
		return "", fmt.Errorf("gitrecv: create repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	return path, nil
}

// initRepo makes an empty bare repository in dir, without git's template
// (no sample hooks, no description).
func (r *Receiver) initRepo(ctx context.Context, dir string) error {
	var out capBuffer
	cmd := r.command(ctx, nil, "init", "--bare", "--quiet", "--template=", "--initial-branch=main", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := r.run(cmd); err != nil {
		return fmt.Errorf("git init: %v: %s", err, out.String())
	}
	f, err := os.OpenFile(filepath.Join(dir, "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(repoConfig); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "info"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "info", "attributes"), []byte(repoAttributes), 0o644)
}

// refValue returns the commit ref points to in repo, or "" if it does not
// exist. ref is a full ref name.
func (r *Receiver) refValue(ctx context.Context, repo, ref string) (string, error) {
	var out bytes.Buffer
	var stderr capBuffer
	cmd := r.command(ctx, nil, "--git-dir="+repo, "rev-parse", "--verify", "--quiet", ref)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := r.run(cmd)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && out.Len() == 0 {
		return "", nil // no such ref
	}
	if err != nil {
		return "", fmt.Errorf("git rev-parse %s: %v: %s", ref, err, stderr.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// setHead points repo's HEAD at ref, the branch last deployed, so that a
// clone checks out what is running.
func (r *Receiver) setHead(ctx context.Context, repo, ref string) error {
	if b, err := os.ReadFile(filepath.Join(repo, "HEAD")); err == nil && string(b) == "ref: "+ref+"\n" {
		return nil
	}
	var out capBuffer
	cmd := r.command(ctx, nil, "--git-dir="+repo, "symbolic-ref", "HEAD", ref)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := r.run(cmd); err != nil {
		return fmt.Errorf("git symbolic-ref HEAD %s: %v: %s", ref, err, out.String())
	}
	return nil
}
