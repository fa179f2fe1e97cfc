package drain

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// syslogTransport writes frames to a TCP (or TLS) syslog receiver over
// one long-lived connection. Syslog has no acknowledgements: a batch
// counts as delivered once the kernel took it, so lines written just
// before the receiver died can be lost, and a batch whose write failed is
// sent again whole on the next connection (at least once, in order).
type syslogTransport struct {
	addr    string      // host:port
	tls     *tls.Config // nil for syslog://
	dialer  *net.Dialer
	token   string        // HOSTNAME of every message
	timeout time.Duration // how long one batch write may block
	now     func() time.Time

	conn    net.Conn // nil when disconnected
	scratch []byte
}

func (s *syslogTransport) tries() int { return 0 }

// open reuses the connection unless the receiver closed it, else dials.
func (s *syslogTransport) open(ctx context.Context) (bool, error) {
	if s.conn != nil && alive(s.conn) {
		return true, nil
	}
	s.close()
	c, err := s.dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return false, err
	}
	if s.tls != nil {
		tc := tls.Client(c, s.tls)
		hctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			c.Close()
			return false, fmt.Errorf("TLS handshake with %s: %w", s.addr, err)
		}
		c = tc
	}
	s.conn = c
	return true, nil
}

// alive tells a connection the receiver closed (a restart, an idle
// timeout) from an open one, without blocking, by peeking at the socket:
// receivers never send, so nothing to read means nothing is wrong, and an
// EOF means the next batch would vanish into a dead connection.
func alive(c net.Conn) bool {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	})
	switch {
	case err != nil:
		return false
	case perr == syscall.EAGAIN || perr == syscall.EWOULDBLOCK:
		return true
	case perr != nil || n == 0:
		return false
	}
	return discard(c)
}

// discard reads what the receiver sent (TLS 1.3 session tickets, or
// chatter) for at most a millisecond, and reports whether the connection
// is still open.
func discard(c net.Conn) bool {
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return isTimeout(err)
		}
	}
}

func (s *syslogTransport) write(ctx context.Context, b *batch) error {
	var buf []byte
	for _, l := range b.lines {
		buf, s.scratch = appendFrame(buf, s.scratch, l, s.token, true, s.now())
	}
	c := s.conn // the AfterFunc may run after s.conn is gone
	if err := c.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		s.close()
		return err
	}
	// Close must not wait out a blocked write's whole timeout.
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := c.Write(buf)
	stop()
	if err != nil {
		s.close()
		if ctx.Err() != nil {
			return fmt.Errorf("write to %s: the drain is closing: %w", s.addr, err)
		}
		if isTimeout(err) {
			return fmt.Errorf("write to %s blocked for %v: %w", s.addr, s.timeout, err)
		}
		return err
	}
	return nil
}

func (s *syslogTransport) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
