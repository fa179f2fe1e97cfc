package host

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
)

// Sandbox labels: what a dyno's sandbox is, for the agent after this one.
const (
	labelDyno = "dyno" // dyno ID
	labelPort = "port" // $PORT
)

// loop is Run's state; only Run's goroutine touches it.
type loop struct {
	a     *Agent
	dynos map[string]*dyno // by dyno ID, until its goroutine has ended
	ended chan string      // dyno IDs whose goroutines end
	done  chan struct{}    // closed when run no longer reads ended
	wg    sync.WaitGroup   // dyno goroutines and chores

	// seen holds the dyno IDs assigned in the current watch, which, once
	// it has synced, is the whole truth: dynos not in it are stopped.
	seen map[string]bool
	// leftovers are the sandboxes an earlier agent left, by dyno ID, until
	// leftoverGrace after the first sync: then those no assignment claimed
	// are destroyed.
	leftovers map[string][]sandbox.Leftover
	collect   <-chan time.Time // fires leftoverGrace after the first sync
	collected bool
	records   map[string]grid.Dyno // the earlier agent's records, by dyno ID
	attempts  map[string]int       // next attempt number for dynos with leftovers
}

func newLoop(a *Agent, leftovers []sandbox.Leftover, records map[string]grid.Dyno) *loop {
	l := &loop{
		a: a, dynos: map[string]*dyno{}, ended: make(chan string), done: make(chan struct{}), seen: map[string]bool{},
		leftovers: map[string][]sandbox.Leftover{}, records: records, attempts: map[string]int{},
	}
	for _, lo := range leftovers {
		if id := lo.Labels[labelDyno]; id != "" {
			l.leftovers[id] = append(l.leftovers[id], lo)
		}
		// A new attempt must not reuse the ID of any leftover of its dyno,
		// adoptable or not: d-<dyno>-<attempt>.
		if i := strings.LastIndexByte(lo.ID, '-'); i > 0 {
			if n, err := strconv.Atoi(lo.ID[i+1:]); err == nil {
				l.attempts[lo.ID[:i]] = max(l.attempts[lo.ID[:i]], n+1)
			}
		}
	}
	return l
}

// run handles assignment messages until ctx ends.
func (l *loop) run(ctx context.Context, msgs <-chan watchMsg[grid.Assignment]) {
	defer close(l.done)
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-l.ended:
			delete(l.dynos, id)
		case msg := <-msgs:
			l.handle(ctx, msg)
		case <-l.collect:
			l.collect = nil
			l.collectLeftovers(ctx)
		}
	}
}

func (l *loop) handle(ctx context.Context, msg watchMsg[grid.Assignment]) {
	switch {
	case msg.Restart:
		l.seen = map[string]bool{}
	case msg.Synced:
		l.synced(ctx)
	case msg.Deleted:
		id := afterLastDot(msg.Key)
		delete(l.seen, id)
		if d := l.dynos[id]; d != nil {
			d.stop()
		}
	default:
		asg := msg.Value
		if asg.DynoID == "" {
			return
		}
		l.seen[asg.DynoID] = true
		// Assignments are immutable: a second put of a known dyno ID (or
		// one still stopping) changes nothing.
		if _, ok := l.dynos[asg.DynoID]; !ok {
			l.start(ctx, asg)
		}
	}
}

// leftoverGrace is how long after its first sync an agent still lets
// assignments claim an earlier agent's sandboxes before destroying the
// rest. A watch opened just after a stream changed leader (a server of
// three died) was seen to miss the newest assignments for a moment;
// destroying on its word alone killed healthy dynos, which then started
// again when the assignments arrived.
const leftoverGrace = 5 * time.Second

// synced reconciles with the complete set of assignments: dynos whose
// assignment went while nobody watched stop; leftoverGrace after the
// first sync, leftover sandboxes no assignment claimed are destroyed and
// stale records deleted.
func (l *loop) synced(ctx context.Context) {
	for id, d := range l.dynos {
		if !l.seen[id] {
			d.log.Info("assignment gone while unwatched; stopping dyno")
			d.stop()
		}
	}
	switch {
	case l.collected:
		l.forgetStale(ctx)
	case l.collect == nil:
		l.collect = time.After(leftoverGrace)
	}
	l.a.slugs.knowDynos()
}

// collectLeftovers destroys the leftover sandboxes no assignment claimed
// and deletes the records no dyno accounts for.
func (l *loop) collectLeftovers(ctx context.Context) {
	l.collected = true
	l.leftovers = nil
	l.wg.Go(func() {
		if n, err := l.a.cfg.Sandboxes.CollectGarbage(); n > 0 || err != nil {
			l.a.log.Info("unassigned sandboxes destroyed", "count", n, "err", err)
		}
	})
	l.forgetStale(ctx)
}

// forgetStale deletes dyno records of this host that no dyno accounts
// for: left by an earlier agent whose dynos are gone.
func (l *loop) forgetStale(ctx context.Context) {
	for id, rec := range l.a.ownRecords(ctx) {
		if l.dynos[id] != nil || rec.Host != l.a.cfg.ID {
			continue
		}
		l.a.rep.remove(rec)
		l.a.log.Info("stale dyno record deleted", "app", rec.App, "dyno", rec.Name, "dyno_id", id)
	}
}

// start runs a dyno in its own goroutine, adopting the sandboxes an
// earlier agent left for it; the loop never waits for a dyno to start or
// stop.
func (l *loop) start(ctx context.Context, asg grid.Assignment) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := newDyno(l.a, asg, cancel)
	d.next = l.attempts[strings.TrimSuffix(sandboxID(asg.DynoID, 0), "-0")]
	if rec, ok := l.records[asg.DynoID]; ok {
		d.rec = rec
	}
	d.inherit(l.leftovers[asg.DynoID])
	delete(l.leftovers, asg.DynoID)
	l.dynos[asg.DynoID] = d
	l.a.slugs.acquire(asg.SlugID) // before the goroutine: cleanup may run at once
	l.wg.Go(func() {
		defer cancel()
		defer l.a.slugs.release(asg.SlugID)
		d.run(dctx)
		select {
		case l.ended <- asg.DynoID:
		case <-l.done: // Run is shutting down and no longer listens
		}
	})
}

// exit ends every dyno goroutine: dynos are left running (detached, for
// the next agent) or, with StopDynosOnExit, stopped gracefully, all at
// once. It returns once all are done.
func (l *loop) exit() {
	for _, d := range l.dynos {
		if l.a.cfg.StopDynosOnExit {
			d.stop()
		} else {
			d.leave()
		}
	}
	l.wg.Wait()
}

// inherit adopts the sandboxes an earlier agent left for d: the newest
// running one becomes d's sandbox; the others are destroyed when d runs.
func (d *dyno) inherit(los []sandbox.Leftover) {
	slices.SortFunc(los, func(a, b sandbox.Leftover) int { return b.Started.Compare(a.Started) })
	for _, lo := range los {
		out := d.a.cfg.Logs.Writer(d.asg.App, "app", d.asg.Name)
		sb, err := d.a.cfg.Sandboxes.Adopt(lo.ID, out, out)
		if err != nil {
			out.Close()
			if !errors.Is(err, grid.ErrNotFound) {
				d.log.Warn("adopting sandbox failed; it will be destroyed", "sandbox", lo.ID, "err", err)
			}
			continue
		}
		port, _ := strconv.Atoi(lo.Labels[labelPort])
		d.inherited = append(d.inherited, inherited{sb: sb, out: out, port: port})
	}
}

func afterLastDot(key string) string {
	return key[strings.LastIndexByte(key, '.')+1:]
}
