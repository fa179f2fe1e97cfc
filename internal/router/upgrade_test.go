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

// echoBackend is a dyno that switches to the "echo" protocol and sends
// back every byte until the other side closes.
func echoBackend(t *testing.T) *backend {
	return newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client closes
	})
}

// openTunnel asks the router to switch app's connection to "echo",
// sending early along with the request, and checks the 101.
func openTunnel(t *testing.T, h *harness, app, early string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /socket HTTP/1.1\r\nHost: "+app+".localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"+early)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 || res.Header.Get("Upgrade") != "echo" || res.Header.Get("Via") != "1.1 grid-router" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	return conn, br
}

// echo sends msg through the tunnel and reads it back.
func echo(t *testing.T, conn net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	io.WriteString(conn, msg)
	expect(t, br, msg)
}

func expect(t *testing.T, br *bufio.Reader, msg string) {
	t.Helper()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
		t.Fatalf("read %q %v, want %q", got, err, msg)
	}
}

// awaitClosed waits for the router to close the tunnel's client side.
func awaitClosed(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d %v, want the router to close the tunnel", n, err)
	}
}

func TestUpgradePassthrough(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("ws", 1)
	h.dyno("ws", 1, grid.DynoUp, echoBackend(t).addr())
	h.await("ws", endpointsAre(1))
	logs := h.tailRouter("ws")

	// "early" is sent before the 101 arrives: it must not be lost.
	conn, br := openTunnel(t, h, "ws", "early.")
	expect(t, br, "early.")
	echo(t, conn, br, "ping.")
	if line := nextLine(t, logs); !strings.Contains(line, "status=101") {
		t.Errorf("log %s", line)
	}
}

// Heroku's rolling window holds for tunnels: one on which bytes keep
// moving lives on past it, one on which nothing moves either way for
// RollingTimeout is closed, and says so in an H15 line.
func TestQuietTunnelsAreCut(t *testing.T) {
	t.Parallel()
	const window = time.Second
	h := startRouter(t, func(c *Config) { c.RollingTimeout = window })
	h.app("ws", 1)
	h.dyno("ws", 1, grid.DynoUp, echoBackend(t).addr())
	h.await("ws", endpointsAre(1))
	logs := h.tailRouter("ws")

	conn, br := openTunnel(t, h, "ws", "")
	if line := nextLine(t, logs); !strings.Contains(line, "status=101") {
		t.Errorf("log %s", line)
	}
	for end := time.Now().Add(3 * window); time.Now().Before(end); {
		echo(t, conn, br, "ping.") // keeps it open
		time.Sleep(window / 10)
	}
	awaitClosed(t, conn, br)
	if line := nextLine(t, logs); !strings.HasPrefix(line, `at=error code=H15 desc="Idle connection" method=GET path="/socket"`) {
		t.Errorf("log %s", line)
	}
}

// A tunnel to a dyno whose host the manager holds lost is closed then:
// the machine may be dead and close nothing, and the client should
// reconnect to the dyno's replacement.
func TestLostHostsTunnelsClose(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("ws", 1)
	h.dynoOn("h2", "ws", 1, grid.DynoUp, echoBackend(t).addr())
	h.await("ws", endpointsAre(1))
	conn, br := openTunnel(t, h, "ws", "")
	echo(t, conn, br, "ping.")

	if _, err := h.st.UpdateHostControl(bg, "h2", func(c *grid.HostControl) error { c.Lost = true; return nil }); err != nil {
		t.Fatal(err)
	}
	awaitClosed(t, conn, br)
}
