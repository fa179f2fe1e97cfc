package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"
)

// newTransport is one dyno's keep-alive pool (see endpoint.transport).
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // never an environment proxy between router and dynos
		DialContext:         dial,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,               // Heroku allows 50 concurrent requests per dyno
		IdleConnTimeout:     30 * time.Second, // a dyno's close of an idle connection is noticed at once anyway
		DisableCompression:  true,             // pass bodies through untouched
		// Heroku rejects response header lines over 512 KiB (H25).
		MaxResponseHeaderBytes: 512 << 10,
		WriteBufferSize:        replayLimit, // see replayLimit
		ReadBufferSize:         32 << 10,
	}
}

// dial connects to ep's dyno. Every error is wrapped in dialError, so the
// classifier can tell "never reached the dyno" from everything after. A
// dyno whose host is lost is not dialled, and a dial under way when it is
// lost ends then, rather than at ConnectTimeout (a dead machine answers
// no SYN): the attempt fails, and the request goes on to another dyno.
func (r *Router) dial(ctx context.Context, ep *endpoint) (net.Conn, error) {
	if ep.lost.Err() != nil {
		return nil, &dialError{errHostLost}
	}
	if ep.silent(r.cfg.Now()) {
		return nil, &dialError{errHostSilent}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ep.lost, func() { cancel(errHostLost) })
	defer stop()
	tcp, err := r.dialer.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		if context.Cause(ctx) == errHostLost {
			err = errHostLost
		}
		return nil, &dialError{err}
	}
	c := tcp
	if r.wrapConn != nil {
		c = r.wrapConn(ep.addr, c)
	}
	dc := newDynoConn(c, tcp)
	dc.unacked, dc.guarded = r.cfg.UnackedTimeout, true // set by the dialer
	dc.silenced = func() { ep.silence(r.cfg.Now(), r.cfg.Quarantine) }
	dc.set = &ep.conns
	ep.conns.add(dc)
	return dc, nil
}

// newEndpoint is a routable dyno with its own connection pool.
func (r *Router) newEndpoint(dyno, addr string) *endpoint {
	ep := makeEndpoint(dyno, addr)
	ep.added = r.cfg.Now()
	ep.transport = newTransport(func(ctx context.Context, _, _ string) (net.Conn, error) { return r.dial(ctx, ep) })
	return ep
}

// upstream is one attempt at one dyno and, once it succeeded, the dyno's
// response on its way to the client. It holds all of an attempt's
// bookkeeping, so an attempt costs one allocation of its own.
type upstream struct {
	res    *http.Response
	body   io.ReadCloser // res.Body as received
	ep     *endpoint
	queue  *backlog  // the app's, woken when the attempt ends
	start  time.Time // of the attempt
	cancel context.CancelCauseFunc
	idle   *idleWatch // H15, once the body is relayed

	connect time.Duration // until a connection was had
	conn    connUse
	timer   firstByteTimer
	trace   httptrace.ClientTrace
	url     url.URL // the request's, with the dyno's address
}

// close releases everything the attempt holds.
func (u *upstream) close() {
	u.body.Close()
	u.cancel(nil)
	u.idle.stop()
	u.ep.release()
	u.queue.signal()
}

// attempt sends the request to ep, which the caller has acquired, and
// waits for the response headers. On failure everything is released and
// the failure named. Each attempt that reaches the dyno feeds its latency
// EWMA: the time to response headers, or RequestTimeout for an H12.
func (r *Router) attempt(x *exchange, ep *endpoint) (*upstream, failure) {
	if x.out == nil {
		r.buildOutbound(x)
	}
	x.rec.dyno = ep.dyno
	u := &upstream{ep: ep, queue: x.queue, start: r.cfg.Now()}
	ctx, cancel := context.WithCancelCause(x.req.Context())
	u.cancel = cancel
	u.timer.d, u.timer.fire = r.cfg.RequestTimeout, func() { cancel(errRequestTimeout) }
	resendable := x.replayable && !x.resent
	guard := x.out.ContentLength >= 0 && x.out.ContentLength <= guardedBody
	u.trace.GotConn = func(info httptrace.GotConnInfo) { // in RoundTrip's goroutine (HTTP/1)
		u.connect = r.cfg.Now().Sub(u.start)
		u.conn.got(info.Conn, resendable, guard)
	}
	u.trace.WroteRequest = func(httptrace.WroteRequestInfo) { u.timer.start() } // in the Transport's writer
	out := x.out.WithContext(httptrace.WithClientTrace(ctx, &u.trace))
	u.url = *x.out.URL
	u.url.Scheme, u.url.Host = "http", ep.addr
	out.URL = &u.url
	res, err := ep.transport.RoundTrip(out)
	if u.timer.stop() && err == nil {
		res.Body.Close()
		err = errRequestTimeout
	}
	x.rec.connect = u.connect
	if err != nil {
		x.rec.service = r.cfg.Now().Sub(u.start) - x.rec.connect
		f := classify(attemptEnd{
			err: err, ctx: ctx, client: x.req.Context(), bodyFailed: x.body.err(), bodyMalformed: x.body.badFraming(), bodyIdle: x.idle.fired(),
			uploading: x.idle.sending(), conn: u.conn,
		})
		if f == responseTimeout {
			ep.lat.observe(r.cfg.RequestTimeout, r.cfg.Now())
		}
		cancel(nil)
		r.releaseSlot(x.queue, ep)
		return nil, f
	}
	ep.lat.observe(r.cfg.Now().Sub(u.start), r.cfg.Now())
	u.res, u.body = res, res.Body
	return u, 0
}

// firstByteTimer is the H12 clock. It starts once the whole request has
// been written to the dyno (Heroku counts from there, so slow uploads are
// not timed out) and stops at the response headers.
type firstByteTimer struct {
	d    time.Duration
	fire func()

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	fired   bool
}

func (ft *firstByteTimer) start() {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.stopped || ft.t != nil {
		return
	}
	ft.t = time.AfterFunc(ft.d, func() {
		ft.mu.Lock()
		if ft.stopped {
			ft.mu.Unlock()
			return
		}
		ft.fired = true
		ft.mu.Unlock()
		ft.fire()
	})
}

// stop stops the timer and reports whether it had fired.
func (ft *firstByteTimer) stop() (fired bool) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.stopped = true
	if ft.t != nil {
		ft.t.Stop()
	}
	return ft.fired
}
