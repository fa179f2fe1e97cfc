package router

import (
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
	// transport is this dyno's own keep-alive pool, so a dyno's pooled
	// connections are never handed to a process that reuses its address,
	// and can be closed when it leaves the table. Nil only in tests that
	// never send requests.
	transport *http.Transport
	// inflight counts requests (and upgraded connections) on this dyno now.
	inflight atomic.Int64
	// until is when a quarantine ends, in Unix nanoseconds; 0: none.
	until atomic.Int64
	// retired is set once the endpoint has left the published table.
	retired atomic.Bool
}

// retire closes the endpoint's idle pooled connections once it has left
// the table, so a dyno about to be stopped does not have to close them
// under a request the router is just sending. Connections still busy are
// closed when their requests end: the Transport closes connections that
// become idle after CloseIdleConnections until it is next asked for one,
// and release closes the pool again when the last request on the endpoint
// ends (a request holding an older table may still pick it).
func (e *endpoint) retire() {
	e.retired.Store(true)
	e.closeIdle()
}

// acquire and release count a request (or upgraded connection) on the
// endpoint. The last one out of a retired endpoint closes its idle pool:
// a connection finished with has been returned to the pool before release
// is called (the response body was read to its end or closed).
func (e *endpoint) acquire() { e.inflight.Add(1) }

func (e *endpoint) release() {
	if e.inflight.Add(-1) == 0 && e.retired.Load() {
		e.closeIdle()
	}
}

func (e *endpoint) closeIdle() {
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
}

func (e *endpoint) quarantine(now time.Time, d time.Duration) {
	e.until.Store(now.Add(d).UnixNano())
}

func (e *endpoint) quarantined(now int64) bool { return e.until.Load() > now }

// pick chooses the dyno for an attempt by power of two choices: two
// distinct random candidates, the one with fewer requests in flight wins.
// Which of the two is drawn first is random, so ties break randomly. That
// keeps load even (no dyno piles up as under pure random choice) at the
// cost of two atomic loads, with no shared lock or cursor.
//
// Candidates are the dynos not yet tried for this request and not in
// quarantine; when every untried dyno is quarantined, those are tried
// anyway (a quarantine is a preference, not an outage). nil when every
// dyno has been tried.
func pick(eps, tried []*endpoint, now time.Time, rnd func(int) int) *endpoint {
	var buf [16]*endpoint
	cands := candidates(buf[:0], eps, tried, now.UnixNano(), true)
	if len(cands) == 0 {
		cands = candidates(buf[:0], eps, tried, 0, false)
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	i := rnd(len(cands))
	j := rnd(len(cands) - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	if b.inflight.Load() < a.inflight.Load() {
		return b
	}
	return a
}

func candidates(dst, eps, tried []*endpoint, now int64, skipQuarantined bool) []*endpoint {
	for _, e := range eps {
		if slices.Contains(tried, e) || skipQuarantined && e.quarantined(now) {
			continue
		}
		dst = append(dst, e)
	}
	return dst
}
