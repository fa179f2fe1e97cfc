package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/gridtest"
)

// TestRun drives one-off dynos as a user does: grid run with a pipe and
// with a real terminal (raw mode, typing, resize, Ctrl-C, --exit-code),
// and grid run:detached into the logs.
func TestRun(t *testing.T) {
	g := gridtest.Start(t, "--boot-timeout", "10s", "--stop-grace", "5s")
	g.MustCLI("apps:create", "oneoff")
	if out, err := g.Push("oneoff", g.Repo("testdata/go-hello")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	g.MustCLI("config:set", "GREETING=hey", "-a", "oneoff")

	t.Run("exit code and environment", func(t *testing.T) {
		out, errOut, err := g.CLI("run", "-x", "-a", "oneoff", "sh", "-c", `echo "out:$GREETING:$DYNO:$PORT"; exit 7`)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Errorf("exit %v, want status 7\n%s\n%s", err, out, errOut)
		}
		if !regexp.MustCompile(`out:hey:run\.\d{4}:\d+\n`).MatchString(out) {
			t.Errorf("output %q", out)
		}
		if !regexp.MustCompile(`Running sh -c 'echo .* on ⬢ oneoff\.\.\. up, run\.\d{4}`).MatchString(errOut) {
			t.Errorf("stderr %q", errOut)
		}
		if _, _, err := g.CLI("run", "-a", "oneoff", "false"); err != nil {
			t.Errorf("without --exit-code grid run exits 0; got %v", err)
		}
	})

	t.Run("piped input reaches the dyno and ends", func(t *testing.T) {
		out, errOut, err := g.CLIInput("one\ntwo\n", "run", "-a", "oneoff", "--", "tr", "a-z", "A-Z")
		if err != nil || out != "ONE\nTWO\n" {
			t.Errorf("got %q, %v\n%s", out, err, errOut)
		}
	})

	t.Run("interactive terminal", func(t *testing.T) {
		interactive(t, g)
	})

	t.Run("detached output goes to the logs", func(t *testing.T) {
		out, errOut, err := g.CLI("run:detached", "-a", "oneoff", "echo", "detached", "says", "hi")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		m := regexp.MustCompile(`--dyno (run\.\d{4})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("output %q", out)
		}
		gridtest.WaitFor(t, 30*time.Second, "the detached dyno's line in the logs", func() error {
			logs := g.MustCLI("logs", "-a", "oneoff", "--dyno", m[1])
			if !strings.Contains(logs, "app["+m[1]+"]: detached says hi") {
				return fmt.Errorf("logs:\n%s", logs)
			}
			return nil
		})
	})

	t.Run("one-off dynos are removed once they exit", func(t *testing.T) {
		gridtest.WaitFor(t, 30*time.Second, "no run dynos left", func() error {
			if out := g.MustCLI("ps", "-a", "oneoff"); strings.Contains(out, "run.") {
				return fmt.Errorf("ps:\n%s", out)
			}
			return nil
		})
	})

	t.Run("bad requests", func(t *testing.T) {
		if _, errOut, err := g.CLI("run", "-a", "oneoff"); err == nil || !strings.Contains(errOut, "no command to run") {
			t.Errorf("no command: %v %q", err, errOut)
		}
		if _, errOut, err := g.CLI("run", "-s", "huge-9x", "-a", "oneoff", "true"); err == nil || !strings.Contains(errOut, `Unknown dyno size "huge-9x"`) {
			t.Errorf("bad size: %v %q", err, errOut)
		}
		g.MustCLI("apps:create", "empty")
		if _, errOut, err := g.CLI("run", "-a", "empty", "true"); err == nil || !strings.Contains(errOut, "push code before running") {
			t.Errorf("app without code: %v %q", err, errOut)
		}
		for _, c := range []struct{ body, want string }{
			{`{"command":"true","time_to_live":0}`, "time_to_live"},
			{`{"command":"  "}`, "command is required"},
			{`{"command":"true","type":"web"}`, `type must be \"run\"`},
			{`{"command":"true","env":{"A=B":"x"}}`, "not a valid variable name"},
			{`{"command":"true","size":"huge"}`, "Unknown dyno size"},
			{`{"command":`, "Invalid JSON"},
		} {
			code, body := g.API("POST", "/apps/oneoff/dynos", c.body)
			if code/100 != 4 || !strings.Contains(body, c.want) {
				t.Errorf("%s: %d %s", c.body, code, body)
			}
		}
		if code, body := g.API("GET", "/apps/oneoff/dynos/web.1/attach", ""); code != 400 || !strings.Contains(body, "Upgrade") {
			t.Errorf("attach without upgrade: %d %s", code, body)
		}
	})
}

// interactive runs grid run bash on a pseudo-terminal, as from a user's
// terminal emulator: the user types, resizes the window and presses
// Ctrl-C.
func interactive(t *testing.T, g *gridtest.Grid) {
	ptm, pts := openPTY(t)
	setSize(t, ptm, 30, 100)
	cmd := exec.Command(g.Exe, "run", "-x", "-a", "oneoff", "bash", "--norc", "--noprofile")
	cmd.Env = append(g.Env(), "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	var mu sync.Mutex
	var screen strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func(re string) {
		t.Helper()
		gridtest.WaitFor(t, 30*time.Second, "terminal shows "+re, func() error {
			mu.Lock()
			defer mu.Unlock()
			if !regexp.MustCompile(re).MatchString(screen.String()) {
				return fmt.Errorf("screen:\n%q", screen.String())
			}
			return nil
		})
	}
	typeIn := func(s string) {
		t.Helper()
		if _, err := ptm.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	seen(`up, run\.\d{4}`)
	typeIn("tty; stty size; echo $((6*7))\r")
	seen(`/dev/pts/0\r\n30 100\r\n42\r\n`)
	setSize(t, ptm, 40, 132) // the window grows: SIGWINCH to grid run
	time.Sleep(300 * time.Millisecond)
	typeIn("stty size\r")
	seen(`40 132\r\n`)
	typeIn("sleep 100; echo not-interrupted\r")
	time.Sleep(500 * time.Millisecond)
	typeIn("\x03") // Ctrl-C: raw here, SIGINT in the dyno
	typeIn("echo after-interrupt\r")
	seen(`after-interrupt\r\n`)
	typeIn("exit 5\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Errorf("grid run -x exited %v, want status 5", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("grid run did not exit after the shell did")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(screen.String(), "\nnot-interrupted") { // not the echo of the typed line
		t.Errorf("Ctrl-C did not interrupt the dyno's command:\n%q", screen.String())
	}
}

func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func setSize(t *testing.T, ptm *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(ptm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}
