// Package logs is the log router: one stream per app merging app output,
// platform events, router lines and API events, kept on disk in a
// JetStream stream (the last 1,500 lines per app), read back as a
// snapshot or followed live.
//
// Writers never block on the log path: a line that cannot be queued is
// dropped and counted. Dyno output is product data and flows only here,
// never through slog. This package must never decide what a line says
// (formats belong to their writers) and must never let a slow or absent
// NATS server stall a caller of Write.
//
// Write path:
//
//	Write ─► split >10,000 B ─► queue (4,096 lines; an app with 1,024
//	      queued may not take the last 1,024) full? drop+count ─► publisher
//	                                   │ JSON, an app's queued lines batched
//	                                   │ (≤ 32 a message), async publish to
//	                                   ▼ logs.<app>, ≤ 256 unacknowledged
//	                   stream LOGS (1,500 messages per subject, discard old)
package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// Limits, as Logplex has them.
const (
	// History is how many lines Read returns at most, and how many the
	// stream keeps per app at least: it keeps 1,500 messages, of one or
	// more lines each.
	History = 1500
	// DefaultLines is how many lines Read returns when Query.Lines is 0.
	DefaultLines = 100
	// MaxLineBytes is the longest line stored; longer ones are split into
	// chunks of at most this many bytes (cut before a UTF-8 sequence, so a
	// chunk may be up to 3 bytes shorter).
	MaxLineBytes = 10000
)

const (
	streamName    = "LOGS"
	subjectPrefix = "logs."
	queueLen      = 4096 // lines waiting for the publisher
	// An app holding appShare lines or more may not take the queue's
	// last reserve slots, so a flood leaves room for other apps' lines.
	appShare, reserve = queueLen / 4, queueLen / 4
	maxInFlight       = 256             // published lines not yet acknowledged
	ackTimeout        = 5 * time.Second // an unacknowledged line is counted lost after this
	closeWait         = time.Second     // how long Close waits for queued lines
)

// Line is one log line of one app.
type Line struct {
	Time   time.Time `json:"t"`
	App    string    `json:"app"`
	Source string    `json:"src"`  // "app" or "heroku"
	Dyno   string    `json:"dyno"` // "web.1", "router", "api"
	Text   string    `json:"msg"`
	// Seq is the line's position in the log stream, set by Read: it
	// strictly increases within an app's lines, so a reader that
	// reconnects can resume exactly with Query.After. Zero on lines not
	// read from the stream; never stored.
	Seq uint64 `json:"-"`
}

// Format renders a line as Heroku does:
// "2026-01-05T14:47:41.593531+00:00 app[web.1]: text".
func (l Line) Format() string {
	return l.Time.UTC().Format("2006-01-02T15:04:05.000000+00:00") + " " + l.Source + "[" + l.Dyno + "]: " + l.Text
}

// Log writes and reads app logs. Safe for concurrent use; a nil *Log
// discards writes.
type Log struct {
	js      jetstream.JetStream // our own context: its async-publish window is ours alone
	stream  jetstream.Stream
	queue   chan item
	queued  sync.Map      // app → *atomic.Int32: its lines in queue
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the publisher has drained
	closed  atomic.Bool
	closeBy atomic.Pointer[time.Time] // set by Close: when the publisher gives up
	dropped atomic.Uint64
	once    sync.Once
}

// item is a queued line, or a flush marker when flushed is set.
type item struct {
	line    Line
	flushed chan struct{} // closed once every earlier line is published
}

// Open creates or updates the log stream and starts the publisher. Call
// Close when done.
func Open(ctx context.Context, st *store.Store) (*Log, error) {
	l := &Log{queue: make(chan item, queueLen), stop: make(chan struct{}), done: make(chan struct{})}
	js, err := jetstream.New(st.Conn(),
		jetstream.WithPublishAsyncMaxPending(maxInFlight),
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			l.dropped.Add(uint64(bytes.Count(m.Data, []byte("\n")) + 1)) // the message's lines
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("logs: %v: %w", err, grid.ErrUnavailable)
	}
	l.js = js
	// Hosts and routers wait for the servers to make the stream; servers
	// for a cluster that is still electing its leaders.
	err = store.Retry(ctx, func(ctx context.Context) (err error) {
		if st.Role().Kind != store.RoleServer {
			l.stream, err = js.Stream(ctx, streamName)
		} else {
			l.stream, err = ensureStream(ctx, js, st.Replicas())
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("logs: stream %s: %v: %w", streamName, err, grid.ErrUnavailable)
	}
	go l.publish()
	return l, nil
}

// streamConfig is the LOGS stream. On one server it persists
// asynchronously: the server fsyncs every write (sync_interval: always),
// which caps a stream near 3,000 lines/s on a small VM, while log lines
// are lossy by design (Logplex keeps them in memory) and the router alone
// writes one per request. Async persistence lifts that about sixfold and
// loses at most the last moments of lines if the machine (not the
// process) crashes. Replicated streams cannot be async and need not be:
// with replicas the server already syncs on Raft snapshots only.
func streamConfig(replicas int) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:              streamName,
		Description:       "app logs: messages of newline-separated lines at logs.<app>",
		Subjects:          []string{subjectPrefix + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: History,
		Discard:           jetstream.DiscardOld,
	}
	if replicas <= 1 {
		cfg.PersistMode = jetstream.AsyncPersistMode
	}
	return cfg
}

// ensureStream creates or updates the stream. A stream's persist mode
// cannot change, so an existing one keeps its mode, except that an async
// one growing to several replicas (one server became a cluster) is
// recreated: its log history is lost once.
func ensureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	want := streamConfig(replicas)
	if s, err := js.Stream(ctx, streamName); err == nil {
		have := s.CachedInfo().Config.PersistMode
		switch {
		case have == want.PersistMode:
		case have == jetstream.AsyncPersistMode:
			if err := js.DeleteStream(ctx, streamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, err
			}
		default:
			want.PersistMode = have
		}
	}
	return js.CreateOrUpdateStream(ctx, want)
}

func subject(app string) string { return subjectPrefix + app }

// Dropped is how many lines were lost since Open: queue full, publish
// failed or unacknowledged, or written after Close.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Purge removes an app's log lines.
func (l *Log) Purge(ctx context.Context, app string) error {
	if err := grid.ValidateAppName(app); err != nil {
		return err
	}
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSubject(subject(app))); err != nil {
		return fmt.Errorf("logs: purge %s: %v: %w", app, err, grid.ErrUnavailable)
	}
	return nil
}

// Close flushes queued lines (waiting up to a second) and stops. Lines
// still unacknowledged then are counted as dropped. Later writes are
// dropped. Close does not close the store.
func (l *Log) Close() {
	l.once.Do(func() {
		deadline := time.Now().Add(closeWait)
		l.closeBy.Store(&deadline)
		l.closed.Store(true)
		close(l.stop)
		<-l.done
		t := time.NewTimer(max(time.Until(deadline), 0))
		defer t.Stop()
		select {
		case <-l.js.PublishAsyncComplete():
		case <-t.C:
		}
		l.js.CleanupPublisher()
	})
}
