package gitrecv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitFor fails the test unless cond becomes true before the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not synchronising
	}
}

// recv waits for ch with a deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestConcurrentPushIsRejected(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	rec := &recorder{before: func(ctx context.Context, p Push) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release
		}
		return nil
	}}
	g := newTestGrid(t, rec)
	a, b := newClient(t), newClient(t)
	shaA := a.commit(map[string]string{"who": "a\n"}, "a")
	b.commit(map[string]string{"who": "b\n"}, "b")

	type result struct {
		out string
		err error
	}
	first := make(chan result, 1)
	go func() {
		out, err := a.git("push", g.remote("myapp"), "main")
		first <- result{out, err}
	}()
	recv(t, started, "the first push to reach Deploy")

	out, err := b.git("push", g.remote("myapp"), "main")
	if err == nil {
		t.Errorf("second push succeeded while the first was building:\n%s", out)
	}
	if !strings.Contains(out, "remote:  !     another push to myapp is in progress; wait for it to finish, then push again.") ||
		!strings.Contains(out, "pre-receive hook declined") {
		t.Errorf("second push was not rejected cleanly:\n%s", out)
	}

	close(release)
	if r := recv(t, first, "the first push"); r.err != nil {
		t.Fatalf("first push: %v\n%s", r.err, r.out)
	}
	if got, _ := g.bareGit("myapp", "rev-parse", "refs/heads/main"); got != shaA {
		t.Errorf("server main = %q, want the first push's %s", got, shaA)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d deploys, want 1", n)
	}
}

// TestStalePushRejectedBeforeDeploy pauses a push between git's ref
// advertisement and its upload (in a client pre-push hook) while another
// push moves main. git would check the old value only after our hook, so
// without our own check the stale push would be deployed and then fail to
// update main.
func TestStalePushRejectedBeforeDeploy(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	a := newClient(t)
	a.commit(map[string]string{"v": "1\n"}, "base")
	a.must("push", g.remote("myapp"), "main")
	b := newClient(t)
	b.must("pull", "--quiet", g.remote("myapp"), "main")

	fifos := t.TempDir()
	paused, resume := filepath.Join(fifos, "paused"), filepath.Join(fifos, "resume")
	for _, f := range []string{paused, resume} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hook := "#!/bin/sh\necho > " + shellQuote(paused) + "\nread x < " + shellQuote(resume) + "\n"
	if err := os.WriteFile(filepath.Join(b.dir, ".git/hooks/pre-push"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := b.commit(map[string]string{"v": "b\n"}, "b")
	var out bytes.Buffer
	push := b.command("push", g.remote("myapp"), "main")
	push.Stdout, push.Stderr = &out, &out
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	waitHook := make(chan error, 1)
	go func() {
		f, err := os.Open(paused) // blocks until the pre-push hook runs
		if err == nil {
			_, err = bufio.NewReader(f).ReadString('\n')
			f.Close()
		}
		waitHook <- err
	}()
	if err := recv(t, waitHook, "b's pre-push hook"); err != nil {
		t.Fatal(err)
	}

	moved := a.commit(map[string]string{"v": "a\n"}, "a")
	a.must("push", g.remote("myapp"), "main")

	f, err := os.OpenFile(resume, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n")
	f.Close()
	if err := push.Wait(); err == nil {
		t.Fatalf("stale push succeeded:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "remote:  !     main changed while this push was in flight; fetch and push again.") {
		t.Errorf("stale push not explained:\n%s", out.String())
	}
	for _, d := range rec.all() {
		if d.NewRev == stale {
			t.Errorf("the stale commit was deployed")
		}
	}
	if got, _ := g.bareGit("myapp", "rev-parse", "refs/heads/main"); got != moved {
		t.Errorf("server main = %q, want %s", got, moved)
	}
}

func TestClientDisconnectKillsGit(t *testing.T) {
	t.Parallel()
	called := make(chan struct{})
	ended := make(chan error, 1)
	var calls atomic.Int32
	rec := &recorder{before: func(ctx context.Context, p Push) error {
		if calls.Add(1) > 1 {
			return nil
		}
		close(called)
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}}
	g := newTestGrid(t, rec)
	c := newClient(t)
	c.commit(map[string]string{"a": "1\n"}, "one")
	push := c.command("push", g.remote("myapp"), "main")
	push.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // git push and git-remote-http
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	recv(t, called, "Deploy")
	if !slicesContainProcess(g.reposDir) {
		t.Fatalf("no git process found working on %s; the check below would prove nothing", g.reposDir)
	}
	syscall.Kill(-push.Process.Pid, syscall.SIGKILL)
	push.Wait()

	if err := recv(t, ended, "Deploy's context to end"); err == nil {
		t.Errorf("Deploy's context ended without an error")
	}
	waitFor(t, "git processes of the dead push to go", func() bool { return !slicesContainProcess(g.reposDir) })
	if _, err := g.bareGit("myapp", "rev-parse", "--verify", "--quiet", "refs/heads/main"); err == nil {
		t.Errorf("main was updated by a push whose client died")
	}
	// Lock released, nothing stuck: the next push works.
	waitFor(t, "the app's push lock to be released", func() bool {
		if !g.recv.tryLock("myapp") {
			return false
		}
		g.recv.unlock("myapp")
		return true
	})
	if out, err := c.git("push", g.remote("myapp"), "main"); err != nil {
		t.Fatalf("push after a disconnect: %v\n%s", err, out)
	}
}

// slicesContainProcess reports whether any process works in or on dir:
// receive-pack names the repository on its command line, the hook and its
// git archive run in it.
func slicesContainProcess(dir string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.HasPrefix(cwd, dir) || bytes.Contains(cmdline, []byte(dir)) {
			return true
		}
	}
	return false
}

func TestPushTooLarge(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec, func(c *Config) { c.MaxPushBytes = 64 << 10 })
	c := newClient(t)
	big := make([]byte, 1<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(c.dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("add", "big")
	c.must("commit", "--quiet", "-m", "big")
	out, err := c.git("push", g.remote("myapp"), "main")
	if err == nil {
		t.Fatalf("push of 1 MiB past a 64 KiB cap succeeded:\n%s", out)
	}
	if len(rec.all()) != 0 {
		t.Errorf("oversized push was deployed")
	}
	if _, err := g.bareGit("myapp", "rev-parse", "--verify", "--quiet", "refs/heads/main"); err == nil {
		t.Errorf("oversized push updated main")
	}
	if !strings.Contains(out, "remote: fatal: pack exceeds maximum allowed size") {
		t.Errorf("no reason given:\n%s", out)
	}
}

func TestSourceTooLarge(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec, func(c *Config) { c.MaxSourceBytes = 64 << 10 })
	c := newClient(t)
	// Compresses to almost nothing in the pack, 1 MiB in the tar.
	c.commit(map[string]string{"zeros": strings.Repeat("0", 1<<20)}, "zeros")
	out, err := c.git("push", g.remote("myapp"), "main")
	if err == nil {
		t.Fatalf("push succeeded:\n%s", out)
	}
	if !strings.Contains(out, "remote:  !     the pushed source is larger than the 64 KiB limit") {
		t.Errorf("no reason given:\n%s", out)
	}
	if len(rec.all()) != 0 {
		t.Errorf("oversized source was deployed")
	}
	entries, _ := os.ReadDir(filepath.Join(g.reposDir, ".tmp"))
	if len(entries) != 0 {
		t.Errorf("spooled source left behind: %v", entries)
	}
}
