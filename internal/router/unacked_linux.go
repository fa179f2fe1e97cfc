package router

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setUnackedTimeout has the kernel abort the connection when data sent on
// it stays unacknowledged for d (TCP_USER_TIMEOUT; Linux clamps the
// retransmission timer to it, so the abort comes on time). A live dyno's
// kernel acknowledges a request at once, however slow the dyno is to
// answer it or to read its body (its zero-window replies count), so only
// a host gone silent trips it: a power cut, a dead link.
func setUnackedTimeout(raw syscall.RawConn, d time.Duration) {
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
}
