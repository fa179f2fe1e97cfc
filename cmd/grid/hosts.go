package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/provider"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/store"
)

// hostProvider is a server's host provider and what it needs around it:
// the store that records the hosts it makes and, for netns, the fabric.
// It serves hosts:add and hosts:fail (api.HostProvider) and the manager.
type hostProvider struct {
	p      manager.Provider
	netns  *provider.NetNS  // set for netns: Fail and shutdown need it
	fabric *provider.Fabric // set for netns
	st     *store.Store     // set by bind, once the control plane has connected
	logger *slog.Logger
	// minHosts is the fewest hosts the manager keeps (grid up --hosts N);
	// zero leaves the manager's default.
	minHosts int
}

// networks are the provider's networks inside the grid (netns: the
// fabric and the hosts' subnets); none for others or nil.
func (hp *hostProvider) networks() []netip.Prefix {
	if hp == nil || hp.netns == nil {
		return nil
	}
	return hp.netns.Networks()
}

// openProvider starts the provider `grid server --provider` names:
// "netns" or "exec:/path/to/script". Empty means none (nil).
func openProvider(ctx context.Context, spec string, n natsNode, hc netnsHosts, logger *slog.Logger) (*hostProvider, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	logger = logger.With("part", "provider", "provider", kind)
	password := func(id string) string { return store.Role{Kind: store.RoleHost, ID: id}.Password(n.secret) }
	switch kind {
	case "":
		return nil, nil
	case provider.NameNetNS:
		return openNetNS(ctx, n, hc, logger)
	case provider.NameExec:
		p, err := provider.NewExec(provider.ExecConfig{Script: arg, Join: joinURL(n.srv.ClientURL()), Password: password, Logger: logger})
		if err != nil {
			return nil, err
		}
		return &hostProvider{p: p, logger: logger}, nil
	}
	return nil, fmt.Errorf("--provider %q: want netns or exec:/path/to/script", spec)
}

// netnsHosts is what netns hosts are started with.
type netnsHosts struct {
	data                   string // the server's data directory
	stopGrace, bootTimeout time.Duration
	services               []sandbox.Service // add-on servers their dynos may reach
}

// openNetNS opens the fabric and a netns provider whose hosts join n on
// the fabric. n must listen on all addresses or on the fabric's.
func openNetNS(ctx context.Context, n natsNode, hc netnsHosts, logger *slog.Logger) (*hostProvider, error) {
	u, err := url.Parse(n.srv.ClientURL())
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err != nil || !ip.IsUnspecified() && ip != provider.FabricAddr {
		return nil, fmt.Errorf("netns hosts reach NATS on the fabric at %s: --nats must listen on 0.0.0.0 or %s, not %s", provider.FabricAddr, provider.FabricAddr, u.Host)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fab, err := provider.OpenFabric(lctx)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		fab.Close()
		return nil, err
	}
	p, err := provider.NewNetNS(provider.NetNSConfig{
		Fabric: fab, Exe: exe, DataDir: filepath.Join(hc.data, "hosts"),
		NATSURL:   "nats://" + net.JoinHostPort(provider.FabricAddr.String(), u.Port()),
		Password:  func(id string) string { return store.Role{Kind: store.RoleHost, ID: id}.Password(n.secret) },
		StopGrace: hc.stopGrace, BootTimeout: hc.bootTimeout, Services: formatServices(hc.services), Logger: logger,
	})
	if err != nil {
		fab.Close()
		return nil, err
	}
	return &hostProvider{p: p, netns: p, fabric: fab, logger: logger}, nil
}

// joinURL is a NATS URL other machines can use: a wildcard listen address
// becomes this machine's first global IPv4 address.
func joinURL(client string) string {
	u, err := url.Parse(client)
	if err != nil {
		return client
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err != nil || !ip.IsUnspecified() {
		return client
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() && !provider.FabricContains(n.IP) {
			u.Host = net.JoinHostPort(n.IP.String(), u.Port())
			return u.String()
		}
	}
	return client
}

// bind gives the provider the store where it records hosts.
func (hp *hostProvider) bind(st *store.Store) {
	if hp != nil {
		hp.st = st
	}
}

// api is hp as the API's provider; nil when there is none.
func (hp *hostProvider) api() api.HostProvider {
	if hp == nil {
		return nil
	}
	return hp
}

// manager is hp as the manager's provider; nil when there is none.
func (hp *hostProvider) manager() manager.Provider {
	if hp == nil {
		return nil
	}
	return hp.p
}

func (hp *hostProvider) minimum() int {
	if hp == nil {
		return 0
	}
	return hp.minHosts
}

// Add implements api.HostProvider: one more host, recorded so that the
// manager and `grid hosts` know it before it registers. A host that cannot
// be recorded is released again.
func (hp *hostProvider) Add(ctx context.Context) (grid.HostControl, error) {
	hc, err := hp.p.Provision(ctx)
	if err != nil {
		return grid.HostControl{}, err
	}
	if err := hp.record(ctx, hc); err != nil {
		if rerr := hp.p.Release(context.WithoutCancel(ctx), hc); rerr != nil {
			hp.logger.Error("could not release an unrecorded host", "host", hc.ID, "err", rerr)
		}
		return grid.HostControl{}, err
	}
	return hc, nil
}

func (hp *hostProvider) record(ctx context.Context, hc grid.HostControl) error {
	_, err := hp.st.UpdateHostControl(ctx, hc.ID, func(c *grid.HostControl) error {
		c.Provider, c.Handle, c.Since = hc.Provider, hc.Handle, hc.Since
		return nil
	})
	return err
}

// Fail implements api.HostProvider: a power cut, for netns hosts.
func (hp *hostProvider) Fail(ctx context.Context, id string) error {
	hc, err := hp.netnsControl(ctx, id, "fail")
	if err != nil {
		return err
	}
	return hp.netns.Fail(ctx, hc)
}

// Cut implements api.HostProvider: a network partition (cut) and its
// healing, for netns hosts.
func (hp *hostProvider) Cut(ctx context.Context, id string, cut bool) error {
	hc, err := hp.netnsControl(ctx, id, "be cut off")
	if err != nil {
		return err
	}
	return hp.netns.Cut(ctx, hc, cut)
}

// netnsControl is the control record of netns host id; other hosts
// cannot be failed or cut from here (what says grid.ErrInvalid).
func (hp *hostProvider) netnsControl(ctx context.Context, id, what string) (grid.HostControl, error) {
	hc, err := hp.control(ctx, id)
	if err != nil {
		return hc, err
	}
	if hc.Provider != provider.NameNetNS || hp.netns == nil {
		return hc, fmt.Errorf("host %s was not made by the netns provider; only netns hosts can %s: %w", id, what, grid.ErrInvalid)
	}
	return hc, nil
}

func (hp *hostProvider) control(ctx context.Context, id string) (grid.HostControl, error) {
	ctls, err := hp.st.HostControls(ctx)
	if err != nil {
		return grid.HostControl{}, err
	}
	for _, c := range ctls {
		if c.ID == id {
			return c, nil
		}
	}
	return grid.HostControl{}, fmt.Errorf("host %s: %w", id, grid.ErrNotFound)
}

// close lets go of the fabric lock; hosts keep running.
func (hp *hostProvider) close() {
	if hp != nil && hp.fabric != nil {
		hp.fabric.Close()
	}
}

// startHosts is `grid up --hosts N`: leftovers of an earlier run go (their
// namespaces and records), then n hosts start and the call waits until
// they heartbeat.
func (hp *hostProvider) startHosts(ctx context.Context, n int) error {
	if err := hp.netns.Cleanup(ctx); err != nil {
		return fmt.Errorf("remove netns hosts of an earlier run: %w", err)
	}
	if err := hp.forgetNetNSHosts(ctx); err != nil {
		return err
	}
	start := time.Now()
	var ids []string
	for range n {
		hc, err := hp.Add(ctx)
		if err != nil {
			return err
		}
		ids = append(ids, hc.ID)
	}
	hosts, err := hp.waitRegistered(ctx, ids, time.Minute)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		fmt.Printf("grid: host %-8s %s, dynos in %s\n", h.ID, h.Addr, h.Subnet)
	}
	hp.logger.Info("hosts up", "hosts", n, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// forgetNetNSHosts deletes the records of netns hosts, whose namespaces
// Cleanup removed: they are gone, not lost. Their dynos' assignments stay
// for the manager to place again.
func (hp *hostProvider) forgetNetNSHosts(ctx context.Context) error {
	ctls, err := hp.st.HostControls(ctx)
	if err != nil {
		return err
	}
	for _, c := range ctls {
		if c.Provider == provider.NameNetNS {
			if err := errors.Join(hp.st.DeleteHost(ctx, c.ID), hp.st.DeleteHostControl(ctx, c.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitRegistered waits until every host in ids has a host record.
func (hp *hostProvider) waitRegistered(ctx context.Context, ids []string, timeout time.Duration) ([]grid.Host, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := hp.st.WatchHosts(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]grid.Host{}
	for ev := range w {
		if !ev.Deleted && contains(ids, ev.Key) {
			seen[ev.Key] = ev.Value
		}
		if len(seen) == len(ids) {
			out := make([]grid.Host, 0, len(ids))
			for _, id := range ids {
				out = append(out, seen[id])
			}
			return out, nil
		}
	}
	if ctx.Err() != nil && len(seen) < len(ids) {
		return nil, fmt.Errorf("%d of %d hosts registered within %v; see %s/*/host.log", len(seen), len(ids), timeout, filepath.Join("DATA", "hosts"))
	}
	return nil, ctx.Err()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// releaseAll is the end of `grid up --hosts`: every netns host stops
// gracefully (its dynos get SIGTERM and their grace), all at once, and
// their records go; then the fabric is removed.
func (hp *hostProvider) releaseAll(ctx context.Context) {
	hosts, err := hp.netns.Hosts()
	if err != nil {
		hp.logger.Error("list netns hosts", "err", err)
	}
	var wg sync.WaitGroup
	for _, hc := range hosts {
		wg.Go(func() {
			if err := hp.netns.Release(ctx, hc); err != nil {
				hp.logger.Error("release host", "host", hc.ID, "err", err)
				return
			}
			if err := errors.Join(hp.st.DeleteHost(ctx, hc.ID), hp.st.DeleteHostControl(ctx, hc.ID)); err != nil {
				hp.logger.Warn("forget released host", "host", hc.ID, "err", err)
			}
		})
	}
	wg.Wait()
	if err := hp.fabric.Remove(); err != nil {
		hp.logger.Warn("remove netns fabric", "err", err)
	}
}
