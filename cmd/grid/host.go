package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
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
	// cgroupParent is where this host's sandboxes' cgroups go; hosts that
	// share a machine's cgroup tree (netns hosts) each need their own.
	cgroupParent string
	// keepDynos leaves dynos running when the agent stops, for the next
	// agent of this host to adopt (an agent upgrade).
	keepDynos bool
	// internal and routers are the sandbox firewall's lists (see
	// sandbox.Config): comma-separated prefixes.
	internal, routers string
	// services are what dynos may reach on this machine (add-on
	// servers), set by grid up.
	services []sandbox.Service
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
	fs.StringVar(&c.cgroupParent, "cgroup-parent", "grid", "cgroup of this host's dynos, relative to each hierarchy's root (unique per host on one machine)")
	fs.BoolVar(&c.keepDynos, "keep-dynos", false, "leave dynos running when the agent stops, for the next agent of this host to adopt")
	fs.StringVar(&c.internal, "internal", "", "comma-separated networks dynos must never reach (the servers' network, other hosts' dyno subnets), e.g. 10.0.0.0/8")
	fs.StringVar(&c.routers, "routers", "", "comma-separated networks of the routers, the only other machines that may reach dynos (empty: any)")
	services := fs.String("services", "", "comma-separated add-on servers, ADDR:PORT or ADDR:FIRST-LAST: a dyno reaches those of its app's add-ons there, even on this machine or in --internal, and no other")
	return func(ctx context.Context, logger *slog.Logger) error {
		if err := needRoot("grid host"); err != nil {
			return err
		}
		var err error
		if c.services, err = parseServices(*services); err != nil {
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
	internal, err := prefixList("--internal", c.internal)
	if err != nil {
		return nil, err
	}
	// The grid's own servers are never a dyno's to reach, whatever
	// --internal says: an operator who left it out still has them closed.
	internal = append(internal, joinServers(c.join.urls)...)
	routers, err := prefixList("--routers", c.routers)
	if err != nil {
		return nil, err
	}
	return sandbox.New(sandbox.Config{
		StateDir: filepath.Join(c.data, "sandboxes"), Subnet: mustPrefix(c.subnet),
		CgroupParent: c.cgroupParent, Internal: internal, Routers: routers, Services: c.services,
		Logger: logger.With("part", "sandbox"),
	})
}

// parseServices parses --services: "10.229.0.1:5432,10.229.0.1:16000-16999".
func parseServices(s string) ([]sandbox.Service, error) {
	var out []sandbox.Service
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		bad := fmt.Errorf("--services: %q is not ADDR:PORT or ADDR:FIRST-LAST with an IPv4 address", f)
		host, ports, ok := strings.Cut(f, ":")
		addr, err := netip.ParseAddr(host)
		if !ok || err != nil || !addr.Is4() {
			return nil, bad
		}
		first, last, ranged := strings.Cut(ports, "-")
		if !ranged {
			last = first
		}
		a, err1 := strconv.ParseUint(first, 10, 16)
		b, err2 := strconv.ParseUint(last, 10, 16)
		if err1 != nil || err2 != nil || a == 0 || b < a {
			return nil, bad
		}
		out = append(out, sandbox.Service{Addr: addr, FirstPort: uint16(a), LastPort: uint16(b)})
	}
	return out, nil
}

// formatServices is the --services value of svcs.
func formatServices(svcs []sandbox.Service) string {
	var fs []string
	for _, sv := range svcs {
		f := fmt.Sprintf("%s:%d", sv.Addr, sv.FirstPort)
		if sv.LastPort != sv.FirstPort {
			f += fmt.Sprintf("-%d", sv.LastPort)
		}
		fs = append(fs, f)
	}
	return strings.Join(fs, ",")
}

// prefixList parses a flag's comma-separated networks (a bare address is
// a /32).
func prefixList(flag, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%s: %q is not a network like 10.0.0.0/8", flag, f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// joinServers are the IPv4 addresses of the servers that --join names
// (a host name or a loopback address names none a dyno could route to),
// each as a /32.
func joinServers(urls string) []netip.Prefix {
	var out []netip.Prefix
	for _, raw := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	return out
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
		BootTimeout: c.bootTimeout, StopGrace: c.stopGrace, StopDynosOnExit: !c.keepDynos,
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
