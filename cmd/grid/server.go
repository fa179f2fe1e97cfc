package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/cli"
	"github.com/dynogrid/grid/internal/drain"
	"github.com/dynogrid/grid/internal/gitrecv"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/localca"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/manager"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

// adminEmail is the account the first API key belongs to.
const adminEmail = "admin@grid.local"

// serverConfig is what a server (control plane node) reads from flags.
type serverConfig struct {
	data        string
	apiAddr     string
	apiTLSAddr  string
	natsAddr    string
	clusterAddr string
	peers       string
	name        string
	secretFile  string
	domain      string
	routerPort  string // where routers serve apps, for app URLs
	bootTimeout time.Duration
	buildSubnet string
	noLogin     bool
	provider    string // "", "netns" or "exec:/path"
	headroom    int    // MB of free memory to keep; 0: the largest host's
	emptyGrace  time.Duration
	// cycleAfter and cycleJitter set the manager's daily dyno cycling;
	// zero turns cycling (or the jitter) off.
	cycleAfter  time.Duration
	cycleJitter time.Duration
	// buildpackRoots are the directories apps may name local buildpacks
	// under (--buildpack-root, repeatable).
	buildpackRoots pathList
	buildTimeout   time.Duration
	maxSlugMB      int64
	// goSeedDir is where builders keep the Go standard library's build
	// seed (--go-seed-dir; build.Config.GoSeedDir).
	goSeedDir string
	// postgresAdmin and redisAdmin are operators' servers for add-ons
	// (--postgres-admin-url, --redis-admin-url or their environment
	// variables); grid up runs its own where they are empty.
	postgresAdmin, redisAdmin string
	// addons are the add-on backends this server offers.
	addons map[string]api.AddonBackend
	// drainDeny (--drain-deny) and gridNets (the dyno and build subnets
	// this process knows) are networks log drains must never reach.
	drainDeny string
	gridNets  []netip.Prefix
}

// addonsEnv fills the admin URLs the flags left empty from the
// environment, which keeps passwords out of the process list.
func (c *serverConfig) addonsEnv() {
	if c.postgresAdmin == "" {
		c.postgresAdmin = os.Getenv("GRID_POSTGRES_ADMIN_URL")
	}
	if c.redisAdmin == "" {
		c.redisAdmin = os.Getenv("GRID_REDIS_ADMIN_URL")
	}
}

// pathList is a repeatable flag of absolute paths.
type pathList []string

func (l *pathList) String() string { return strings.Join(*l, ",") }

func (l *pathList) Set(v string) error {
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%q is not an absolute path", v)
	}
	*l = append(*l, filepath.Clean(v))
	return nil
}

func (c *serverConfig) register(fs *flag.FlagSet, natsDefault string) {
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory (state, slugs, repos)")
	fs.StringVar(&c.apiAddr, "api", "127.0.0.1:5000", "listen address of the Platform API and git")
	fs.StringVar(&c.apiTLSAddr, "api-tls", "127.0.0.1:5443", "listen address of the Platform API and git over HTTPS (a local CA's certificate; what the Heroku CLI needs); empty for none")
	fs.StringVar(&c.natsAddr, "nats", natsDefault, "listen address of the embedded NATS server (empty: a free loopback port)")
	fs.StringVar(&c.domain, "domain", "localhost", "apps are served at <app>.<domain>")
	fs.DurationVar(&c.bootTimeout, "boot-timeout", 60*time.Second, "how long a web process may take to bind $PORT")
	fs.BoolVar(&c.noLogin, "no-login", false, "do not write the CLI credentials file")
	fs.IntVar(&c.headroom, "headroom", 0, "free memory (MB) to keep across hosts; below it the provider adds a host (0: the largest host's memory)")
	fs.DurationVar(&c.emptyGrace, "empty-grace", 5*time.Minute, "how long a provisioned host may sit empty before it is drained and released")
	fs.DurationVar(&c.cycleAfter, "cycle-after", 24*time.Hour, "how long a dyno runs before it is cycled (restarted start-before-stop), as on Heroku; 0 turns cycling off")
	fs.DurationVar(&c.cycleJitter, "cycle-jitter", 216*time.Minute, "the most added to --cycle-after per dyno, so dynos started together are cycled apart; 0 for none")
	fs.DurationVar(&c.buildTimeout, "build-timeout", build.DefaultBuildTimeout, "how long a build's buildpacks may run")
	fs.Int64Var(&c.maxSlugMB, "max-slug-size", build.DefaultMaxSlugBytes>>20, "the largest slug (compressed, MB) a build may make")
	fs.StringVar(&c.goSeedDir, "go-seed-dir", "/var/cache/grid/go-seed", "where this machine's builders keep their build of the Go standard library, which Go apps' first builds start from; empty for none")
	fs.Var(&c.buildpackRoots, "buildpack-root", "a directory under which apps may use local buildpacks by path (repeatable; default: none)")
	fs.StringVar(&c.secretFile, "secret-file", "", "cluster secret shared by all servers (default: DATA/cluster-secret, created if missing)")
	fs.StringVar(&c.drainDeny, "drain-deny", "", "comma-separated networks log drains must never reach besides the grid's own subnets and this machine's addresses: the servers' and hosts' private network, e.g. 10.0.0.0/8")
	fs.StringVar(&c.postgresAdmin, "postgres-admin-url", "", "an existing PostgreSQL server for Postgres add-ons (postgres://admin:password@IPv4:port/postgres, a superuser) instead of the one grid up runs; or GRID_POSTGRES_ADMIN_URL, which keeps the password out of the process list")
	fs.StringVar(&c.redisAdmin, "redis-admin-url", "", "an existing Redis 6+ for Redis add-ons, each an ACL user whose keys must begin with its user name and a colon (redis://admin:password@IPv4:port, a user allowed ACL), instead of the servers grid up runs; or GRID_REDIS_ADMIN_URL")
}

func serverFlags(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var c serverConfig
	c.register(fs, "0.0.0.0:4222")
	fs.StringVar(&c.clusterAddr, "cluster", "", "listen address for the other servers (host:port); empty runs a single server")
	fs.StringVar(&c.peers, "peers", "", "the other servers' cluster addresses, comma-separated")
	fs.StringVar(&c.name, "name", "", "this server's name, unique in the cluster (default: the host name)")
	fs.StringVar(&c.routerPort, "router-port", "8080", "port the routers serve apps on, for app URLs")
	fs.StringVar(&c.buildSubnet, "build-subnet", "10.230.0.0/16", "addresses of build sandboxes on this server")
	fs.StringVar(&c.provider, "provider", "", "host provider for hosts:add and spare capacity: netns (hosts in network namespaces on this machine) or exec:/path/to/script (docs/hosts.md)")
	return func(ctx context.Context, logger *slog.Logger) error {
		if err := needRoot("grid server"); err != nil {
			return err
		}
		n, err := startNATS(c)
		if err != nil {
			return err
		}
		defer n.srv.Shutdown()
		c.addonsEnv()
		addons := startAddons(ctx, c.data, addonsConfig{postgresAdmin: c.postgresAdmin, redisAdmin: c.redisAdmin}, logger.With("part", "addons"))
		defer addons.stop()
		c.addons = addons.backends
		c.gridNets = []netip.Prefix{mustPrefix(c.buildSubnet)}
		hp, err := openProvider(ctx, c.provider, n, netnsHosts{data: c.data, bootTimeout: c.bootTimeout, services: addons.services}, logger)
		if err != nil {
			return err
		}
		defer hp.close()
		sb, err := sandbox.New(sandbox.Config{
			StateDir: filepath.Join(c.data, "build-sandboxes"), Subnet: mustPrefix(c.buildSubnet),
			CgroupParent: "grid-build", Logger: logger.With("part", "sandbox"),
			// A release phase (a migration) reaches its app's add-ons.
			Services: addons.services,
		})
		if err != nil {
			return err
		}
		defer sb.Close()
		// Build sandboxes a previous run of this server left behind are
		// never resumed.
		if _, err := sb.CollectGarbage(); err != nil {
			logger.Warn("removing leftover build sandboxes", "err", err)
		}
		apiLn, err := net.Listen("tcp", c.apiAddr)
		if err != nil {
			return fmt.Errorf("API listen: %w", err)
		}
		cp, err := newControlPlane(ctx, c, n, sb, apiLn, hp, logger)
		if err != nil {
			apiLn.Close()
			return err
		}
		defer cp.close()
		defer addons.watchStorage(ctx, cp.st, cp.lg, storageCheckEvery, logger.With("part", "addons"))()
		cp.print()
		return cp.run(ctx)
	}
}

// natsNode is a server's embedded NATS node and what its clients need.
type natsNode struct {
	srv      *store.Server
	secret   []byte
	name     string
	replicas int
}

func startNATS(c serverConfig) (natsNode, error) {
	secretPath := c.secretFile
	if secretPath == "" {
		secretPath = filepath.Join(c.data, "cluster-secret")
	}
	secret, err := secretFile(secretPath)
	if err != nil {
		return natsNode{}, err
	}
	name := c.name
	if name == "" {
		if name, err = os.Hostname(); err != nil || store.ValidateRoleID(name) != nil {
			name = "grid"
		}
	}
	var peers []string
	for _, p := range strings.Split(c.peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			peers = append(peers, p)
		}
	}
	srv, err := store.StartServer(store.ServerConfig{
		Dir: filepath.Join(c.data, "nats"), Listen: c.natsAddr, Secret: []byte(secret),
		Name: name, Cluster: c.clusterAddr, Peers: peers,
	})
	if err != nil {
		return natsNode{}, err
	}
	return natsNode{srv: srv, secret: []byte(secret), name: name, replicas: min(3, 1+len(peers))}, nil
}

// open connects to this node as role r, with r's credentials.
func (n natsNode) open(ctx context.Context, r store.Role, logger *slog.Logger) (*store.Store, error) {
	octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return store.Open(octx, store.Config{
		URL: n.srv.ClientURL(), Role: r, Password: r.Password(n.secret),
		Replicas: n.replicas, Logger: logger.With("part", "store", "role", string(r.Kind)),
	})
}

// controlPlane is what every server runs on its NATS node: the API and git
// receiver, builds, and (while it holds the lease) the dyno manager.
type controlPlane struct {
	n       natsNode
	st      *store.Store
	lg      *logs.Log
	api     net.Listener
	handler *api.Server
	builder *build.Builder // makes the Go build seed in the background
	urls    urls
	data    string
	hp      *hostProvider // nil without a host provider
	// headroom and emptyGrace are the manager's spare-capacity settings.
	headroom   int
	emptyGrace time.Duration
	// cycleAfter and cycleJitter are as manager.Config wants them.
	cycleAfter, cycleJitter time.Duration
	// cert keeps the routers' default certificate current while this
	// server leads (defaultcert.go).
	cert *defaultCert
	// drainAllow is where log drains may connect (drainPolicy).
	drainAllow func(netip.Addr) error
	shipper    *drain.Shipper
	// apiTLS, when not nil, serves the API over HTTPS with apiCert.
	apiTLS  net.Listener
	apiCert *apiCert
	logger  *slog.Logger
}

func newControlPlane(ctx context.Context, c serverConfig, n natsNode, sb *sandbox.Manager, apiLn net.Listener, hp *hostProvider, logger *slog.Logger) (*controlPlane, error) {
	st, err := n.open(ctx, store.Role{Kind: store.RoleServer, ID: n.name}, logger)
	if err != nil {
		return nil, err
	}
	cp := &controlPlane{n: n, st: st, api: apiLn, data: c.data, hp: hp, headroom: c.headroom, emptyGrace: c.emptyGrace,
		cycleAfter: orOff(c.cycleAfter), cycleJitter: orOff(c.cycleJitter), logger: logger}
	deny, err := prefixList("--drain-deny", c.drainDeny)
	if err != nil {
		cp.close()
		return nil, err
	}
	cp.drainAllow = drainPolicy(append(append(deny, c.gridNets...), hp.networks()...))
	hp.bind(st)
	if err := st.RepairAppMeta(ctx); err != nil {
		cp.close()
		return nil, err
	}
	if apps, err := st.RepairReach(ctx); err != nil {
		cp.close()
		return nil, err
	} else if len(apps) > 0 {
		logger.Info("released apps whose dynos' add-on access was out of date", "apps", apps)
	}
	if cp.lg, err = logs.Open(ctx, st); err != nil {
		cp.close()
		return nil, err
	}
	cp.shipper = drain.NewShipper(drain.ShipperConfig{Store: st, Log: cp.lg, Allow: cp.drainAllow, Logger: logger.With("part", "drains")})
	cp.urls = newURLs(apiLn.Addr().String(), c.routerPort, c.domain)
	ca, err := localca.Ensure(caDir(c.data), time.Now())
	if err != nil {
		cp.close()
		return nil, err
	}
	cp.cert = &defaultCert{st: st, ca: ca, domain: strings.Trim(strings.ToLower(c.domain), "."), apiHost: apiHostOf(apiLn.Addr().String()), logger: logger.With("part", "ca")}
	cp.apiCert = newAPICert(ca, apiHostOf(apiLn.Addr().String()))
	if cp.apiTLS, err = listenAPITLS(c.apiTLSAddr); err != nil {
		cp.close()
		return nil, err
	}
	key, err := adminKey(ctx, st, c.data)
	if err != nil {
		cp.close()
		return nil, err
	}
	if !c.noLogin {
		if err := cli.SaveCredentials(cp.urls.api, key, os.Getenv); err != nil {
			logger.Warn("could not log the CLI in", "err", err)
		}
	}
	h, err := cp.newHandler(c, sb)
	if err != nil {
		cp.close()
		return nil, err
	}
	cp.handler = h
	return cp, nil
}

func (cp *controlPlane) newHandler(c serverConfig, sb *sandbox.Manager) (*api.Server, error) {
	st, lg, logger := cp.st, cp.lg, cp.logger
	builder, err := build.New(build.Config{
		Store: st, Logs: lg, Sandboxes: sb, Slugs: &slug.Cache{Dir: filepath.Join(c.data, "slugs")},
		WorkDir:             filepath.Join(c.data, "builds"),
		CacheDir:            filepath.Join(c.data, "buildcache"),
		BootTimeout:         c.bootTimeout,
		WaitForDynos:        30 * time.Second,
		LocalBuildpackRoots: c.buildpackRoots,
		GoSeedDir:           c.goSeedDir,
		BuildTimeout:        c.buildTimeout,
		MaxSlugBytes:        c.maxSlugMB << 20,
		WebURL:              cp.urls.web,
		Logger:              logger.With("part", "build"),
	})
	if err != nil {
		return nil, err
	}
	cp.builder = builder
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	git, err := gitrecv.New(gitrecv.Config{
		ReposDir: filepath.Join(c.data, "repos"),
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
		return nil, err
	}
	sessionSecret, err := secretFile(filepath.Join(c.data, "session-secret"))
	if err != nil {
		return nil, err
	}
	return api.New(api.Config{
		Store: st, Logs: lg, Logger: logger.With("part", "api"),
		Domain: c.domain, WebURL: cp.urls.web, GitURL: cp.urls.git, BaseURL: cp.urls.api, RendezvousBase: cp.rendezvousBase(),
		SessionSecret: []byte(sessionSecret), Git: git,
		Hosts:        cp.hp.api(),
		RolePassword: func(r store.Role) string { return r.Password(cp.n.secret) },
		Build: func(ctx context.Context, r api.BuildRequest) (grid.Release, error) {
			return builder.Deploy(ctx, build.Request{App: r.App, User: r.User, Commit: r.Version, Source: r.Source, Output: r.Output,
				Archive: true, SourceURL: r.SourceURL, Checksum: r.Checksum, Buildpacks: r.Buildpacks})
		},
		PurgeBuildCache: builder.PurgeCache,
		AddonServices:   addonServices(c.addons),
		DrainAllow:      cp.drainAllow,
		DrainStats:      cp.shipper.Stats,
		AppDestroyed: func(ctx context.Context, app string) {
			if err := git.RemoveRepo(app); err != nil {
				logger.Warn("could not remove git repo", "app", app, "err", err)
			}
			if err := builder.PurgeCache(app); err != nil {
				logger.Warn("could not remove build cache", "app", app, "err", err)
			}
		},
	}), nil
}

func (cp *controlPlane) print() {
	fmt.Printf("grid: API and git  %s  (git push %s/<app>.git main)\n", cp.urls.api, cp.urls.api)
	if cp.apiTLS != nil {
		u := "https://" + publicHostPort(cp.apiTLS.Addr().String())
		fmt.Printf("grid: API over TLS %s  (the Heroku CLI: HEROKU_HOST=%s, NODE_EXTRA_CA_CERTS and GIT_SSL_CAINFO=%s)\n", u, u, filepath.Join(caDir(cp.data), localca.CertFile))
	}
	fmt.Printf("grid: NATS         %s  (server %s)\n", cp.n.srv.ClientURL(), cp.n.name)
	fmt.Printf("grid: data         %s  (admin API key in %s)\n", cp.data, filepath.Join(cp.data, "admin-api-key"))
	fmt.Printf("grid: local CA     %s  (HTTPS clients trust it: curl --cacert %s)\n", filepath.Join(caDir(cp.data), localca.CertFile), filepath.Join(caDir(cp.data), localca.CertFile))
}

// run serves the API and runs the manager whenever this server holds the
// manager lease, until ctx ends.
func (cp *controlPlane) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, cp.api, cp.handler) })
	if cp.apiTLS != nil {
		mux := newTLSMux(cp.apiTLS, cp.apiCert.config(), func(c net.Conn, in *bufio.Reader) { cp.handler.ServeRendezvous(gctx, c, in) })
		origin := "https://" + publicHostPort(cp.apiTLS.Addr().String())
		viaTLS := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cp.handler.ServeHTTP(w, r.WithContext(api.WithOrigin(r.Context(), origin)))
		})
		g.Go(func() error { return serveHTTP(gctx, mux, viaTLS) })
	}
	g.Go(func() error { return cp.lead(gctx) })
	g.Go(func() error { return cp.shipper.Run(gctx) })
	g.Go(func() error {
		// A grid without the seed builds Go apps all the same, only slower.
		if err := cp.builder.MakeGoSeed(gctx); err != nil && gctx.Err() == nil {
			cp.logger.Warn("could not make the Go build seed", "err", err)
		}
		return nil
	})
	return g.Wait()
}

// lead runs the dyno manager, and keeps the routers' default certificate
// current, while this server holds the "manager" lease: exactly one
// manager acts at a time, and another server takes over
// within store.LeaseTTL when this one dies.
func (cp *controlPlane) lead(ctx context.Context) error {
	for ctx.Err() == nil {
		lctx, err := cp.st.Lead(ctx, "manager", cp.n.name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cp.logger.Warn("manager lease", "err", err)
			continue
		}
		cp.logger.Info("leading: running the dyno manager", "server", cp.n.name)
		mgr := manager.New(manager.Config{
			Store: cp.st, Provider: cp.hp.manager(), MinHosts: cp.hp.minimum(),
			Headroom: cp.headroom, EmptyGrace: cp.emptyGrace,
			CycleAfter: cp.cycleAfter, CycleJitter: cp.cycleJitter,
			Logger: cp.logger.With("part", "manager"),
		})
		cctx, stopCert := context.WithCancel(lctx)
		certDone := make(chan struct{})
		go func() { defer close(certDone); cp.cert.run(cctx) }()
		if err := mgr.Run(lctx); err != nil && !errors.Is(err, context.Canceled) {
			cp.logger.Error("dyno manager stopped", "err", err)
		}
		stopCert()
		<-certDone
		if ctx.Err() == nil {
			cp.logger.Warn("lost the manager lease", "server", cp.n.name)
		}
	}
	return ctx.Err()
}

func (cp *controlPlane) close() {
	if cp.apiTLS != nil {
		cp.apiTLS.Close()
	}
	if cp.lg != nil {
		cp.lg.Close()
	}
	cp.st.Close()
}

// orOff maps a flag's zero (or negative), which says off, to
// manager.Config's negative: there zero means the default.
func orOff(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// adminKey returns the administrator API key, creating it on first start,
// and makes sure the store knows it.
func adminKey(ctx context.Context, st *store.Store, data string) (string, error) {
	key, err := secretFile(filepath.Join(data, "admin-api-key"))
	if err != nil {
		return "", err
	}
	return key, st.PutAPIKey(ctx, key, adminEmail)
}
