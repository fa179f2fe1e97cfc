// Package router is the routing mesh. It keeps a table of every app's
// routable web dynos current from store watches, picks a dyno for each
// request by power of two choices on in-flight requests, proxies HTTP/1.x
// and protocol upgrades to it, answers with Heroku's H-codes when it
// cannot, and writes one heroku[router] log line per request.
//
// It writes one record to the store, its own routers/<id> (which dynos
// revision its live table includes, and a heartbeat); nothing else:
// routers are many and share nothing, so what one learns (in-flight
// counts, quarantined dynos) stays in it. It must never buffer whole
// request or response bodies (it keeps at most the first 32 KiB of a
// request body, to replay a request a dyno never saw), and never log
// request bodies or credentials. It must never drop a route because the
// store went quiet or away: only on a positive signal (a dyno record
// changed or gone, read from a complete sync), so when NATS is down it
// keeps routing on its last table.
//
// A request's way through:
//
//	Host ─► app ─► route (table snapshot) ─► maintenance? H80
//	                    │ no up web dyno: blank H81 / scaled to 0 H14 /
//	                    │ crashed H10 / starting: wait ≤ BootTimeout, H20
//	                    ▼
//	   pick dyno (P2C) ─► dial ─ refused/timeout ─► quarantine, next dyno (≤10)
//	                    │                            all failed: a newer route?
//	                    │                            else H21 / H19 / H13 / H99
//	                    ▼ request sent (or not: pooled connection closed
//	                    │ under it → same or next dyno, when safe: classify.go)
//	   response headers ≤ RequestTimeout (H12); closed without one H13
//	                    ▼
//	   stream the body (or the upgraded connection) back, log the line
package router

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
)

// Defaults, as Heroku has them.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultBootTimeout    = 75 * time.Second
	DefaultQuarantine     = 5 * time.Second
	// MaxHeaderBytes bounds a request's header block, after Heroku's 8 KiB
	// request line and header line limits. net/http allows 4 KiB of slack
	// over it and answers 431 beyond.
	MaxHeaderBytes = 8 << 10
)

// Defaults for the router's record (report.go).
const (
	DefaultAckInterval = 5 * time.Millisecond
	DefaultHeartbeat   = 1 * time.Second
)

// Server timeouts for Serve.
const (
	readHeaderTimeout = 10 * time.Second // slow clients cannot hold connections
	idleTimeout       = 60 * time.Second // idle keep-alive, as vegur
	shutdownGrace     = 30 * time.Second // in-flight requests get this long to finish
	readyWait         = 10 * time.Second // a request arriving before the first table waits this long
)

// Config configures a Router. Only Store and Domain are required.
type Config struct {
	// Store is watched for app metadata, formations and dynos, and holds
	// the router's own record, routers/<Store.Role().ID>. Required by Run.
	Store *store.Store
	// Logs receives one heroku[router] line per request. Nil means none.
	Logs *logs.Log
	// Domain is the apps' parent domain: app "hello" is served for Host
	// "hello.<Domain>" (any case, any port). For example "localhost".
	Domain string
	// Logger is for the router's own faults, never for requests. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for request timestamps, durations and quarantines.
	// Nil means time.Now. Timeouts run on real timers.
	Now func() time.Time
	// Rand returns a uniform integer in [0, n) for dyno choice. Nil means
	// math/rand/v2.IntN. Must be safe for concurrent use.
	Rand func(n int) int
	// RequestTimeout is how long a dyno has, after the whole request was
	// sent, to send response headers (H12). Zero means 30 s.
	RequestTimeout time.Duration
	// ConnectTimeout bounds connecting to a dyno (H19). Zero means 5 s.
	ConnectTimeout time.Duration
	// BootTimeout is how long a request waits for a starting web dyno to
	// come up (H20). Zero means 75 s.
	BootTimeout time.Duration
	// Quarantine is how long this router avoids a dyno it could not
	// connect to. Zero means 5 s.
	Quarantine time.Duration
	// AckInterval is the least time between two writes of the router's
	// record when its table takes in new dyno revisions: changes arriving
	// faster are reported together. Zero means 5 ms.
	AckInterval time.Duration
	// Heartbeat is how often the router's record is rewritten when
	// nothing changes. Zero means 1 s.
	Heartbeat time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.IntN
	}
	c.RequestTimeout = cmpOr(c.RequestTimeout, DefaultRequestTimeout)
	c.ConnectTimeout = cmpOr(c.ConnectTimeout, DefaultConnectTimeout)
	c.BootTimeout = cmpOr(c.BootTimeout, DefaultBootTimeout)
	c.Quarantine = cmpOr(c.Quarantine, DefaultQuarantine)
	c.AckInterval = cmpOr(c.AckInterval, DefaultAckInterval)
	c.Heartbeat = cmpOr(c.Heartbeat, DefaultHeartbeat)
	c.Domain = strings.Trim(strings.ToLower(c.Domain), ".")
	return c
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Router routes requests for <app>.<Domain> to the app's web dynos. Create
// it with New, keep its table current with Run, serve with Serve or use it
// as an http.Handler.
type Router struct {
	cfg       Config
	table     atomic.Pointer[table]
	ready     chan struct{} // closed once the first table is published
	readyOnce sync.Once
	// revision is the dynos bucket revision the published table includes;
	// set only after the table is. published is signalled (never blocking)
	// after each publish, for the reporter.
	revision  atomic.Uint64
	published chan struct{}
	dialer    net.Dialer
	upgraded  connSet // hijacked client connections, closed on shutdown
	// wrapConn, when set (by tests, before Run), wraps every new
	// connection to a dyno, to inject faults.
	wrapConn func(addr string, c net.Conn) net.Conn
}

// New returns a router with an empty table. Requests wait (briefly) until
// Run has loaded the first table.
func New(cfg Config) *Router {
	r := &Router{cfg: cfg.withDefaults(), ready: make(chan struct{}), published: make(chan struct{}, 1)}
	r.table.Store(&table{routes: map[string]*route{}, changed: make(chan struct{})})
	r.dialer = net.Dialer{Timeout: r.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return r
}

// Ready is closed once the first complete table is loaded.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully:
// in-flight requests get 30 s, upgraded connections are closed. It
// returns nil after a shutdown caused by ctx.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(r.cfg.Logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(r.upgraded.closeAll)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// connSet tracks connections that net/http no longer owns.
type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}
