package logs

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// Writer returns a writer that turns each written line into a log line of
// the given source and dyno (for dyno stdout/stderr). Lines end at "\n"
// (a "\r" before it is dropped) and may arrive over several writes; a
// partial line longer than MaxLineBytes is sent in chunks as it grows.
// Close flushes a final unterminated line. Writes never block and never
// fail before Close.
func (l *Log) Writer(app, source, dyno string) io.WriteCloser {
	return &lineWriter{log: l, tmpl: Line{App: app, Source: source, Dyno: dyno}}
}

type lineWriter struct {
	log    *Log
	tmpl   Line
	mu     sync.Mutex
	buf    []byte // the current unterminated line
	closed bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
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
	w.emitFullChunks()
	return n, nil
}

// emitFullChunks sends MaxLineBytes-sized pieces of an unterminated line
// so the buffer stays bounded however long the line gets.
func (w *lineWriter) emitFullChunks() {
	sent := 0
	for len(w.buf)-sent > MaxLineBytes {
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
	return nil
}
