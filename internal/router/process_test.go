package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// backendEnv makes the test binary a dyno stand-in (TestBackendProcess).
const backendEnv = "GRID_ROUTER_TEST_BACKEND"

// TestBackendProcess is not a test: run as a child with backendEnv set to
// a name, it serves HTTP on a loopback port (printed on its first line)
// answering "<name>:<body>", until killed. Tests freeze (SIGSTOP) and kill
// it as a dyno's process would be.
func TestBackendProcess(t *testing.T) {
	name := os.Getenv(backendEnv)
	if name == "" {
		t.Skip("helper process for other tests")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", name, body)
	}))
	os.Exit(0)
}

// proc is a backend process.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
}

// startProcess starts a backend process named name, stopped at the end of
// the test.
func startProcess(t testing.TB, name string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBackendProcess$")
	cmd.Env = append(os.Environ(), backendEnv+"="+name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, out)
	}()
	select {
	case p.addr = <-line:
	case <-time.After(10 * time.Second):
		t.Fatal("backend process did not start in 10s")
	}
	if _, _, err := net.SplitHostPort(p.addr); err != nil {
		t.Fatalf("backend process said %q", p.addr)
	}
	return p
}

// signal sends sig; for SIGSTOP and SIGCONT it waits until the process
// is stopped or running (kill returns before every thread has stopped).
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	switch sig {
	case syscall.SIGSTOP:
		waitFor(p.t, "process stopped", func() bool { return p.stopped() == 1 })
	case syscall.SIGCONT:
		waitFor(p.t, "process running", func() bool { return p.stopped() == 0 })
	}
}

// stopped returns the share of the process's threads that are stopped
// ('T' in /proc/<pid>/task/<tid>/stat): 1 when all are, 0 when none.
func (p *proc) stopped() float64 {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.cmd.Process.Pid))
	if err != nil || len(stats) == 0 {
		p.t.Fatalf("no threads of %d: %v", p.cmd.Process.Pid, err)
	}
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just exited
		}
		// tid (comm) state …: comm may hold spaces, so look past the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			n++
		}
	}
	return float64(n) / float64(len(stats))
}

// kill kills the process and waits until it is gone (its port closed).
func (p *proc) kill() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// blackhole returns the address of a socket that listens but never
// accepts, with its accept queue filled: the kernel drops further SYNs,
// so connecting to it times out, as to a dyno whose host went dark or
// whose process stopped accepting.
func blackhole(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue until a connection attempt times out.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		if i > 64 {
			t.Fatal("accept queue never filled")
		}
	}
	return addr
}
