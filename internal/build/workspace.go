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
	"github.com/dynogrid/grid/internal/sandbox"
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

// A build works in a volume of its own (BuildDiskMB), and each app's
// build cache is a volume (CacheDiskMB) mounted only during its builds:
// a build that writes without end gets ENOSPC, never the host's disk.

// workVolume makes a fresh build volume, WorkDir/builds/<app>-<random>,
// root-owned and private.
func (b *Builder) workVolume(app string) (string, error) {
	dir := filepath.Join(b.cfg.WorkDir, "builds", sandboxID("build", app))
	if err := sandbox.MakeVolume(dir+".img", dir, b.cfg.BuildDiskMB, 0); err != nil {
		return "", fmt.Errorf("build volume: %w", err)
	}
	return dir, os.Chmod(dir, 0o700)
}

// removeVolume unmounts a build volume and deletes it.
func (b *Builder) removeVolume(dir string) {
	err := errors.Join(sandbox.UnmountVolume(dir), os.Remove(dir+".img"), os.Remove(dir))
	if err != nil {
		b.log.Warn("build volume cleanup failed", "dir", dir, "err", err)
	}
}

// mountCache mounts the app's build cache volume (CacheDir/<app>.img) at
// j.cache, making it if there is none. A cache whose root another uid
// owns was left by a deleted app of the same name: it is wiped, never
// handed to the new tenant. A plain directory there is an older grid's
// cache: it goes too.
func (b *Builder) mountCache(j *job) (unmount func(), err error) {
	img := j.cache + ".img"
	unmount = func() {
		if err := sandbox.UnmountVolume(j.cache); err != nil {
			b.log.Warn("build cache unmount failed", "app", j.app.Name, "err", err)
		}
	}
	if _, err := os.Lstat(img); err == nil {
		if err := sandbox.MountVolume(img, j.cache); err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
		if fi, err := os.Lstat(j.cache); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == j.app.UID {
				return unmount, nil
			}
		}
		unmount()
		if err := os.Remove(img); err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
	}
	if err := os.RemoveAll(j.cache); err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	if err := sandbox.MakeVolume(img, j.cache, b.cfg.CacheDiskMB, j.app.UID); err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	return unmount, os.Chmod(j.cache, 0o700)
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
	dir := filepath.Join(b.cfg.CacheDir, app)
	if err := os.Remove(dir + ".img"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(dir)
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
