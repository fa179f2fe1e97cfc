package router

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// Per-app fairness. One router serves every app, and its CPU is shared
// by all: when one app's flood keeps it busy, the router's goroutines run
// late and every app's requests wait, however few it sends. Go's
// scheduler has no priorities, so the router keeps the flood from being
// runnable instead: when it lags, an app that holds more than an even
// share of the requests inside the router (and at least minPacedLoad of
// them) is paced. Each of its requests waits for a token
// (golang.org/x/time/rate) before it is forwarded, at a rate that shrinks
// while the lag lasts and grows back once it is gone. A paced request
// holds a sleeping goroutine and nothing else, and its client's
// connection sends nothing more meanwhile (HTTP/1 has one request at a
// time per connection), so a flood slows itself. A request that would
// wait longer than maxPaceWait gets H11 after that long. An app with few
// requests in the router is never paced, and one app alone never is.
//
// Who is paced is decided by requests held (load), not by their rate: a
// paced flood's rate is what the pace lets through, while its clients
// keep every request they can in the router. The lag is measured, not
// guessed: a ticker every lagTick, and how late its ticks arrive, the
// worst of each fairWindow.
const (
	lagTick      = 5 * time.Millisecond
	fairWindow   = 100 * time.Millisecond
	lagHigh      = 1 * time.Millisecond   // pace (harder) above this
	lagLow       = 250 * time.Microsecond // ease off below this
	minPacedLoad = 8                      // requests in the router: fewer, never paced
	minPace      = 50                     // requests/s: a paced app still gets this many
	maxPaceWait  = time.Second            // longer: H11
	paceBurst    = 16                     // tokens a paced app may spend at once
	paceCut      = 0.7                    // a lagging window cuts the rate to this share
	paceGrow     = 1.25                   // a quiet one raises it by this factor
	paceFree     = 2                      // unpaced once the rate exceeds the demand this many times
)

// appLoad is one app's demand in a window and its pace, if any.
type appLoad struct {
	q        *backlog
	requests int64      // arrived in the window
	load     int64      // in the router at the window's end
	pace     rate.Limit // 0: not paced
}

// repace decides each app's pace for the next window from the last
// window's requests and the router's worst lag in it. Pure: the caller
// applies the result.
func repace(loads []appLoad, lag, window time.Duration) {
	active, total := int64(0), int64(0)
	for _, l := range loads {
		if l.requests > 0 || l.load > 0 {
			active++
			total += l.load
		}
	}
	for i := range loads {
		l := &loads[i]
		demand := rate.Limit(float64(l.requests) / window.Seconds())
		switch {
		case lag > lagHigh && active >= 2 && l.load >= minPacedLoad && l.load*active > total:
			base := demand
			if l.pace != 0 && l.pace < base {
				base = l.pace
			}
			l.pace = max(base*paceCut, minPace)
		case lag < lagLow && l.pace != 0:
			l.pace *= paceGrow
			if l.pace > demand*paceFree {
				l.pace = 0
			}
		}
	}
}

// watchLag runs the fairness loop until ctx ends.
func (r *Router) watchLag(ctx context.Context) {
	t := time.NewTicker(lagTick)
	defer t.Stop()
	last, start := time.Now(), time.Now()
	var worst time.Duration
	var loads []appLoad
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		worst = max(worst, now.Sub(last)-lagTick)
		last = now
		if now.Sub(start) < fairWindow {
			continue
		}
		loads = loads[:0]
		r.backlogs.Range(func(_, v any) bool {
			q := v.(*backlog)
			l := appLoad{q: q, requests: q.requests.Swap(0), load: q.load.Load()}
			if lim := q.pace.Load(); lim != nil {
				l.pace = lim.Limit()
			}
			if l.requests > 0 || l.load > 0 || l.pace != 0 {
				loads = append(loads, l)
			}
			return true
		})
		repace(loads, worst, now.Sub(start))
		for _, l := range loads {
			l.q.setPace(l.pace)
		}
		worst, start = 0, now
	}
}

// setPace applies a pace decided by repace.
func (q *backlog) setPace(l rate.Limit) {
	cur := q.pace.Load()
	switch {
	case l == 0:
		q.pace.Store(nil)
	case cur == nil:
		q.pace.Store(rate.NewLimiter(l, paceBurst))
	case cur.Limit() != l:
		cur.SetLimit(l)
	}
}

// paced counts a request of the app whose backlog is q into the app's
// load and, when the app is paced, waits for its token. It returns false,
// after maxPaceWait, when the wait would be longer: the request gets H11.
// Either way the caller calls done when the request ends.
func (r *Router) paced(q *backlog) bool {
	q.requests.Add(1)
	q.load.Add(1)
	lim := q.pace.Load()
	if lim == nil {
		return true
	}
	res := lim.Reserve()
	d := res.Delay()
	if d > maxPaceWait {
		// Refused, but only after the longest wait: answered at once, a
		// flood's connections would be back for more at once.
		res.Cancel()
		time.Sleep(maxPaceWait)
		return false
	}
	if d > 0 {
		time.Sleep(d)
	}
	return true
}

// done ends a request counted by paced.
func (q *backlog) done() { q.load.Add(-1) }
