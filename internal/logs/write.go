package logs

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// Write queues one line. It never blocks: when the queue is full the line
// is dropped and counted (see Dropped). A zero Time becomes now (UTC);
// text longer than MaxLineBytes becomes several lines. Lines of an
// invalid app name are dropped.
func (l *Log) Write(line Line) {
	if l == nil {
		return
	}
	if l.closed.Load() || grid.ValidateAppName(line.App) != nil {
		l.dropped.Add(1)
		return
	}
	if line.Time.IsZero() {
		line.Time = time.Now().UTC()
	}
	text := line.Text
	for len(text) > MaxLineBytes {
		n := chunkLen(text)
		line.Text, text = text[:n], text[n:]
		l.enqueue(line)
	}
	line.Text = text
	l.enqueue(line)
}

// chunkLen is where to cut a too-long line: at MaxLineBytes, or up to 3
// bytes earlier so as not to split a UTF-8 sequence.
func chunkLen[T ~string | ~[]byte](s T) int {
	n := MaxLineBytes
	for i := n; i > n-utf8.UTFMax+1 && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return n
}

// enqueue queues line unless the queue is full, or its app already holds
// its share and the queue is down to its reserve: one app's flood (a
// dyno's burst, a router's lines of a hammered app) must never crowd out
// every other app's lines, while a lone app's burst may use most of it.
func (l *Log) enqueue(line Line) {
	n := l.appQueued(line.App)
	if n.Load() >= appShare && len(l.queue) >= queueLen-reserve {
		l.dropped.Add(1)
		return
	}
	n.Add(1)
	select {
	case l.queue <- item{line: line}:
	default:
		n.Add(-1)
		l.dropped.Add(1)
	}
}

// appQueued is app's count of queued lines.
func (l *Log) appQueued(app string) *atomic.Int32 {
	if n, ok := l.queued.Load(app); ok {
		return n.(*atomic.Int32)
	}
	n, _ := l.queued.LoadOrStore(app, new(atomic.Int32))
	return n.(*atomic.Int32)
}

// dequeued counts out a line the publisher has taken from the queue.
func (l *Log) dequeued(it item) {
	if it.flushed == nil {
		l.appQueued(it.line.App).Add(-1)
	}
}

// Flush waits until every line written before the call has been
// acknowledged by the server, or ctx ends. For tests and for writers that
// must know a line is stored (an API event before a response).
func (l *Log) Flush(ctx context.Context) error {
	marker := item{flushed: make(chan struct{})}
	select {
	case l.queue <- marker:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-marker.flushed:
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-l.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lines of one app that the publisher gathers within linger of each
// other go out as one message, their JSON objects separated by newlines:
// at a router's rate of a line per request, a message (and a stored,
// acknowledged stream entry) per line costs more than the request. A
// line waits at most linger for company.
const (
	batchLines = 32
	batchBytes = 32 << 10
	linger     = 5 * time.Millisecond
)

// publish is the only goroutine that talks to the server on the write
// path; it may stall (bounded in-flight window), callers never do.
func (l *Log) publish() {
	defer close(l.done)
	var b batcher
	t := time.NewTimer(linger)
	t.Stop()
	for {
		select {
		case it := <-l.queue:
			l.dequeued(it)
			b.add(l, it, time.Time{})
			l.gather(&b, t)
		case <-l.stop:
			l.drain(&b, time.Now().Add(closeWait))
			return
		}
	}
}

// gather adds the lines that arrive within linger to b, up to a batch's
// worth, then publishes them all.
func (l *Log) gather(b *batcher, t *time.Timer) {
	t.Reset(linger)
	defer t.Stop()
	for b.lines < batchLines {
		select {
		case it := <-l.queue:
			l.dequeued(it)
			b.add(l, it, time.Time{})
			continue
		case <-t.C:
		case <-l.stop:
		}
		break
	}
	b.sendAll(l, time.Time{})
}

// drain publishes what is queued until the queue is empty or the deadline
// passes; lines left then are counted as dropped.
func (l *Log) drain(b *batcher, deadline time.Time) {
	for {
		select {
		case it := <-l.queue:
			l.dequeued(it)
			if time.Now().After(deadline) {
				l.countLost(it)
				continue
			}
			b.add(l, it, deadline)
		default:
			b.sendAll(l, deadline)
			return
		}
	}
}

func (l *Log) countLost(it item) {
	if it.flushed != nil {
		close(it.flushed)
		return
	}
	l.dropped.Add(1)
}

// batcher gathers queued lines into one message per app, in order.
type batcher struct {
	batches []batch
	lines   int    // in all batches
	scratch []byte // one line's JSON
}

// batch is one message being made: lines of one app.
type batch struct {
	app   string
	data  []byte
	lines int
}

// add takes one queued item. A flush marker sends everything before it
// first; a full batch goes out when its app's next line arrives.
func (b *batcher) add(l *Log, it item, deadline time.Time) {
	if it.flushed != nil {
		b.sendAll(l, deadline)
		close(it.flushed)
		return
	}
	line, err := appendLine(b.scratch[:0], it.line)
	b.scratch = line[:0]
	if err != nil {
		l.dropped.Add(1)
		return
	}
	i := 0
	for i < len(b.batches) && b.batches[i].app != it.line.App {
		i++
	}
	if i == len(b.batches) {
		b.batches = append(b.batches, batch{app: it.line.App})
	}
	bt := &b.batches[i]
	if bt.lines >= batchLines || bt.lines > 0 && len(bt.data)+1+len(line) > batchBytes {
		b.lines -= bt.lines
		l.send(bt, deadline)
	}
	if bt.lines > 0 {
		bt.data = append(bt.data, '\n')
	} else if bt.data == nil {
		// Room for a full batch of lines like this one, at once: a batch
		// grown line by line would be copied over and over.
		bt.data = make([]byte, 0, min(batchBytes, (len(line)+1)*batchLines))
	}
	bt.data = append(bt.data, line...)
	bt.lines++
	b.lines++
}

// sendAll publishes every batch.
func (b *batcher) sendAll(l *Log, deadline time.Time) {
	for i := range b.batches {
		l.send(&b.batches[i], deadline)
	}
	clear(b.batches)
	b.batches, b.lines = b.batches[:0], 0
}

// send publishes one batch and empties it. While the in-flight window is
// full (a slow or absent server) it keeps waiting, since the queue
// absorbs writers meanwhile; it gives up at the deadline, or once Close's
// time is up when there is none.
func (l *Log) send(bt *batch, deadline time.Time) {
	if bt.lines == 0 {
		return
	}
	data, lines := bt.data, bt.lines
	bt.data, bt.lines = nil, 0 // the message keeps data until it is acknowledged
	for !l.expired(deadline) {
		// Each call waits at most 200 ms for a free slot in the window.
		_, err := l.js.PublishAsync(subject(bt.app), data)
		if err == nil {
			return
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			break
		}
	}
	l.dropped.Add(uint64(lines))
}

// expired reports whether the publisher must stop trying: deadline has
// passed or, without one, Close's has.
func (l *Log) expired(deadline time.Time) bool {
	if deadline.IsZero() {
		by := l.closeBy.Load()
		if by == nil {
			return false
		}
		deadline = *by
	}
	return time.Now().After(deadline)
}
