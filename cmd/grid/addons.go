package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/postgres"
	"github.com/dynogrid/grid/internal/redis"
	"github.com/dynogrid/grid/internal/sandbox"
)

// The add-on servers of `grid up`: a PostgreSQL cluster (DATA/postgres)
// and the Redis instances (DATA/redis), listening on one address of this
// machine (--addons-listen, put on lo) that dynos may reach on those ports
// only. A backend whose package is not installed, or that cannot start
// (another grid on this machine has the address), is left out: creating
// its add-ons then answers 503, and the grid runs on.

const (
	postgresPort                  = 5432
	redisFirstPort, redisLastPort = 16000, 16999
)

type addonServers struct {
	pg       *postgres.Server
	redis    *redis.Supervisor
	backends map[string]api.AddonBackend
	services []sandbox.Service
}

// addonsConfig says where add-on servers are: grid up's own on listen,
// or an operator's Postgres by its admin URL.
type addonsConfig struct {
	listen        netip.Addr
	postgresAdmin string // "postgres://admin:pw@10.0.0.5:5432/postgres": no local server
}

func startAddons(ctx context.Context, data string, cfg addonsConfig, logger *slog.Logger) *addonServers {
	a := &addonServers{backends: map[string]api.AddonBackend{}}
	if cfg.postgresAdmin != "" {
		a.usePostgres(ctx, cfg.postgresAdmin, logger)
	}
	if !cfg.listen.IsValid() {
		return a
	}
	// The servers run as their own OS users (postgres, redis), who pass
	// through DATA to their directories; what else DATA holds is 0600.
	if err := os.Chmod(data, 0o711); err != nil {
		logger.Warn("add-on servers not started", "err", err)
		return a
	}
	if err := addLoopbackAddr(cfg.listen); err != nil {
		logger.Warn("add-on servers not started: their address", "addr", cfg.listen, "err", err)
		return a
	}
	if cfg.postgresAdmin == "" {
		pgAddr := netip.AddrPortFrom(cfg.listen, postgresPort)
		if srv, err := postgres.StartServer(ctx, postgres.ServerConfig{Dir: filepath.Join(data, "postgres"), Listen: pgAddr}); err != nil {
			logger.Warn("Postgres add-ons unavailable", "err", err)
		} else if a.usePostgres(ctx, srv.AdminURL(), logger) {
			a.pg = srv
		} else {
			srv.Stop()
		}
	}
	sup, err := redis.New(redis.Config{Dir: filepath.Join(data, "redis"), Listen: cfg.listen, Ports: [2]int{redisFirstPort, redisLastPort}})
	if err == nil {
		err = sup.Start(ctx)
	}
	if err != nil {
		logger.Warn("Redis add-ons unavailable", "err", err)
	} else {
		a.redis = sup
		a.backends["heroku-redis"] = redisBackend{sup}
		a.services = append(a.services, sandbox.Service{Addr: cfg.listen, FirstPort: redisFirstPort, LastPort: redisLastPort})
	}
	return a
}

// usePostgres provisions Postgres add-ons on the server of adminURL,
// whose host must be an IPv4 address (dynos are let through to it on its
// port only); it reports whether the server is usable.
func (a *addonServers) usePostgres(ctx context.Context, adminURL string, logger *slog.Logger) bool {
	host, err := adminHost(adminURL)
	if err != nil {
		logger.Warn("Postgres add-ons unavailable", "err", err)
		return false
	}
	p := &postgres.Provider{AdminURL: adminURL, Host: host.String()}
	if err := p.Prepare(ctx); err != nil {
		logger.Warn("Postgres add-ons unavailable", "server", host, "err", err)
		return false
	}
	a.backends["heroku-postgresql"] = pgBackend{p}
	a.services = append(a.services, sandbox.Service{Addr: host.Addr(), FirstPort: host.Port(), LastPort: host.Port()})
	return true
}

// adminHost is the address and port of a Postgres admin URL (port 5432
// if it names none).
func adminHost(adminURL string) (netip.AddrPort, error) {
	u, err := url.Parse(adminURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return netip.AddrPort{}, fmt.Errorf("Postgres admin URL: want postgres://user:password@ADDRESS:PORT/db")
	}
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(postgresPort)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(u.Hostname(), port))
	if err != nil || !ap.Addr().Is4() {
		return netip.AddrPort{}, fmt.Errorf("Postgres admin URL: the host must be an IPv4 address dynos can reach, not %q", u.Hostname())
	}
	return ap, nil
}

// stop shuts the servers down; their data stays for the next start.
func (a *addonServers) stop() {
	if a.redis != nil {
		a.redis.Close()
	}
	if a.pg != nil {
		a.pg.Stop()
	}
}

// addLoopbackAddr puts addr on lo (if it is not there yet).
func addLoopbackAddr(addr netip.Addr) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	err = netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address %s on lo: %w", addr, err)
	}
	return nil
}

type pgBackend struct{ p *postgres.Provider }

func (b pgBackend) Plan(name string) (string, error) {
	p, err := postgres.LookupPlan(name)
	return p.Name, err
}

func (b pgBackend) Provision(ctx context.Context, resource, plan string) (string, error) {
	p, err := postgres.LookupPlan(plan)
	if err != nil {
		return "", err
	}
	return b.p.Provision(ctx, resource, p)
}

func (b pgBackend) Deprovision(ctx context.Context, resource string) error {
	return b.p.Deprovision(ctx, resource)
}

func (b pgBackend) Rotate(ctx context.Context, resource string) (string, error) {
	return b.p.Rotate(ctx, resource)
}

func (b pgBackend) Dump(ctx context.Context, url string, w io.Writer) error {
	return postgres.Dump(ctx, url, w)
}

func (b pgBackend) Restore(ctx context.Context, url string, r io.Reader) error {
	return postgres.Restore(ctx, url, r)
}

type redisBackend struct{ s *redis.Supervisor }

func (b redisBackend) Plan(name string) (string, error) {
	p, err := redis.LookupPlan(name)
	return p.Name, err
}

func (b redisBackend) Provision(ctx context.Context, resource, plan string) (string, error) {
	p, err := redis.LookupPlan(plan)
	if err != nil {
		return "", err
	}
	return b.s.Provision(ctx, resource, p)
}

func (b redisBackend) Deprovision(ctx context.Context, resource string) error {
	return b.s.Deprovision(ctx, resource)
}

func (b redisBackend) Rotate(ctx context.Context, resource string) (string, error) {
	return b.s.Rotate(ctx, resource)
}
