package router

import (
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
)

// A request does not start on a connection the dyno has closed: the write
// fails with nothing written, which makes it safe to send elsewhere.
func TestDynoConnRefusesClosedConnection(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("peerClosed is Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	dyno, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newDynoConn(tcp, tcp)
	c.peekAfter = 0 // check every time, not only after a second idle

	// One exchange: a request, a response.
	if _, err := io.WriteString(c, "request 1"); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(dyno, make([]byte, len("request 1")))
	io.WriteString(dyno, "response")
	if _, err := io.ReadFull(c, make([]byte, len("response"))); err != nil {
		t.Fatal(err)
	}
	// The next request finds the dyno's end open: it goes out.
	if _, err := io.WriteString(c, "request 2"); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(dyno, make([]byte, len("request 2")))
	io.WriteString(dyno, "response")
	io.ReadFull(c, make([]byte, len("response")))

	// The dyno closes the idle connection (its FIN is queued on loopback
	// by the time Close returns); the next request must not go out.
	dyno.Close()
	before := c.written.Load()
	n, err := io.WriteString(c, "request 3")
	if n != 0 || !errors.Is(err, errDynoClosed) || c.written.Load() != before {
		t.Errorf("write on a closed connection: %d bytes, %v", n, err)
	}
	if c.read.Load() != 2*int64(len("response")) || before != int64(len("request 1request 2")) {
		t.Errorf("counted %d read, %d written", c.read.Load(), before)
	}
}
