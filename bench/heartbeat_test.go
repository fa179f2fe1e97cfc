package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

// beats watches the host agents' heartbeats while a noisy neighbour
// runs: I-5 asks that the agent stay responsive beside a fork bomb. An
// agent writes its host record from its own goroutine every period (2 s
// by default), so a record written late (a gap between two of one host
// longer than the period) means the agent was starved, and one slow to
// reach a watcher means NATS or the bench was.
type beats struct {
	cancel context.CancelFunc
	done   chan struct{}
	// seen is each record's time from the agent's write to this
	// watcher; gaps the times between one host's writes.
	seen, gaps []time.Duration
}

// watchBeats watches until end is called.
func watchBeats(b *testing.B, st *store.Store) *beats {
	ctx, cancel := context.WithCancel(b.Context())
	events, err := st.WatchHosts(ctx)
	if err != nil {
		cancel()
		b.Fatalf("watch hosts: %v", err)
	}
	w := &beats{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := map[string]time.Time{}
		synced := false
		for e := range events {
			switch {
			case e.Synced:
				synced = true
			case e.Deleted:
				delete(last, e.Key)
			case synced: // a write made while watching
				at := e.Value.HeartbeatAt
				w.seen = append(w.seen, time.Since(at))
				if prev, ok := last[e.Key]; ok && at.After(prev) {
					w.gaps = append(w.gaps, at.Sub(prev))
				}
				last[e.Key] = at
			default:
				last[e.Key] = e.Value.HeartbeatAt
			}
		}
	}()
	return w
}

// end stops watching and describes the heartbeats seen.
func (w *beats) end() string {
	w.cancel()
	<-w.done
	if len(w.gaps) == 0 {
		return fmt.Sprintf("host heartbeats seen: %d, too few to tell their period", len(w.seen))
	}
	period, late := percentile(w.gaps, 50), slices.Max(w.gaps)
	return fmt.Sprintf("host heartbeats: %d, written → seen p50 %.1f ms, max %.1f ms; every %v, the longest gap %v (I-5: the agent answers within 100 ms)",
		len(w.seen), ms(percentile(w.seen, 50)), ms(slices.Max(w.seen)), period.Round(time.Millisecond), late.Round(time.Millisecond))
}
