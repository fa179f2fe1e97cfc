package router

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// recordWatch follows the router records as the dyno manager would.
type recordWatch struct {
	t  testing.TB
	ch <-chan store.Event[grid.RouterState]
}

func (h *harness) watchRecords() *recordWatch {
	h.t.Helper()
	ctx, cancel := context.WithCancel(bg)
	h.t.Cleanup(cancel)
	ch, err := h.st.WatchRouters(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return &recordWatch{t: h.t, ch: ch}
}

// next returns the next record of router r1.
func (w *recordWatch) next() grid.RouterState {
	w.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w.ch:
			if !ok {
				w.t.Fatal("router watch ended")
			}
			if !ev.Synced && !ev.Deleted && ev.Key == routerRole.ID {
				return ev.Value
			}
		case <-deadline:
			w.t.Fatal("no router record within 10s")
		}
	}
}

// until returns the first record with a revision at or past rev.
func (w *recordWatch) until(rev uint64) grid.RouterState {
	w.t.Helper()
	for {
		if rs := w.next(); rs.Revision >= rev {
			return rs
		}
	}
}

// dynoRevisions tells the revision at which each dyno record was written.
type dynoRevisions struct {
	t  testing.TB
	ch <-chan store.Event[grid.Dyno]
}

func (h *harness) watchDynoRevisions() *dynoRevisions {
	h.t.Helper()
	ctx, cancel := context.WithCancel(bg)
	h.t.Cleanup(cancel)
	ch, err := h.st.WatchDynos(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return &dynoRevisions{t: h.t, ch: ch}
}

// of returns the revision of the next write of the dyno record key.
func (d *dynoRevisions) of(key string) uint64 {
	d.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-d.ch:
			if ev.Key == key {
				return ev.Revision
			}
		case <-deadline:
			d.t.Fatalf("dyno %s not seen in 10s", key)
		}
	}
}

func dynoKey(app string, n int) string { return fmt.Sprintf("h1.%s.d%d", app, n) }

// The router's record says which dyno revision its table includes, soon
// after it does, and never before: the dyno manager stops old dynos on
// its word.
//
// Changes here come back to back, each right after the previous ack, so
// with the default AckInterval most wait out its remainder; "immediate"
// shows the pipeline without that wait (the first change after a quiet
// spell gets it).
func TestRecordAcksDynoRevisions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{{"default", 0}, {"immediate", time.Nanosecond}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testAcks(t, tc.every)
		})
	}
}

func testAcks(t *testing.T, ackInterval time.Duration) {
	h := startRouter(t, func(c *Config) { c.AckInterval = ackInterval })
	h.app("acked", 1)
	records, revs := h.watchRecords(), h.watchDynoRevisions()
	be := newBackend(t, "web.1", nil)

	const changes = 100
	wrote := map[int]uint64{} // dyno n → revision of its up record
	var lat, put []time.Duration
	for n := 1; n <= changes; n++ {
		start := time.Now()
		h.dyno("acked", n, grid.DynoUp, be.addr())
		written := time.Now()
		wrote[n] = revs.of(dynoKey("acked", n))
		rs := records.until(wrote[n])
		lat = append(lat, time.Since(written))
		put = append(put, written.Sub(start))
		if rs.ID != routerRole.ID || rs.HeartbeatAt.IsZero() {
			t.Fatalf("record %+v", rs)
		}
		// Never ahead of the table: every dyno up at or before the
		// acknowledged revision is routed by now.
		eps := h.r.table.Load().routes["acked"].endpoints
		for m, rev := range wrote {
			if rev <= rs.Revision && !slices.ContainsFunc(eps, func(e *endpoint) bool { return e.dyno == fmt.Sprint("web.", m) }) {
				t.Fatalf("record says revision %d, but web.%d (revision %d) is not routed", rs.Revision, m, rev)
			}
		}
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	t.Logf("dyno written up → router record at its revision, %d changes: p50 %v, p99 %v, max %v (the store write itself: p50 %v)",
		changes, p50, p99, slices.Max(lat), percentile(put, 50))
	// A median well under the heartbeat shows acks follow changes, not
	// heartbeats; the tail is the store's fsync on a busy machine.
	if p50 > 50*time.Millisecond {
		t.Errorf("acks too slow: p50 %v", p50)
	}
}

// A burst of changes is acknowledged in fewer writes than changes, and
// the last record covers the last change.
func TestRecordCoalescesBursts(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.AckInterval = 20 * time.Millisecond })
	h.app("burst", 1)
	records, revs := h.watchRecords(), h.watchDynoRevisions()
	be := newBackend(t, "web.1", nil)

	var wg sync.WaitGroup
	const writers, each = 8, 25
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				d := grid.Dyno{ID: fmt.Sprint("d", w*each+i), Host: "h1", App: "burst", Name: fmt.Sprint("web.", w*each+i), Type: "web", State: grid.DynoUp, Addr: be.addr()}
				if err := h.st.PutDyno(bg, d); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var last uint64
	for seen := 0; seen < writers*each; {
		if ev := <-revs.ch; !ev.Synced {
			last, seen = max(last, ev.Revision), seen+1
		}
	}
	n := 0
	for rs := records.next(); ; rs = records.next() {
		n++
		if rs.Revision >= last {
			break
		}
	}
	t.Logf("%d changes acknowledged in %d writes", writers*each, n)
	if n >= writers*each/2 {
		t.Errorf("%d writes for %d changes: not coalesced", n, writers*each)
	}
}

// Without changes, the record is rewritten every Heartbeat, stamped by
// Config.Now.
func TestRecordHeartbeat(t *testing.T) {
	t.Parallel()
	epoch := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var tick atomic.Int64
	h := startRouter(t, func(c *Config) {
		c.Heartbeat = 20 * time.Millisecond
		c.Now = func() time.Time { return epoch.Add(time.Duration(tick.Add(1)) * time.Second) }
	})
	records := h.watchRecords()
	prev := records.next()
	for i := 0; i < 3; i++ {
		rs := records.next()
		if !rs.HeartbeatAt.After(prev.HeartbeatAt) || rs.HeartbeatAt.Before(epoch) || rs.Revision != prev.Revision {
			t.Errorf("heartbeat %+v after %+v", rs, prev)
		}
		prev = rs
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
