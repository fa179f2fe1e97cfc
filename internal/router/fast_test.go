package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

// Plain requests take the fast path, over one kept-alive connection to
// the dyno.
func TestFastPathServesPlainRequests(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	var dials atomic.Int64
	b := newBackendWith(t, "web.1", nil, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				dials.Add(1)
			}
		}
	})
	h.app("fast", 1)
	h.dyno("fast", 1, grid.DynoUp, b.addr())
	h.await("fast", endpointsAre(1))
	before := h.r.fastAnswered.Load()
	for range 20 {
		if res, body := h.do(mustRequest(t, "GET", "http://fast.localhost/", nil)); res.StatusCode != 200 || body != "web.1:" {
			t.Fatalf("%d %q", res.StatusCode, body)
		}
	}
	if n := h.r.fastAnswered.Load() - before; n != 20 {
		t.Errorf("fast path answered %d of 20", n)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections to the dyno for 20 sequential requests", n)
	}
}

// Requests outside the fast path's subset go to net/http's path on the
// same connection, which then serves the connection's later requests.
func TestFastPathHandsOver(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	b := newBackend(t, "web.1", nil)
	h.app("mixed", 1)
	h.dyno("mixed", 1, grid.DynoUp, b.addr())
	h.await("mixed", endpointsAre(1))
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	before := h.r.fastAnswered.Load()
	steps := []struct{ raw, body string }{
		{"GET /1 HTTP/1.1\r\nHost: mixed.localhost\r\n\r\n", "web.1:"},
		{"POST /2 HTTP/1.1\r\nHost: mixed.localhost\r\nContent-Length: 4\r\n\r\nbody", "web.1:body"},
		{"GET /3 HTTP/1.1\r\nHost: mixed.localhost\r\n\r\n", "web.1:"},
	}
	for _, s := range steps {
		io.WriteString(conn, s.raw)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != s.body {
			t.Errorf("%q: %d %q", s.raw, res.StatusCode, body)
		}
	}
	if n := h.r.fastAnswered.Load() - before; n != 1 {
		t.Errorf("fast path answered %d, want only the first", n)
	}
}

// Pipelined requests are answered in order.
func TestFastPathPipelining(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	h.app("pipe", 1)
	h.dyno("pipe", 1, grid.DynoUp, b.addr())
	h.await("pipe", endpointsAre(1))
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /a HTTP/1.1\r\nHost: pipe.localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: pipe.localhost\r\n\r\nGET /c HTTP/1.1\r\nHost: pipe.localhost\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(conn)
	for _, want := range []string{"/a", "/b", "/c"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if string(body) != want {
			t.Errorf("body %q, want %q", body, want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after Connection: close (%v)", err)
	}
}

// Every way a dyno can frame its response reaches the client intact:
// length, chunks with trailers, a body ended by close, no body at all
// (HEAD, 304), and informational responses before the final one.
func TestFastPathRelaysEveryFraming(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part1 ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
		case "/early":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "final")
		}
	})
	h.app("framing", 1)
	h.dyno("framing", 1, grid.DynoUp, b.addr())
	h.await("framing", endpointsAre(1))
	get := func(method, path string) (*http.Response, string) {
		return h.do(mustRequest(t, method, "http://framing.localhost"+path, nil))
	}
	if res, body := get("GET", "/length"); res.StatusCode != 200 || body != "hello" || res.ContentLength != 5 {
		t.Errorf("length: %d %q %d", res.StatusCode, body, res.ContentLength)
	}
	if res, body := get("GET", "/chunked"); body != "part1 part2" || res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("chunked: %q trailer %v", body, res.Trailer)
	}
	if res, body := get("HEAD", "/length"); res.StatusCode != 200 || body != "" || res.ContentLength != 5 {
		t.Errorf("HEAD: %d %q %d", res.StatusCode, body, res.ContentLength)
	}
	if res, body := get("GET", "/notmodified"); res.StatusCode != 304 || body != "" {
		t.Errorf("304: %d %q", res.StatusCode, body)
	}
	if res, body := get("GET", "/early"); res.StatusCode != 200 || body != "final" {
		t.Errorf("early hints: %d %q", res.StatusCode, body)
	}
	// An HTTP/1.0 dyno without a length ends its body by closing.
	h.app("legacy", 1)
	h.dyno("legacy", 1, grid.DynoUp, cannedBackend(t, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"))
	h.await("legacy", endpointsAre(1))
	for range 2 { // the second request needs a new connection
		if res, body := h.do(mustRequest(t, "GET", "http://legacy.localhost/", nil)); res.StatusCode != 200 || body != "until close" {
			t.Errorf("close-delimited: %d %q", res.StatusCode, body)
		}
	}
	if !strings.Contains(b.last.Load().Header.Get("Via"), "grid-router") {
		t.Error("no Via on the request")
	}
}
