package router

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/dynogrid/grid/internal/logs"
)

// backlog is one app's queue of requests waiting for a dyno below its
// concurrency limit (Config.MaxInflight), as this router counts them.
// Heroku's router keeps such a per-app backlog and answers H11 "Backlog
// too deep" beyond it; so does this one, beyond Config.Backlog waiting
// requests per dyno or after Config.BacklogTimeout in the queue.
//
// A request waits only when every dyno it could try is at the limit.
// Whenever a dyno's request ends, the longest waiter is woken to pick
// again. It is not strictly first come, first served: a request arriving
// just then may take the freed slot, and the woken one queues again.
type backlog struct {
	// n is len(waiters), readable without the lock: signal, called at the
	// end of every request, costs one atomic load while nobody waits. A
	// waiter counts itself before its last look for a free dyno, and a
	// request ends by releasing its dyno before it loads n, so one of the
	// two always sees the other.
	n       atomic.Int64
	mu      sync.Mutex
	waiters []chan struct{}
	// h11 rate-limits the app's H11 log lines.
	h11 h11Log
	// requests counts the app's requests in the current fairness window,
	// load those in the router now; pace, when set, paces them (fair.go).
	requests atomic.Int64
	load     atomic.Int64
	pace     atomic.Pointer[rate.Limiter]
}

// backlog returns app's queue, made on first use. Queues of deleted apps
// stay: an empty one is a few words.
func (r *Router) backlog(app string) *backlog {
	if q, ok := r.backlogs.Load(app); ok {
		return q.(*backlog)
	}
	q, _ := r.backlogs.LoadOrStore(app, &backlog{})
	return q.(*backlog)
}

// enqueue adds a waiter, unless max are waiting already; nil then.
func (q *backlog) enqueue(max int) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) >= max {
		return nil
	}
	ch := make(chan struct{})
	q.waiters = append(q.waiters, ch)
	q.n.Store(int64(len(q.waiters)))
	return ch
}

// leave removes a waiter that gives up or got a dyno by itself. A wake-up
// it was sent meanwhile goes to the next waiter, so none is lost.
func (q *backlog) leave(ch chan struct{}) {
	q.mu.Lock()
	for i, w := range q.waiters {
		if w == ch {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.n.Store(int64(len(q.waiters)))
			q.mu.Unlock()
			return
		}
	}
	q.mu.Unlock()
	q.signal() // ch was woken: pass it on
}

// signal wakes the longest waiter, if any: a dyno slot has come free.
func (q *backlog) signal() {
	if q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) == 0 {
		return
	}
	close(q.waiters[0])
	q.waiters = q.waiters[1:]
	q.n.Store(int64(len(q.waiters)))
}

// waiting reports how many requests wait.
func (q *backlog) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters)
}

// H11 log lines are rate-limited per app, in each router: a flooded app
// can be refused tens of thousands of requests a second, and a line for
// each would cost more than the refusal and flood the app's log (and the
// LOGS stream every app shares). In each one-second window (Config.Now)
// the first h11LinesPerWindow H11s of an app get their full line; the
// rest are only counted, and one summary line per window reports how many
// went unlogged:
//
//	at=error code=H11 desc="Backlog too deep" status=503 unlogged=4180 window=1s
//
// written when the window ends. Every other H-code is logged per request.
//
// A flood is also paced: once an app has had h11PaceAfter requests
// refused at once (backlog full) in a window, each further one is held
// h11Hold before its H11 goes out. A flooding client's connections then
// sleep instead of queuing, back to back, for the router's CPU ahead of
// other apps' requests; its answer is the same, only later (a request in
// the backlog may wait far longer, BacklogTimeout).
const (
	h11LinesPerWindow = 10
	h11Window         = time.Second
	h11PaceAfter      = 100
	h11Hold           = 200 * time.Millisecond
)

// h11Log counts one app's H11s and their lines in the current window.
type h11Log struct {
	mu       sync.Mutex
	start    time.Time // of the window
	refused  int       // requests refused at once (backlog full) in it
	logged   int       // full lines written in it
	unlogged int       // H11s since the last summary, not logged
	pending  bool      // a summary is scheduled
}

// roll starts a new window when now is past the current one. l.mu held.
func (l *h11Log) roll(now time.Time) {
	if now.Sub(l.start) >= h11Window || now.Before(l.start) {
		l.start, l.logged, l.refused = now, 0, 0
	}
}

// refuse counts a request refused at once at now and returns how long to
// hold its answer: h11Hold beyond h11PaceAfter in the window, else 0.
func (l *h11Log) refuse(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.refused++
	if l.refused > h11PaceAfter {
		return h11Hold
	}
	return 0
}

// admit reports whether an H11 at now gets its full line; when it does
// not, it is counted, and schedule is true when the caller must arrange
// the summary (the first unlogged H11 since the last one).
func (l *h11Log) admit(now time.Time) (full, schedule bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	if l.logged < h11LinesPerWindow {
		l.logged++
		return true, false
	}
	l.unlogged++
	schedule = !l.pending
	l.pending = true
	return false, schedule
}

// take returns and resets the unlogged count, ending the pending summary.
func (l *h11Log) take() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.unlogged
	l.unlogged, l.pending = 0, false
	return n
}

// logH11 writes an H11's line, or counts it (see h11Log).
func (r *Router) logH11(app string, q *backlog, rec *logRecord) {
	full, schedule := q.h11.admit(r.cfg.Now())
	if full {
		r.logLine(app, rec)
		return
	}
	if schedule {
		time.AfterFunc(h11Window, func() { r.logH11Summary(app, q.h11.take()) })
	}
}

func (r *Router) logH11Summary(app string, n int) {
	if n == 0 || r.cfg.Logs == nil {
		return
	}
	b := append(make([]byte, 0, 96), `at=error code=H11 desc="Backlog too deep" status=503 unlogged=`...)
	b = append(strconv.AppendInt(b, int64(n), 10), " window=1s"...)
	r.cfg.Logs.Write(logs.Line{Time: r.cfg.Now().UTC(), App: app, Source: "heroku", Dyno: "router", Text: string(b)})
}

// holdH11 paces a request refused at once (see h11PaceAfter): it returns
// after the hold, or when gone closes (the client left).
func (r *Router) holdH11(q *backlog, gone <-chan struct{}) {
	d := q.h11.refuse(r.cfg.Now())
	if d == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-gone:
	}
}
