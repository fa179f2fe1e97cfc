package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/cli"
	"github.com/dynogrid/grid/internal/gitrecv"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/router"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

// adminEmail is the account the first API key belongs to.
const adminEmail = "admin@grid.local"

// upConfig is everything `grid up` reads from flags.
type upConfig struct {
	data        string
	apiAddr     string
	routerAddr  string
	natsAddr    string
	domain      string
	bootTimeout time.Duration
	stopGrace   time.Duration
	noLogin     bool
}

func parseUp(args []string, stderr io.Writer) (upConfig, error) {
	var c upConfig
	fs := flag.NewFlagSet("grid up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory (state, slugs, repos)")
	fs.StringVar(&c.apiAddr, "api", "127.0.0.1:5000", "listen address of the Platform API and git")
	fs.StringVar(&c.routerAddr, "router", "0.0.0.0:8080", "listen address of the HTTP router")
	fs.StringVar(&c.natsAddr, "nats", "", "listen address of the embedded NATS server (default: a free loopback port)")
	fs.StringVar(&c.domain, "domain", "localhost", "apps are served at <app>.<domain>")
	fs.DurationVar(&c.bootTimeout, "boot-timeout", 60*time.Second, "how long a web process may take to bind $PORT")
	fs.DurationVar(&c.stopGrace, "stop-grace", 30*time.Second, "time between SIGTERM and SIGKILL when stopping a dyno")
	fs.BoolVar(&c.noLogin, "no-login", false, "do not write the CLI credentials file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("grid up takes no arguments, got %q", fs.Args())
	}
	return c, nil
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/grid"
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "grid")
	}
	return "grid-data"
}

func runUp(args []string) int {
	cfg, err := parseUp(args, os.Stderr)
	if err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { // a second signal means "now"
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		logger.Warn("second signal: exiting without stopping dynos")
		os.Exit(1)
	}()
	if err := up(ctx, cfg, logger); err != nil {
		logger.Error("grid up failed", "err", err)
		return 1
	}
	return 0
}

// up runs every role in this process until ctx ends, then stops them in
// order: stop taking requests, stop the manager, stop dynos gracefully,
// then the store.
func up(ctx context.Context, cfg upConfig, logger *slog.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("grid up must run as root: dynos are Linux sandboxes (namespaces, cgroups, overlayfs)")
	}
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return err
	}
	natsToken, err := secretFile(filepath.Join(cfg.data, "nats-token"))
	if err != nil {
		return err
	}
	sessionSecret, err := secretFile(filepath.Join(cfg.data, "session-secret"))
	if err != nil {
		return err
	}
	srv, err := store.StartServer(store.ServerConfig{Dir: filepath.Join(cfg.data, "nats"), Listen: cfg.natsAddr, Token: natsToken})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := store.Open(openCtx, store.Config{URL: srv.ClientURL(), Token: natsToken, Name: "grid-up", Logger: logger.With("part", "store")})
	cancel()
	if err != nil {
		return err
	}
	defer st.Close()
	lg, err := logs.Open(ctx, st)
	if err != nil {
		return err
	}
	defer lg.Close()

	apiLn, err := net.Listen("tcp", cfg.apiAddr)
	if err != nil {
		return fmt.Errorf("API listen: %w", err)
	}
	routerLn, err := net.Listen("tcp", cfg.routerAddr)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("router listen: %w", err)
	}
	urls := newURLs(apiLn.Addr().String(), routerLn.Addr().String(), cfg.domain)
	key, err := adminKey(ctx, st, cfg.data)
	if err != nil {
		return err
	}
	if !cfg.noLogin {
		if err := cli.SaveCredentials(urls.api, key, os.Getenv); err != nil {
			logger.Warn("could not log the CLI in", "err", err)
		}
	}

	sb, err := sandbox.New(sandbox.Config{StateDir: filepath.Join(cfg.data, "sandboxes"), Logger: logger.With("part", "sandbox")})
	if err != nil {
		return err
	}
	defer sb.Close()
	slugs := &slug.Cache{Dir: filepath.Join(cfg.data, "slugs")}
	builder, err := build.New(build.Config{
		Store: st, Logs: lg, Sandboxes: sb, Slugs: slugs,
		WorkDir:      filepath.Join(cfg.data, "builds"),
		CacheDir:     filepath.Join(cfg.data, "buildcache"),
		BootTimeout:  cfg.bootTimeout,
		WaitForDynos: 30 * time.Second,
		WebURL:       urls.web,
		Logger:       logger.With("part", "build"),
	})
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	git, err := gitrecv.New(gitrecv.Config{
		ReposDir: filepath.Join(cfg.data, "repos"),
		HookExe:  exe,
		Authenticate: func(ctx context.Context, password string) (string, error) {
			return st.LookupAPIKey(ctx, password)
		},
		AppExists: func(ctx context.Context, app string) error { _, err := st.App(ctx, app); return err },
		Deployer: gitrecv.DeployerFunc(func(ctx context.Context, p gitrecv.Push) error {
			_, err := builder.Deploy(ctx, build.Request{App: p.App, User: p.User, Commit: p.NewRev, Source: p.Source, Output: p.Output})
			return err
		}),
		Logger: logger.With("part", "git"),
	})
	if err != nil {
		return err
	}
	apiHandler := api.New(api.Config{
		Store: st, Logs: lg, Logger: logger.With("part", "api"),
		Domain: cfg.domain, WebURL: urls.web, GitURL: urls.git, BaseURL: urls.api,
		SessionSecret: []byte(sessionSecret), Git: git,
		AppDestroyed: func(ctx context.Context, app string) {
			if err := git.RemoveRepo(app); err != nil {
				logger.Warn("could not remove git repo", "app", app, "err", err)
			}
			if err := builder.PurgeCache(app); err != nil {
				logger.Warn("could not remove build cache", "app", app, "err", err)
			}
		},
	})
	hostID, err := hostID(cfg.data)
	if err != nil {
		return err
	}
	agent, err := host.New(host.Config{
		ID: hostID, Addr: "127.0.0.1", Store: st, Logs: lg, Sandboxes: sb, Slugs: slugs,
		BootTimeout: cfg.bootTimeout, StopGrace: cfg.stopGrace,
		Logger: logger.With("part", "host"),
	})
	if err != nil {
		return err
	}
	mgr := manager.New(manager.Config{Store: st, Logger: logger.With("part", "manager")})
	rt := router.New(router.Config{Store: st, Logs: lg, Domain: cfg.domain, Logger: logger.With("part", "router")})

	fmt.Printf("grid: API and git  %s  (git push %s/<app>.git main)\n", urls.api, urls.api)
	fmt.Printf("grid: router       %s  (listening on %s)\n", urls.web("<app>"), routerLn.Addr())
	fmt.Printf("grid: NATS         %s\n", srv.ClientURL())
	fmt.Printf("grid: data         %s  (admin API key in %s)\n", cfg.data, filepath.Join(cfg.data, "admin-api-key"))

	// Roles that serve clients stop first; the host agent last, so dynos
	// keep serving while the front doors close.
	hostCtx, stopHost := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHost()
	hostDone := make(chan error, 1)
	go func() { hostDone <- agent.Run(hostCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { return rt.Run(gctx) })
	g.Go(func() error { return rt.Serve(gctx, routerLn) })
	g.Go(func() error { return serveHTTP(gctx, apiLn, apiHandler) })
	err = g.Wait()
	logger.Info("stopping dynos")
	stopHost()
	if herr := <-hostDone; herr != nil && !errors.Is(herr, context.Canceled) {
		logger.Error("host agent", "err", herr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("grid stopped")
	return nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully. Git
// pushes may stream for minutes, so there is no write timeout.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return ctx.Err()
}

// secretFile returns the secret stored in path, creating it (0600) first.
func secretFile(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	s := randomHex(32)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// adminKey returns the administrator API key, creating it on first start,
// and makes sure the store knows it.
func adminKey(ctx context.Context, st *store.Store, data string) (string, error) {
	path := filepath.Join(data, "admin-api-key")
	key, err := secretFile(path)
	if err != nil {
		return "", err
	}
	return key, st.PutAPIKey(ctx, key, adminEmail)
}

// hostID returns this machine's stable host id.
func hostID(data string) (string, error) {
	id, err := secretFile(filepath.Join(data, "host-id"))
	if err != nil {
		return "", err
	}
	return "h" + id[:12], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
