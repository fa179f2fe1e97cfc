package logs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// A Writer's lines are rate-limited, as Heroku's local log shipper is:
// WriterRate lines per second on average, in bursts of up to
// WriterBurst. A dyno that prints faster loses the excess, counted but
// never parsed (dropping costs a newline count per write, not a line
// each), and its log gets one Error L12 line per second saying how many
// were dropped. Without the limit one flooding dyno spent more than a
// core of its host turning lines nobody could store into messages that
// the log queue then dropped, slowing every other dyno and the router.
// The burst stays well under the host's shared queue (queueLen), so
// that one dyno's burst never crowds out another's lines.
const (
	WriterRate  = 2000
	WriterBurst = 1000
)

// Writer returns a writer that turns each written line into a log line of
// the given source and dyno (for dyno stdout/stderr). Lines end at "\n"
// (a "\r" before it is dropped) and may arrive over several writes; a
// partial line longer than MaxLineBytes is sent in chunks as it grows.
// Close flushes a final unterminated line. Writes never block and never
// fail before Close. Lines beyond the rate limit are dropped (see
// WriterRate).
func (l *Log) Writer(app, source, dyno string) io.WriteCloser {
	return &lineWriter{log: l, tmpl: Line{App: app, Source: source, Dyno: dyno}, tokens: WriterBurst, refilled: time.Now()}
}

type lineWriter struct {
	log    *Log
	tmpl   Line
	mu     sync.Mutex
	buf    []byte // the current unterminated line
	closed bool
	// The rate limit: tokens (lines) left, refilled at WriterRate.
	tokens   float64
	refilled time.Time
	skipping bool      // dropping the rest of a line cut by a drop
	dropping bool      // the last write dropped lines
	dropped  int       // lines dropped since since, not yet reported
	since    time.Time // when the first of them was dropped
	reported time.Time // when the last L12 line was sent
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	n := len(p)
	now := time.Now()
	w.refill(now)
	w.dropping = false
	for len(p) > 0 {
		if w.skipping {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				p = nil
				break
			}
			w.skipping, p = false, p[i+1:]
			continue
		}
		if w.tokens < 1 {
			w.drop(p, now)
			p = nil
			break
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		w.tokens--
		if len(w.buf) == 0 {
			w.emit(p[:i])
		} else {
			w.buf = append(w.buf, p[:i]...)
			w.emit(w.buf)
			w.buf = w.buf[:0]
		}
		p = p[i+1:]
	}
	w.buf = append(w.buf, p...)
	w.emitFullChunks(now)
	w.report(now, false)
	return n, nil
}

// Dropping reports whether the last write dropped lines over the rate
// limit. The sandbox's output copier asks, and then reads less often: a
// flood waits in the dyno's own pipe, costing the dyno's time rather
// than the host's (sandbox.dropPause). The rest of a line cut by a drop
// is skipped, not dropped: a giant line passes at full speed.
func (w *lineWriter) Dropping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropping
}

func (w *lineWriter) refill(now time.Time) {
	w.tokens = min(WriterBurst, w.tokens+now.Sub(w.refilled).Seconds()*WriterRate)
	w.refilled = now
}

// drop discards p, and the line in progress: every line that ends in p
// counts, and one that does not is skipped up to its end.
func (w *lineWriter) drop(p []byte, now time.Time) {
	lines := bytes.Count(p, []byte{'\n'})
	if len(w.buf) > 0 && lines == 0 {
		lines = 1 // the buffered line, now cut
	}
	if p[len(p)-1] != '\n' {
		w.skipping = true
		if lines == 0 {
			lines = 1
		}
	}
	w.buf = w.buf[:0]
	w.dropping = true
	if w.dropped == 0 {
		w.since = now
	}
	w.dropped += lines
}

// report sends an L12 line for the drops so far, at most once a second
// unless final.
func (w *lineWriter) report(now time.Time, final bool) {
	if w.dropped == 0 || !final && now.Sub(w.reported) < time.Second {
		return
	}
	w.log.Write(Line{Time: now.UTC(), App: w.tmpl.App, Source: "heroku", Dyno: w.tmpl.Dyno,
		Text: fmt.Sprintf("Error L12 (Local buffer overflow) -> %d log lines dropped since %s: output over %d lines/s", w.dropped, w.since.UTC().Format(time.RFC3339), WriterRate)})
	w.dropped, w.reported = 0, now
}

// emitFullChunks sends MaxLineBytes-sized pieces of an unterminated line
// so the buffer stays bounded however long the line gets.
func (w *lineWriter) emitFullChunks(now time.Time) {
	sent := 0
	for len(w.buf)-sent > MaxLineBytes {
		if w.tokens < 1 { // each chunk is a line: the rest of this one goes
			w.drop(w.buf[sent:], now)
			return
		}
		w.tokens--
		n := chunkLen(w.buf[sent : sent+MaxLineBytes+1])
		w.emitRaw(w.buf[sent : sent+n])
		sent += n
	}
	if sent > 0 {
		w.buf = append(w.buf[:0], w.buf[sent:]...)
	}
}

func (w *lineWriter) emit(b []byte) {
	w.emitRaw(bytes.TrimSuffix(b, []byte("\r")))
}

func (w *lineWriter) emitRaw(b []byte) {
	line := w.tmpl
	line.Text = string(b)
	w.log.Write(line)
}

// Close sends the final unterminated line, if any.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
	w.report(time.Now(), true)
	return nil
}
