package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/session"
)

var runFlags = []flag{
	{name: "size", short: "s", value: "SIZE", help: "dyno size (default standard-1x)"},
	{name: "env", short: "e", value: "KEY=VALUE;...", help: "extra environment, ';'-separated"},
}

var runCmd = &command{
	name: "run",
	args: "COMMAND...",
	summary: "run a command in a one-off dyno of the current release, attached to this terminal " +
		"(flags go before the command)",
	flags: append([]flag{
		{name: "exit-code", short: "x", help: "exit with the dyno's exit status"},
		{name: "no-tty", help: "no terminal in the dyno, even when this one is a terminal"},
	}, runFlags...),
	app:          true,
	leadingFlags: true,
	run:          runRun,
}

var runDetachedCmd = &command{
	name:         "run:detached",
	args:         "COMMAND...",
	summary:      "run a command in a one-off dyno, its output going to the app's logs",
	flags:        runFlags,
	app:          true,
	leadingFlags: true,
	run:          runRunDetached,
}

// dynoRequest is POST /apps/{app}/dynos.
type dynoRequest struct {
	Command    string            `json:"command"`
	Attach     bool              `json:"attach"`
	ForceNoTTY bool              `json:"force_no_tty,omitempty"`
	Size       string            `json:"size,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
}

func (c *call) dynoRequest(attach bool) (dynoRequest, error) {
	if len(c.args) == 0 {
		return dynoRequest{}, c.usageErr("no command to run")
	}
	q := dynoRequest{Command: commandLine(c.args), Attach: attach, Size: c.opts["size"]}
	if e := c.opts["env"]; e != "" {
		q.Env = map[string]string{}
		for kv := range strings.SplitSeq(e, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return q, c.usageErr("--env %q: each entry must be KEY=VALUE", kv)
			}
			q.Env[k] = v
		}
	}
	return q, nil
}

// commandLine is the shell command the dyno runs (under bash -c): one
// argument as it is, so that `grid run "ls | wc -l"` pipes in the dyno;
// several quoted where the shell would split or expand them, so that
// `grid run sh -c 'echo $HOME'` reaches the dyno as typed.
func commandLine(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func runRunDetached(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	q, err := c.dynoRequest(false)
	if err != nil {
		return err
	}
	var d schema.Dyno
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "dynos"), q, &d); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stderr, "Running %s on %s%s... up, %s\n", q.Command, hexagon, name, d.Name)
	fmt.Fprintf(c.env.Stdout, "Run grid logs -a %s --dyno %s to view the output.\n", name, d.Name)
	return nil
}

// runRun starts an attached one-off dyno and joins its session: this
// terminal goes raw (the dyno's terminal does the line editing and turns
// Ctrl-C into SIGINT there), its size follows SIGWINCH, and grid exits
// when the dyno does: with its status under --exit-code, else 0.
func runRun(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	q, err := c.dynoRequest(true)
	if err != nil {
		return err
	}
	term := terminalOf(c.env.Stdin)
	q.ForceNoTTY = c.flagSet("no-tty") || term == nil
	var d schema.Dyno
	if _, err := api.call(c.ctx, "POST", c.appPath(name, "dynos"), q, &d); err != nil {
		return err
	}
	if d.AttachURL == nil {
		return fmt.Errorf("the API gave no attach URL for %s", d.Name)
	}
	fmt.Fprintf(c.env.Stderr, "Running %s on %s%s... ", q.Command, hexagon, name)
	// attach_url may be the Heroku CLI's rendezvous; grid's own session
	// is an HTTP upgrade at the dyno's attach path.
	conn, in, err := api.attach(c.ctx, api.base+c.appPath(name, "dynos", d.Name, "attach"))
	if err != nil {
		fmt.Fprintln(c.env.Stderr)
		return err
	}
	defer conn.Close()
	fmt.Fprintf(c.env.Stderr, "up, %s\n", d.Name)
	rows, cols := uint16(24), uint16(80)
	if term != nil {
		rows, cols = term.size()
		if !q.ForceNoTTY {
			restore, err := term.raw()
			if err != nil {
				return err
			}
			defer restore()
		}
	}
	code, err := joinSession(c.ctx, conn, in, c.env.Stdin, c.env.Stdout, term, rows, cols)
	if err != nil {
		return err
	}
	if c.flagSet("exit-code") && code != 0 {
		return exitStatus(code)
	}
	return nil
}

// joinSession relays this side of a session until the dyno's exit
// status arrives.
func joinSession(ctx context.Context, conn io.ReadWriteCloser, in *bufio.Reader, stdin io.Reader, stdout io.Writer, term *terminal, rows, cols uint16) (int, error) {
	var mu sync.Mutex // frames from the stdin and SIGWINCH goroutines
	send := func(f session.Frame) error {
		mu.Lock()
		defer mu.Unlock()
		return session.Write(conn, f)
	}
	if err := send(session.ResizeFrame(rows, cols)); err != nil {
		return 0, err
	}
	if term != nil {
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if send(session.ResizeFrame(term.size())) != nil {
					return
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdin.Read(buf)
			if n > 0 && send(session.Frame{Kind: session.Data, Payload: append([]byte(nil), buf[:n]...)}) != nil {
				return
			}
			if err != nil {
				_ = send(session.Frame{Kind: session.EOF}) // the dyno's stdin ends too
				return
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		f, err := session.Read(in)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("the session ended without an exit status: %w", err)
		}
		switch f.Kind {
		case session.Data:
			if _, err := stdout.Write(f.Payload); err != nil {
				return 0, err
			}
		case session.Exit:
			code, _ := f.Code()
			return code, nil
		case session.Error:
			return 0, errors.New(string(f.Payload))
		}
	}
}

// attach opens a session at an attach URL: an HTTP/1.1 upgrade to the
// session protocol, with the API key.
func (c *client) attach(ctx context.Context, attachURL string) (io.ReadWriteCloser, *bufio.Reader, error) {
	req, err := c.request(ctx, "GET", attachURL, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "grid-session")
	resp, err := c.raw.Do(req)
	if err != nil {
		return nil, nil, c.transportError(ctx, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, nil, responseError(req, resp)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, nil, errors.New("the API did not switch to the session protocol")
	}
	return rwc, bufio.NewReader(rwc), nil
}

// terminal is the local terminal grid run was started from.
type terminal struct{ fd int }

// terminalOf returns r's terminal, or nil if r is not one.
func terminalOf(r io.Reader) *terminal {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	return &terminal{fd: int(f.Fd())}
}

// size is the terminal's size, 24×80 if it cannot say.
func (t *terminal) size() (rows, cols uint16) {
	ws, err := unix.IoctlGetWinsize(t.fd, unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return 24, 80
	}
	return ws.Row, ws.Col
}

// raw puts the terminal in raw mode (as cfmakeraw does) and returns how
// to restore it.
func (t *terminal) raw() (func(), error) {
	old, err := unix.IoctlGetTermios(t.fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(t.fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("raw terminal: %w", err)
	}
	return func() { _ = unix.IoctlSetTermios(t.fd, unix.TCSETS, old) }, nil
}
