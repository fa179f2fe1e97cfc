package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// A response that stops flowing for RollingTimeout is cut off (H15): the
// client's connection is closed, so the truncated body is not taken for
// a whole one; the dyno counts a hang.
func TestIdleResponseIsH15(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.RollingTimeout = 200 * time.Millisecond })
	stalls := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial") // a stream: no length, flushed as it comes
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // the router gives up on it
	})
	h.app("stalls", 1)
	h.dyno("stalls", 1, grid.DynoUp, stalls.addr())
	h.await("stalls", endpointsAre(1))
	logs := h.tailRouter("stalls")
	res, err := h.client.Get("http://stalls.localhost/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil || string(body) != "partial" {
		t.Errorf("read %q, %v; want the partial body and an error", body, err)
	}
	line := nextLine(t, logs)
	if !strings.HasPrefix(line, `at=error code=H15 desc="Idle connection"`) || !strings.Contains(line, "dyno=web.1") || !strings.Contains(line, "status=503 bytes=7") {
		t.Errorf("log line %s", line)
	}
	if n := h.endpoint("stalls", "web.1").hang.strikes.Load(); n != 1 {
		t.Errorf("%d hangs counted", n)
	}
}

// A stream that sends a byte now and then, more often than the rolling
// timeout, is not cut off however long it lasts.
func TestTrickleIsNotIdle(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.RollingTimeout = 300 * time.Millisecond })
	trickle := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := 0; i < 10; i++ {
			io.WriteString(w, ".")
			rc.Flush()
			time.Sleep(50 * time.Millisecond) // the pace under test: 0.5 s in all, above the timeout
		}
	})
	h.app("trickle", 1)
	h.dyno("trickle", 1, grid.DynoUp, trickle.addr())
	h.await("trickle", endpointsAre(1))
	if res, body := h.get("http://trickle.localhost/"); res.StatusCode != 200 || body != ".........." {
		t.Errorf("%d %q", res.StatusCode, body)
	}
}

// H18: the dyno closes its connection after part of its response: in the
// body (the client's connection is aborted), or in the headers (503 page).
// Also when it hangs up while the client's body is still going out.
func TestInterruptedResponseIsH18(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	cut := func(raw string) *backend {
		return newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			brw.WriteString(raw)
			brw.Flush()
			conn.Close()
		})
	}
	midBody := cut("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
	midHeaders := cut("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
	hangsUp := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		r.Body.Read(make([]byte, 10))
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	for app, b := range map[string]*backend{"midbody": midBody, "midheaders": midHeaders, "hangsup": hangsUp} {
		h.app(app, 1)
		h.dyno(app, 1, grid.DynoUp, b.addr())
		h.await(app, endpointsAre(1))
	}
	const want = `sock=backend at=error code=H18 desc="Server Request Interrupted"`

	t.Run("mid-body", func(t *testing.T) {
		logs := h.tailRouter("midbody")
		res, err := h.client.Get("http://midbody.localhost/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Errorf("truncated body %q read without error", body)
		}
		if line := nextLine(t, logs); !strings.HasPrefix(line, want) || !strings.Contains(line, "status=503 bytes=7") {
			t.Errorf("log line %s", line)
		}
	})
	t.Run("mid-headers", func(t *testing.T) {
		logs := h.tailRouter("midheaders")
		res, body := h.get("http://midheaders.localhost/")
		if res.StatusCode != 503 || !strings.Contains(body, "Application error") {
			t.Errorf("%d %q", res.StatusCode, body)
		}
		if line := nextLine(t, logs); !strings.HasPrefix(line, want) {
			t.Errorf("log line %s", line)
		}
	})
	t.Run("during upload", func(t *testing.T) {
		logs := h.tailRouter("hangsup")
		// The client keeps sending, as an upload does; the dyno hangs up
		// after 10 bytes.
		pr, pw := io.Pipe()
		go func() {
			chunk := []byte(strings.Repeat("x", 1<<10))
			for {
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
		}()
		defer pr.Close()
		req := mustRequest(t, "POST", "http://hangsup.localhost/upload", pr)
		res, body := h.do(req)
		if res.StatusCode != 503 || !strings.Contains(body, "Application error") {
			t.Errorf("%d %q", res.StatusCode, body)
		}
		if line := nextLine(t, logs); !strings.HasPrefix(line, want) {
			t.Errorf("log line %s", line)
		}
	})
}

// A client that sends part of its body and then nothing for
// RollingTimeout gets H28: the router closes its connection.
func TestIdleClientIsH28(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.RollingTimeout = 200 * time.Millisecond })
	b := newBackend(t, "web.1", nil)
	h.app("quiet", 1)
	h.dyno("quiet", 1, grid.DynoUp, b.addr())
	h.await("quiet", endpointsAre(1))
	logs := h.tailRouter("quiet")
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /form HTTP/1.1\r\nHost: quiet.localhost\r\nContent-Length: 10\r\n\r\nabc")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(bufio.NewReader(c))
	if err != nil || len(rest) != 0 {
		t.Errorf("read %q, %v; want the connection closed without an answer", rest, err)
	}
	line := nextLine(t, logs)
	if !strings.HasPrefix(line, `at=error code=H28 desc="Client Connection Idle"`) || !strings.Contains(line, "status=499") {
		t.Errorf("log line %s", line)
	}
}

// The rolling timeout watches bytes in flight, not the dyno's thinking
// time: a request whose body is all sent, answered after longer than the
// timeout, is served (that is H12's business, with its own timeout).
func TestSlowAnswerAfterUploadIsServed(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.RollingTimeout = 100 * time.Millisecond })
	thinker := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(400 * time.Millisecond) // the thinking time under test, not synchronisation
		w.Write(body)
	})
	h.app("thinker", 1)
	h.dyno("thinker", 1, grid.DynoUp, thinker.addr())
	h.await("thinker", endpointsAre(1))
	for _, size := range []int{10, 100 << 10} { // sized and beyond the replay buffer
		for _, chunked := range []bool{false, true} {
			payload := strings.Repeat("p", size)
			var src io.Reader = strings.NewReader(payload)
			if chunked {
				src = io.MultiReader(src) // no length known: sent chunked
			}
			res, body := h.do(mustRequest(t, "POST", "http://thinker.localhost/", src))
			if res.StatusCode != 200 || body != payload {
				t.Errorf("%d bytes, chunked %v: %d, %d bytes back", size, chunked, res.StatusCode, len(body))
			}
		}
	}
}
