package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"

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

func startAddons(ctx context.Context, data string, addr netip.Addr, logger *slog.Logger) *addonServers {
	a := &addonServers{backends: map[string]api.AddonBackend{}}
	if !addr.IsValid() {
		return a
	}
	// The servers run as their own OS users (postgres, redis), who pass
	// through DATA to their directories; what else DATA holds is 0600.
	if err := os.Chmod(data, 0o711); err != nil {
		logger.Warn("add-on servers not started", "err", err)
		return a
	}
	if err := addLoopbackAddr(addr); err != nil {
		logger.Warn("add-on servers not started: their address", "addr", addr, "err", err)
		return a
	}
	pgAddr := netip.AddrPortFrom(addr, postgresPort)
	if srv, err := postgres.StartServer(ctx, postgres.ServerConfig{Dir: filepath.Join(data, "postgres"), Listen: pgAddr}); err != nil {
		logger.Warn("Postgres add-ons unavailable", "err", err)
	} else {
		p := &postgres.Provider{AdminURL: srv.AdminURL(), Host: pgAddr.String()}
		if err := p.Prepare(ctx); err != nil {
			logger.Warn("Postgres add-ons unavailable", "err", err)
			srv.Stop()
		} else {
			a.pg = srv
			a.backends["heroku-postgresql"] = pgBackend{p}
			a.services = append(a.services, sandbox.Service{Addr: addr, FirstPort: postgresPort, LastPort: postgresPort})
		}
	}
	sup, err := redis.New(redis.Config{Dir: filepath.Join(data, "redis"), Listen: addr, Ports: [2]int{redisFirstPort, redisLastPort}})
	if err == nil {
		err = sup.Start(ctx)
	}
	if err != nil {
		logger.Warn("Redis add-ons unavailable", "err", err)
	} else {
		a.redis = sup
		a.backends["heroku-redis"] = redisBackend{sup}
		a.services = append(a.services, sandbox.Service{Addr: addr, FirstPort: redisFirstPort, LastPort: redisLastPort})
	}
	return a
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
