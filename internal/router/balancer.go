package router

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// endpoint is one routable web dyno as this router sees it. The counters
// are this router's alone (routers do not coordinate, as on Heroku).
//
//	builder: new ─► in the table ─► left the table: retire
//	                                  (idle connections closed now, busy ones
//	                                   when the last request on it ends)
type endpoint struct {
	dyno string // "web.1"
	addr string // host:port
	// id is the dyno's ID, for hung-dyno reports (hang.go); set by the
	// table builder, "" in tests that build endpoints by hand.
	id string
	// host is the ID of the host the dyno runs on (set by the table
	// builder): a request's retry keeps off the hosts of its failed
	// attempts. "" (tests) shares no host.
	host string
	// transport is this dyno's own keep-alive pool, so a dyno's pooled
	// connections are never handed to a process that reuses its address,
	// and can be closed when it leaves the table. Nil only in tests that
	// never send requests.
	transport *http.Transport
	// links is its pool for the fast path (fast.go), for the same reasons.
	links linkPool
	// conns are its open connections, pooled or busy, of both paths.
	conns connSet
	// lost ends when the endpoint leaves the table because the manager
	// holds its host lost (lose, called by the table builder before the
	// endpoint is retired): dials to it fail, those under way at once.
	lost context.Context
	lose context.CancelFunc
	// inflight counts requests (and upgraded connections) on this dyno now.
	inflight atomic.Int64
	// tunnels counts the upgraded connections among inflight: they weigh
	// in the balance but not against the concurrency limit, so an app's
	// WebSockets do not crowd out its requests.
	tunnels atomic.Int64
	// until is when a quarantine ends, in Unix nanoseconds; 0: none.
	until atomic.Int64
	// silentUntil is when dials to it may go out again after one of its
	// connections went unacknowledged (silence), in Unix nanoseconds.
	silentUntil atomic.Int64
	// retired is set once the endpoint has left the published table.
	retired atomic.Bool
	// added is when this router first routed to the dyno (Config.Now),
	// the start of its slow start; zero: none.
	added time.Time
	// lat is the EWMA of its response latency.
	lat latency
	// hang counts its timeouts and says whether it is ejected (hang.go).
	hang hangState
}

// makeEndpoint is an endpoint with neither a connection pool nor a slow
// start (Router.newEndpoint adds them).
func makeEndpoint(dyno, addr string) *endpoint {
	e := &endpoint{dyno: dyno, addr: addr}
	e.lost, e.lose = context.WithCancel(context.Background())
	return e
}

// retire closes the endpoint's idle pooled connections once it has left
// the table, so a dyno about to be stopped does not have to close them
// under a request the router is just sending. Connections still busy are
// closed when their requests end: the Transport closes connections that
// become idle after CloseIdleConnections until it is next asked for one,
// and release closes the pool again when the last request on the endpoint
// ends (a request holding an older table may still pick it).
//
// A dyno whose host is lost is probably gone with it, silently: a dead
// machine closes no connection, and a request waiting on it would wait
// for RequestTimeout (H12). So the requests waiting for its answer that
// can be sent elsewhere (dynoConn.resendable) have their connections
// closed, and go to another dyno. The others wait on: their dyno may have
// acted on them, and may yet answer (the host may only have lost its link
// to the manager). Answers already streaming are left to finish.
func (e *endpoint) retire() {
	e.retired.Store(true)
	e.closeIdle()
	if e.lost.Err() == nil {
		return
	}
	for _, c := range e.conns.list() {
		if dc := c.(*dynoConn); dc.waiting() && dc.resendable.Load() {
			dc.Close()
		}
	}
}

// acquire counts a request (or upgraded connection) on the endpoint,
// unless limit requests (tunnels not counted) are in flight already;
// false then. limit ≤ 0 means no limit.
func (e *endpoint) acquire(limit int64) bool {
	for {
		n := e.inflight.Load()
		if limit > 0 && n-e.tunnels.Load() >= limit {
			return false
		}
		if e.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release ends what acquire counted. The last one out of a retired
// endpoint closes its idle pool: a connection finished with has been
// returned to the pool before release is called (the response body was
// read to its end or closed).
func (e *endpoint) release() {
	if e.inflight.Add(-1) == 0 && e.retired.Load() {
		e.closeIdle()
	}
}

// full reports whether limit requests are in flight.
func (e *endpoint) full(limit int64) bool {
	return limit > 0 && e.inflight.Load()-e.tunnels.Load() >= limit
}

func (e *endpoint) closeIdle() {
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
	e.links.closeIdle()
}

func (e *endpoint) quarantine(now time.Time, d time.Duration) {
	e.until.Store(now.Add(d).UnixNano())
}

func (e *endpoint) quarantined(now int64) bool { return e.until.Load() > now }

// silence quarantines the endpoint, and fails dials to it for d: a
// connection to it just went unacknowledged for UnackedTimeout, so its
// host is probably dark, and a dial would wait out ConnectTimeout (the
// Transport redials a reused connection that failed, rule 1).
func (e *endpoint) silence(now time.Time, d time.Duration) {
	e.quarantine(now, d)
	e.silentUntil.Store(now.Add(d).UnixNano())
}

func (e *endpoint) silent(now time.Time) bool { return e.silentUntil.Load() > now.UnixNano() }

// Slow start: a dyno new to the router is drawn with a weight that grows
// linearly from minWeight to fullWeight over Config.SlowStart, so a
// freshly booted dyno (cold caches, a JIT still warming) is not handed a
// full share of a busy app's traffic in its first second.
const (
	fullWeight = 100
	minWeight  = 10 // a tenth of a full share
)

// weight is the endpoint's drawing weight at now.
func (e *endpoint) weight(now time.Time, slowStart time.Duration) int {
	age := now.Sub(e.added)
	if e.added.IsZero() || slowStart <= 0 || age >= slowStart {
		return fullWeight
	}
	return max(minWeight, int(int64(fullWeight)*int64(age)/int64(slowStart)))
}

// balancer chooses the dyno for each attempt.
type balancer struct {
	now       func() time.Time
	rnd       func(n int) int // uniform in [0, n); safe for concurrent use
	limit     int64           // requests in flight per dyno; 0: none
	slowStart time.Duration
}

// pick chooses the dyno for an attempt by power of two choices: two
// distinct candidates drawn at random (by slow-start weight), and the one
// with the lower cost wins, cost being (requests in flight + 1) × its
// latency EWMA. While either latency is unknown (no recent response) they
// are compared on requests in flight alone. Which of the two is drawn
// first is random, so ties break randomly. That keeps load even (no dyno
// piles up as under Heroku's pure random choice), steers away from a dyno
// that answers slowly before its queue shows it, and costs a few atomic
// loads, with no shared lock or cursor.
//
// Candidates are, in order of preference, the dynos not yet tried for
// this request that are
//
//  1. not ejected (hung, hang.go), not quarantined, not on the host of a
//     dyno the request already failed on, below the limit;
//  2. not ejected, below the limit (a quarantine or a suspect host is a
//     preference, not an outage);
//  3. ejected, below the limit: only when every untried dyno is ejected,
//     so an app is never left with nothing to try.
//
// Keeping a retry off the failed dynos' hosts matters when a host dies:
// all its dynos go at once, and a retry sent to a sibling of the dyno
// that just failed would fail the same way (the one resend a request
// gets, classify.go, spent; or a second ConnectTimeout waited out).
//
// It returns nil when there is no candidate, and full when that is
// because untried dynos of the best class are all at the limit: the
// request may wait for one (backlog.go).
func (b *balancer) pick(eps, tried []*endpoint) (ep *endpoint, full bool) {
	now := b.now()
	var buf [16]*endpoint
	cands, full := b.candidates(buf[:0], eps, tried, now, false)
	if len(cands) == 0 && !full {
		cands, full = b.candidates(buf[:0], eps, tried, now, true)
	}
	switch len(cands) {
	case 0:
		return nil, full
	case 1:
		return cands[0], false
	}
	x, y := b.draw(cands, now)
	return cheaper(x, y, now), false
}

// candidates lists the untried dynos of the best class (see pick) among
// the ejected ones or, with ejected false, the others. full says untried
// dynos of that kind exist but all are at the limit.
func (b *balancer) candidates(dst, eps, tried []*endpoint, now time.Time, ejected bool) (_ []*endpoint, full bool) {
	var heldBack int
	t := now.UnixNano()
	for _, e := range eps {
		if e.hang.ejected.Load() != ejected || slices.Contains(tried, e) {
			continue
		}
		if e.full(b.limit) {
			full = true
			continue
		}
		if e.quarantined(t) || failedOn(tried, e.host) {
			heldBack++
			continue
		}
		dst = append(dst, e)
	}
	if len(dst) == 0 && heldBack > 0 {
		for _, e := range eps {
			if e.hang.ejected.Load() == ejected && !slices.Contains(tried, e) && !e.full(b.limit) {
				dst = append(dst, e)
			}
		}
	}
	return dst, full && len(dst) == 0
}

// failedOn reports whether one of the request's failed attempts was at a
// dyno on host.
func failedOn(tried []*endpoint, host string) bool {
	if host == "" {
		return false
	}
	for _, e := range tried {
		if e.host == host {
			return true
		}
	}
	return false
}

// draw returns two distinct candidates, each drawn with probability
// proportional to its weight. Without a dyno in slow start that is a
// uniform draw.
func (b *balancer) draw(cands []*endpoint, now time.Time) (x, y *endpoint) {
	var wbuf [16]int
	ws, total, uniform := wbuf[:0], 0, true
	for _, e := range cands {
		w := e.weight(now, b.slowStart)
		ws = append(ws, w)
		total += w
		uniform = uniform && w == fullWeight
	}
	if uniform {
		i := b.rnd(len(cands))
		j := b.rnd(len(cands) - 1)
		if j >= i {
			j++
		}
		return cands[i], cands[j]
	}
	i := weighted(ws, b.rnd(total), -1)
	j := weighted(ws, b.rnd(total-ws[i]), i)
	return cands[i], cands[j]
}

// weighted returns the index whose weight interval holds r, skipping
// index skip.
func weighted(ws []int, r, skip int) int {
	for i, w := range ws {
		if i == skip {
			continue
		}
		if r < w {
			return i
		}
		r -= w
	}
	return len(ws) - 1 // not reached while r < the weights' sum
}

// cheaper returns whichever of a and b costs less, a on a tie.
func cheaper(a, b *endpoint, now time.Time) *endpoint {
	la, lb := a.lat.get(now), b.lat.get(now)
	if la == 0 || lb == 0 {
		la, lb = 1, 1
	}
	ca := float64(a.inflight.Load()+1) * la
	cb := float64(b.inflight.Load()+1) * lb
	if cb < ca {
		return b
	}
	return a
}
