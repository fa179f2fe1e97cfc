package router

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rawBackend is a dyno stand-in that records exactly what reached it:
// every connection's raw bytes, and each request as a strict HTTP/1.1
// parser (net/http's) framed it, with its body. It answers every complete
// request with a fixed 200 that names the request's X-Request-Id, so a
// client can match what it got with what the dyno saw.
type rawBackend struct {
	ln net.Listener
	mu sync.Mutex
	// conns holds each connection's bytes as read; reqs every request
	// whose head parsed, in arrival order.
	conns []*bytes.Buffer
	reqs  []seenRequest
	open  map[net.Conn]bool // closed at cleanup: the router pools them
	wg    sync.WaitGroup
}

// seenRequest is one request as the backend framed it.
type seenRequest struct {
	Method, URI, Host string
	Header            http.Header
	TE                []string
	CL                int64
	Body              string
	Complete          bool // the body was read to its end without error
}

func newRawBackend(t testing.TB) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, open: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for c := range b.open {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *rawBackend) addr() string { return b.ln.Addr().String() }

func (b *rawBackend) accept() {
	defer b.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() { defer conns.Done(); b.serve(c) }()
	}
}

func (b *rawBackend) serve(c net.Conn) {
	raw := new(bytes.Buffer)
	b.mu.Lock()
	b.conns = append(b.conns, raw)
	b.open[c] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.open, c)
		b.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(io.TeeReader(c, lockedWriter{&b.mu, raw}))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		// Recorded as soon as its head is in, so a request whose body
		// never completes is seen as cut off, not missed.
		b.mu.Lock()
		i := len(b.reqs)
		b.reqs = append(b.reqs, seenRequest{Method: req.Method, URI: req.RequestURI, Host: req.Host, Header: req.Header,
			TE: req.TransferEncoding, CL: req.ContentLength})
		b.mu.Unlock()
		body, err := io.ReadAll(req.Body)
		b.mu.Lock()
		if i < len(b.reqs) { // not reset meanwhile
			b.reqs[i].Body, b.reqs[i].Complete = string(body), err == nil
		}
		seen := seenRequest{Body: string(body)}
		b.mu.Unlock()
		if err != nil {
			return
		}
		id := req.Header.Get("X-Request-Id")
		_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seen-Id: "+id+
			"\r\nContent-Length: "+strconv.Itoa(len(seen.Body))+"\r\n\r\n"+seen.Body)
		if err != nil || req.Close {
			return
		}
	}
}

// requests returns the requests seen so far and forgets them.
func (b *rawBackend) requests() []seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.reqs
	b.reqs = nil
	return r
}

// awaitHead waits, up to d, until bytes that reached the backend have
// been parsed as a request head, if any reached it: the client may learn
// of a rejection before the backend has parsed what the router had
// already streamed to it.
func (b *rawBackend) awaitHead(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		done := len(b.reqs) > 0 || !slices.ContainsFunc(b.conns, func(c *bytes.Buffer) bool { return c.Len() > 0 })
		b.mu.Unlock()
		if done {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// raw returns every connection's bytes so far, concatenated.
func (b *rawBackend) raw() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s bytes.Buffer
	for _, c := range b.conns {
		s.Write(c.Bytes())
	}
	return s.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
