package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// Polling intervals of WaitListening: the first check is immediate, then
// the wait grows from firstPoll by half each time up to maxPoll, so a fast
// boot is seen within milliseconds and a slow one costs ~40 reads a second.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 25 * time.Millisecond
)

// tcpListen is the socket state LISTEN in /proc/net/tcp.
const tcpListen = "0A"

// WaitListening returns nil once something in the sandbox listens on TCP
// port, or an error if the sandbox exits first or ctx ends.
//
// It reads the sandbox's own socket tables (/proc/<pid>/net/tcp and tcp6
// of its init, which show the sandbox's network namespace); it never
// connects, so the app sees no probe connection.
func (s *Sandbox) WaitListening(ctx context.Context, port int) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("sandbox %q: port %d: %w", s.spec.ID, port, grid.ErrInvalid)
	}
	wait := firstPoll
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("sandbox %q: exited with code %d before listening on port %d: %w", s.spec.ID, s.code, port, ErrExited)
		case <-ctx.Done():
			return fmt.Errorf("sandbox %q: waiting for port %d: %w", s.spec.ID, port, ctx.Err())
		case <-timer.C:
		}
		if s.listening(port) && !s.exited() { // exited: the pid may be someone else's now
			return nil
		}
		timer.Reset(wait)
		wait = min(wait*3/2, maxPoll)
	}
}

// listening reports whether the sandbox has a TCP socket listening on port.
func (s *Sandbox) listening(port int) bool {
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", s.initPid, table))
		if err == nil && hasListener(b, port) {
			return true
		}
	}
	return false
}

// hasListener scans a /proc/net/tcp{,6} table for a LISTEN socket on port.
// Lines look like
//
//	sl  local_address rem_address   st ...
//	 0: 00000000:1F90 00000000:0000 0A ...
func hasListener(table []byte, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // header
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 4 || string(f[3]) != tcpListen {
			continue
		}
		local := f[1]
		if i := bytes.LastIndexByte(local, ':'); i >= 0 && string(local[i:]) == want {
			return true
		}
	}
	return false
}
