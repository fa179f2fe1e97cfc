package router

import (
	"context"
	"io"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// maxAttempts bounds the dynos tried for one request, as on Heroku.
const maxAttempts = 10

// exchange is one client request on its way through the router.
type exchange struct {
	w     http.ResponseWriter
	req   *http.Request
	app   string
	start time.Time
	out   *http.Request // what dynos get; built on first use
	body  *clientBody   // out's body; nil when there is none
	rec   logRecord
	wrote bool // response headers went to the client
	// replayable: the request may be sent again after it went out
	// (classify.go); resent: it has been.
	replayable, resent bool
	queue              *backlog    // the app's; set by forward
	idle               *idleClient // the request body's H28 watch; nil without a body
}

// ServeHTTP routes one request by its Host header.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !r.admit(w, req) { // size limits (limits.go)
		return
	}
	app, ok := r.appForHost(req.Host)
	if !ok {
		writePage(w, http.StatusNotFound, noSuchAppPage)
		return
	}
	if req.Method == http.MethodConnect { // the router is no tunnel (as on Heroku)
		writePage(w, http.StatusMethodNotAllowed, connectPage)
		return
	}
	x := r.newExchange(w, req, app)
	defer r.recoverPanic(x)
	rt, fail := r.awaitRoute(req.Context(), app)
	switch {
	case rt == nil && fail == nil:
		writePage(w, http.StatusNotFound, noSuchAppPage)
	case fail != nil:
		r.fail(x, fail)
	default:
		x.queue = r.backlog(app)
		defer x.queue.done()
		if !r.paced(x.queue) {
			r.fail(x, errH11)
			return
		}
		r.forward(x, rt)
	}
}

func (r *Router) newExchange(w http.ResponseWriter, req *http.Request, app string) *exchange {
	x := &exchange{w: w, req: req, app: app, start: r.cfg.Now(), replayable: replayable(req)}
	x.rec = logRecord{
		method:    req.Method,
		path:      req.URL.RequestURI(),
		host:      req.Host,
		requestID: requestID(req.Header),
		fwd:       appendForwardedFor(req.Header["X-Forwarded-For"], req.RemoteAddr),
		protocol:  proto(req),
	}
	return x
}

// recoverPanic turns a fault in the router into H99 (or, once the
// response has started, an aborted connection) instead of a dead process.
func (r *Router) recoverPanic(x *exchange) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	r.cfg.Logger.Error("router panic", "app", x.app, "request_id", x.rec.requestID, "panic", p, "stack", string(debug.Stack()))
	if x.wrote {
		panic(http.ErrAbortHandler)
	}
	r.fail(x, errH99)
}

// awaitRoute returns the app's route and the error to answer with, if
// any; both nil when there is no such app. While the app's web dynos are
// starting it waits, up to BootTimeout, for the table to change.
func (r *Router) awaitRoute(ctx context.Context, app string) (*route, *hError) {
	if !r.awaitReady(ctx) {
		return nil, errH99
	}
	var timeout <-chan time.Time
	for {
		t := r.table.Load()
		rt := t.routes[app]
		if rt == nil {
			return nil, nil
		}
		fail, wait := rt.decide()
		if !wait {
			return rt, fail
		}
		if timeout == nil {
			tm := time.NewTimer(r.cfg.BootTimeout)
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case <-t.changed:
		case <-timeout:
			return rt, errH20
		case <-ctx.Done():
			return rt, errH27
		}
	}
}

func (r *Router) awaitReady(ctx context.Context) bool {
	select {
	case <-r.ready:
		return true
	default:
	}
	tm := time.NewTimer(readyWait)
	defer tm.Stop()
	select {
	case <-r.ready:
		return true
	case <-tm.C:
	case <-ctx.Done():
	}
	return false
}

// forward sends the request to one of the route's dynos, retrying on
// others while the classifier allows. When every dyno of the route as the
// request found it has failed, it looks again: the table may have moved
// on meanwhile (a new dyno up, the failed ones on their way out). When
// every dyno it could try is at the concurrency limit, it waits in the
// app's backlog (H11 when that is full or the wait too long).
func (r *Router) forward(x *exchange, rt *route) {
	var buf [maxAttempts]*endpoint
	tried := buf[:0]
	var last failure
	var wait backlogWait
	defer wait.stop()
	for len(tried) < maxAttempts {
		ep, fail := r.nextDyno(x.app, x.queue, &rt, tried, &wait, x.req.Context().Done())
		if fail != nil {
			r.fail(x, fail)
			return
		}
		if ep == nil {
			break
		}
		if len(tried) > 0 && !x.rewind() {
			r.releaseSlot(x.queue, ep)
			break // the body went out in part and cannot go again
		}
		tried = append(tried, ep)
		up, f := r.attempt(x, ep)
		if f == 0 {
			ep.hang.answered()
			r.relay(x, up)
			return
		}
		if !r.afterFailure(x.app, ep, f, x.replayable, &x.resent) {
			r.fail(x, f.hError())
			return
		}
		last = f
	}
	r.fail(x, last.hError())
}

// nextDyno picks and acquires the dyno for a request's next attempt,
// waiting in the app's backlog q while every dyno it could try is at the
// concurrency limit. When the route has no dyno left to try it moves *rt
// to a newer one, if the table has one; else it returns nil. It returns
// the error to answer with instead when the backlog refuses (awaitSlot).
func (r *Router) nextDyno(app string, q *backlog, rt **route, tried []*endpoint, w *backlogWait, gone <-chan struct{}) (*endpoint, *hError) {
	for {
		ep, full := r.bal.pick((*rt).endpoints, tried)
		if full {
			if fail := r.awaitSlot(q, *rt, tried, w, gone); fail != nil {
				return nil, fail
			}
			*rt = r.currentRoute(app, *rt)
			continue
		}
		if ep == nil {
			if *rt = r.newerRoute(app, *rt); *rt == nil {
				return nil, nil
			}
			continue
		}
		if ep.acquire(r.bal.limit) {
			return ep, nil
		}
		// Another request took its last slot: pick again.
	}
}

// afterFailure does what a failed attempt at ep calls for: a strike for
// a hang, a quarantine for a dyno that could not be reached. It reports
// whether the request may be retried, and notes in resent when the retry
// sends it again.
func (r *Router) afterFailure(app string, ep *endpoint, f failure, replayable bool, resent *bool) bool {
	if f.hang() {
		r.hangStrike(app, ep)
	}
	if f.quarantines() {
		ep.quarantine(r.cfg.Now(), r.cfg.Quarantine)
	}
	if !f.retriable(replayable, *resent) {
		return false
	}
	if f.resends() {
		*resent = true
	}
	return true
}

// backlogWait is one request's time in its app's backlog: one timer for
// all its waits, started at the first.
type backlogWait struct{ t *time.Timer }

func (w *backlogWait) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// awaitSlot waits in the app's backlog q until a dyno's request ends or
// the table changes; then the caller picks again. It returns the error to
// answer with instead: H11 when the backlog is full (held a while when
// the app is flooded: holdH11) or the request has waited BacklogTimeout
// in all, H27 when gone closes (the client left; nil: not watched).
func (r *Router) awaitSlot(q *backlog, rt *route, tried []*endpoint, w *backlogWait, gone <-chan struct{}) *hError {
	changed := r.table.Load().changed
	ch := q.enqueue(r.cfg.Backlog * len(rt.endpoints))
	if ch == nil {
		// Before any timer or outbound request is made: a flood's
		// refusals are cheap, and paced (backlog.go).
		r.holdH11(q, gone)
		return errH11
	}
	if w.t == nil {
		w.t = time.NewTimer(r.cfg.BacklogTimeout)
	}
	// A slot freed between the pick and the enqueue must not be missed.
	if ep, full := r.bal.pick(rt.endpoints, tried); ep != nil || !full {
		q.leave(ch)
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-changed:
		q.leave(ch)
		return nil
	case <-w.t.C:
		q.leave(ch)
		return errH11
	case <-gone:
		q.leave(ch)
		return errH27
	}
}

// currentRoute returns the app's route in the current table when it still
// has dynos to proxy to, else rt.
func (r *Router) currentRoute(app string, rt *route) *route {
	if cur := r.newerRoute(app, rt); cur != nil {
		return cur
	}
	return rt
}

// releaseSlot ends an attempt's claim on ep and wakes a request waiting
// in the app's backlog.
func (r *Router) releaseSlot(q *backlog, ep *endpoint) {
	ep.release()
	q.signal()
}

// newerRoute returns the app's route in the current table if it is not
// rt and has dynos to proxy to; else nil.
func (r *Router) newerRoute(app string, rt *route) *route {
	cur := r.table.Load().routes[app]
	if cur == nil || cur == rt {
		return nil
	}
	if fail, wait := cur.decide(); fail != nil || wait {
		return nil
	}
	return cur
}

// buildOutbound makes the request for dynos, at the first attempt: a
// request refused before (H11 from a full backlog) never pays for it.
func (r *Router) buildOutbound(x *exchange) {
	x.out = outbound(x.req, x.rec.requestID, x.rec.fwd, x.start.UnixMilli())
	if x.req.ContentLength == 0 {
		x.out.Body = nil // none (a GET); net/http would probe an unknown one
		return
	}
	x.idle = &idleClient{src: x.req.Body, rc: http.NewResponseController(x.w), d: r.cfg.RollingTimeout}
	x.body = newClientBody(x.idle)
	x.out.Body = x.body.first()
	x.out.GetBody = x.body.rewind // lets the Transport replay it (classify.go)
}

// rewind readies the request body for another attempt; false when it
// cannot be replayed.
func (x *exchange) rewind() bool {
	if x.body == nil {
		return true
	}
	body, err := x.body.rewind()
	if err != nil {
		return false
	}
	x.out.Body = body
	return true
}

// relay streams the dyno's response to the client.
func (r *Router) relay(x *exchange, up *upstream) {
	defer up.close()
	res := up.res
	if res.StatusCode == http.StatusSwitchingProtocols {
		r.upgrade(x, up)
		return
	}
	h := x.w.Header()
	copyResponseHeader(h, res.Header)
	announceTrailers(h, res.Trailer)
	// Streams (no length: chunked, SSE, long polls) are flushed as they
	// come; sized bodies go through net/http's buffer.
	stream := res.ContentLength == -1
	x.wrote = true
	x.w.WriteHeader(res.StatusCode)
	up.idle = watchIdle(r.cfg.RollingTimeout, up.cancel)
	n, readErr, writeErr := copyBody(x.w, idleBody{res.Body, up.idle}, stream)
	for k, vv := range res.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	x.rec.status, x.rec.bytes = res.StatusCode, n
	x.rec.service = r.cfg.Now().Sub(up.start) - x.rec.connect
	switch {
	case x.req.Context().Err() != nil || writeErr != nil:
		x.rec.fail = errH27
	case readErr != nil:
		// The dyno broke off mid-body (H18) or went quiet (H15): abort
		// the client's connection too, so a truncated body is never taken
		// for a complete one. The line says 503, as Heroku's does.
		x.rec.fail = errH18
		if up.idle.fired() {
			x.rec.fail = errH15
			r.hangStrike(x.app, up.ep)
		}
		x.rec.status = x.rec.fail.status
		r.finish(x)
		panic(http.ErrAbortHandler)
	}
	r.finish(x)
}

func announceTrailers(h, trailer http.Header) {
	for k := range trailer {
		h.Add("Trailer", k)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies a response body to the client, flushing after every
// write when stream is set. It tells read (dyno) errors from write
// (client) errors.
func copyBody(w http.ResponseWriter, body io.Reader, stream bool) (n int64, readErr, writeErr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var rc *http.ResponseController
	if stream {
		rc = http.NewResponseController(w)
		if err := rc.Flush(); err != nil {
			return 0, nil, err
		}
	}
	for {
		nr, rerr := body.Read(*bp)
		if nr > 0 {
			nw, werr := w.Write((*bp)[:nr])
			n += int64(nw)
			if werr != nil {
				return n, nil, werr
			}
			if stream {
				if werr := rc.Flush(); werr != nil {
					return n, nil, werr
				}
			}
		}
		if rerr == io.EOF {
			return n, nil, nil
		}
		if rerr != nil {
			return n, rerr, nil
		}
	}
}

// fail answers with e's page and logs the request. When e has no page,
// or the response has started, it aborts the connection instead.
func (r *Router) fail(x *exchange, e *hError) {
	x.rec.fail, x.rec.status = e, e.status
	if e.page == nil || x.wrote {
		// No page (the client broke off): close the connection rather
		// than let net/http answer an empty 200.
		r.finish(x)
		panic(http.ErrAbortHandler)
	}
	x.wrote = true
	writePage(x.w, e.status, e.page)
	r.finish(x)
}

// finish writes the request's log line.
func (r *Router) finish(x *exchange) { r.logRequest(x.app, x.queue, &x.rec) }

// logRequest writes a request's log line; H11 lines are rate-limited per
// app (backlog.go). q is the app's backlog; nil before it was looked up.
func (r *Router) logRequest(app string, q *backlog, rec *logRecord) {
	if rec.fail == errH11 && q != nil {
		r.logH11(app, q, rec)
		return
	}
	r.logLine(app, rec)
}
