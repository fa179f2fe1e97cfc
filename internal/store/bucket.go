package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// bucket is a KV bucket holding JSON values of one type.
type bucket[T any] struct {
	kv   jetstream.KeyValue
	name string // what a value is, for error messages: "app", "dyno"
}

// Event is one change seen by a watch. The first events of a watch are the
// current values; then one event with Synced set marks that the watcher has
// caught up; then come live changes.
type Event[T any] struct {
	Key      string
	Value    T    // zero when Deleted
	Deleted  bool // the key was deleted or purged
	Synced   bool // marker: initial values delivered; Key and Value unset
	Revision uint64
}

func (b bucket[T]) get(ctx context.Context, key string) (T, uint64, error) {
	var v T
	var e jetstream.KeyValueEntry
	err := readWhileLeaderless(ctx, func() (err error) { e, err = b.kv.Get(ctx, key); return err })
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return v, 0, fmt.Errorf("%s %q: %w", b.name, key, grid.ErrNotFound)
	}
	if err != nil {
		return v, 0, unavailable(b.name, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("%s %q: corrupt record: %w", b.name, key, err)
	}
	return v, e.Revision(), nil
}

func (b bucket[T]) create(ctx context.Context, key string, v T) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var rev uint64
	err = whileLeaderless(ctx, func() (err error) { rev, err = b.kv.Create(ctx, key, data); return err })
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s %q already exists: %w", b.name, key, grid.ErrConflict)
	}
	if err != nil {
		return 0, unavailable(b.name, err)
	}
	return rev, nil
}

func (b bucket[T]) put(ctx context.Context, key string, v T) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var rev uint64
	err = whileLeaderless(ctx, func() (err error) { rev, err = b.kv.Put(ctx, key, data); return err })
	if err != nil {
		return 0, unavailable(b.name, err)
	}
	return rev, nil
}

// swap writes v only if the key is still at revision rev (0: absent).
func (b bucket[T]) swap(ctx context.Context, key string, v T, rev uint64) (uint64, error) {
	if rev == 0 {
		return b.create(ctx, key, v)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = whileLeaderless(ctx, func() (err error) { n, err = b.kv.Update(ctx, key, data, rev); return err })
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s %q changed concurrently: %w", b.name, key, grid.ErrConflict)
	}
	if err != nil {
		return 0, unavailable(b.name, err)
	}
	return n, nil
}

// update applies fn to the current value and writes it back with
// compare-and-set, retrying when another writer got there first. With
// create set, a missing key starts from the zero value. fn may be called
// more than once and must not have side effects.
func (b bucket[T]) update(ctx context.Context, key string, create bool, fn func(*T) error) (T, error) {
	for attempt := 0; ; attempt++ {
		v, rev, err := b.get(ctx, key)
		if err != nil && !(create && errors.Is(err, grid.ErrNotFound)) {
			return v, err
		}
		if err := fn(&v); err != nil {
			return v, err
		}
		_, err = b.swap(ctx, key, v, rev)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, grid.ErrConflict) || attempt >= 50 {
			return v, err
		}
		if err := ctx.Err(); err != nil {
			return v, err
		}
	}
}

func (b bucket[T]) delete(ctx context.Context, key string) error {
	err := whileLeaderless(ctx, func() error { return b.kv.Purge(ctx, key) })
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable(b.name, err)
	}
	return nil
}

// list returns every value whose key matches filter (NATS wildcards; ">"
// for all) in one pass of an ephemeral consumer, not one Get per key.
func (b bucket[T]) list(ctx context.Context, filter string) ([]T, error) {
	var w jetstream.KeyWatcher
	err := readWhileLeaderless(ctx, func() (err error) { w, err = b.kv.Watch(ctx, filter, jetstream.IgnoreDeletes()); return err })
	if err != nil {
		return nil, unavailable(b.name, err)
	}
	defer w.Stop()
	var out []T
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			var v T
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, fmt.Errorf("%s %q: corrupt record: %w", b.name, e.Key(), err)
			}
			out = append(out, v)
		}
	}
}

// watch streams changes to keys matching filter until ctx ends; the
// channel is closed then. Corrupt values are skipped.
func (b bucket[T]) watch(ctx context.Context, filter string) (<-chan Event[T], error) {
	w, err := b.kv.Watch(ctx, filter)
	if err != nil {
		return nil, unavailable(b.name, err)
	}
	out := make(chan Event[T], 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			}
			ev := Event[T]{Synced: e == nil}
			if e != nil {
				ev.Key, ev.Revision = e.Key(), e.Revision()
				ev.Deleted = e.Operation() != jetstream.KeyValuePut
				if !ev.Deleted && json.Unmarshal(e.Value(), &ev.Value) != nil {
					continue
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// leaderlessFor bounds how long a request waits for a stream to elect a
// leader: NATS's Raft elects within 4–9s of losing one, but a server's
// death leaves every stream it led (about twenty) electing at once, and on
// a loaded 2-core machine the last took more than 15 s in CI.
const leaderlessFor = 30 * time.Second

// clusterNotAvailable is JetStream's "JetStream system temporarily
// unavailable" (JSClusterNotAvailErr): no meta leader yet.
const clusterNotAvailable jetstream.ErrorCode = 10008

// whileLeaderless runs op, and again while it fails because a stream or
// the cluster has no leader (a server of three died and its streams are
// electing new ones), for up to leaderlessFor or until ctx ends. Such a
// request reached no leader, so repeating it cannot apply it twice;
// timeouts, which might have been applied, are not retried.
func whileLeaderless(ctx context.Context, op func() error) error {
	return retryLeaderless(ctx, leaderless, op)
}

// readWhileLeaderless is whileLeaderless for reads, which also repeat
// after a timeout: a consumer (a list's) cannot be made while its stream
// elects a leader, and the request just goes unanswered.
func readWhileLeaderless(ctx context.Context, op func() error) error {
	return retryLeaderless(ctx, func(err error) bool {
		return leaderless(err) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	}, op)
}

func retryLeaderless(ctx context.Context, retriable func(error) bool, op func() error) error {
	deadline := time.Now().Add(leaderlessFor)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := op()
		if !retriable(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

func leaderless(err error) bool {
	var api *jetstream.APIError
	return err != nil && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.As(err, &api) && api.ErrorCode == clusterNotAvailable)
}

func unavailable(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("store: %s: %v: %w", what, err, grid.ErrUnavailable)
}
