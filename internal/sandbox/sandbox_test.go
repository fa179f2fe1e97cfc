package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

func TestRunsAsUIDWithExitCode(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("uid", "sh", "-c", "id -u; id -g; id -un; echo $HOME; exit 7")
	code, out, errOut := run(t, m, sp)
	if code != 7 {
		t.Errorf("exit code = %d, want 7 (stderr %q)", code, errOut)
	}
	if want := "10123\n10123\nu10123\n/app\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

func TestPrivilegesDropped(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("privs", "sh", "-c", `grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status; hostname; tr '\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'`)
	sp.Hostname = "dyno-host"
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, cap := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if !strings.Contains(out, cap+":\t0000000000000000\n") {
			t.Errorf("%s not empty:\n%s", cap, out)
		}
	}
	if !strings.Contains(out, "NoNewPrivs:\t1\n") {
		t.Errorf("no_new_privs not set:\n%s", out)
	}
	if !strings.Contains(out, "\ndyno-host\n") {
		t.Errorf("hostname not set:\n%s", out)
	}
	// Own PID namespace: pid 1 is the sandbox init, and /proc shows only
	// init, sh, ls and (if it started already) grep.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if init := lines[len(lines)-2]; !strings.HasPrefix(init, "/.grid/init -- sh -c ") {
		t.Errorf("pid 1 is %q, want the sandbox init", init)
	}
	if n := lines[len(lines)-1]; n != "3" && n != "4" {
		t.Errorf("sandbox sees %s processes in /proc, want 3 or 4 (own PID namespace)", n)
	}
}

func TestEnvAndDefaultPath(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("env", "sh", "-c", `echo "$FOO|$PATH"`)
	sp.Env = []string{"FOO=bar baz"} // no PATH: the default one is added
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "bar baz|/usr/local/bin:/usr/bin:/bin\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

func TestCommandNotFoundExits127(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("notfound", "no-such-command", "x")
	code, _, errOut := run(t, m, sp)
	if code != 127 || !strings.Contains(errOut, "no-such-command") {
		t.Errorf("exit %d, stderr %q; want 127 and a message naming the command", code, errOut)
	}
}

func TestStdin(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("stdin", "sh", "-c", "tr a-z A-Z")
	sp.Stdin = strings.NewReader("hello\n")
	code, out, errOut := run(t, m, sp)
	if code != 0 || out != "HELLO\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and HELLO", code, out, errOut)
	}
}

func TestSignalReachesChild(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	// The main shell survives SIGHUP (it traps it) and waits for its
	// child, which exits from its own trap: the signal must reach both.
	sp, out, _ := spec("signal", "sh", "-c", `trap 'echo main-got-hup' HUP
sh -c 'trap "echo child-got-hup; exit 0" HUP; echo ready; while :; do sleep 0.05; done' &
child=$!
while kill -0 $child 2>/dev/null; do wait $child; done
echo main-done`)
	s := start(t, m, sp)
	out.waitFor(t, "ready", 10*time.Second)
	if err := s.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, s, 10*time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	got := out.String()
	for _, want := range []string{"main-got-hup", "child-got-hup", "main-done"} {
		if !strings.Contains(got, want) {
			t.Errorf("stdout = %q; want %q in it", got, want)
		}
	}
}

func TestStopGraceful(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, out, _ := spec("graceful", "sh", "-c", `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	s := start(t, m, sp)
	out.waitFor(t, "ready", 10*time.Second)
	begin := time.Now()
	code, killed := s.Stop(10 * time.Second)
	if killed || code != 0 {
		t.Errorf("Stop = (%d, killed=%v), want (0, false)", code, killed)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("graceful stop took %v", took)
	}
	if !strings.Contains(out.String(), "bye") {
		t.Errorf("trap did not run: %q", out.String())
	}
}

func TestStopUntrappedTermEndsAtOnce(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	// Under the sandbox init the command is not pid 1, so an untrapped
	// SIGTERM ends it as usual.
	sp, out, _ := spec("untrapped", "sh", "-c", `echo ready; exec sleep 1000`)
	s := start(t, m, sp)
	out.waitFor(t, "ready", 10*time.Second)
	code, killed := s.Stop(10 * time.Second)
	if killed || code != 128+int(syscall.SIGTERM) {
		t.Errorf("Stop = (%d, killed=%v), want (143, false)", code, killed)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, out, _ := spec("stubborn", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 1; done`)
	s := start(t, m, sp)
	out.waitFor(t, "ready", 10*time.Second)
	const grace = 300 * time.Millisecond
	begin := time.Now()
	code, killed := s.Stop(grace)
	took := time.Since(begin)
	if !killed || code != 128+int(syscall.SIGKILL) {
		t.Errorf("Stop = (%d, killed=%v), want (137, true)", code, killed)
	}
	if took < grace || took > grace+5*time.Second {
		t.Errorf("Stop took %v, want just over the %v grace", took, grace)
	}
}

func TestDestroyKillsAndRemovesEverything(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("destroy", "sleep", "1000")
	sp.Network = true
	s := start(t, m, sp)
	link := s.net.link
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Destroy")
	}
	if err := s.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	assertNothingLeft(t, m)
	if _, err := os.Stat(filepath.Join("/sys/class/net", link)); err == nil {
		t.Errorf("veth %s still exists", link)
	}
	if err := s.Signal(syscall.SIGTERM); err == nil {
		t.Error("Signal after Destroy succeeded")
	}
}

func TestDuplicateIDConflicts(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("dup", "sleep", "1000")
	start(t, m, sp)
	_, err := m.Start(context.Background(), sp)
	if !errors.Is(err, grid.ErrConflict) {
		t.Errorf("second Start with the same ID: err = %v, want ErrConflict", err)
	}
	if err := m.Close(); !errors.Is(err, grid.ErrConflict) {
		t.Errorf("Close with a live sandbox: err = %v, want ErrConflict", err)
	}
}

func TestStdoutFileKeepsItsOwner(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sp, _, _ := spec("filestdout", "echo", "to-file")
	sp.Stdout = f
	s := start(t, m, sp)
	waitExit(t, s, 10*time.Second)
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Errorf("the caller's stdout file now belongs to uid %d", st.Uid)
	}
	if b, _ := os.ReadFile(f.Name()); string(b) != "to-file\n" {
		t.Errorf("file holds %q", b)
	}
}

// TestPartialLineNotHeld: the init relays whole lines where it can, but a
// command that writes part of a line and pauses (a prompt) is not held up.
func TestPartialLineNotHeld(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, out, _ := spec("prompt", "sh", "-c", "printf 'Password: '; exec sleep 1000")
	start(t, m, sp)
	out.waitFor(t, "Password: ", 10*time.Second)
}

// The syscall filter refuses what containers are escaped with, answers
// clone3 with ENOSYS (so libc falls back to clone: threads still start),
// and lets ordinary calls through.
func TestSeccompFilter(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("seccomp", "python3", "-c", `
import ctypes, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    print(name, r if r < 0 else "ok", ctypes.get_errno() if r < 0 else 0)
call("io_uring_setup", 425, 1, 0)
call("keyctl", 250, 0, -3, 0)
call("unshare_user", 272, 0x10000000)
call("unshare_mount", 272, 0x20000)
call("ptrace_traceme", 101, 0, 0, 0, 0)
call("socket_vsock", 41, 40, 1, 0)
call("bpf", 321, 0, 0, 0)
call("userfaultfd", 323, 0)
call("open_by_handle_at", 304, -100, 0, 0)
call("personality_bsd", 135, 6)
call("clone3", 435, 0, 0)
call("getpid", 39)
call("socket_inet", 41, 2, 1, 0)
t = threading.Thread(target=lambda: None); t.start(); t.join(); print("thread ok")
`)
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	want := []string{
		"io_uring_setup -1 1", "keyctl -1 1", "unshare_user -1 1", "unshare_mount -1 1", "ptrace_traceme -1 1",
		"socket_vsock -1 1", "bpf -1 1", "userfaultfd -1 1", "open_by_handle_at -1 1", "personality_bsd -1 1",
		"clone3 -1 38", "getpid ok 0", "socket_inet ok 0", "thread ok",
	}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("want %q in:\n%s", w, out)
		}
	}
}

// TestInitReapsZombies: orphans that exit are reparented to the sandbox's
// init (PID 1), which reaps them, so a dyno whose processes double-fork
// does not fill its pids limit with zombies.
func TestInitReapsZombies(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	script := `
import os, time
for _ in range(20):
    if os.fork() == 0:      # a child that leaves an orphan behind
        if os.fork() == 0:
            os._exit(0)     # the orphan: exits once its parent is gone
        os._exit(0)
    os.wait()
time.sleep(0.5)
zombies = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            stat = open("/proc/%s/stat" % pid).read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            zombies.append(stat)
print(len(zombies), zombies)
`
	sp, _, _ := spec("reaper", "python3", "-c", script)
	code, out, errOut := run(t, m, sp)
	if code != 0 || out != "0 []\n" {
		t.Errorf("exit %d, zombies left: %q (stderr %q)", code, out, errOut)
	}
}
