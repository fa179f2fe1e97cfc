package router

import (
	"io"
	"net/http"
	"strings"
)

// upgrade completes a protocol switch (WebSocket and the like): the
// dyno's 101 goes to the client, then bytes flow both ways untouched until
// either side closes. The log line is written once the switch is made.
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

	done := make(chan struct{}, 2)
	go func() {
		io.Copy(backend, brw.Reader) // bytes the client sent early are buffered in brw
		done <- struct{}{}
	}()
	go func() {
		io.Copy(conn, backend)
		done <- struct{}{}
	}()
	<-done // either side closing ends both (deferred closes)
}
