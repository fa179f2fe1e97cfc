package host

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// reporter writes dyno records in the background, so that a dyno never
// waits for NATS: only the newest state of each dyno is kept, and a
// write that fails (NATS away) is retried with back-off until it lands.
// So after an outage the store gets every dyno's state as it is then.
//
//	put / remove ─► pending[dyno] ─► write ─┬─ ok ─► written closed
//	     (newer replaces older)             └─ failed ─► pending again, back-off
type reporter struct {
	st      *store.Store
	log     *slog.Logger
	timeout time.Duration // of one write

	mu      sync.Mutex
	pending map[string]*report // by dyno ID: newest report not yet being written
	busy    map[string]*report // by dyno ID: report being written
	wake    chan struct{}      // buffered 1: pending changed
}

// report is one record write (or delete) of a dyno.
type report struct {
	rec     grid.Dyno
	deleted bool
	// written is closed once this report, or a later one of the same
	// dyno, is written; replaced holds the channels of reports it
	// replaced, closed with it.
	written  chan struct{}
	replaced []chan struct{}
}

// Writes in flight at once, and the retry back-off after a failure.
const (
	maxReportWrites = 8
	reportRetryMin  = 100 * time.Millisecond
	reportRetryMax  = 5 * time.Second
)

func newReporter(st *store.Store, log *slog.Logger) *reporter {
	return &reporter{
		st: st, log: log, timeout: writeTimeout,
		pending: map[string]*report{}, busy: map[string]*report{}, wake: make(chan struct{}, 1),
	}
}

// put queues a write of rec; the channel is closed once it is written.
func (r *reporter) put(rec grid.Dyno) <-chan struct{} {
	return r.submit(&report{rec: rec, written: make(chan struct{})})
}

// remove queues the deletion of rec's record.
func (r *reporter) remove(rec grid.Dyno) <-chan struct{} {
	return r.submit(&report{rec: rec, deleted: true, written: make(chan struct{})})
}

func (r *reporter) submit(rep *report) <-chan struct{} {
	r.mu.Lock()
	if old := r.pending[rep.rec.ID]; old != nil {
		rep.replaced = append(old.replaced, old.written)
	}
	r.pending[rep.rec.ID] = rep
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return rep.written
}

// run writes reports until ctx ends.
func (r *reporter) run(ctx context.Context) {
	results := make(chan writeResult)
	var writes sync.WaitGroup
	defer writes.Wait()
	retry := time.NewTimer(0)
	defer retry.Stop()
	backoff, holding := time.Duration(0), false
	for {
		if !holding {
			r.startWrites(ctx, &writes, results)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-retry.C:
			holding = false
		case res := <-results:
			if r.done(res) {
				backoff = 0
				continue
			}
			backoff = min(max(2*backoff, reportRetryMin), reportRetryMax)
			if !holding {
				r.log.Warn("dyno record write failed; retrying", "dyno_id", res.rep.rec.ID, "err", res.err, "retry_in", backoff)
			}
			holding = true
			retry.Reset(backoff)
		}
	}
}

type writeResult struct {
	rep *report
	err error
}

// startWrites starts writes of pending reports whose dyno has none in
// flight, up to maxReportWrites at once.
func (r *reporter) startWrites(ctx context.Context, writes *sync.WaitGroup, results chan<- writeResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rep := range r.pending {
		if len(r.busy) >= maxReportWrites {
			return
		}
		if r.busy[id] != nil {
			continue
		}
		delete(r.pending, id)
		r.busy[id] = rep
		writes.Go(func() {
			res := writeResult{rep: rep, err: r.write(ctx, rep)}
			select {
			case results <- res:
			case <-ctx.Done():
			}
		})
	}
}

func (r *reporter) write(ctx context.Context, rep *report) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if rep.deleted {
		return r.st.DeleteDyno(ctx, rep.rec)
	}
	return r.st.PutDyno(ctx, rep.rec)
}

// done settles a finished write. It reports whether the write succeeded;
// a failed report is pending again unless a newer one replaced it.
func (r *reporter) done(res writeResult) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := res.rep.rec.ID
	delete(r.busy, id)
	if res.err == nil {
		close(res.rep.written)
		for _, ch := range res.rep.replaced {
			close(ch)
		}
		return true
	}
	if newer := r.pending[id]; newer != nil {
		newer.replaced = append(append(newer.replaced, res.rep.replaced...), res.rep.written)
	} else {
		r.pending[id] = res.rep
	}
	return false
}

// flush waits until every report queued so far is written, or ctx ends.
func (r *reporter) flush(ctx context.Context) {
	r.mu.Lock()
	var chans []chan struct{}
	for _, m := range []map[string]*report{r.pending, r.busy} {
		for _, rep := range m {
			chans = append(chans, rep.written)
		}
	}
	r.mu.Unlock()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			r.log.Warn("dyno records not written before exit", "count", len(chans))
			return
		}
	}
}
