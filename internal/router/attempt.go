package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// newTransport is the keep-alive pool to dynos, shared by every app.
func newTransport(connectTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil, // never an environment proxy between router and dynos
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 64,               // Heroku allows 50 concurrent requests per dyno
		IdleConnTimeout:     30 * time.Second, // a dyno's close of an idle connection is noticed at once anyway
		DisableCompression:  true,             // pass bodies through untouched
		// Heroku rejects response header lines over 512 KiB (H25).
		MaxResponseHeaderBytes: 512 << 10,
		WriteBufferSize:        32 << 10,
		ReadBufferSize:         32 << 10,
	}
}

// upstream is a dyno's response on its way to the client.
type upstream struct {
	res    *http.Response
	body   io.ReadCloser // res.Body as received
	ep     *endpoint
	start  time.Time // of the attempt
	cancel context.CancelCauseFunc
}

// close releases everything the attempt holds.
func (u *upstream) close() {
	u.body.Close()
	u.cancel(nil)
	u.ep.inflight.Add(-1)
}

// attempt sends the request to ep and waits for the response headers.
// On failure everything is released and the failure named.
func (r *Router) attempt(x *exchange, ep *endpoint) (*upstream, failure) {
	ep.inflight.Add(1)
	start := r.cfg.Now()
	x.rec.dyno = ep.dyno
	ctx, cancel := context.WithCancelCause(x.req.Context())
	timer := &firstByteTimer{d: r.cfg.RequestTimeout, fire: func() { cancel(errRequestTimeout) }}
	var connect atomic.Int64
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { connect.Store(int64(r.cfg.Now().Sub(start))) },
		WroteRequest: func(httptrace.WroteRequestInfo) { timer.start() },
	}
	out := x.out.WithContext(httptrace.WithClientTrace(ctx, trace))
	u := *x.out.URL
	u.Host = ep.addr
	out.URL = &u
	res, err := r.transport.RoundTrip(out)
	if timer.stop() && err == nil {
		res.Body.Close()
		err = errRequestTimeout
	}
	x.rec.connect = time.Duration(connect.Load())
	if err != nil {
		x.rec.service = r.cfg.Now().Sub(start) - x.rec.connect
		f := classify(err, ctx, x.req.Context(), x.body.err())
		cancel(nil)
		ep.inflight.Add(-1)
		return nil, f
	}
	return &upstream{res: res, body: res.Body, ep: ep, start: start, cancel: cancel}, 0
}

// clientBody is the client's request body as given to dynos. Close does
// nothing: net/http's Transport closes the body of a failed attempt, but
// after a dial failure the body is still unread and must go to the next
// dyno (the server closes the real body when the handler returns). It
// remembers a read error, so that a client breaking off its upload is not
// blamed on the dyno.
type clientBody struct {
	r    io.Reader
	mu   sync.Mutex
	rerr error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		b.rerr = err
		b.mu.Unlock()
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }

// err is the body's read error; nil-safe.
func (b *clientBody) err() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rerr
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
