package router

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// errDynoClosed fails a request about to start on a pooled connection the
// dyno has already closed.
var errDynoClosed = errors.New("router: dyno closed the pooled connection before the request")

// peekAfterIdle is how long a connection must have been idle before
// dynoConn checks it. Servers close idle keep-alive connections after
// seconds (gunicorn 2 s, Node 5 s, nginx 75 s), so that is when the race
// below happens; a busy connection is not worth a system call per
// request.
const peekAfterIdle = time.Second

// dynoConn is a connection to a dyno. Before a request starts on it again
// (the first write after bytes were read: the previous response) after it
// sat idle, it checks whether the dyno has closed it meanwhile: its
// keep-alive timeout, an instant before the router reuses it, when the
// Transport has not noticed yet. Then it writes nothing and fails, so the
// Transport sees a request of which nothing was written: safe to send
// again for every method (classify.go, rule 1). Without the check the
// request would go out on the closed connection, and for a POST nobody
// could tell any more whether the dyno had seen it.
//
// It also counts the bytes each way, so the classifier knows whether an
// attempt's request went out and whether any response came back.
//
// The Transport reads and writes a connection from one goroutine each,
// and never writes a new request while the previous response is being
// read; the fields only the writer uses need no lock.
type dynoConn struct {
	net.Conn
	written, read atomic.Int64
	answered      atomic.Bool  // bytes were read since the last write
	lastRead      atomic.Int64 // when, as monotonic nanoseconds since clockStart
	raw           syscall.RawConn
	peekAfter     time.Duration // the writer's: check after this long idle; raw nil: never
	closed        bool          // the writer's: result of the last peek
	peek          func(fd uintptr)
	// resendable says the request now on the connection may be sent to
	// another dyno if the connection closes before its answer: it is
	// replayable and has not been resent (classify.go). Set by the
	// attempt before the request is written.
	resendable atomic.Bool
	// set is the endpoint's list of open connections, which Close leaves.
	set *connSet
	// unacked is Config.UnackedTimeout; guarded says whether it is set
	// on the socket now (guard). Used by the writer only.
	unacked time.Duration
	guarded bool
	// silenced is called when the connection fails for its peer's
	// silence (classify.go, silent); nil in tests.
	silenced func()
}

// guardedBody is the largest request body sent under UnackedTimeout: with
// its head, it fits whole in any dyno's receive buffer (Linux: 128 KiB by
// default), so a dyno slow to read it never shuts its receive window.
const guardedBody = 32 << 10

// guard sets (on) or clears the connection's UnackedTimeout. It is set
// only while what goes out is a request that fits in the dyno's receive
// buffer: the kernel also gives up a connection whose peer keeps its
// receive window shut that long, as a live dyno does when it reads a
// large body late, or a tunnel's bytes.
func (c *dynoConn) guard(on bool) {
	if on == c.guarded || c.raw == nil || c.unacked <= 0 {
		return
	}
	c.guarded = on
	d := c.unacked
	if !on {
		d = 0 // the system's default: retransmit for some 15 minutes
	}
	setUnackedTimeout(c.raw, d)
}

// clockStart anchors dynoConn's monotonic timestamps.
var clockStart = time.Now()

func newDynoConn(c net.Conn, tcp net.Conn) *dynoConn {
	dc := &dynoConn{Conn: c, peekAfter: peekAfterIdle}
	if sc, ok := tcp.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			dc.raw = raw
			dc.peek = func(fd uintptr) { dc.closed = peerClosed(fd) } // made once: no allocation per request
		}
	}
	return dc
}

func (c *dynoConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Add(int64(n))
		c.lastRead.Store(int64(time.Since(clockStart)))
		c.answered.Store(true)
	}
	if err != nil {
		c.failed(err)
	}
	return n, err
}

func (c *dynoConn) failed(err error) {
	if c.silenced != nil && silent(err) {
		c.silenced()
	}
}

// Close closes the connection and takes it off its endpoint's list.
func (c *dynoConn) Close() error {
	if c.set != nil {
		c.set.remove(c)
	}
	return c.Conn.Close()
}

// waiting reports whether a request went out on the connection and no
// byte of its answer has come back yet.
func (c *dynoConn) waiting() bool { return !c.answered.Load() && c.written.Load() > 0 }

func (c *dynoConn) Write(p []byte) (int, error) {
	if c.answered.Load() {
		c.answered.Store(false)
		if c.raw != nil && time.Since(clockStart)-time.Duration(c.lastRead.Load()) >= c.peekAfter {
			c.closed = false
			if c.raw.Control(c.peek) == nil && c.closed {
				return 0, errDynoClosed
			}
		}
	}
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	if err != nil {
		c.failed(err)
	}
	return n, err
}

// connUse is what one attempt did with its connection (the last one, when
// the Transport retried on another).
type connUse struct {
	conn          *dynoConn // nil: none was made
	written, read int64     // its counters when the attempt got it
}

// got records the connection an attempt got (httptrace's GotConn, which
// runs in the RoundTrip goroutine for HTTP/1), whether the request to go
// out on it is resendable (dynoConn.resendable), and whether it goes out
// under UnackedTimeout (dynoConn.guard).
func (u *connUse) got(c net.Conn, resendable, guard bool) {
	if dc, ok := c.(*dynoConn); ok {
		*u = connUse{conn: dc, written: dc.written.Load(), read: dc.read.Load()}
		dc.resendable.Store(resendable)
		dc.guard(guard)
	}
}

func (u *connUse) made() bool     { return u.conn != nil }
func (u *connUse) sent() bool     { return u.conn != nil && u.conn.written.Load() > u.written }
func (u *connUse) answered() bool { return u.conn != nil && u.conn.read.Load() > u.read }
