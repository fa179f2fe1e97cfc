// Package api serves the subset of the Heroku Platform API v3 that the grid
// CLI and the Heroku CLI use (apps, config vars, releases and rollback,
// formation, dynos, log sessions, domains, SNI endpoints) over the store, in Heroku's paths and
// JSON shapes (package schema), plus the grid's own administrator
// endpoints for hosts (/hosts).
//
// Every request is authenticated with an API key, answered in JSON with a
// Request-Id, and every error goes through the one category→status table
// in errors.go. Lists honour Range paging. The package never runs dynos or
// builds itself: it records what is wanted (releases, formation, restart
// epochs, draining hosts) and the manager and hosts act on it; new hosts
// come from the HostProvider it is given. It must never log config
// var values, API keys, log-session tokens or certificates' private keys.
package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/drain"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
)

// Config configures the API handler.
type Config struct {
	// Store is where apps, releases and formations live. Required.
	Store *store.Store
	// Logs receives app[api] audit lines and serves log sessions. Nil
	// disables both (log-session requests then fail with 503).
	Logs *logs.Log
	// Logger receives request and error logs. Nil means slog.Default().
	Logger *slog.Logger
	// Domain is the apps' domain ("localhost" serves <app>.localhost).
	Domain string
	// WebURL is an app's public URL. Nil means "http://<app>.<Domain>/".
	WebURL func(app string) string
	// GitURL is an app's git remote. Nil means "<BaseURL>/<app>.git".
	GitURL func(app string) string
	// SessionSecret is the HMAC key that signs log-session capability URLs.
	// Empty means a random key: sessions then do not survive a restart or
	// work across API processes.
	SessionSecret []byte
	// BaseURL is this API's external URL ("http://localhost:5000"), used
	// to build logplex_url. Required for log sessions.
	BaseURL string
	// Git serves /<app>.git/... (git smart HTTP) and authenticates those
	// requests itself. Nil answers them with 404.
	Git http.Handler
	// AppDestroyed, when set, is called after an app is deleted so that
	// parts holding per-app files outside the store (git repos, build
	// caches) remove them. Errors are theirs to log.
	AppDestroyed func(ctx context.Context, app string)
	// Hosts adds hosts (POST /hosts) and fails them (POST
	// /hosts/{id}/actions/fail). Nil means no host provider: those
	// requests answer 501.
	Hosts HostProvider
	// RolePassword returns a host's or router's NATS password, for GET
	// /hosts/{id}/token and /routers/{id}/token. Nil answers 501.
	RolePassword func(store.Role) string
	// Build runs a Build API build to its end. Nil answers builds with
	// 503.
	Build func(ctx context.Context, req BuildRequest) (grid.Release, error)
	// PurgeBuildCache empties an app's build cache. Nil answers 503.
	PurgeBuildCache func(app string) error
	// AddonServices are the add-on services offered, in the order
	// errors list them.
	AddonServices []AddonService
	// RendezvousBase is "rendezvous://HOST:PORT" of the API's TLS port,
	// where the Heroku CLI attaches to one-off dynos (ServeRendezvous);
	// attach_url points there. Empty means attach_url is the HTTP
	// upgrade grid run uses.
	RendezvousBase string
	// DrainStats reports how this server ships app's drain id (see
	// drain.Shipper.Stats). Nil: drains are listed without a status.
	DrainStats func(app, id string) (drain.Stats, bool)
	// DrainAllow is the log drains' address policy: a drain whose host
	// is an address it refuses is refused at once (a name is checked
	// when the drain connects). Nil means drain.DefaultAllow.
	DrainAllow func(netip.Addr) error
	// MaxSourceBytes bounds an uploaded source tarball. Zero means
	// DefaultMaxSourceBytes.
	MaxSourceBytes int64
}

// maxBodyBytes caps request bodies.
const maxBodyBytes = 1 << 20

type server struct {
	store          *store.Store
	logs           *logs.Log
	logger         *slog.Logger
	webURL         func(string) string
	gitURL         func(string) string
	secret         []byte
	baseURL        string
	git            http.Handler
	appDestroyed   func(ctx context.Context, app string)
	hosts          HostProvider
	rolePassword   func(store.Role) string
	build          func(context.Context, BuildRequest) (grid.Release, error)
	purgeCache     func(app string) error
	addonServices  []AddonService
	drainAllow     func(netip.Addr) error
	rendezvousBase string
	drainStats     func(app, id string) (drain.Stats, bool)
	maxSource      int64
	outputs        outputs // of the builds running here
	domain         string  // apps' parent domain, normalized: <app>.<domain>
	mux            *http.ServeMux
	// now is the clock for log-session expiry and audit lines; tests
	// replace it.
	now func() time.Time
	// started stands in for the account creation time, which is not
	// recorded anywhere.
	started time.Time
}

// New returns the API handler.
func New(cfg Config) *Server { return &Server{s: newServer(cfg)} }

// Server is the API: an http.Handler, and the rendezvous of the Heroku
// CLI's one-off dynos (ServeRendezvous).
type Server struct{ s *server }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.s.ServeHTTP(w, r) }

func newServer(cfg Config) *server {
	s := &server{
		store:          cfg.Store,
		logs:           cfg.Logs,
		logger:         cfg.Logger,
		webURL:         cfg.WebURL,
		gitURL:         cfg.GitURL,
		secret:         cfg.SessionSecret,
		baseURL:        strings.TrimRight(cfg.BaseURL, "/"),
		git:            cfg.Git,
		appDestroyed:   cfg.AppDestroyed,
		hosts:          cfg.Hosts,
		rolePassword:   cfg.RolePassword,
		build:          cfg.Build,
		purgeCache:     cfg.PurgeBuildCache,
		addonServices:  cfg.AddonServices,
		rendezvousBase: strings.TrimRight(cfg.RendezvousBase, "/"),
		drainStats:     cfg.DrainStats,
		drainAllow:     cfg.DrainAllow,
		maxSource:      cmp.Or(cfg.MaxSourceBytes, DefaultMaxSourceBytes),
		domain:         strings.Trim(strings.ToLower(cfg.Domain), "."),
		mux:            http.NewServeMux(),
		now:            time.Now,
	}
	s.started = s.now()
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.webURL == nil {
		domain := cfg.Domain
		s.webURL = func(app string) string { return "http://" + app + "." + domain + "/" }
	}
	if s.drainAllow == nil {
		s.drainAllow = drain.DefaultAllow
	}
	if s.gitURL == nil {
		s.gitURL = func(app string) string { return s.baseURL + "/" + app + ".git" }
	}
	if len(s.secret) == 0 {
		s.secret = make([]byte, 32)
		_, _ = rand.Read(s.secret)
	}
	s.routes()
	return s
}

func (s *server) routes() {
	s.handle("GET /account", s.getAccount)
	s.handle("GET /apps", s.listApps)
	s.handle("GET /users/{user}/apps", s.listUserApps)
	s.handle("POST /apps", s.createApp)
	s.handle("GET /apps/{app}", s.getApp)
	s.handle("PATCH /apps/{app}", s.updateApp)
	s.handle("DELETE /apps/{app}", s.deleteApp)
	s.handle("GET /apps/{app}/log-drains", s.listDrains)
	s.handle("POST /apps/{app}/log-drains", s.createDrain)
	s.handle("GET /apps/{app}/log-drains/{drain...}", s.getDrain)
	s.handle("DELETE /apps/{app}/log-drains/{drain...}", s.deleteDrain)
	s.handle("GET /apps/{app}/addons", s.listAddons)
	s.handle("POST /apps/{app}/addons", s.createAddon)
	s.handle("GET /apps/{app}/addons/{addon}", s.getAddon)
	s.handle("PATCH /apps/{app}/addons/{addon}", s.updateAddon)
	s.handle("DELETE /apps/{app}/addons/{addon}", s.deleteAddon)
	s.handle("POST /apps/{app}/addons/{addon}/actions/rotate-credentials", s.rotateCredentials)
	s.handle("GET /apps/{app}/addons/{addon}/backups", s.listBackups)
	s.handle("POST /apps/{app}/addons/{addon}/backups", s.captureBackup)
	s.handle("GET /apps/{app}/addons/{addon}/backups/{backup}/download", s.downloadBackup)
	s.handle("POST /apps/{app}/addons/{addon}/backups/{backup}/actions/restore", s.restoreBackup)
	s.handle("GET /apps/{app}/addon-attachments", s.listAttachments)
	s.handle("POST /addon-attachments", s.createAttachment)
	s.handle("GET /addon-attachments", s.listAllAttachments)
	s.handle("GET /addons", s.listAllAddons)
	s.handle("GET /addons/{addon}", s.getAnyAddon)
	s.handle("GET /addons/{addon}/addon-attachments", s.listAddonAttachments)
	s.handle("POST /actions/addons/resolve", s.resolveAddons)
	s.handle("POST /actions/addon-attachments/resolve", s.resolveAttachments)
	s.handle("DELETE /addon-attachments/{attachment}", s.deleteAttachment)
	s.handle("GET /apps/{app}/collaborators", s.emptyList)

	s.handle("GET /apps/{app}/buildpack-installations", s.listBuildpacks)
	s.handle("PUT /apps/{app}/buildpack-installations", s.putBuildpacks)

	s.handle("POST /sources", s.createSource)
	s.mux.HandleFunc("PUT /source-blobs/{token}", s.putSource)
	s.mux.HandleFunc("GET /source-blobs/{token}", s.getSource)
	s.handle("GET /apps/{app}/builds", s.listBuilds)
	s.handle("POST /apps/{app}/builds", s.createBuild)
	s.handle("GET /apps/{app}/builds/{build}", s.getBuild)
	s.handle("DELETE /apps/{app}/build-cache", s.purgeBuildCache)
	s.handle("GET /apps/{app}/slugs/{slug}", s.getSlug)
	s.mux.HandleFunc("GET /slug-blobs/{token}", s.getSlugBlob)
	s.mux.HandleFunc("GET /buildpack-registry/buildpacks/{name...}", s.registryBuildpack)
	s.mux.HandleFunc("GET /build-output/{token}", s.streamBuildOutput)

	s.handle("GET /apps/{app}/config-vars", s.getConfig)
	s.handle("PATCH /apps/{app}/config-vars", s.patchConfig)

	s.handle("GET /apps/{app}/releases", s.listReleases)
	s.handle("POST /apps/{app}/releases", s.rollback)
	s.handle("GET /apps/{app}/releases/{release}", s.getRelease)
	s.handle("GET /apps/{app}/releases/{release}/config-vars", s.getReleaseConfig)

	s.handle("GET /apps/{app}/formation", s.listFormation)
	s.handle("PATCH /apps/{app}/formation", s.batchUpdateFormation)
	s.handle("GET /apps/{app}/formation/{type}", s.getFormation)
	s.handle("PATCH /apps/{app}/formation/{type}", s.updateFormation)
	s.handle("DELETE /apps/{app}/formations/{type}", s.restartType)
	s.handle("POST /apps/{app}/formations/{type}/actions/stop", s.stopType)

	s.handle("GET /apps/{app}/domains", s.listDomains)
	s.handle("POST /apps/{app}/domains", s.createDomain)
	s.handle("GET /apps/{app}/domains/{domain}", s.getDomain)
	s.handle("DELETE /apps/{app}/domains/{domain}", s.deleteDomain)

	s.handle("GET /apps/{app}/sni-endpoints", s.listCerts)
	s.handle("POST /apps/{app}/sni-endpoints", s.createCert)
	s.handle("GET /apps/{app}/sni-endpoints/{cert}", s.getCert)
	s.handle("DELETE /apps/{app}/sni-endpoints/{cert}", s.deleteCert)

	s.handle("GET /apps/{app}/dynos", s.listDynos)
	s.handle("POST /apps/{app}/dynos", s.createDyno)
	s.handle("GET /apps/{app}/dynos/{dyno}/attach", s.attachDyno)
	s.handle("DELETE /apps/{app}/dynos", s.restartAll)
	s.handle("GET /apps/{app}/dynos/{dyno}", s.getDyno)
	s.handle("DELETE /apps/{app}/dynos/{dyno}", s.restartDyno)
	s.handle("POST /apps/{app}/dynos/{dyno}/actions/stop", s.stopDyno)

	s.handle("GET /hosts", s.listHosts)
	s.handle("POST /hosts", s.addHost)
	s.handle("GET /hosts/{id}", s.getHost)
	s.handle("POST /hosts/{id}/actions/drain", s.drainHost)
	s.handle("POST /hosts/{id}/actions/fail", s.failHost)
	s.handle("POST /hosts/{id}/actions/cut", s.cutHost(true))
	s.handle("POST /hosts/{id}/actions/heal", s.cutHost(false))
	s.handle("GET /hosts/{id}/token", s.roleToken(store.RoleHost))
	s.handle("GET /routers/{id}/token", s.roleToken(store.RoleRouter))

	s.handle("POST /apps/{app}/log-sessions", s.createLogSession)
	// The stream is fetched without credentials: the URL is the capability.
	s.mux.HandleFunc("GET /log-stream/{token}", s.streamLogs)

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &userError{
			msg: "The requested API endpoint was not found. Are you using the right HTTP verb (" + r.Method + ") and path (" + r.URL.Path + ")?",
			err: grid.ErrNotFound,
		})
	})
}

// apiFunc is an authenticated endpoint. user is the caller's email.
type apiFunc func(w http.ResponseWriter, r *http.Request, user string) error

// handle registers an authenticated endpoint; its error, if any, becomes
// the response.
func (s *server) handle(pattern string, f apiFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		user, err := s.authenticate(r)
		if err == nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
			err = f(w, r, user)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ServeHTTP is the outermost layer: request id, panic recovery, request
// log, git pass-through, Accept negotiation.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := store.NewID()
	w.Header().Set("Request-Id", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	if s.git != nil && isGitPath(r.URL.Path) {
		s.git.ServeHTTP(w, r)
		return
	}
	rec := &recorder{ResponseWriter: w}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.Error("panic serving request", "request_id", id, "method", r.Method, "path", logPath(r), "panic", v, "stack", string(debug.Stack()))
			if rec.status == 0 {
				status, body := errorBody(errors.New("panic"))
				writeJSON(rec, status, body)
			}
		}
		s.logger.Info("request", "request_id", id, "method", r.Method, "path", logPath(r), "status", rec.status, "duration", time.Since(start))
	}()
	if r.Method == http.MethodPost {
		if m := strings.ToUpper(r.Header.Get("X-Http-Method-Override")); m == http.MethodPatch || m == http.MethodPut || m == http.MethodDelete {
			r.Method = m
		}
	}
	if !strings.HasPrefix(r.URL.Path, "/log-stream/") {
		if err := checkAccept(r.Header.Values("Accept")); err != nil {
			s.writeError(rec, r, err)
			return
		}
	}
	s.mux.ServeHTTP(rec, r)
}

// isGitPath reports whether p is under /<something>.git/.
func isGitPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return strings.HasSuffix(first, ".git") && len(first) > len(".git")
}

// logPath is the path as it may be logged: log-session tokens are
// capabilities and never written down.
func logPath(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/log-stream/") {
		return "/log-stream/…"
	}
	return r.URL.Path
}

type requestIDKey struct{}

// requestID is the id of the request being served.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// recorder remembers the status for the request log. Unwrap lets
// http.ResponseController reach the real writer (for flushing streams).
type recorder struct {
	http.ResponseWriter
	status int
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// audit writes an app[api] line to the app's log.
func (s *server) audit(app, text string) {
	if s.logs == nil {
		return
	}
	s.logs.Write(logs.Line{Time: s.now().UTC(), App: app, Source: "app", Dyno: "api", Text: text})
}
