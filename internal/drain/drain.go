// Package drain delivers one app's log lines to one of its log drains: a
// syslog receiver over TCP or TLS (syslog://, syslog+tls://: RFC 5424
// messages in RFC 6587 octet-counted frames) or an HTTP(S) endpoint that
// takes Logplex's application/logplex-1 batches (https://, http://).
//
// A drain must never slow down whoever writes the log: Send only queues,
// into a buffer that drops its oldest lines when full (Logplex keeps the
// newest), and each Drain has one goroutine that owns its connection, so
// a slow or dead drain costs its own buffer and nothing else. Lost lines
// are reported, once delivery works again, with Heroku's L10 line; a TLS
// certificate that does not verify (syslog+tls, https) with an L14 line. This
// package must never connect to an address its Allow policy refuses,
// follow redirects, or put a drain's password in an error.
//
// The goroutine of a Drain:
//
//	New ─► wait for lines ◄──────────────────────────────────┐
//	          │                                              │
//	          ▼                                              │
//	        open (syslog: reuse or dial, TLS handshake)      │
//	          │ fail: L14 notice if the certificate          │
//	          │ failed (once a streak), back off ────────────┤
//	          ▼                                              │
//	        cut a batch (≤ 500 lines, ≈ 100 KB), an L10 line │
//	        first if lines were lost and delivery works      │
//	          │                                              │
//	          ▼                                              │
//	        write ── fail: syslog: requeue the batch;        │
//	          │      HTTP: retry it (same frame ID) up to    │
//	          │      2 more times, then drop and count it;   │
//	          │      back off (MinBackoff … MaxBackoff) ─────┤
//	          │ ok: reset the back-off ──────────────────────┘
//	Close ─► grace: deliver what is queued for up to 1 s ─► close ─► done
package drain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
)

// Defaults for zero Config fields.
const (
	DefaultBufferLines = 1024            // Logplex's drain_buffer_size
	DefaultMinBackoff  = time.Second     // Logplex waits 30 s; a restarted receiver should not miss that much
	DefaultMaxBackoff  = 5 * time.Minute // Logplex's tcp_syslog_backoff_max
	DefaultSendTimeout = 4 * time.Second // Logplex's tcp_syslog_send_timeout

	closeGrace    = time.Second // how long Close lets queued lines go out
	maxBatchLines = 500
	maxBatchBytes = 100 << 10 // Logplex targets about 100 KB a batch
)

// Config describes one drain. Only URL is required.
type Config struct {
	// URL is the drain: syslog://host:port, syslog+tls://host:port,
	// https://[user:pass@]host[:port]/path or http://…; see ParseURL.
	URL string
	// App is the app the drain belongs to, the App of the L10 and L14
	// lines this package writes.
	App string
	// Token is the drain token, "d.<uuid>": the HOSTNAME of syslog
	// messages and the Logplex-Drain-Token header of HTTP posts, so a
	// receiver can tell drains apart. Printable ASCII without spaces;
	// empty sends "-" and no header.
	Token string
	// BufferLines is how many lines may wait for delivery; past it the
	// oldest are dropped and counted. Zero means DefaultBufferLines.
	BufferLines int
	// RootCAs verifies syslog+tls and https receivers. Nil means the
	// system's roots.
	RootCAs *x509.CertPool
	// Allow is asked, on every connection and after DNS resolution, whether
	// the drain may connect to an address, so a tenant cannot aim a drain
	// at the grid's own or its cloud's internal services. Nil means
	// DefaultAllow.
	Allow func(netip.Addr) error
	// MinBackoff and MaxBackoff bound the wait, doubling with jitter,
	// between failed attempts. Zero means DefaultMinBackoff and
	// DefaultMaxBackoff; a MaxBackoff below MinBackoff is raised to it.
	MinBackoff, MaxBackoff time.Duration
	// SendTimeout is how long a syslog write of one batch may block before
	// the connection counts as dead. Zero means DefaultSendTimeout.
	SendTimeout time.Duration
	// Notice, if set, receives the platform lines (L10, L14) that belong in
	// the app's own log. It is called from the drain's goroutine, never
	// with a lock held and never after Close returns, and should not block
	// long: the drain waits for it. An L10 line has already gone to this
	// drain itself, so it should not be passed to its Send again.
	Notice func(logs.Line)
	// Now is the clock for L10 times and lines without a Time. Nil means
	// time.Now.
	Now func() time.Time
}

// Stats is a drain's delivery record, for listings and tests.
type Stats struct {
	Delivered uint64 // lines written (syslog) or acknowledged with a 2xx (HTTP), L10 lines included
	Dropped   uint64 // lines lost to a full buffer or to an HTTP batch that failed all its tries
	Queued    int    // lines waiting in the buffer, not counting a batch being tried
	// LastError is why the latest attempt failed, with LastErrorAt when;
	// both are cleared when a batch goes out.
	LastError   string
	LastErrorAt time.Time
}

// Drain delivers lines to one drain URL. Safe for concurrent use.
type Drain struct {
	cfg    Config // defaults filled in
	buf    *buffer
	t      transport
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc
	once   sync.Once
	closed atomic.Bool

	delivered atomic.Uint64
	mu        sync.Mutex // guards lastErr, lastErrAt
	lastErr   string
	lastErrAt time.Time

	// Owned by the goroutine (run).
	pending     *batch // the batch being tried, if any
	healthy     bool   // the drain answered lately: an L10 line may go
	certNoticed bool   // an L14 line went out for this failure streak
	bo          backoff
}

// batch is lines cut from the buffer, tried together.
type batch struct {
	lines []logs.Line
	tries int    // failed tries so far
	id    string // HTTP: Logplex-Frame-Id, the same on every try
	body  []byte // HTTP: the encoded frames, the same on every try
}

// transport delivers batches to one endpoint. Only the drain's goroutine
// calls it.
type transport interface {
	// open makes sure the connection is up, if the transport keeps one;
	// live reports that the receiver answered.
	open(ctx context.Context) (live bool, err error)
	// write delivers the whole batch or fails; part of it may have arrived.
	write(ctx context.Context, b *batch) error
	// tries is how often a batch is tried before it is dropped; 0 means it
	// goes back to the buffer instead, to be tried until it fits no more.
	tries() int
	close()
}

// New validates cfg and starts the drain's goroutine. Call Close when
// done. Errors wrap grid.ErrInvalid.
func New(cfg Config) (*Drain, error) {
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Drain{
		cfg:    cfg,
		buf:    newBuffer(cfg.BufferLines),
		t:      newTransport(u, cfg),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		cancel: cancel,
		bo:     backoff{min: cfg.MinBackoff, max: cfg.MaxBackoff},
	}
	go d.run(ctx)
	return d, nil
}

// fill checks cfg and sets the defaults of its zero fields.
func (c *Config) fill() error {
	bad := func(why string) error { return fmt.Errorf("drain: %s: %w", why, grid.ErrInvalid) }
	switch {
	case c.BufferLines < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 || c.SendTimeout < 0:
		return bad("BufferLines, MinBackoff, MaxBackoff and SendTimeout cannot be negative")
	case !validToken(c.Token):
		return bad("the token must be at most 255 printable ASCII characters without spaces")
	}
	c.BufferLines = cmpOr(c.BufferLines, DefaultBufferLines)
	c.MinBackoff = cmpOr(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = max(cmpOr(c.MaxBackoff, DefaultMaxBackoff), c.MinBackoff)
	c.SendTimeout = cmpOr(c.SendTimeout, DefaultSendTimeout)
	if c.Allow == nil {
		c.Allow = DefaultAllow
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// validToken reports whether a token can be a HOSTNAME and a header
// value as it is.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return len(s) <= maxHostname
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func newTransport(u *url.URL, cfg Config) transport {
	dialer := newDialer(cfg.Allow)
	tc := &tls.Config{ServerName: u.Hostname(), RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	switch u.Scheme {
	case "syslog", "syslog+tls":
		if u.Scheme == "syslog" {
			tc = nil
		}
		return &syslogTransport{addr: u.Host, tls: tc, dialer: dialer, token: cfg.Token, timeout: cfg.SendTimeout, now: cfg.Now}
	default:
		return newHTTPTransport(u, dialer, tc, cfg.Token, cfg.Now)
	}
}

// Send queues l for delivery. It never blocks: when the buffer is full
// the oldest line is dropped. Lines sent after Close are discarded.
func (d *Drain) Send(l logs.Line) {
	if d.closed.Load() {
		return
	}
	d.buf.push(l, d.cfg.Now)
}

// Close stops the drain, after giving queued lines up to a second to go
// out, and returns once its goroutine and connection are gone.
func (d *Drain) Close() {
	d.once.Do(func() {
		d.closed.Store(true)
		close(d.stop)
		t := time.AfterFunc(closeGrace, d.cancel)
		<-d.done
		t.Stop()
		d.cancel()
	})
	<-d.done
}

// Stats returns the drain's counters and its latest error.
func (d *Drain) Stats() Stats {
	queued, _, dropped := d.buf.state()
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{
		Delivered:   d.delivered.Load(),
		Dropped:     dropped,
		Queued:      queued,
		LastError:   d.lastErr,
		LastErrorAt: d.lastErrAt,
	}
}
