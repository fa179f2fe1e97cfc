package main

import (
	"context"
	"flag"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

// hostConfig is what a host agent reads from flags.
type hostConfig struct {
	join        joinFlags
	data        string
	addr        string
	subnet      string
	bootTimeout time.Duration
	stopGrace   time.Duration
}

func (c *hostConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.subnet, "subnet", "10.231.0.0/16", "addresses of this host's dynos (unique per host in a cluster)")
	fs.DurationVar(&c.stopGrace, "stop-grace", 30*time.Second, "time between SIGTERM and SIGKILL when stopping a dyno")
}

func hostFlags(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var c hostConfig
	c.join.register(fs, "host")
	c.register(fs)
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory (sandboxes, unpacked slugs)")
	fs.StringVar(&c.addr, "addr", "", "this server's address, through which routers reach its dynos")
	fs.DurationVar(&c.bootTimeout, "boot-timeout", 60*time.Second, "how long a web process may take to bind $PORT")
	return func(ctx context.Context, logger *slog.Logger) error {
		if err := needRoot("grid host"); err != nil {
			return err
		}
		st, err := c.join.open(ctx, store.RoleHost, c.data, logger)
		if err != nil {
			return err
		}
		defer st.Close()
		sb, err := newSandboxes(c, logger)
		if err != nil {
			return err
		}
		defer sb.Close()
		return runHost(ctx, c, st, sb, logger)
	}
}

func newSandboxes(c hostConfig, logger *slog.Logger) (*sandbox.Manager, error) {
	return sandbox.New(sandbox.Config{
		StateDir: filepath.Join(c.data, "sandboxes"), Subnet: mustPrefix(c.subnet),
		Logger: logger.With("part", "sandbox"),
	})
}

// runHost runs the host agent on st until ctx ends, then stops its dynos.
func runHost(ctx context.Context, c hostConfig, st *store.Store, sb *sandbox.Manager, logger *slog.Logger) error {
	lg, err := logs.Open(ctx, st)
	if err != nil {
		return err
	}
	defer lg.Close()
	agent, err := host.New(host.Config{
		ID: st.Role().ID, Addr: c.addr, Subnet: c.subnet, Store: st, Logs: lg, Sandboxes: sb,
		Slugs:       &slug.Cache{Dir: filepath.Join(c.data, "slugs")},
		BootTimeout: c.bootTimeout, StopGrace: c.stopGrace,
		Logger: logger.With("part", "host"),
	})
	if err != nil {
		return err
	}
	return agent.Run(ctx)
}

func mustPrefix(s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{} // sandbox.New rejects it with a clear message
	}
	return p
}
