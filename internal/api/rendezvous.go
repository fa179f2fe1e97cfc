package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/session"
)

// Heroku's rendezvous, which the Heroku CLI's `run` speaks: the attach_url
// of an attached one-off dyno is rendezvous://HOST:PORT/r/<token>, where
// HOST:PORT is the API's TLS port. The CLI connects with TLS, writes
// "r/<token>\r\n", discards the first chunk it receives (our
// "rendezvous\r\n"), then the connection carries the dyno's terminal
// bytes both ways; the server ends it when the dyno exits. The token is
// a capability (kind "rendezvous"), so the connection needs no API key.

// RendezvousPrefix begins the first line of a rendezvous connection; no
// HTTP request line does, which is how one TLS port serves both.
const RendezvousPrefix = "r/"

// rendezvousTTL bounds how long after its dyno's creation a rendezvous
// token may be used.
const rendezvousTTL = 10 * time.Minute

type rendezvousClaims struct {
	App     string `json:"app"`
	DynoID  string `json:"dyno"`
	Rows    uint16 `json:"rows"`
	Cols    uint16 `json:"cols"`
	Expires int64  `json:"exp"`
}

// rendezvousURL is the attach_url of one-off dyno as for the Heroku CLI,
// or "" when the grid has no TLS port for it.
func (s *server) rendezvousURL(as grid.Assignment, env map[string]string) string {
	if s.rendezvousBase == "" {
		return ""
	}
	c := rendezvousClaims{App: as.App, DynoID: as.DynoID, Rows: 24, Cols: 80, Expires: s.now().Add(rendezvousTTL).Unix()}
	if n, err := strconv.ParseUint(env["LINES"], 10, 16); err == nil && n > 0 {
		c.Rows = uint16(n)
	}
	if n, err := strconv.ParseUint(env["COLUMNS"], 10, 16); err == nil && n > 0 {
		c.Cols = uint16(n)
	}
	return s.rendezvousBase + "/" + RendezvousPrefix + s.sign("rendezvous", c)
}

// ServeRendezvous runs one rendezvous connection, whose first line (read
// from in, which buffers conn) begins with RendezvousPrefix, and closes
// it.
func (s *Server) ServeRendezvous(ctx context.Context, conn net.Conn, in *bufio.Reader) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := in.ReadString('\n')
	_ = conn.SetReadDeadline(time.Time{})
	var c rendezvousClaims
	token := strings.TrimPrefix(strings.TrimSpace(line), RendezvousPrefix)
	if err != nil || !s.s.open("rendezvous", token, &c) || s.s.now().Unix() > c.Expires {
		io.WriteString(conn, "rendezvous\r\nError: this attach URL is not valid (or has expired).\r\n")
		return
	}
	as, err := s.s.oneOff(ctx, c.App, c.DynoID)
	if err != nil {
		io.WriteString(conn, "rendezvous\r\nError: "+err.Error()+"\r\n")
		return
	}
	// The CLI drops the first chunk it reads: send it on its own.
	if _, err := io.WriteString(conn, "rendezvous\r\n"); err != nil {
		return
	}
	client := &rawClient{conn: conn, in: in, tty: as.TTY, readEnd: make(chan struct{})}
	if err := s.s.relay(ctx, as, session.ResizeFrame(c.Rows, c.Cols), client); err != nil {
		s.s.logger.Info("one-off session ended", "app", as.App, "dyno", as.Name, "err", err)
		client.send(session.Frame{Kind: session.Error, Payload: []byte(err.Error())})
	}
	client.close()
}

// rawClient is a rendezvous client: bytes, no frames. Its input's 0x04
// (EOT, what the CLI sends when its piped stdin ends) is end of input for
// a dyno without a terminal; a terminal's own line discipline takes it.
type rawClient struct {
	conn    net.Conn
	in      *bufio.Reader
	tty     bool
	mu      sync.Mutex
	done    bool
	reading atomic.Bool   // next has been called: the relay reads in
	readEnd chan struct{} // closed when next has met the end of input
	endOnce sync.Once
	pending []session.Frame
}

func (c *rawClient) send(f session.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return net.ErrClosed
	}
	switch f.Kind {
	case session.Data:
		_, err := c.conn.Write(f.Payload)
		return err
	case session.Error:
		_, err := io.WriteString(c.conn, "\r\nError: "+string(f.Payload)+"\r\n")
		return err
	}
	return nil // the exit status: the CLI reads it from the output (-x)
}

func (c *rawClient) next() (session.Frame, error) {
	c.reading.Store(true)
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f, nil
	}
	buf := make([]byte, 32<<10)
	n, err := c.in.Read(buf)
	if n == 0 {
		c.endOnce.Do(func() { close(c.readEnd) })
		return session.Frame{}, cmpErr(err, io.EOF)
	}
	data := buf[:n]
	if !c.tty {
		if i := bytes.IndexByte(data, 0x04); i >= 0 {
			c.pending = append(c.pending, session.Frame{Kind: session.EOF})
			data = data[:i]
		}
	}
	return session.Frame{Kind: session.Data, Payload: data}, nil
}

// close ends the connection as the CLI wants it: TLS close_notify, then
// a moment for its last input to arrive (an abrupt close shows as
// ECONNRESET), then the socket.
func (c *rawClient) close() {
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	if tc, ok := c.conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
	if !c.reading.Load() {
		_, _ = io.Copy(io.Discard, c.in)
		return
	}
	<-c.readEnd // the relay's reader meets the client's close, or the deadline
}

func cmpErr(err, def error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return def
	}
	return err
}
