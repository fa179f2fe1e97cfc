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
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/postgres"
	"github.com/dynogrid/grid/internal/redis"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/store"
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
	// storageCheckEvery is how often Postgres add-ons' sizes are held to
	// their plans: a database may outgrow its plan by what it writes in
	// this long.
	storageCheckEvery = 30 * time.Second
)

type addonServers struct {
	pg       *postgres.Server
	pgp      *postgres.Provider // nil: no Postgres add-ons
	redis    *redis.Supervisor
	backends map[string]api.AddonBackend
	services []sandbox.Service
}

// addonServices are the add-on services grid offers, with their
// backends by service name; one missing answers 503.
func addonServices(backends map[string]api.AddonBackend) []api.AddonService {
	return []api.AddonService{
		{Name: "heroku-postgresql", Short: "postgresql", Aliases: []string{"postgresql", "postgres", "heroku-postgres"}, AttachAs: "DATABASE",
			Backend: backends["heroku-postgresql"]},
		{Name: "heroku-redis", Short: "redis", Aliases: []string{"redis"}, AttachAs: "REDIS", Backend: backends["heroku-redis"]},
	}
}

// addonsConfig says where add-on servers are: grid up's own on listen,
// or an operator's Postgres by its admin URL.
type addonsConfig struct {
	listen        netip.Addr
	postgresAdmin string // "postgres://admin:pw@10.0.0.5:5432/postgres": no local server
	redisAdmin    string // "redis://admin:pw@10.0.0.6:6379": no local servers
}

func startAddons(ctx context.Context, data string, cfg addonsConfig, logger *slog.Logger) *addonServers {
	a := &addonServers{backends: map[string]api.AddonBackend{}}
	if cfg.postgresAdmin != "" {
		a.usePostgres(ctx, cfg.postgresAdmin, logger)
	}
	if cfg.redisAdmin != "" {
		a.useRedis(ctx, cfg.redisAdmin, logger)
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
	if cfg.redisAdmin == "" {
		a.startRedis(ctx, data, cfg.listen, logger)
	}
	return a
}

// startRedis runs grid up's own Redis servers, one per add-on.
func (a *addonServers) startRedis(ctx context.Context, data string, listen netip.Addr, logger *slog.Logger) {
	sup, err := redis.New(redis.Config{Dir: filepath.Join(data, "redis"), Listen: listen, Ports: [2]int{redisFirstPort, redisLastPort}})
	if err == nil {
		err = sup.Start(ctx)
	}
	if err != nil {
		logger.Warn("Redis add-ons unavailable", "err", err)
		return
	}
	a.redis = sup
	a.backends["heroku-redis"] = redisBackend{sup}
	a.services = append(a.services, sandbox.Service{Addr: listen, FirstPort: redisFirstPort, LastPort: redisLastPort})
}

// usePostgres provisions Postgres add-ons on the server of adminURL,
// whose host must be an IPv4 address (dynos are let through to it on its
// port only); it reports whether the server is usable.
func (a *addonServers) usePostgres(ctx context.Context, adminURL string, logger *slog.Logger) bool {
	host, err := adminHost("Postgres", adminURL, []string{"postgres", "postgresql"}, postgresPort)
	if err != nil {
		logger.Warn("Postgres add-ons unavailable", "err", err)
		return false
	}
	p := &postgres.Provider{AdminURL: adminURL, Host: host.String()}
	if !a.useServer(ctx, "heroku-postgresql", pgBackend{p}, host, p.Prepare, logger) {
		return false
	}
	a.pgp = p
	return true
}

// useServer offers service through backend b on the server at host once
// prepare succeeds, and lets dynos through to host; it reports whether
// it does.
func (a *addonServers) useServer(ctx context.Context, service string, b api.AddonBackend, host netip.AddrPort, prepare func(context.Context) error, logger *slog.Logger) bool {
	if err := prepare(ctx); err != nil {
		logger.Warn("add-ons unavailable", "service", service, "server", host, "err", err)
		return false
	}
	a.backends[service] = b
	a.services = append(a.services, sandbox.Service{Addr: host.Addr(), FirstPort: host.Port(), LastPort: host.Port()})
	return true
}

// adminHost is the address and port of an admin URL of what ("Postgres":
// postgres://user:password@ADDRESS:PORT/db), with port if it names none.
func adminHost(what, adminURL string, schemes []string, port int) (netip.AddrPort, error) {
	u, err := url.Parse(adminURL)
	if err != nil || !slices.Contains(schemes, u.Scheme) {
		return netip.AddrPort{}, fmt.Errorf("%s admin URL: want %s://user:password@ADDRESS:PORT", what, schemes[0])
	}
	ap, err := grid.URLEndpoint(u, port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s admin URL: the host must be an IPv4 address dynos can reach, not %q", what, u.Hostname())
	}
	return ap, nil
}

// useRedis provisions Redis add-ons as ACL users on the operator's Redis
// of adminURL (see redis.Shared); it reports whether the server is
// usable.
func (a *addonServers) useRedis(ctx context.Context, adminURL string, logger *slog.Logger) bool {
	host, err := adminHost("Redis", adminURL, []string{"redis"}, 6379)
	if err != nil {
		logger.Warn("Redis add-ons unavailable", "err", err)
		return false
	}
	r := &redis.Shared{AdminURL: adminURL, Host: host.String()}
	return a.useServer(ctx, "heroku-redis", redisBackend{r}, host, r.Prepare, logger)
}

// watchStorage holds Postgres add-ons to their plans' storage: every
// interval it has postgres.Provider.Enforce lock the databases over it
// and unlock those back under, and tells their apps' logs. It returns a
// func that stops it and waits.
func (a *addonServers) watchStorage(ctx context.Context, st *store.Store, lg *logs.Log, every time.Duration, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if a.pgp == nil {
			return
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := a.enforceStorage(ctx, st, lg); err != nil && ctx.Err() == nil {
				logger.Warn("storage check", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (a *addonServers) enforceStorage(ctx context.Context, st *store.Store, lg *logs.Log) error {
	all, err := st.Addons(ctx)
	if err != nil {
		return err
	}
	plans := map[string]postgres.Plan{}
	byResource := map[string]grid.Addon{}
	for _, ad := range all {
		if ad.Service != "heroku-postgresql" {
			continue
		}
		if p, err := postgres.LookupPlan(ad.Plan); err == nil {
			plans[ad.Resource], byResource[ad.Resource] = p, ad
		}
	}
	sts, err := a.pgp.Enforce(ctx, plans)
	for _, s := range sts {
		if !s.Changed {
			continue
		}
		ad := byResource[s.ID]
		msg := fmt.Sprintf("Database %s is back within its plan's storage (%s of %s): writes are allowed again.", ad.Name, mb(s.Bytes), mb(s.Limit))
		if s.Locked {
			msg = fmt.Sprintf("Database %s is over its plan's storage (%s of %s): INSERT, UPDATE and CREATE are revoked until it is back under. TRUNCATE tables, or change its plan (grid addons:upgrade).",
				ad.Name, mb(s.Bytes), mb(s.Limit))
		}
		lg.Write(logs.Line{Time: time.Now(), App: ad.App, Source: "heroku", Dyno: "heroku-postgres", Text: msg})
	}
	return err
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

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

func (b pgBackend) ChangePlan(ctx context.Context, resource, plan string) error {
	p, err := postgres.LookupPlan(plan)
	if err != nil {
		return err
	}
	return b.p.ChangePlan(ctx, resource, p)
}

func (b pgBackend) Dump(ctx context.Context, url string, w io.Writer) error {
	return postgres.Dump(ctx, url, w)
}

func (b pgBackend) Restore(ctx context.Context, url string, r io.Reader) error {
	return postgres.Restore(ctx, url, r)
}

// redisBackend is either kind of Redis add-on: a server of its own
// (*redis.Supervisor) or a user on the operator's (*redis.Shared).
type redisBackend struct {
	s interface {
		Provision(ctx context.Context, id string, plan redis.Plan) (string, error)
		Deprovision(ctx context.Context, id string) error
		Rotate(ctx context.Context, id string) (string, error)
		ChangePlan(ctx context.Context, id string, plan redis.Plan) error
	}
}

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

func (b redisBackend) ChangePlan(ctx context.Context, resource, plan string) error {
	p, err := redis.LookupPlan(plan)
	if err != nil {
		return err
	}
	return b.s.ChangePlan(ctx, resource, p)
}
