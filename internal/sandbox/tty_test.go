package sandbox

import (
	"io"
	"strings"
	"testing"
	"time"
)

// ttySandbox starts sh -c script with a 24x80 terminal and returns the
// sandbox, the writer typing into it and its output.
func ttySandbox(t *testing.T, id, script string) (*Sandbox, io.Writer, *syncBuffer) {
	t.Helper()
	m := newManager(t)
	sp, out, _ := spec(id, "sh", "-c", script)
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	sp.Stdin, sp.TTY = r, &WindowSize{Rows: 24, Cols: 80}
	return start(t, m, sp), w, out
}

// TestTTYIsAControllingTerminal checks what an interactive one-off dyno
// relies on: a terminal as stdin, stdout and stderr, of the size given,
// echoing what is typed, with line editing by the kernel.
func TestTTYIsAControllingTerminal(t *testing.T) {
	t.Parallel()
	s, in, out := ttySandbox(t, "tty", `tty; stty size; echo err >&2; read x; echo "got:$x"; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty`)
	out.waitFor(t, "24 80", 10*time.Second)
	if _, err := io.WriteString(in, "helo\x7flo\n"); err != nil { // \x7f: backspace, erasing an o
		t.Fatal(err)
	}
	if code := waitExit(t, s, 10*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	got := out.String()
	for _, want := range []string{"/dev/pts/0\r\n", "24 80\r\n", "err\r\n", "got:hello\r\n", "all-tty\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
}

func TestTTYResizeSendsSIGWINCH(t *testing.T) {
	t.Parallel()
	s, _, out := ttySandbox(t, "tty-resize", `trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done`)
	out.waitFor(t, "ready", 10*time.Second)
	if err := s.Resize(WindowSize{Rows: 40, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "40 132", 10*time.Second)
}

// TestTTYCtrlCInterrupts types Ctrl-C: the terminal turns it into SIGINT
// for the foreground job, which dies of it (exit 130), as in a local
// shell. The job says ready once it waits (a shell between commands
// may catch the SIGINT and go on).
func TestTTYCtrlCInterrupts(t *testing.T) {
	t.Parallel()
	s, in, out := ttySandbox(t, "tty-intr", `exec python3 -c 'import time; print("ready", flush=True); time.sleep(100); print("not-interrupted")'`)
	out.waitFor(t, "ready", 10*time.Second)
	if _, err := io.WriteString(in, "\x03"); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, s, 10*time.Second); code != 130 {
		t.Errorf("exit %d, want 130 (SIGINT)", code)
	}
	if strings.Contains(out.String(), "not-interrupted") {
		t.Error("the command ran on after Ctrl-C")
	}
}

func TestResizeWithoutTTY(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("no-tty", "sleep", "100")
	s := start(t, m, sp)
	if err := s.Resize(WindowSize{Rows: 1, Cols: 1}); err == nil {
		t.Error("Resize of a sandbox without a terminal succeeded")
	}
}
