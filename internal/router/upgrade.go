package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// upgrade completes a protocol switch (WebSocket and the like): the
// dyno's 101 goes to the client, then bytes flow both ways untouched until
// either side closes (tunnel). The log line is written once the switch is
// made; a tunnel the router cuts for going quiet gets a second, H15 line.
func (r *Router) upgrade(x *exchange, up *upstream) {
	res := up.res
	want, got := upgradeType(x.req.Header), res.Header.Get("Upgrade")
	backend, ok := up.body.(io.ReadWriteCloser)
	if want == "" || !strings.EqualFold(want, got) || !ok {
		r.fail(x, errH17) // a 101 the client did not ask for, or to another protocol
		return
	}
	conn, brw, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		r.fail(x, errH99)
		return
	}
	r.upgraded.add(conn)
	defer r.upgraded.remove(conn)
	defer conn.Close()
	x.wrote = true

	removeHopHeaders(res.Header)
	res.Header.Set("Connection", "Upgrade")
	res.Header.Set("Upgrade", got)
	res.Header.Add("Via", via)
	res.Body = nil // res.Write sends the head only
	if err := res.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	x.rec.status = res.StatusCode
	x.rec.service = r.cfg.Now().Sub(up.start) - x.rec.connect
	r.finish(x)
	// A tunnel does not count against the dyno's concurrency limit.
	up.ep.tunnels.Add(1)
	defer up.ep.tunnels.Add(-1)
	up.queue.signal()

	if dc := up.conn.conn; dc != nil {
		dc.guard(false) // a tunnel's dyno may read late
	}
	// bytes the client sent early are buffered in brw
	t := tunnel{client: conn, early: brw.Reader, dyno: backend}
	if t.run(r.cfg.RollingTimeout, up.ep.lost) {
		x.rec.fail = errH15
		x.rec.service = r.cfg.Now().Sub(up.start) - x.rec.connect
		r.finish(x)
	}
}

// tunnel is an upgraded connection: the client's side and the dyno's.
type tunnel struct {
	client net.Conn
	early  io.Reader // reads the client's side, bytes buffered first
	dyno   io.ReadWriteCloser
	// last is when a byte last moved either way, as monotonic
	// nanoseconds since clockStart.
	last atomic.Int64
}

// run copies both ways until either side closes, and reports whether the
// router cut the tunnel for going quiet. Heroku's rolling window applies
// to tunnels too: no byte either way for idle (RollingTimeout) and both
// sides are closed, so a WebSocket whose peer vanished without a FIN does
// not hold the dyno's connection for ever; clients keep theirs open with
// pings. A tunnel to a dyno whose host is lost (lost ends) is closed at
// once: the dyno is probably gone with its machine, which closes nothing,
// and its replacement runs elsewhere; the client reconnects to that.
func (t *tunnel) run(idle time.Duration, lost context.Context) (quiet bool) {
	var cut atomic.Bool
	closeBoth := func() {
		t.client.Close()
		t.dyno.Close()
	}
	t.touch()
	var timer *time.Timer
	timer = time.AfterFunc(time.Hour, func() {
		if q := time.Since(clockStart) - time.Duration(t.last.Load()); q < idle {
			timer.Reset(idle - q)
			return
		}
		cut.Store(true)
		closeBoth()
	})
	timer.Reset(idle) // timer is set before the first expiry can read it
	defer timer.Stop()
	stop := context.AfterFunc(lost, closeBoth)
	defer stop()

	done := make(chan struct{}, 2)
	go func() {
		io.Copy(t.dyno, tunnelSide{t.early, t})
		done <- struct{}{}
	}()
	go func() {
		io.Copy(t.client, tunnelSide{t.dyno, t})
		done <- struct{}{}
	}()
	<-done // either side closing ends both (deferred closes)
	return cut.Load()
}

func (t *tunnel) touch() { t.last.Store(int64(time.Since(clockStart))) }

// tunnelSide reads one side of a tunnel, noting when bytes move.
type tunnelSide struct {
	r io.Reader
	t *tunnel
}

func (s tunnelSide) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.touch()
	}
	return n, err
}
