package logs

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/nats-io/nats.go/jetstream"
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

func (l *Log) enqueue(line Line) {
	select {
	case l.queue <- item{line: line}:
	default:
		l.dropped.Add(1)
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

// publish is the only goroutine that talks to the server on the write
// path; it may stall (bounded in-flight window), callers never do.
func (l *Log) publish() {
	defer close(l.done)
	for {
		select {
		case it := <-l.queue:
			l.send(it, time.Time{})
		case <-l.stop:
			l.drain(time.Now().Add(closeWait))
			return
		}
	}
}

// drain publishes what is queued until the queue is empty or the deadline
// passes; lines left then are counted as dropped.
func (l *Log) drain(deadline time.Time) {
	for {
		select {
		case it := <-l.queue:
			if time.Now().After(deadline) {
				l.countLost(it)
				continue
			}
			l.send(it, deadline)
		default:
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

// send publishes one line. While the in-flight window is full (a slow or
// absent server) it keeps waiting, since the queue absorbs writers
// meanwhile; it gives up at the deadline, or at Close when there is none.
func (l *Log) send(it item, deadline time.Time) {
	if it.flushed != nil {
		close(it.flushed)
		return
	}
	data, err := encode(it.line)
	if err != nil {
		l.dropped.Add(1)
		return
	}
	for {
		// Each call waits at most 200 ms for a free slot in the window.
		_, err := l.js.PublishAsync(subject(it.line.App), data)
		if err == nil {
			return
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || l.givingUp(deadline) {
			l.dropped.Add(1)
			return
		}
	}
}

func (l *Log) givingUp(deadline time.Time) bool {
	if !deadline.IsZero() {
		return time.Now().After(deadline)
	}
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}
