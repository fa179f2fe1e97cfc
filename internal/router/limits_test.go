package router

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// TestOversizedRequests checks Heroku's 8 KiB line limits: the client gets
// the status that names the limit, the connection is closed, the dyno
// sees nothing, and the app's log has an H26 line.
func TestOversizedRequests(t *testing.T) {
	h := startRouter(t, nil)
	b := newRawBackend(t)
	h.app("big", 1)
	h.dyno("big", 1, grid.DynoUp, b.addr())
	h.await("big", endpointsAre(1))
	lines := h.tailRouter("big")
	long := func(n int) string { return strings.Repeat("a", n) }
	// A request line of exactly 8 KiB: "GET /aaa… HTTP/1.1".
	exact := "GET /" + long(maxRequestLine-len("GET / HTTP/1.1")) + " HTTP/1.1"
	manyHeaders := ""
	for range maxHeaderCount {
		manyHeaders += "X-N: 1\r\n"
	}
	for _, c := range []struct {
		name   string
		raw    string
		status int
		logged bool
	}{
		{"request line 8 KiB", exact + "\r\nHost: big.localhost\r\nConnection: close\r\n\r\n", 200, false},
		{"request line 8 KiB + 1", "GET /a" + exact[5:] + "\r\nHost: big.localhost\r\n\r\n", 414, true},
		{"header line 8 KiB + 1", "GET / HTTP/1.1\r\nHost: big.localhost\r\nX-Big: " + long(maxHeaderLine-len("X-Big: ")+1) + "\r\n\r\n", 431, true},
		{"cookie 8 KiB + 1", "GET / HTTP/1.1\r\nHost: big.localhost\r\nCookie: " + long(maxHeaderLine-len("Cookie: ")+1) + "\r\n\r\n", 431, true},
		{"1,001 header lines", "GET / HTTP/1.1\r\nHost: big.localhost\r\n" + manyHeaders + "\r\n", 431, true},
		{"head over MaxHeaderBytes", "GET / HTTP/1.1\r\nHost: big.localhost\r\n" + strings.Repeat("X-B: "+long(4000)+"\r\n", 10) + "\r\n", 431, false},
		{"request line 64 KiB", "GET /" + long(64<<10) + " HTTP/1.1\r\nHost: big.localhost\r\n\r\n", 431, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			resps, err := exchangeAll(h.addr, c.raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(resps) != 1 || resps[0].StatusCode != c.status {
				t.Fatalf("got %v, want one %d and a closed connection", statuses(resps), c.status)
			}
			got := b.requests()
			if c.status == 200 {
				if len(got) != 1 {
					t.Fatalf("dyno saw %d requests, want 1", len(got))
				}
				nextLine(t, lines)
				return
			}
			if len(got) > 0 {
				t.Fatalf("dyno saw %s %s", got[0].Method, clip(got[0].URI))
			}
			if c.logged {
				line := nextLine(t, lines)
				want := "at=error code=H26 desc=\"Request Error\" method=GET"
				if !strings.HasPrefix(line, want) || !strings.Contains(line, " status="+strconv.Itoa(c.status)+" ") {
					t.Fatalf("log line %q, want %q… status=%d", clip(line), want, c.status)
				}
			}
		})
	}
}

// TestSlowHeaders is the slowloris check: clients trickling header bytes
// are cut off once HeaderTimeout has passed since their request began,
// however steadily they trickle, and meanwhile other clients are served.
func TestSlowHeaders(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := startRouter(t, func(c *Config) { c.HeaderTimeout = timeout })
	b := newBackend(t, "web.1", nil)
	h.app("slow", 1)
	h.dyno("slow", 1, grid.DynoUp, b.addr())
	h.await("slow", endpointsAre(1))

	const n = 50
	done := make(chan error, n)
	for range n {
		go func() {
			done <- trickle(h.addr, "GET / HTTP/1.1\r\nHost: slow.localhost\r\nX-Slow: "+strings.Repeat("s", 1000))
		}()
	}
	if res, body := h.get("http://slow.localhost/"); res.StatusCode != 200 {
		t.Errorf("while %d clients trickle headers: %d %s", n, res.StatusCode, body)
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// trickle sends head one byte every 20 ms and returns nil once the router
// has closed the connection before the head was complete (at most with a
// 400); an error if it answered otherwise or let the whole head through.
func trickle(addr, head string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	closed := make(chan []byte, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		data, _ := io.ReadAll(c)
		closed <- data
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(head); i++ {
		select {
		case data := <-closed:
			// net/http answers 400 before it closes (or just closes, if
			// the client stopped reading).
			if len(data) > 0 && !strings.HasPrefix(string(data), "HTTP/1.1 400 ") {
				return errors.New("router answered a trickled head: " + clip(string(data)))
			}
			return nil
		case <-tick.C:
		}
		c.Write([]byte{head[i]}) // fails once closed; the reader reports it
	}
	return errors.New("router read a whole trickled head without closing the connection")
}

// TestIdleClientConnection checks that a keep-alive client connection is
// closed after IdleTimeout without a request, and kept while in use.
func TestIdleClientConnection(t *testing.T) {
	const idle = 300 * time.Millisecond
	h := startRouter(t, func(c *Config) { c.IdleTimeout = idle })
	b := newBackend(t, "web.1", nil)
	h.app("idle", 1)
	h.dyno("idle", 1, grid.DynoUp, b.addr())
	h.await("idle", endpointsAre(1))

	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for range 3 { // requests closer together than idle keep it open
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle.localhost\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Close {
			t.Fatalf("status %d, close %v", res.StatusCode, res.Close)
		}
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("idle connection: %v, want closed by the router", err)
	}
	if d := time.Since(start); d < idle/2 {
		t.Fatalf("closed after %v, before the idle timeout %v", d, idle)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestMalformedChunkedBody: a body whose chunked framing breaks midway is
// answered 400 with an H26 line, as Heroku does, never forwarded whole.
func TestMalformedChunkedBody(t *testing.T) {
	h := startRouter(t, nil)
	b := newRawBackend(t)
	h.app("chunky", 1)
	h.dyno("chunky", 1, grid.DynoUp, b.addr())
	h.await("chunky", endpointsAre(1))
	lines := h.tailRouter("chunky")
	raw := "POST /a HTTP/1.1\r\nHost: chunky.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nabc\r\n0\r\n\r\n"
	resps, err := exchangeAll(h.addr, raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 1 || resps[0].StatusCode != http.StatusBadRequest {
		t.Fatalf("got %v, want one 400 and a closed connection", statuses(resps))
	}
	for _, r := range b.requests() {
		if r.Complete {
			t.Fatalf("the dyno got a complete request: %s %s", r.Method, clip(r.URI))
		}
	}
	if line := nextLine(t, lines); !strings.HasPrefix(line, `at=error code=H26 desc="Request Error" method=POST`) || !strings.Contains(line, " status=400 ") {
		t.Fatalf("log line %q", clip(line))
	}
}
