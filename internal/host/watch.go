package host

import (
	"context"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

// watchMsg is one message of a rewatch: a store event, or Restart, which
// opens a fresh watch. The events after a Restart, up to its Synced
// event, are the complete current state; what came before no longer
// counts.
type watchMsg[T any] struct {
	store.Event[T]
	Restart bool
}

// Re-watch back-off: the first retry comes soon, later ones no more than
// every rewatchMax.
const (
	rewatchMin = 250 * time.Millisecond
	rewatchMax = 5 * time.Second
)

// rewatch keeps a watch open until ctx ends, sending its events to out.
// A watch that ends (NATS gone, the server restarted) is reopened, with
// back-off while that fails; so is one that outlived a lost connection
// (it may have missed changes). A control plane that is away therefore
// only delays events, never ends them.
func rewatch[T any](ctx context.Context, a *Agent, what string, open func(context.Context) (<-chan store.Event[T], error), out chan<- watchMsg[T]) {
	conn := a.cfg.Store.Conn()
	status := conn.StatusChanged()
	defer conn.RemoveStatusListener(status)
	log := a.log.With("watch", what)
	var wait time.Duration
	for {
		if !sleep(ctx, wait) {
			return
		}
		drain(status) // this watch starts after whatever happened
		wctx, cancel := context.WithCancel(ctx)
		events, err := open(wctx)
		if err != nil {
			cancel()
			wait = min(max(2*wait, rewatchMin), rewatchMax)
			if ctx.Err() == nil {
				log.Warn("watch failed; retrying", "err", err, "retry_in", wait)
			}
			continue
		}
		if !send(ctx, out, watchMsg[T]{Restart: true}) {
			cancel()
			return
		}
		synced, why := pump(ctx, events, status, conn.IsConnected, out)
		cancel()
		if synced {
			wait = 0
		} else {
			wait = min(max(2*wait, rewatchMin), rewatchMax)
		}
		if ctx.Err() == nil {
			log.Info("reopening watch", "why", why, "in", wait)
		}
	}
}

// pump forwards events until the watch ends, the connection comes back
// after a loss, or ctx ends. It reports whether the watch had synced.
func pump[T, S any](ctx context.Context, events <-chan store.Event[T], status <-chan S, connected func() bool, out chan<- watchMsg[T]) (synced bool, why string) {
	for {
		select {
		case <-ctx.Done():
			return synced, "stopping"
		case <-status:
			if connected() {
				return synced, "reconnected"
			}
		case ev, ok := <-events:
			if !ok {
				return synced, "watch ended"
			}
			synced = synced || ev.Synced
			if !send(ctx, out, watchMsg[T]{Event: ev}) {
				return synced, "stopping"
			}
		}
	}
}

func send[T any](ctx context.Context, out chan<- T, v T) bool {
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// drain empties a channel without waiting.
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
