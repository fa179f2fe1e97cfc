package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// relay sends the dyno's response (head in x.res) to the client, for the
// fast path: the dyno's header lines as they came, less hop-by-hop ones,
// with the router's framing, Via and (when the dyno sent none) Date; then
// the body. Bytes are flushed to the client whenever the dyno has nothing
// more buffered, so streams flow and a small response goes out in one
// write. The link goes back to the pool when its response was read to the
// end and neither side asked to close.
func (s *fastServer) relay(x *fastExchange, ep *endpoint, l *link, start time.Time) outcome {
	r := s.r
	res := &x.res
	method := x.rec.method
	bw := x.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(res.head[9:12])
	bw.WriteByte(' ')
	if len(res.reason) > 0 {
		bw.Write(res.reason)
	} else {
		bw.WriteString(http.StatusText(res.status))
	}
	bw.WriteString("\r\n")
	for _, sp := range res.spans {
		if res.passed(sp) {
			bw.Write(sp.line(res.head))
			bw.WriteString("\r\n")
		}
	}
	noBody := bodyless(method, res.status)
	untilClose := !noBody && !res.chunked && res.length < 0
	switch {
	case res.length >= 0 && (!noBody || method == "HEAD" || res.status == 304):
		bw.WriteString("Content-Length: ")
		var n [20]byte
		bw.Write(strconv.AppendInt(n[:0], res.length, 10))
		bw.WriteString("\r\n")
	case !noBody:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !res.date {
		bw.WriteString("Date: ")
		bw.Write(httpDate(time.Now()))
		bw.WriteString("\r\n")
	}
	bw.WriteString("Via: " + via + "\r\n")
	if x.closeClient {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")

	body := bodyRelay{s: s, l: l, bw: bw}
	var err error
	switch {
	case noBody:
	case res.chunked:
		err = body.chunked()
	case untilClose:
		err = body.untilClose()
	default:
		err = body.copyN(res.length)
	}
	x.rec.status, x.rec.bytes = res.status, body.n
	x.rec.service = r.cfg.Now().Sub(start) - x.rec.connect
	switch {
	case err == nil:
		if untilClose || res.close || ep.retired.Load() {
			l.close()
		} else {
			ep.links.put(l, r.cfg.Now())
		}
		r.logLine(x.app, &x.rec)
		return answered
	case body.writeErr:
		x.rec.fail = errH27
	case isTimeout(err):
		x.rec.fail = errH15
		r.hangStrike(x.app, ep)
	default:
		// The dyno broke off mid-body (H18): the client's connection is
		// cut too, so a truncated body is never taken for a whole one.
		x.rec.fail = errH18
	}
	l.close()
	if x.rec.fail != errH27 {
		x.rec.status = x.rec.fail.status
	}
	r.logLine(x.app, &x.rec)
	return aborted
}

// bodyRelay copies a response body from a link to the client.
type bodyRelay struct {
	s        *fastServer
	l        *link
	bw       *bufio.Writer
	n        int64 // body bytes relayed
	writeErr bool  // the error was the client's
}

// errChunk is a chunked body that breaks the framing.
var errChunk = errors.New("router: malformed chunked response body")

// fill waits until the link's reader holds at least need bytes, flushing
// what the client has not been sent yet first; the dyno must send a byte
// at least every RollingTimeout (H15).
func (b *bodyRelay) fill(need int) error {
	if b.bw.Buffered() > 0 {
		if err := b.bw.Flush(); err != nil {
			b.writeErr = true
			return err
		}
	}
	b.l.dc.SetReadDeadline(time.Now().Add(b.s.r.cfg.RollingTimeout))
	_, err := b.l.br.Peek(need)
	return err
}

func (b *bodyRelay) write(p []byte) error {
	if _, err := b.bw.Write(p); err != nil {
		b.writeErr = true
		return err
	}
	return nil
}

// copyN relays n bytes.
func (b *bodyRelay) copyN(n int64) error {
	br := b.l.br
	for n > 0 {
		if br.Buffered() == 0 {
			if err := b.fill(1); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		p, _ := br.Peek(int(min(n, int64(br.Buffered()))))
		if err := b.write(p); err != nil {
			return err
		}
		br.Discard(len(p))
		n -= int64(len(p))
		b.n += int64(len(p))
	}
	return nil
}

// line returns the next line (with its LF) of at most the reader's size,
// valid until the next read.
func (b *bodyRelay) line() ([]byte, error) {
	br := b.l.br
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			br.Discard(i + 1)
			return buf[:i+1], nil
		}
		if len(buf) >= br.Size() {
			return nil, errChunk
		}
		if err := b.fill(len(buf) + 1); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// chunked relays a chunked body chunk by chunk, sizes rewritten without
// extensions, and its trailer lines checked as header lines.
func (b *bodyRelay) chunked() error {
	var hex [20]byte
	for {
		line, err := b.line()
		if err != nil {
			return err
		}
		size, ok := chunkSize(line)
		if !ok {
			return errChunk
		}
		if size == 0 {
			return b.trailers()
		}
		if err := b.write(append(strconv.AppendInt(hex[:0], size, 16), '\r', '\n')); err != nil {
			return err
		}
		if err := b.copyN(size); err != nil {
			return err
		}
		crlf, err := b.line()
		if err != nil {
			return err
		}
		if string(crlf) != "\r\n" {
			return errChunk
		}
		if err := b.write(crlf); err != nil {
			return err
		}
	}
}

// chunkSize parses a chunk-size line: hex digits, optional extensions,
// CRLF; no bare CR or LF, at most 15 digits.
func chunkSize(line []byte) (int64, bool) {
	n := len(line)
	if n < 3 || line[n-2] != '\r' {
		return 0, false
	}
	line = line[:n-2]
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		for _, c := range line[i:] {
			if !fieldByte(c) {
				return 0, false
			}
		}
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var size int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		size = size<<4 | int64(c)
	}
	return size, true
}

// trailers relays the trailer section after the last chunk.
func (b *bodyRelay) trailers() error {
	if err := b.write([]byte("0\r\n")); err != nil {
		return err
	}
	for {
		line, err := b.line()
		if err != nil {
			return err
		}
		if string(line) == "\r\n" {
			return b.write(line)
		}
		if !trailerLine(line) {
			return errChunk
		}
		if err := b.write(line); err != nil {
			return err
		}
	}
}

// trailerLine reports whether line (CRLF included) is a well-formed
// header line.
func trailerLine(line []byte) bool {
	var one [1]span
	spans, err := splitHeaders(append(line[:len(line):len(line)], '\r', '\n'), 0, one[:0])
	return err == nil && len(spans) == 1
}

// untilClose relays a body that ends when the dyno closes the connection,
// chunked for the client.
func (b *bodyRelay) untilClose() error {
	br := b.l.br
	var hex [20]byte
	for {
		if br.Buffered() == 0 {
			if err := b.fill(1); err != nil {
				if errors.Is(err, io.EOF) {
					return b.write([]byte("0\r\n\r\n"))
				}
				return err
			}
		}
		p, _ := br.Peek(br.Buffered())
		if err := b.write(append(strconv.AppendInt(hex[:0], int64(len(p)), 16), '\r', '\n')); err != nil {
			return err
		}
		if err := b.write(p); err != nil {
			return err
		}
		if err := b.write([]byte("\r\n")); err != nil {
			return err
		}
		br.Discard(len(p))
		b.n += int64(len(p))
	}
}

// httpDate is now as a Date header value, formatted once a second.
func httpDate(now time.Time) []byte {
	sec := now.Unix()
	if d := dates.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &cachedDate{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dates.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dates atomic.Pointer[cachedDate]

// handoverListener is the net/http server's listener on the fast path's
// side: it yields the connections the fast path gives up.
type handoverListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoverListener(addr net.Addr) *handoverListener {
	return &handoverListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoverListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoverListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

// Addr is the real listener's: net/http gives it to requests as their
// local address (X-Forwarded-Port).
func (h *handoverListener) Addr() net.Addr { return h.addr }

// give hands c to the server, or closes it when the server is gone.
func (h *handoverListener) give(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.done:
		c.Close()
	}
}

// replayConn is a connection whose first bytes were already read: reads
// come from r, which holds them and then reads on from the connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection: net/http does so before closing
// after an error answer, so the client reads the answer rather than a
// reset.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
