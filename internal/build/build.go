// Package build is the slug compiler and deployer: it turns a pushed
// source tree into a slug by running buildpacks in a build sandbox, packs
// and stores the slug, checks that its web process binds $PORT, and then
// commits the release and the formation.
//
// A deploy commits nothing until every check has passed: a failed build
// or boot check leaves no slug metadata, no release and no formation
// change behind. Everything tenant code touches runs in a sandbox as the
// app's uid; as host root this package only unpacks (safely), chowns,
// packs and removes trees whose sandbox has been destroyed, and it opens
// files in them without following symlinks out.
//
//	Deploy ─► lock app ─► unpack source ─► detect ─► compile ─► release
//	       ─► process types ─► pack ─► boot check ─► store slug ─► adopt tree
//	       ─► commit release ─► formation ─► wait for web dynos
package build

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

// Defaults for zero Config fields.
const (
	DefaultBootTimeout    = 60 * time.Second
	DefaultBuildTimeout   = 15 * time.Minute
	DefaultReleaseTimeout = time.Hour
	DefaultBuildDiskMB    = 8 << 10
	DefaultCacheDiskMB    = 4 << 10
	DefaultMaxSlugBytes   = 1 << 30
	DefaultMaxSourceBytes = 1 << 30
	DefaultMaxOutputBytes = 300 << 20
)

// Config configures a Builder. Store, Sandboxes, Slugs, WorkDir and
// CacheDir are required.
type Config struct {
	Store *store.Store
	// Logs receives the app[api] events of a deploy. Nil means none.
	Logs      *logs.Log
	Sandboxes *sandbox.Manager
	// Slugs is the host's slug cache; a built tree is adopted into it.
	Slugs *slug.Cache
	// WorkDir is scratch space owned by this Builder alone: build dirs and
	// the extracted built-in buildpacks. It must be on the same filesystem
	// as Slugs.Dir (built trees are renamed into the cache). Leftovers of
	// an earlier run are removed by New.
	WorkDir string
	// CacheDir holds one build cache per app (CacheDir/<app>), kept
	// between builds and handed to bin/compile as CACHE_DIR.
	CacheDir string
	// BootTimeout is how long the web process may take to bind $PORT in
	// the boot check. Zero means DefaultBootTimeout.
	BootTimeout time.Duration
	// BuildTimeout bounds detect, compile and release together. Zero means
	// DefaultBuildTimeout.
	BuildTimeout time.Duration
	// BuildDiskMB bounds what one build writes: the source, the built
	// tree, fetched buildpacks, the packed slug. Zero means
	// DefaultBuildDiskMB.
	BuildDiskMB int
	// CacheDiskMB bounds each app's build cache. Zero means
	// DefaultCacheDiskMB.
	CacheDiskMB int
	// ReleaseTimeout bounds the release command (the Procfile's
	// release: type). Zero means DefaultReleaseTimeout, Heroku's.
	ReleaseTimeout time.Duration
	// MaxSlugBytes bounds the compressed slug. Zero means
	// DefaultMaxSlugBytes.
	MaxSlugBytes int64
	// MaxSourceBytes bounds the unpacked pushed source. Zero means
	// DefaultMaxSourceBytes.
	MaxSourceBytes int64
	// MaxOutputBytes bounds the build output sent to the pusher; past it
	// buildpack output is dropped (with one note). Zero means
	// DefaultMaxOutputBytes.
	MaxOutputBytes int64
	// WaitForDynos is how long Deploy waits, after committing, for a web
	// dyno of the new release to be up. Zero means not at all (tests
	// without a host agent); `grid up` uses 30s.
	WaitForDynos time.Duration
	// Buildpacks is the detection list, in order. Nil means the built-ins:
	// Go, Node.js, Procfile-only. Each is a directory holding bin/detect,
	// bin/compile and optionally bin/release, readable by app uids.
	Buildpacks []Buildpack
	// LocalBuildpackRoots are the directories under which an app may name
	// a local buildpack by path. None means local buildpacks are refused.
	LocalBuildpackRoots []string
	// GoSeedDir is where this machine's builders keep the Go standard
	// library's build seed, one per Go release (goseed.go): a directory of
	// root's, shared by every grid process on the machine. Empty means no
	// seed: a Go app's first build compiles the library itself.
	GoSeedDir string
	// GoSeedPackages are the packages the seed holds, as go build names
	// them. Nil means "std", the whole standard library.
	GoSeedPackages []string
	// WebURL returns the app's URL, printed at the end. Nil prints none.
	WebURL func(app string) string
	// Logger is for operators; nil discards.
	Logger *slog.Logger
}

// Builder runs deploys. It is safe for concurrent use; deploys of one app
// run one at a time.
type Builder struct {
	cfg      Config
	log      *slog.Logger
	packs    []Buildpack          // detection list, in order
	builtins map[string]Buildpack // by name: "heroku/go"

	mu       sync.Mutex
	building map[string]chan struct{} // app -> closed when its deploy ends
}

// New checks cfg, fills in defaults, removes leftovers of a previous run
// from WorkDir and installs the built-in buildpacks there.
func New(cfg Config) (*Builder, error) {
	if cfg.Store == nil || cfg.Sandboxes == nil || cfg.Slugs == nil {
		return nil, errors.New("build: Store, Sandboxes and Slugs are required")
	}
	for _, d := range []string{cfg.WorkDir, cfg.CacheDir} {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("build: work and cache dirs must be absolute paths, not %q: %w", d, grid.ErrInvalid)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
	}
	cfg.BootTimeout = orDefault(cfg.BootTimeout, DefaultBootTimeout)
	cfg.BuildTimeout = orDefault(cfg.BuildTimeout, DefaultBuildTimeout)
	cfg.ReleaseTimeout = orDefault(cfg.ReleaseTimeout, DefaultReleaseTimeout)
	cfg.BuildDiskMB = cmp.Or(cfg.BuildDiskMB, DefaultBuildDiskMB)
	cfg.CacheDiskMB = cmp.Or(cfg.CacheDiskMB, DefaultCacheDiskMB)
	cfg.MaxSlugBytes = orDefault(cfg.MaxSlugBytes, DefaultMaxSlugBytes)
	cfg.MaxSourceBytes = orDefault(cfg.MaxSourceBytes, DefaultMaxSourceBytes)
	cfg.MaxOutputBytes = orDefault(cfg.MaxOutputBytes, DefaultMaxOutputBytes)
	if cfg.GoSeedPackages == nil {
		cfg.GoSeedPackages = []string{"std"}
	}
	if cfg.GoSeedDir != "" && !filepath.IsAbs(cfg.GoSeedDir) {
		return nil, fmt.Errorf("build: the Go seed dir must be an absolute path, not %q: %w", cfg.GoSeedDir, grid.ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A killed run's builds and caches may still be mounted.
	for _, d := range []string{filepath.Join(cfg.WorkDir, "builds"), cfg.CacheDir} {
		if err := sandbox.UnmountUnder(d); err != nil {
			return nil, fmt.Errorf("build: leftover volumes: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(cfg.WorkDir, "builds")); err != nil {
		return nil, fmt.Errorf("build: remove old builds: %w", err)
	}
	if err := os.Mkdir(filepath.Join(cfg.WorkDir, "builds"), 0o700); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	packs, err := installBuiltins(filepath.Join(cfg.WorkDir, "buildpacks"))
	if err != nil {
		return nil, err
	}
	builtins := map[string]Buildpack{}
	for _, bp := range packs {
		builtins["heroku/"+bp.Name] = bp
	}
	if cfg.Buildpacks != nil {
		if err := checkBuildpacks(cfg.Buildpacks); err != nil {
			return nil, err
		}
		packs = cfg.Buildpacks
	}
	return &Builder{cfg: cfg, log: cfg.Logger, packs: packs, builtins: builtins, building: map[string]chan struct{}{}}, nil
}

// tryLockApp holds app if no deploy of it runs in this process.
func (b *Builder) tryLockApp(app string) (unlock func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, busy := b.building[app]; busy {
		return nil, false
	}
	mine := make(chan struct{})
	b.building[app] = mine
	return func() {
		b.mu.Lock()
		delete(b.building, app)
		b.mu.Unlock()
		close(mine)
	}, true
}

func orDefault[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// lockApp waits until no other deploy of app runs in this process, then
// holds the app until the returned func is called.
func (b *Builder) lockApp(ctx context.Context, app string, out *output) (unlock func(), err error) {
	told := false
	for {
		unlock, ok := b.tryLockApp(app)
		if ok {
			return unlock, nil
		}
		b.mu.Lock()
		busy, ok := b.building[app]
		b.mu.Unlock()
		if !ok {
			continue
		}
		if !told {
			out.step("Waiting for the build of app %s already in progress…", app)
			told = true
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, reject(fmt.Errorf("another build of app %s is in progress: %w", app, grid.ErrConflict),
				out, "Push rejected: another build of this app is still in progress; try again when it has finished")
		}
	}
}
