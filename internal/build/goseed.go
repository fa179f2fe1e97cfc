package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/sandbox"
)

// The Go standard library is most of a Go app's first build: a hello
// world web server compiles some 150 of its packages before a line of the
// app, 30 to 50 s on a 2-core machine. So the grid compiles the library
// once per machine and Go release into a build cache of its own, the
// seed, and an app's first Go build starts from a copy of it (the Go
// buildpack copies it into the app's empty cache; later builds use the
// app's own cache as before).
//
// The seed must be the platform's alone, or one tenant could plant
// compiled code in another's build: it is made from the toolchain's
// sources only (no app's code, settings or environment), in a sandbox of
// its own under seedUID, and apps see it read-only. It is made at idle
// priority, in the background, and only a complete seed is handed out.
// Go's cache writes each entry after its output, so a seed whose making
// was cut off (the grid stopped) is resumed where it stopped.

const (
	goRoot = "/usr/local/go"
	// seedUID makes the seed: below the apps' uids (store.NextUID starts
	// above 200000), so no app owns its files.
	seedUID = 199999
	// sbGoSeed is where a compile sees the seed, and the seed's sandbox
	// its cache.
	sbGoSeed = "/tmp/go-seed"
	// seedTimeout bounds one attempt at the seed, at idle priority.
	seedTimeout = time.Hour
)

// goSeedDir is the seed of the host's Go release under Config.GoSeedDir,
// whose cache is goSeedDir/cache, complete once goSeedDir/complete
// exists; "" when there is no seed to make (no GoSeedDir, no Go).
func (b *Builder) goSeedDir() string {
	if b.cfg.GoSeedDir == "" {
		return ""
	}
	v, err := os.ReadFile(filepath.Join(goRoot, "VERSION"))
	if err != nil {
		return ""
	}
	version, _, _ := strings.Cut(string(v), "\n")
	if !strings.HasPrefix(version, "go") || strings.ContainsAny(version, "/ ") {
		return ""
	}
	return filepath.Join(b.cfg.GoSeedDir, version)
}

// goSeed returns the complete seed's cache, or "" when there is none.
func (b *Builder) goSeed() string {
	dir := b.goSeedDir()
	if dir == "" {
		return ""
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		return ""
	}
	return filepath.Join(dir, "cache")
}

// MakeGoSeed makes the seed of the host's Go release unless it is
// complete or another process is making it, and returns when it is done
// or ctx ends. Servers run it in the background for their lifetime.
func (b *Builder) MakeGoSeed(ctx context.Context) error {
	dir := b.goSeedDir()
	if dir == "" {
		return nil
	}
	b.removeOldGoSeeds(filepath.Base(dir))
	if b.goSeed() != "" {
		return nil
	}
	if err := os.MkdirAll(b.cfg.GoSeedDir, 0o755); err != nil {
		return fmt.Errorf("go seed: %w", err)
	}
	lock, err := lockSeed(dir)
	if err != nil {
		return fmt.Errorf("go seed: %w", err)
	}
	if lock == nil {
		return nil // another builder on this machine is making it
	}
	defer lock.Close()
	if b.goSeed() != "" {
		return nil // made while we waited for the lock
	}
	cache := filepath.Join(dir, "cache")
	for _, d := range []string{dir, cache} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("go seed: %w", err)
		}
	}
	if err := os.Chown(cache, seedUID, seedUID); err != nil {
		return fmt.Errorf("go seed: %w", err)
	}
	start := time.Now()
	b.log.Info("making the Go standard library's build seed", "dir", dir)
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	out := &limited{n: 4 << 10}
	code, err := b.runAs(ctx, "go-seed", sandbox.Spec{
		Args: append([]string{goRoot + "/bin/go", "build"}, b.cfg.GoSeedPackages...),
		// Only what Go needs: an app's settings would change the cache
		// keys, and the seed is nobody's.
		Env:    []string{"GOCACHE=" + sbGoSeed, "GOPATH=/tmp/go", "GOFLAGS=", "CGO_ENABLED=0", "GOTOOLCHAIN=local"},
		UID:    seedUID,
		GID:    seedUID,
		Mounts: []sandbox.Mount{{Source: cache, Target: sbGoSeed, Writable: true}},
		Idle:   true,
		Stderr: out, // go build reports there; nothing on stdout
	})
	if err != nil {
		return fmt.Errorf("go seed: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("go seed: go build exited %d: %s", code, bytes.TrimSpace(out.buf))
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
		return fmt.Errorf("go seed: %w", err)
	}
	b.log.Info("Go standard library's build seed made", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// removeOldGoSeeds removes the seeds of Go releases other than current:
// a host's Go is upgraded in place, and nothing builds with an older one
// again. One another process is still making (its lock held) is left for
// a later start. A build that mounted a seed just as it is removed gets a
// partial copy, which Go's cache takes for misses (the buildpack copes).
func (b *Builder) removeOldGoSeeds(current string) {
	old, _ := filepath.Glob(filepath.Join(b.cfg.GoSeedDir, "go[0-9]*"))
	for _, dir := range old {
		if name := filepath.Base(dir); name == current || strings.HasSuffix(name, ".lock") {
			continue
		}
		lock, err := lockSeed(dir)
		if lock == nil || err != nil {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			b.log.Warn("removing an old Go build seed", "dir", dir, "err", err)
		} else {
			os.Remove(lock.Name())
			b.log.Info("removed an old Go build seed", "dir", dir)
		}
		lock.Close()
	}
}

// lockSeed takes the lock of the seed in dir, which its maker holds, if
// no other process holds it; nil then.
func lockSeed(dir string) (*os.File, error) {
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			err = nil
		}
		return nil, err
	}
	return lock, nil
}
