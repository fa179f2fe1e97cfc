package router

import (
	"sync"
	"sync/atomic"
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
