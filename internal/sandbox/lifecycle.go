package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/mounts"
)

// defaultPath is added to a Spec's Env that has no PATH.
const defaultPath = "PATH=/usr/local/bin:/usr/bin:/bin"

// start builds everything a sandbox needs, in order; undoStart removes
// whatever of it exists.
func (s *Sandbox) start() error {
	if err := s.clearStale(); err != nil {
		return err
	}
	if err := os.Mkdir(s.layout.run, 0o700); err != nil {
		return err
	}
	nsPath := ""
	if s.spec.Network {
		n, err := s.m.setupNetwork(s.layout, s.spec)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		s.net, nsPath = n, n.nsPath
	}
	if err := makeRoot(s.layout, s.spec, s.Addr()); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	s.started = time.Now()
	if err := writeRecord(s.layout, newRecord(s.spec, s.net, s.started)); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	out, initFiles, err := makeOutput(s.layout)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	defer closeAll(initFiles) // the init has its own copies once it runs
	s.out = out
	cfg := containerConfig(s.layout, s.spec, s.m.cgroupParent(s.spec.Idle), nsPath, s.m.initBin)
	c, err := libcontainer.Create(s.layout.state(), s.spec.ID, cfg)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	s.container = c
	if err := s.run(initFiles); err != nil {
		return err
	}
	s.watching = true
	out.start(s.spec.Stdout, s.spec.Stderr)
	return nil
}

// clearStale removes directories of this ID that a crashed attempt left
// (the ID is not live, so nothing uses them).
func (s *Sandbox) clearStale() error {
	for _, dir := range []string{s.layout.run, s.layout.disk} {
		if err := removeDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// removeDir detaches any mount below dir, then removes it.
func removeDir(dir string) error {
	if _, err := os.Lstat(dir); err != nil {
		return nil
	}
	if err := mounts.DetachBelow(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// run starts the main process under the sandbox init, which gets
// initFiles as fds 3, 4 and 5 (see dynoinit.go). Its stdout and stderr
// are /dev/null: the init gives the command its own pipes.
func (s *Sandbox) run(initFiles []*os.File) error {
	initArgs := []string{initTarget, "--"}
	if s.spec.TTY != nil {
		r, err := s.openWinsize()
		if err != nil {
			return err
		}
		defer r.Close()
		initArgs = []string{initTarget, "-t", "--"}
		initFiles = append(initFiles, r) // fd 6
	}
	p := &libcontainer.Process{
		Args:       append(initArgs, s.spec.Args...),
		Env:        withPath(s.spec.Env),
		Cwd:        s.spec.Dir,
		UID:        s.spec.UID,
		GID:        s.spec.GID,
		ExtraFiles: initFiles,
		Init:       true,
	}
	stdinChild, err := s.connectStdin(p)
	if err != nil {
		return err
	}
	err = s.container.Run(p)
	if stdinChild != nil {
		stdinChild.Close() // the sandbox has its own copy now
	}
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	s.process = p
	s.initPid, err = p.Pid()
	return err
}

// openWinsize makes the pipe that carries window sizes to the init and
// sends the first; it returns the init's end.
func (s *Sandbox) openWinsize() (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.winsize = w
	if err := s.Resize(*s.spec.TTY); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Resize changes the size of the sandbox's terminal (Spec.TTY); the
// command gets SIGWINCH.
func (s *Sandbox) Resize(ws WindowSize) error {
	if s.winsize == nil {
		return fmt.Errorf("sandbox %q: no terminal", s.spec.ID)
	}
	var b [4]byte
	binary.NativeEndian.PutUint16(b[0:], ws.Rows)
	binary.NativeEndian.PutUint16(b[2:], ws.Cols)
	if _, err := s.winsize.Write(b[:]); err != nil { // 4 bytes: atomic in a pipe
		return fmt.Errorf("sandbox %q: resize: %w", s.spec.ID, err)
	}
	return nil
}

// connectStdin copies Stdin through a pipe we own and can close when the
// sandbox exits; libcontainer chowns the sandbox's stdio to its uid, which
// must never happen to a caller's file. It returns the child's end, which the
// caller closes after starting.
func (s *Sandbox) connectStdin(p *libcontainer.Process) (*os.File, error) {
	if s.spec.Stdin == nil {
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.Stdin, s.stdin = r, w
	go func() {
		_, _ = io.Copy(w, s.spec.Stdin)
		w.Close()
	}()
	return r, nil
}

func withPath(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			return env
		}
	}
	return append(append([]string(nil), env...), defaultPath)
}

// waitChild reaps the main process (a child of this process) and
// publishes its exit code.
func (s *Sandbox) waitChild() {
	ps, err := s.process.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err = nil // a non-zero exit is a result, not a failure
	}
	s.finish(exitCode(ps), err)
}

// finish publishes the exit once the output has been copied to the end
// (the copiers see EOF: the init, the FIFOs' only writer, is gone).
func (s *Sandbox) finish(code int, err error) {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out != nil {
		out.wait()
	}
	if s.stdin != nil {
		s.stdin.Close()
	}
	s.code, s.err = code, err
	close(s.done)
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		return statusCode(ws)
	}
	return ps.ExitCode()
}

// statusCode is a shell-style exit code: the exit status, or 128+signal.
func statusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Signal sends sig to every process in the sandbox.
func (s *Sandbox) Signal(sig os.Signal) error {
	ssig, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("sandbox %q: signal %v is not a syscall.Signal", s.spec.ID, sig)
	}
	if s.exited() {
		return fmt.Errorf("sandbox %q: %w", s.spec.ID, ErrExited)
	}
	if ssig == unix.SIGKILL {
		return s.kill()
	}
	pids, err := s.container.Processes()
	if err != nil {
		return fmt.Errorf("sandbox %q: list processes: %w", s.spec.ID, err)
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, ssig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("sandbox %q: signal pid %d: %w", s.spec.ID, pid, err)
		}
	}
	return nil
}

// kill SIGKILLs the sandbox's init; the kernel then kills every other
// process of its PID namespace, so nothing can fork away from it. An init
// that has exited already (reaped, while Wait still copies the output
// out) is no error.
func (s *Sandbox) kill() error {
	err := s.container.Signal(unix.SIGKILL)
	if err == nil || errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return fmt.Errorf("sandbox %q: kill: %w", s.spec.ID, err)
}

// Stop sends SIGTERM to every process, waits up to grace for the main
// process to exit, then SIGKILLs everything. It returns the exit code and
// whether SIGKILL was needed (code -1 if even that did not end the main
// process within 10 s).
func (s *Sandbox) Stop(grace time.Duration) (code int, killed bool) {
	if err := s.Signal(unix.SIGTERM); err != nil && !s.exited() {
		s.m.log.Warn("sandbox sigterm failed", "sandbox", s.spec.ID, "err", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
		return s.code, false
	case <-t.C:
	}
	if err := s.kill(); err != nil {
		s.m.log.Warn("sandbox sigkill failed", "sandbox", s.spec.ID, "err", err)
	}
	if err := s.awaitExit(); err != nil {
		s.m.log.Error("sandbox survives sigkill", "sandbox", s.spec.ID, "err", err)
		return -1, true
	}
	return s.code, true
}

// Destroy kills whatever still runs and removes every trace of the sandbox:
// cgroup, network, overlay, state. Safe to call more than once.
func (s *Sandbox) Destroy() error {
	s.destroyOnce.Do(func() {
		begin := time.Now()
		s.destroyErr = s.teardown()
		s.m.log.Debug("sandbox destroyed", "sandbox", s.spec.ID, "took", time.Since(begin), "err", s.destroyErr)
	})
	return s.destroyErr
}

// undoStart cleans up after a failed start.
func (s *Sandbox) undoStart() {
	if err := s.teardown(); err != nil {
		s.m.log.Warn("sandbox cleanup after failed start", "sandbox", s.spec.ID, "err", err)
	}
}

// teardown removes, in reverse order of start, whatever exists: the
// processes, the container (cgroups, libcontainer state), the output
// copiers, the network, the sandbox directory (root, overlay layers).
func (s *Sandbox) teardown() error {
	var errs []error
	if s.container != nil {
		if s.watching && !s.exited() {
			errs = append(errs, s.kill())
			errs = append(errs, s.awaitExit())
		}
		if err := s.container.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	s.detachOutput()
	if s.stdin != nil {
		s.stdin.Close()
	}
	if s.winsize != nil {
		s.winsize.Close()
	}
	// Cgroups libcontainer does not know of (a start cut short by a
	// crash); normally gone already.
	errs = append(errs, removeSandboxCgroups(s.m.cgroupParent(s.spec.Idle), s.spec.ID))
	if s.net != nil {
		errs = append(errs, s.m.teardownNetwork(s.net))
	}
	errs = append(errs, removeDir(s.layout.run), removeDir(s.layout.disk))
	s.m.unregister(s)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %q: destroy: %w", s.spec.ID, err)
	}
	return nil
}

// detachOutput stops copying output, if it is copied.
func (s *Sandbox) detachOutput() {
	s.mu.Lock()
	out := s.out
	s.out = nil
	s.mu.Unlock()
	if out != nil {
		out.close()
	}
}

// awaitExit waits for the main process to be reaped after a kill.
func (s *Sandbox) awaitExit() error {
	select {
	case <-s.done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("main process still running %v after SIGKILL", killTimeout)
	}
}
