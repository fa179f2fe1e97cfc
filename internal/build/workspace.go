package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

// prepare unpacks the source into a fresh build dir, removes what its
// .slugignore lists, and writes ENV_DIR and the app's cache dir, all
// owned by the app's uid.
func (b *Builder) prepare(j *job, source io.Reader, out *output) error {
	if err := b.unpackSource(j, source); err != nil {
		if errors.Is(err, grid.ErrInvalid) || errors.Is(err, grid.ErrTooLarge) {
			return reject(err, out, "Push rejected: the pushed source cannot be unpacked: "+explain(err))
		}
		return fmt.Errorf("unpack source: %w", err)
	}
	removed, warnings, err := applySlugignore(j.dir)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		out.detail("%s", w)
	}
	if removed > 0 {
		out.detail("Removed %d files and directories listed in .slugignore", removed)
	}
	if err := writeEnvDir(j.env, j.app.Release.Config); err != nil {
		return err
	}
	if err := b.appCache(j); err != nil {
		return err
	}
	for _, d := range []string{j.dir, j.env} {
		if err := slug.Chown(d, j.app.UID); err != nil {
			return fmt.Errorf("build: chown %s: %w", d, err)
		}
	}
	return nil
}

// unpackSource unpacks the source into j.dir: git archive's tar, or a
// user's tarball (j.archive) checked against j.checksum and hoisted out
// of a single top directory.
func (b *Builder) unpackSource(j *job, source io.Reader) error {
	if !j.archive {
		return slug.UnpackTar(source, j.dir, b.cfg.MaxSourceBytes)
	}
	a, err := openArchive(source, j.checksum)
	if err != nil {
		return err
	}
	if err := slug.UnpackTar(a.tar, j.dir, b.cfg.MaxSourceBytes); err != nil {
		return err
	}
	if j.checksum != "" {
		if err := a.verify(j.checksum); err != nil {
			return err
		}
	}
	return hoistTopDir(j.dir)
}

// appCache makes sure the app's build cache exists and belongs to the
// app's uid. A cache owned by another uid was left by a deleted app of the
// same name: it is wiped, never handed to the new tenant. Its contents
// are the tenant's own (written in the sandbox as its uid), so only the
// directory itself is chowned.
func (b *Builder) appCache(j *job) error {
	fi, err := os.Lstat(j.cache)
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.IsDir() && int(st.Uid) == j.app.UID {
			return nil
		}
		if err := os.RemoveAll(j.cache); err != nil {
			return fmt.Errorf("build cache: %w", err)
		}
	}
	if err := os.Mkdir(j.cache, 0o700); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return os.Lchown(j.cache, j.app.UID, j.app.UID)
}

// PurgeCache removes an app's build cache (heroku builds:cache:purge, and
// on app deletion). While a build of the app runs it is ErrConflict: that
// build uses the cache.
func (b *Builder) PurgeCache(app string) error {
	if err := grid.ValidateAppName(app); err != nil {
		return err
	}
	unlock, ok := b.tryLockApp(app)
	if !ok {
		return fmt.Errorf("a build of app %s is running; purge its cache when it has ended: %w", app, grid.ErrConflict)
	}
	defer unlock()
	return os.RemoveAll(filepath.Join(b.cfg.CacheDir, app))
}

// writeEnvDir writes one file per config var, as bin/compile expects.
func writeEnvDir(dir string, config map[string]string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("env dir: %w", err)
	}
	for k, v := range config {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			return fmt.Errorf("env dir: %w", err)
		}
	}
	return nil
}

// stripSpecialBits clears setuid, setgid and sticky bits the build left
// in the tree, so the adopted tree matches what Unpack makes of the slug
// on other hosts. Symlinks are skipped; no tenant process runs any more.
func stripSpecialBits(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if m := fi.Mode(); m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			return os.Chmod(p, m.Perm())
		}
		return nil
	})
}
