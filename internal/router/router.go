// Package router is the routing mesh. It keeps a table of every app's
// routable web dynos current from store watches, picks a dyno for each
// request by power of two choices on in-flight requests and latency
// (balancer.go), holds requests beyond each dyno's concurrency limit in a
// bounded backlog (backlog.go), takes hung dynos out of rotation and
// reports them (hang.go), proxies HTTP/1.x (plain requests on its own
// fast path, fast.go; the rest through net/http, proxy.go)
// and protocol upgrades to it, answers with Heroku's H-codes when it
// cannot, and writes one heroku[router] log line per request. Apps are
// found by <app>.<Domain> or by their custom domains (domains.go); HTTPS
// clients get the certificate their server name asks for, over HTTP/2 or
// HTTP/1.1 (tls.go).
//
// It writes one record to the store, its own routers/<id> (which dynos
// revision its live table includes, the dynos it found hung, and a
// heartbeat); nothing else:
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
//	   every dyno at MaxInflight: wait in the backlog (full, too long: H11)
//	                    ▼
//	   pick dyno (P2C) ─► dial ─ refused/timeout ─► quarantine, next dyno (≤10,
//	                    │                            on another host if any)
//	                    │                            all failed: a newer route?
//	                    │                            else H21 / H19 / H13 / H99
//	                    ▼ request sent (or not: pooled connection closed
//	                    │ under it → same or next dyno, when safe: classify.go)
//	   response headers ≤ RequestTimeout (H12: 3 in a row, the dyno is hung);
//	   closed without one H13, within them H18; client body idle H28;
//	   the dyno's host lost: sent elsewhere, when safe (balancer.go, retire);
//	   the request unacknowledged for UnackedTimeout: the same, sooner
//	   (unacked_linux.go)
//	                    ▼
//	   stream the body (or the upgraded connection) back, log the line;
//	   the dyno breaks off H18, goes quiet for RollingTimeout H15 (a tunnel:
//	   no byte either way; one to a lost host's dyno is closed)
package router

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	DefaultUnackedTimeout = 2 * time.Second
	// MaxHeaderBytes bounds a request's whole head (request line and
	// headers), as nginx's default 4 × 8 KiB buffers do; net/http allows
	// 4 KiB of slack over it and answers 431 beyond. Within it, each line
	// is held to Heroku's 8 KiB (limits.go). It is also what one client
	// connection can make the router hold while it reads a head.
	MaxHeaderBytes = 32 << 10
)

// Defaults for the router's record (report.go).
const (
	DefaultAckInterval = 5 * time.Millisecond
	DefaultHeartbeat   = 1 * time.Second
)

// Client connection timeouts, defaults for Config.HeaderTimeout and
// Config.IdleTimeout.
const (
	// DefaultHeaderTimeout bounds reading a request's line and headers
	// (the slowloris defence): a client trickling header bytes holds a
	// connection and a goroutine at most this long, then net/http
	// answers 400 and closes it.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a keep-alive client connection may
	// sit between requests before the router closes it (vegur: 1 min).
	DefaultIdleTimeout = 60 * time.Second
)

// Server timeouts for Serve.
const (
	shutdownGrace = 30 * time.Second // in-flight requests get this long to finish
	readyWait     = 10 * time.Second // a request arriving before the first table waits this long
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
	// Now is the clock for request timestamps, durations, quarantines,
	// slow start and latency averages.
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
	// UnackedTimeout is how long what the router sends a dyno may go
	// unacknowledged by the dyno's host before the connection is given
	// up (TCP_USER_TIMEOUT): a request to a host that went silent then
	// goes elsewhere when safe, well before the manager holds the host
	// lost. Zero means 2 s.
	UnackedTimeout time.Duration
	// AckInterval is the least time between two writes of the router's
	// record when its table takes in new dyno revisions: changes arriving
	// faster are reported together. Zero means 5 ms.
	AckInterval time.Duration
	// Heartbeat is how often the router's record is rewritten when
	// nothing changes. Zero means 1 s.
	Heartbeat time.Duration
	// HeaderTimeout bounds reading one request's line and headers, from
	// its first byte (Serve). Zero means 10 s.
	HeaderTimeout time.Duration
	// IdleTimeout is how long a client's keep-alive connection may wait
	// for its next request (Serve). Zero means 60 s.
	IdleTimeout time.Duration

	// Load and hung dynos (balancer.go, backlog.go, hang.go).

	// MaxInflight is how many requests this router sends one dyno at a
	// time; more wait in the app's backlog. Upgraded connections are not
	// counted. Zero means 50, Heroku's figure.
	MaxInflight int
	// Backlog is how many requests may wait per routable dyno of an app
	// when all are at MaxInflight; beyond it requests get H11. Zero means
	// 50 (Heroku: a backlog of 50 × dynos).
	Backlog int
	// BacklogTimeout is how long a request may wait in the backlog before
	// it gets H11. Zero means 10 s.
	BacklogTimeout time.Duration
	// SlowStart is how long a dyno new to this router takes to ramp from
	// a tenth to a full share of new requests. Zero means 20 s.
	SlowStart time.Duration
	// RollingTimeout is how long a response may go without a byte from
	// the dyno once it has started (H15), and a request body without a
	// byte from the client (H28). Zero means 55 s.
	RollingTimeout time.Duration
	// HangLimit is how many hangs (H12, H15) in a row make a dyno hung:
	// ejected from this router's rotation (never the app's last) and
	// reported to the dyno manager. Zero means 3.
	HangLimit int
	// ProbeInterval is how often a hung dyno is probed, and how long a
	// probe may take. Zero means 5 s.
	ProbeInterval time.Duration
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
	c.UnackedTimeout = cmpOr(c.UnackedTimeout, DefaultUnackedTimeout)
	c.AckInterval = cmpOr(c.AckInterval, DefaultAckInterval)
	c.Heartbeat = cmpOr(c.Heartbeat, DefaultHeartbeat)
	c.HeaderTimeout = cmpOr(c.HeaderTimeout, DefaultHeaderTimeout)
	c.IdleTimeout = cmpOr(c.IdleTimeout, DefaultIdleTimeout)
	c = c.withLoadDefaults()
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
	hosts     atomic.Pointer[hostTable] // custom domains and certificates (domains.go)
	ready     chan struct{}             // closed once the first table is published
	readyOnce sync.Once
	// revision is the dynos bucket revision the published table includes;
	// set only after the table is. published is signalled (never blocking)
	// after each publish, for the reporter.
	revision  atomic.Uint64
	published chan struct{}
	dialer    net.Dialer
	upgraded  connSet // hijacked client connections, closed on shutdown
	bal       balancer
	backlogs  sync.Map // app → *backlog
	hung      hung
	ejectMu   sync.Mutex     // see eject
	probes    sync.WaitGroup // hung-dyno probes
	stopping  chan struct{}  // closed when Run returns: probes end
	stopOnce  sync.Once
	// fastAnswered counts the requests the fast path answered (fast.go).
	fastAnswered atomic.Uint64
	// wrapConn, when set (by tests, before Run), wraps every new
	// connection to a dyno, to inject faults.
	wrapConn func(addr string, c net.Conn) net.Conn
}

// New returns a router with an empty table. Requests wait (briefly) until
// Run has loaded the first table.
func New(cfg Config) *Router {
	r := &Router{cfg: cfg.withDefaults(), ready: make(chan struct{}), published: make(chan struct{}, 1)}
	r.table.Store(&table{routes: map[string]*route{}, changed: make(chan struct{})})
	r.hosts.Store(newHostState().table())
	r.dialer = net.Dialer{Timeout: r.cfg.ConnectTimeout, KeepAlive: 30 * time.Second,
		// Before the connect: a SYN that goes unanswered that long (a
		// dark host) ends the dial then, not at ConnectTimeout.
		Control: func(_, _ string, c syscall.RawConn) error {
			setUnackedTimeout(c, r.cfg.UnackedTimeout)
			return nil
		}}
	r.initLoad()
	return r
}

// Ready is closed once the first complete table is loaded.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully:
// in-flight requests get 30 s, upgraded connections are closed. It
// returns nil after a shutdown caused by ctx.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error { return r.serve(ctx, ln, nil) }

// serve is Serve, over TLS when tlsConf is set (ServeTLS).
func (r *Router) serve(ctx context.Context, ln net.Listener, tlsConf *tls.Config) error {
	srv := &http.Server{
		TLSConfig:         tlsConf,
		Handler:           r,
		ReadHeaderTimeout: r.cfg.HeaderTimeout,
		IdleTimeout:       r.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(r.cfg.Logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(r.upgraded.closeAll)
	// Plaintext connections go to the fast path first, which hands
	// net/http what it does not serve itself (fast.go). TLS ones (HTTP/2
	// among them) are net/http's alone.
	var fast *fastServer
	errc := make(chan error, 2)
	if tlsConf != nil {
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		fast = newFastServer(r, ln)
		go func() { errc <- srv.Serve(fast.handover) }()
		go func() { errc <- fast.serve(ln) }()
	}
	select {
	case err := <-errc:
		ln.Close()
		srv.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if fast != nil {
		ln.Close() // the fast path accepts no more
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); fast.shutdown(sctx) }()
		defer wg.Wait()
	}
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
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

// list returns the connections in the set now.
func (s *connSet) list() []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}
