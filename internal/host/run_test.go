package host_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/session"
)

// client plays the API's side of an attached one-off dyno's session.
type client struct {
	nc   *nats.Conn
	a    grid.Assignment
	mu   sync.Mutex
	out  strings.Builder
	code chan int
}

// attach joins dyno a's session with a rows × cols terminal, asking
// until its host takes the request.
func (h *harness) attach(t *testing.T, a grid.Assignment, rows, cols uint16) *client {
	t.Helper()
	c := &client{nc: h.st.Conn(), a: a, code: make(chan int, 1)}
	sub, err := c.nc.Subscribe(session.Subject(a.Host, a.DynoID, "out"), func(m *nats.Msg) {
		f, err := session.FromMessage(m.Data)
		if err != nil {
			return
		}
		if code, ok := f.Code(); ok {
			c.code <- code
			return
		}
		c.mu.Lock()
		c.out.Write(f.Payload)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := c.nc.Request(session.Subject(a.Host, a.DynoID, "attach"), session.ResizeFrame(rows, cols).Message(), time.Second)
		if err == nil && string(m.Data) == "ok" {
			return c
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoResponders) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host did not take the session: %v %v", m, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *client) send(t *testing.T, f session.Frame) {
	t.Helper()
	if err := c.nc.Publish(session.Subject(c.a.Host, c.a.DynoID, "in"), f.Message()); err != nil {
		t.Fatal(err)
	}
}

func (c *client) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *client) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the session's output:\n%q", want, c.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *client) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.code:
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit status; output so far:\n%q", c.output())
		return 0
	}
}

func oneOff(attach, tty bool) func(*grid.Assignment) {
	return func(a *grid.Assignment) { a.OneOff, a.Attach, a.TTY = true, attach, tty }
}

// TestAttachedOneOff runs grid run's dyno: it starts only once its client
// attaches, in a terminal of the client's size, takes typed input and
// window size changes, and its exit status ends the session.
func TestAttachedOneOff(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	a := h.assign(t, "run.1", `stty size; tty; read x; echo "got:$x"; trap 'stty size; exit 3' WINCH; while :; do sleep 0.05; done`, oneOff(true, true))
	time.Sleep(300 * time.Millisecond) // nothing runs without a client
	if d, err := h.st.Dynos(t.Context(), appName); err != nil || len(d) > 0 && d[0].State == grid.DynoUp {
		t.Fatalf("the dyno is up before its client attached: %v %v", d, err)
	}
	c := h.attach(t, a, 33, 101)
	c.waitOutput(t, "33 101\r\n/dev/pts/0\r\n")
	c.send(t, session.Frame{Kind: session.Data, Payload: []byte("hello\r")})
	c.waitOutput(t, "got:hello\r\n")
	time.Sleep(200 * time.Millisecond) // for the trap to be set
	c.send(t, session.ResizeFrame(50, 120))
	c.waitOutput(t, "50 120\r\n")
	if code := c.exitCode(t); code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
	h.waitDyno(t, a.DynoID, "exited", 10*time.Second, func(d grid.Dyno, found bool) bool { return found && d.State == grid.DynoCrashed })
	if lines := h.lines(t); count(lines, "app[run.1]") > 0 {
		t.Errorf("an attached dyno's output went to the log:\n%s", strings.Join(lines, "\n"))
	}
}

func TestAttachedOneOffWithoutTTY(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	a := h.assign(t, "run.1", `[ -t 0 ] || echo no-tty; cat; echo err >&2`, oneOff(true, false))
	c := h.attach(t, a, 24, 80)
	c.send(t, session.Frame{Kind: session.Data, Payload: []byte("piped\n")})
	c.waitOutput(t, "no-tty\npiped\n")
	c.send(t, session.Frame{Kind: session.Hangup})
	if code := c.exitCode(t); code != 0 && code != 128+1 {
		t.Errorf("exit status %d", code)
	}
}

// TestOneOffHangup: a client that goes away ends its dyno with SIGHUP,
// as closing a terminal would.
func TestOneOffHangup(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	a := h.assign(t, "run.1", `echo ready; sleep 100`, oneOff(true, true))
	c := h.attach(t, a, 24, 80)
	c.waitOutput(t, "ready")
	c.send(t, session.Frame{Kind: session.Hangup})
	if code := c.exitCode(t); code != 128+1 {
		t.Errorf("exit status %d, want 129 (SIGHUP)", code)
	}
	h.waitLines(t, 5*time.Second, "heroku[run.1]: Stopping all processes with SIGHUP: client hung up")
}

func TestOneOffLimits(t *testing.T) {
	h := newHarness(t, func(c *host.Config) { c.RunIdle, c.AttachWait = time.Second, time.Second })
	h.start(t)
	ttl := h.assign(t, "run.1", "sleep 100", func(a *grid.Assignment) { oneOff(false, false)(a); a.TimeToLive = 1 })
	idle := h.assign(t, "run.2", "sleep 100", oneOff(true, true))
	c := h.attach(t, idle, 24, 80)
	never := h.assign(t, "run.3", "echo never", oneOff(true, true))
	for _, a := range []grid.Assignment{ttl, idle, never} {
		h.waitDyno(t, a.DynoID, "ended", 20*time.Second, func(d grid.Dyno, found bool) bool { return found && d.State == grid.DynoCrashed })
	}
	if code := c.exitCode(t); code != 128+15 {
		t.Errorf("idle dyno's exit status %d, want 143 (SIGTERM)", code)
	}
	lines := h.waitLines(t, 5*time.Second,
		"heroku[run.1]: Stopping all processes with SIGTERM: one-off dyno limit of 1s reached",
		"heroku[run.3]: Error: no client attached within 1s")
	if !strings.Contains(strings.Join(lines, "\n"), "heroku[run.2]: Stopping all processes with SIGTERM: idle for ") {
		t.Errorf("no idle stop logged:\n%s", strings.Join(lines, "\n"))
	}
	if count(lines, "app[run.3]: never") > 0 {
		t.Error("a dyno nobody attached to ran its command")
	}
}
