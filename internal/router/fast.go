package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path serves the common request of a plaintext HTTP/1.1
// connection itself, on the connection's own goroutine: a bodiless
// request (wire.go's fastRequest) for an app with a dyno free to take it.
// It writes the request to a pooled link (link.go) and relays the
// response, without net/http's per-request objects, header maps and
// goroutine hand-offs, which cost the router more than twice nginx's CPU
// per request (bench/router_test.go).
//
// Everything else goes to net/http's server (proxy.go), which holds every
// rule: a request outside the subset, one for an app that is not simply
// routable (unknown, in maintenance, booting, every dyno at its limit),
// or one whose attempts all failed before any dyno saw it. The connection
// is handed over with the bytes read so far and stays with net/http. So
// the fast path never has to answer a bad request, and what it does
// answer it answers as net/http's path would: the same headers for the
// dyno, the same H-codes, log line and balancing (router_test.go and
// smuggle_test.go run through it).

// watchAfter is how long the fast path waits for response headers before
// it starts watching the client for a hang-up (H27): most dynos answer
// sooner, and a watch costs a goroutine and a system call.
const watchAfter = 50 * time.Millisecond

// Client connection buffers. A head that does not fit the read buffer is
// left to net/http (MaxHeaderBytes, limits.go).
const (
	clientReadBuffer  = 4 << 10
	clientWriteBuffer = 4 << 10
)

// fastServer runs the fast path for one plaintext listener.
type fastServer struct {
	r        *Router
	handover *handoverListener
	port     string // X-Forwarded-Port
	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	closing  atomic.Bool
	wg       sync.WaitGroup
}

// fastConn is a client connection while the fast path has it.
type fastConn struct {
	c          net.Conn
	remoteAddr string
	br         *bufio.Reader
	idle       atomic.Bool // waiting for a request: closed at once on shutdown
}

// exchange scratch, reused across requests.
type fastExchange struct {
	head  []byte
	req   fastRequest
	res   dynoResponse
	rhead []byte
	bw    *bufio.Writer
	rec   logRecord
	app   string
	queue *backlog // the app's
	start time.Time
	// closeClient: the client connection ends after this response.
	closeClient bool
}

var exchanges = sync.Pool{New: func() any {
	return &fastExchange{head: make([]byte, 0, clientReadBuffer), bw: bufio.NewWriterSize(nil, clientWriteBuffer)}
}}

var clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientReadBuffer) }}

func newFastServer(r *Router, ln net.Listener) *fastServer {
	port := "80"
	if _, p, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		port = p
	}
	return &fastServer{r: r, handover: newHandoverListener(ln.Addr()), port: port, conns: map[*fastConn]struct{}{}}
}

// serve accepts connections until ln fails or is closed.
func (s *fastServer) serve(ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if retryableAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay) // out of file descriptors, as net/http does
				continue
			}
			return err
		}
		delay = 0
		fc := &fastConn{c: c, remoteAddr: c.RemoteAddr().String()}
		if !s.track(fc) {
			c.Close()
			continue
		}
		go s.serveConn(fc)
	}
}

// retryableAccept reports whether an accept error is one to wait out
// (EMFILE and the like, or a timeout) rather than the listener's end.
func retryableAccept(err error) bool {
	var t interface {
		Timeout() bool
		Temporary() bool
	}
	return errors.As(err, &t) && (t.Timeout() || t.Temporary())
}

func (s *fastServer) track(fc *fastConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[fc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *fastServer) untrack(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.wg.Done()
}

// shutdown closes idle connections and those that become idle, waits for
// the rest until ctx ends, then closes them too.
func (s *fastServer) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing.Store(true)
	for fc := range s.conns {
		if fc.idle.Load() {
			fc.c.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for fc := range s.conns {
			fc.c.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// serveConn serves one client connection until it closes, or hands it to
// net/http. An idle connection holds only its reader: a request's
// buffers come from a pool for as long as it lasts.
func (s *fastServer) serveConn(fc *fastConn) {
	defer s.untrack(fc)
	r := s.r
	fc.br = clientReaders.Get().(*bufio.Reader)
	fc.br.Reset(fc.c)
	defer func() {
		if p := recover(); p != nil {
			r.cfg.Logger.Error("router panic", "panic", p, "stack", string(debug.Stack()))
			fc.c.Close()
		}
	}()
	for {
		fc.idle.Store(true)
		if s.closing.Load() {
			break
		}
		fc.c.SetReadDeadline(time.Now().Add(r.cfg.IdleTimeout))
		if _, err := fc.br.Peek(1); err != nil {
			break
		}
		fc.idle.Store(false)
		fc.c.SetReadDeadline(time.Now().Add(r.cfg.HeaderTimeout))
		head, err := readRequestHead(fc.br)
		if err != nil {
			break // the client went away or was too slow; net/http would say no more
		}
		x := exchanges.Get().(*fastExchange)
		x.head, x.closeClient = x.head[:0], false
		out := handedOver // with nothing taken off the reader, unless served
		if head != nil && parseFastRequest(head, &x.req) {
			// The header deadline stays set: the next read of this
			// connection is the next request's (IdleTimeout) or a
			// client watch, which sets its own.
			out = s.serveRequest(fc, x)
		}
		closing := out == aborted || x.closeClient
		var prefix []byte
		if out == handedOver && len(x.head) > 0 {
			prefix = bytes.Clone(x.head)
		}
		x.bw.Reset(nil)
		exchanges.Put(x)
		if out == handedOver {
			s.handOver(fc, prefix)
			return
		}
		if closing {
			break
		}
	}
	fc.c.Close()
	fc.br.Reset(nil)
	clientReaders.Put(fc.br)
}

// handOver gives the connection to net/http, with the bytes the fast
// path read of it: prefix (a request it had taken off the reader), then
// whatever the reader still holds. The reader is the connection's from
// now on.
func (s *fastServer) handOver(fc *fastConn, prefix []byte) {
	fc.c.SetReadDeadline(time.Time{})
	var rd io.Reader = fc.br
	if len(prefix) > 0 {
		rd = io.MultiReader(bytes.NewReader(prefix), fc.br)
	}
	s.handover.give(&replayConn{Conn: fc.c, r: rd})
}

// readRequestHead returns the head at the front of br, up to and with its
// empty line, without consuming it. It returns nil (no error) when the
// head is not one for the fast path to read: longer than the buffer, or
// with a line that does not end in CRLF.
func readRequestHead(br *bufio.Reader) ([]byte, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			return buf[:i+4], nil
		}
		for i := bytes.IndexByte(buf, '\n'); i >= 0; {
			if i == 0 || buf[i-1] != '\r' {
				return nil, nil // bare LF: net/http's to judge
			}
			j := bytes.IndexByte(buf[i+1:], '\n')
			if j < 0 {
				break
			}
			i += 1 + j
		}
		if len(buf) >= br.Size() {
			return nil, nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// serveRequest answers the request in x.req, or says it is net/http's
// (x.head then holds it: it was taken off the reader).
func (s *fastServer) serveRequest(fc *fastConn, x *fastExchange) outcome {
	r := s.r
	// The head moves out of the reader, so that the reader can watch for
	// a client hang-up meanwhile; a copy, which the parse then points to.
	x.head = append(x.head[:0], x.req.head...)
	fc.br.Discard(len(x.head))
	parseFastRequest(x.head, &x.req)
	rt, ok := s.route(x)
	if !ok {
		return handedOver
	}
	x.start = r.cfg.Now()
	x.closeClient = x.req.close || s.closing.Load()
	x.initRecord(fc.remoteAddr)
	x.bw.Reset(fc.c)
	out := s.forward(fc, x, rt)
	if out != answered {
		return out
	}
	r.fastAnswered.Add(1)
	if err := x.bw.Flush(); err != nil {
		x.closeClient = true
	}
	return answered
}

// route returns the app's route when the fast path can take the request:
// the table is loaded, the host names an app, and the app has dynos to
// proxy to.
func (s *fastServer) route(x *fastExchange) (*route, bool) {
	r := s.r
	select {
	case <-r.ready:
	default:
		return nil, false
	}
	x.rec.host = string(x.req.host)
	app, ok := r.appForHost(x.rec.host)
	if !ok {
		return nil, false
	}
	rt := r.table.Load().routes[app]
	if rt == nil {
		return nil, false
	}
	if fail, wait := rt.decide(); fail != nil || wait {
		return nil, false
	}
	x.app = app
	return rt, true
}

// initRecord starts the request's log line.
func (x *fastExchange) initRecord(remoteAddr string) {
	req := &x.req
	x.rec = logRecord{
		method:   methodName(req.method),
		path:     string(req.target),
		host:     x.rec.host, // route's
		protocol: "http",
	}
	if req.requestID != nil && validRequestID(string(req.requestID)) {
		x.rec.requestID = string(req.requestID)
	} else {
		x.rec.requestID = newRequestID()
	}
	var prior []string
	if req.forwardedFor > 0 {
		prior = make([]string, 0, req.forwardedFor)
		for _, sp := range req.spans {
			if headerKind(sp.name(x.head)) == hdrForwardedFor {
				prior = append(prior, string(sp.value(x.head)))
			}
		}
	}
	x.rec.fwd = appendForwardedFor(prior, remoteAddr)
}

// outcome is how the fast path ended a request.
type outcome int

const (
	answered   outcome = iota // a response went to the client
	handedOver                // no dyno saw it: net/http's path takes it
	aborted                   // the client connection must close now, unanswered or cut off
)

// forward is proxy.go's forward for the fast path: pick, attempt, retry
// while the classifier allows, wait in the app's backlog while every dyno
// is at its limit. When it cannot go on and no dyno can have seen the
// request, net/http's path takes over, which looks for a newer route and
// answers as it should. A client that leaves while its request waits in
// the backlog is noticed only when its answer is written.
func (s *fastServer) forward(fc *fastConn, x *fastExchange, rt *route) outcome {
	r := s.r
	x.queue = r.backlog(x.app)
	defer x.queue.done()
	if !r.paced(x.queue) {
		return s.fail(x, errH11)
	}
	var buf [maxAttempts]*endpoint
	tried := buf[:0]
	var last failure
	var wait backlogWait
	defer wait.stop()
	seen, resent := false, false
	for len(tried) < maxAttempts {
		ep, fail := r.nextDyno(x.app, x.queue, &rt, tried, &wait, nil)
		if fail != nil {
			return s.fail(x, fail)
		}
		if ep == nil {
			break
		}
		tried = append(tried, ep)
		f, out := s.attempt(fc, x, ep, resent)
		if f == 0 {
			return out
		}
		if !f.dial() && f != notSent {
			seen = true
		}
		if !r.afterFailure(x.app, ep, f, x.req.replayable, &resent) {
			return s.fail(x, f.hError())
		}
		last = f
	}
	if !seen {
		return handedOver
	}
	return s.fail(x, last.hError())
}

// fail answers with e's page, or aborts when it has none; either way the
// line is logged.
func (s *fastServer) fail(x *fastExchange, e *hError) outcome {
	x.rec.fail, x.rec.status = e, e.status
	s.r.logRequest(x.app, x.queue, &x.rec)
	if e.page == nil {
		return aborted
	}
	bw := x.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(e.status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(e.status))
	bw.WriteString("\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache, no-store\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(e.page)))
	bw.WriteString("\r\nDate: ")
	bw.Write(httpDate(time.Now()))
	if x.closeClient {
		bw.WriteString("\r\nConnection: close")
	}
	bw.WriteString("\r\n\r\n")
	bw.Write(e.page)
	return answered
}

// attempt sends the request to ep (acquired by the caller) and, when the
// dyno answers, relays the response. A pooled link the dyno had closed
// under the request is replaced by a new one once, when the dyno cannot
// have acted on it (classify.go, rule 1). The slot is released before
// attempt returns.
func (s *fastServer) attempt(fc *fastConn, x *fastExchange, ep *endpoint, resent bool) (failure, outcome) {
	r := s.r
	defer r.releaseSlot(x.queue, ep)
	x.rec.dyno = ep.dyno
	start := r.cfg.Now()
	l := ep.links.get(start)
	pooled := l != nil
	went := false // out on a pooled link the dyno then closed unanswered
	for {
		if l == nil {
			var err error
			if l, err = r.dialLink(ep); err != nil {
				x.rec.connect = r.cfg.Now().Sub(start)
				if went {
					return unreachable, 0 // a retry elsewhere is its one resend
				}
				return classify(attemptEnd{err: err, ctx: background, client: background}), 0
			}
		}
		x.rec.connect = r.cfg.Now().Sub(start)
		l.dc.resendable.Store(x.req.replayable && !resent)
		f, out := s.exchange(fc, x, ep, l, start)
		if f == 0 || !pooled || !(f == notSent || f == unanswered && x.req.replayable && !resent) {
			return f, out
		}
		pooled, l, went = false, nil, f == unanswered // the dyno closed it first: once more on a new connection
	}
}

var background = context.Background()

// exchange is one request and response over link l.
func (s *fastServer) exchange(fc *fastConn, x *fastExchange, ep *endpoint, l *link, start time.Time) (failure, outcome) {
	r := s.r
	use := connUse{conn: l.dc, written: l.dc.written.Load(), read: l.dc.read.Load()}
	l.dc.guard(true) // the fast path's requests have no body
	x.writeRequest(l.bw, s.port)
	if err := l.bw.Flush(); err != nil {
		l.close()
		return classify(attemptEnd{err: err, ctx: background, client: background, conn: use}), 0
	}
	sent := time.Now()
	w := responseWait{fc: fc, l: l, deadline: sent.Add(r.cfg.RequestTimeout)}
	first := sent.Add(watchAfter)
	if w.deadline.Before(first) {
		first = w.deadline
	}
	l.dc.SetReadDeadline(first)
	err := s.readResponse(x, l, &w)
	gone := w.stop()
	switch {
	case gone:
		l.close()
		x.rec.service = r.cfg.Now().Sub(start) - x.rec.connect
		return clientGone, 0
	case err == errResponseTimeout:
		l.close()
		x.rec.service = r.cfg.Now().Sub(start) - x.rec.connect
		ep.lat.observe(r.cfg.RequestTimeout, r.cfg.Now())
		return responseTimeout, 0
	case err == errRestricted:
		l.close()
		return restricted, 0
	case err == errHead:
		l.close()
		return malformed, 0
	case err != nil:
		l.close()
		x.rec.service = r.cfg.Now().Sub(start) - x.rec.connect
		return classify(attemptEnd{err: err, ctx: background, client: background, conn: use}), 0
	}
	now := r.cfg.Now()
	ep.lat.observe(now.Sub(start), now)
	ep.hang.answered()
	return 0, s.relay(x, ep, l, start)
}

// writeRequest writes the request for the dyno: the client's header lines
// as they came, less hop-by-hop ones and those the router sets, then the
// router's (headers.go's outbound, for the same request).
func (x *fastExchange) writeRequest(bw *bufio.Writer, port string) {
	req := &x.req
	bw.Write(req.method)
	bw.WriteByte(' ')
	bw.Write(req.target)
	bw.WriteString(" HTTP/1.1\r\n")
	for i, sp := range req.spans {
		if req.keep[i] {
			bw.Write(sp.line(x.head))
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	bw.WriteString(x.rec.fwd)
	bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ")
	bw.WriteString(port)
	bw.WriteString("\r\nX-Request-Start: ")
	var n [20]byte
	bw.Write(strconv.AppendInt(n[:0], x.start.UnixMilli(), 10))
	bw.WriteString("\r\nX-Request-Id: ")
	bw.WriteString(x.rec.requestID)
	bw.WriteString("\r\nVia: " + via + "\r\n\r\n")
}

// errResponseTimeout: no response headers within RequestTimeout (H12).
var errResponseTimeout = errors.New("router: no response headers within the request timeout")

// maxResponseHead is Heroku's limit on a response's headers (H25), the
// net/http path's MaxResponseHeaderBytes.
const maxResponseHead = 512 << 10

// readResponse reads the dyno's response head into x.res, passing over
// informational responses. A 101 was not asked for (the fast path carries
// no Upgrade): malformed.
func (s *fastServer) readResponse(x *fastExchange, l *link, w *responseWait) error {
	for {
		head, err := readHead(l.br, x.rhead[:0], maxResponseHead, w.timedOut)
		x.rhead = head
		if err != nil {
			return err
		}
		if err := parseDynoResponse(head, &x.res); err != nil {
			return err
		}
		switch {
		case x.res.status == http.StatusSwitchingProtocols:
			return errHead
		case x.res.status >= 200:
			return nil
		}
	}
}

// readHead reads a head up to and with its empty line into buf. onTimeout
// is asked, at a read deadline, whether to read on.
func readHead(br *bufio.Reader, buf []byte, limit int, onTimeout func() (bool, error)) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		buf = append(buf, line...)
		if len(buf) > limit {
			return buf, errRestricted
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil && isTimeout(err):
			if more, terr := onTimeout(); !more {
				return buf, terr
			}
			continue
		case err != nil:
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // within the head: cut off (H18)
			}
			return buf, err
		}
		n := len(buf)
		if n >= 4 && string(buf[n-4:]) == "\r\n\r\n" || n >= 2 && buf[n-2] == '\n' {
			return buf, nil // a bare-LF empty line ends it too, for the parser to refuse
		}
	}
}

// responseWait watches for the end of the wait for response headers: the
// request timeout, or the client hanging up. The watch on the client
// starts only after watchAfter.
type responseWait struct {
	fc       *fastConn
	l        *link
	deadline time.Time
	watch    *clientWatch
}

// timedOut is readHead's onTimeout.
func (w *responseWait) timedOut() (bool, error) {
	if w.watch != nil && w.watch.gone.Load() {
		return false, errClientGone
	}
	if !time.Now().Before(w.deadline) {
		return false, errResponseTimeout
	}
	if w.watch == nil {
		w.watch = watchClient(w.fc, w.l.dc)
	}
	w.l.dc.SetReadDeadline(w.deadline)
	return true, nil
}

// stop ends the watch, if any, and reports whether the client left. The
// link's deadline stays: every later blocking read of it sets its own
// (bodyRelay.fill, the next exchange).
func (w *responseWait) stop() bool {
	if w.watch == nil {
		return false
	}
	return w.watch.stop()
}

var errClientGone = errors.New("router: the client went away")

// clientWatch reads from a waiting client's connection: a hang-up ends
// the dyno's wait at once (H27), as net/http's background read does. A
// byte read (a pipelined request) stays in the reader.
type clientWatch struct {
	fc       *fastConn
	done     chan struct{}
	gone     atomic.Bool
	stopping atomic.Bool
}

func watchClient(fc *fastConn, dyno net.Conn) *clientWatch {
	cw := &clientWatch{fc: fc, done: make(chan struct{})}
	fc.c.SetReadDeadline(time.Time{}) // the request's header deadline; before stop can set one
	go func() {
		defer close(cw.done)
		if fc.br.Buffered() > 0 {
			return
		}
		_, err := fc.br.Peek(1)
		if err != nil && !cw.stopping.Load() {
			cw.gone.Store(true)
			dyno.SetReadDeadline(time.Unix(1, 0)) // wake the wait
		}
	}()
	return cw
}

func (cw *clientWatch) stop() bool {
	cw.stopping.Store(true)
	cw.fc.c.SetReadDeadline(time.Unix(1, 0))
	<-cw.done
	cw.fc.c.SetReadDeadline(time.Time{})
	return cw.gone.Load()
}
