package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

// role is one `grid <role>` command: its flags and what it runs until ctx
// ends.
type role struct {
	summary string
	flags   func(fs *flag.FlagSet) func(ctx context.Context, logger *slog.Logger) error
}

var roles = map[string]role{
	"up":     {"run every role in this process (one machine)", upFlags},
	"server": {"run the control plane: NATS node, API, git, builds, dyno manager", serverFlags},
	"host":   {"run a host agent: run the dynos assigned to this server", hostFlags},
	"router": {"run an HTTP router", routerFlags},
}

func runRole(name string, r role, args []string) int {
	fs := flag.NewFlagSet("grid "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "grid %s: %s\n\nflags:\n", name, r.summary)
		fs.PrintDefaults()
	}
	run := r.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "grid %s takes no arguments, got %q\n", name, fs.Args())
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// A role outlives whatever reads its logs (a closed terminal, a killed
	// `| tee`): with SIGPIPE noticed, a log line to a reader that is gone
	// fails with EPIPE instead of killing the process there and then, its
	// dynos left running. Notify, not Ignore: an ignored signal would stay
	// ignored in every program it starts.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	stops := stopSignals()
	ctx, stop := signal.NotifyContext(context.Background(), stops...)
	defer stop()
	go func() { // a second signal means "now"
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, stops...)
		<-ch
		logger.Warn("second signal: exiting without stopping dynos")
		os.Exit(1)
	}()
	if err := run(ctx, logger); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("grid "+name+" failed", "err", err)
		return 1
	}
	return 0
}

// stopSignals are the signals that stop a role gracefully: SIGINT,
// SIGTERM, and SIGHUP (its terminal closed) unless it was started with
// SIGHUP ignored (nohup), which noticing it would undo.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

func needRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s must run as root: dynos are Linux sandboxes (namespaces, cgroups, overlayfs)", what)
	}
	return nil
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

// joinFlags are how a host or router reaches the cluster.
type joinFlags struct {
	urls         string
	id           string
	password     string
	passwordFile string
}

func (j *joinFlags) register(fs *flag.FlagSet, kind string) {
	fs.StringVar(&j.urls, "join", "", "NATS URLs of the servers, comma-separated (nats://10.0.0.1:4222,...)")
	fs.StringVar(&j.id, "id", "", kind+" id (default: a stable id kept in the data directory)")
	fs.StringVar(&j.passwordFile, "password-file", "", "file holding this "+kind+"'s NATS password (`grid "+kind+"s:token ID` prints it); or set GRID_"+strings.ToUpper(kind)+"_PASSWORD")
}

// open connects to the cluster as role kind.
func (j *joinFlags) open(ctx context.Context, kind store.RoleKind, data string, logger *slog.Logger) (*store.Store, error) {
	if j.urls == "" {
		return nil, fmt.Errorf("--join is required: the NATS URLs of the grid servers")
	}
	id := j.id
	if id == "" {
		var err error
		if id, err = stableID(data, string(kind)); err != nil {
			return nil, err
		}
	}
	pass := j.password
	if pass == "" && j.passwordFile != "" {
		b, err := os.ReadFile(j.passwordFile)
		if err != nil {
			return nil, err
		}
		pass = strings.TrimSpace(string(b))
	}
	if pass == "" {
		pass = os.Getenv("GRID_" + strings.ToUpper(string(kind)) + "_PASSWORD")
	}
	if pass == "" {
		return nil, fmt.Errorf("no NATS password: give --password-file or GRID_%s_PASSWORD", strings.ToUpper(string(kind)))
	}
	r := store.Role{Kind: kind, ID: id}
	if err := store.ValidateRoleID(id); err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return store.Open(octx, store.Config{URL: j.urls, Role: r, Password: pass, Logger: logger.With("part", "store")})
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
