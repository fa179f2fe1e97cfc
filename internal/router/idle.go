package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Heroku's rolling 55 s window (Config.RollingTimeout): once a response
// has started, the dyno must send a byte at least that often (else H15
// "Idle connection"), and while the router reads a request body, so must
// the client (else H28 "Client Connection Idle"). Long polls and streams
// work as long as something flows.

// errDynoIdle is the cause given to an attempt's context when its
// response went idle.
var errDynoIdle = errors.New("router: no response byte from the dyno within the rolling timeout")

// idleWatch cancels an attempt whose response body goes quiet. Its clock
// runs only while the router waits for the dyno (inside a body read), not
// while it writes to the client: a slow client is not the dyno's fault.
type idleWatch struct {
	d       time.Duration
	t       *time.Timer
	expired atomic.Bool
}

func watchIdle(d time.Duration, cancel context.CancelCauseFunc) *idleWatch {
	w := &idleWatch{d: d}
	w.t = time.AfterFunc(time.Hour, func() {
		w.expired.Store(true)
		cancel(errDynoIdle)
	})
	w.t.Stop()
	return w
}

func (w *idleWatch) fired() bool { return w != nil && w.expired.Load() }

func (w *idleWatch) stop() {
	if w != nil {
		w.t.Stop()
	}
}

// idleBody is a response body whose reads run under its idleWatch.
type idleBody struct {
	r io.Reader
	w *idleWatch
}

func (b idleBody) Read(p []byte) (int, error) {
	b.w.t.Reset(b.w.d)
	n, err := b.r.Read(p)
	b.w.t.Stop()
	return n, err
}

// idleClient is a client's request body that must not go quiet: before
// each read it moves the connection's read deadline RollingTimeout ahead,
// and clears it at the end of the body, so the deadline never outlives
// the upload (net/http's server would take an expired one for a client
// gone). Where the connection takes no deadlines, it reads on without.
type idleClient struct {
	src     io.Reader
	rc      *http.ResponseController
	d       time.Duration
	expired atomic.Bool
	eof     atomic.Bool // the client's body has been read to its end
}

func (c *idleClient) Read(p []byte) (int, error) {
	armed := c.rc.SetReadDeadline(time.Now().Add(c.d)) == nil
	n, err := c.src.Read(p)
	if err == io.EOF {
		c.eof.Store(true)
	}
	switch {
	case !armed:
	case err == io.EOF:
		c.rc.SetReadDeadline(time.Time{})
	case err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err)):
		c.expired.Store(true)
	}
	return n, err
}

func (c *idleClient) fired() bool { return c != nil && c.expired.Load() }

// sending reports whether the client is still sending its body.
func (c *idleClient) sending() bool { return c != nil && !c.eof.Load() }
