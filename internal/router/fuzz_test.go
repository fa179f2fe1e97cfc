package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
)

// FuzzRouterRequest sends arbitrary bytes as a request over a real
// connection to a router with a live backend that records what reached
// it. The router must not fault, must answer with a well-formed HTTP
// response or close the connection, promptly, and must never forward
// more requests than it handled: every request the dyno sees carries a
// request ID that the router logged for as many requests (one log line
// per request handled). The seeds, which include the smuggling corpus,
// run in every go test.
func FuzzRouterRequest(f *testing.F) {
	var faults atomic.Int64
	h := startRouter(f, func(c *Config) {
		c.Logger = slog.New(faultCounter{&faults})
		c.RequestTimeout = 2 * time.Second
	})
	b := newRawBackend(f)
	h.app("fuzz", 1)
	h.dyno("fuzz", 1, grid.DynoUp, b.addr())
	h.await("fuzz", endpointsAre(1))
	logged := countRequestIDs(f, h.tailRouter("fuzz"))
	forwarded := map[string]int{} // request ID → requests the dyno saw with it
	for _, c := range smuggleCorpus() {
		f.Add([]byte(strings.ReplaceAll(c.raw, "HOST", "fuzz.localhost")))
	}
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: fuzz.localhost\r\n\r\n",
		"GET /a?b=c HTTP/1.0\r\nHost: FUZZ.localhost:80\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: fuzz.localhost\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: fuzz.localhost\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: fuzz.localhost\r\nContent-Length: 50\r\n\r\nshort",
		"POST /c HTTP/1.1\r\nHost: fuzz.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: fuzz.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST / HTTP/1.1\r\nHost: fuzz.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"PUT / HTTP/1.1\r\nHost: fuzz.localhost\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"GET /ws HTTP/1.1\r\nHost: fuzz.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: fuzz.localhost\r\nConnection: X-A, close\r\nX-A: 1\r\nTE: trailers\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: fuzz.localhost\r\n\r\nGET /2 HTTP/1.1\r\nHost: fuzz.localhost\r\n\r\n",
		"GET http://fuzz.localhost/abs HTTP/1.1\r\nHost: other\r\n\r\n",
		"CONNECT fuzz.localhost:443 HTTP/1.1\r\nHost: fuzz.localhost:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: fuzz.localhost\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: fuzz.localhost\r\nHost: other.localhost\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: fuzz.localhost\r\nX-Request-Id: " + strings.Repeat("a", 300) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: fuzz.localhost\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: fuzz.localhost\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		before := faults.Load()
		data, err := exchangeRaw(h.addr, raw)
		if err != nil {
			t.Fatalf("request %q: %v", raw, err)
		}
		if faults.Load() != before {
			t.Fatalf("router fault on %q", raw)
		}
		for _, r := range b.requests() {
			id := r.Header.Get("X-Request-Id")
			forwarded[id]++
			if !logged.await(id, forwarded[id], 5*time.Second) {
				t.Fatalf("the dyno saw %d requests with ID %q (last %s %q), the router handled %d; input %q",
					forwarded[id], id, r.Method, r.URI, logged.get(id), raw)
			}
		}
		if len(data) == 0 {
			return // closed without a response: allowed
		}
		res, err := readResponse(data)
		if err != nil {
			t.Fatalf("request %q: malformed response %q: %v", raw, data, err)
		}
		if res.StatusCode < 100 || res.StatusCode > 599 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
}

// exchangeRaw writes raw, half-closes, and reads until the router closes.
func exchangeRaw(addr string, raw []byte) ([]byte, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(raw) // the router may close early; what it said is checked below
	conn.(*net.TCPConn).CloseWrite()
	data, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return data, errors.New("no response or close within 10s")
	}
	return data, nil // a reset after a complete answer is fine
}

type response struct{ StatusCode int }

// readResponse parses the first response's head.
func readResponse(data []byte) (response, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	line, err := br.ReadString('\n')
	if err != nil {
		return response{}, err
	}
	var proto string
	var code int
	if _, err := fmt.Sscan(line, &proto, &code); err != nil || !strings.HasPrefix(proto, "HTTP/1.") {
		return response{}, errors.New("bad status line")
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return response{}, errors.New("unterminated header")
		}
		if l == "\r\n" {
			return response{StatusCode: code}, nil
		}
		if !strings.Contains(l, ":") {
			return response{}, errors.New("bad header line")
		}
	}
}

type faultCounter struct{ n *atomic.Int64 }

func (h faultCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h faultCounter) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h faultCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h faultCounter) WithGroup(string) slog.Handler      { return h }

// idCounts counts router log lines per request_id.
type idCounts struct {
	mu      sync.Mutex
	n       map[string]int
	changed chan struct{} // closed and replaced on every line
}

// countRequestIDs counts the request IDs of lines as they arrive, until
// the test ends.
func countRequestIDs(t testing.TB, lines <-chan logs.Line) *idCounts {
	c := &idCounts{n: map[string]int{}, changed: make(chan struct{})}
	go func() {
		for l := range lines {
			_, rest, ok := strings.Cut(l.Text, " request_id=")
			if !ok {
				continue
			}
			id, _, _ := strings.Cut(rest, " ")
			c.mu.Lock()
			c.n[id]++
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *idCounts) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// await reports whether id has been logged at least n times within d.
func (c *idCounts) await(id string, n int, d time.Duration) bool {
	deadline := time.After(d)
	for {
		c.mu.Lock()
		got, changed := c.n[id], c.changed
		c.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

// FuzzDynoResponse has a dyno answer with arbitrary bytes (then close).
// The router must not fault, and must give the client a well-formed
// response or close its connection.
func FuzzDynoResponse(f *testing.F) {
	var faults atomic.Int64
	h := startRouter(f, func(c *Config) {
		c.Logger = slog.New(faultCounter{&faults})
		c.RequestTimeout = 2 * time.Second
	})
	raw := make(chan string, 1)
	addr := cannedFunc(f, func() string {
		select {
		case s := <-raw:
			return s
		default: // a retry: the dyno closes without a word
			return ""
		}
	})
	h.app("dynofuzz", 1)
	h.dyno("dynofuzz", 1, grid.DynoUp, addr)
	h.await("dynofuzz", endpointsAre(1))
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\nX: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\nX: 1\n\nbare",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		before := faults.Load()
		raw <- string(resp)
		data, err := exchangeRaw(h.addr, []byte("GET / HTTP/1.1\r\nHost: dynofuzz.localhost\r\n\r\n"))
		if err != nil {
			t.Fatalf("response %q: %v", resp, err)
		}
		select {
		case <-raw: // the router never asked the dyno
		default:
		}
		if faults.Load() != before {
			t.Fatalf("router fault on %q", resp)
		}
		if len(data) == 0 {
			return
		}
		if _, err := readResponse(data); err != nil {
			t.Fatalf("dyno said %q, client got malformed %q: %v", resp, data, err)
		}
	})
}

// cannedFunc answers each connection's first request with next(), then
// closes it.
func cannedFunc(t testing.TB, next func() string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, next())
				}
			}()
		}
	}()
	return ln.Addr().String()
}
