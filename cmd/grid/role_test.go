package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/mounts"
)

// TestUpOutlivesItsLogReader: `grid up` whose logs nobody reads any more
// (its terminal closed, the `| tee` killed) still stops the way SIGINT
// stops it, on SIGTERM and on SIGHUP: exit status 0, its sandboxes'
// mounts gone. Before, its next log line killed it by SIGPIPE (and
// SIGHUP by default), leaving its dynos and mounts behind.
func TestUpOutlivesItsLogReader(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("grid up needs root (CI runs as root)")
	}
	exe := gridtest.Exe(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			data := t.TempDir()
			t.Cleanup(func() { // so that the data directory can be removed
				for _, m := range below(t, data) {
					syscall.Unmount(m, syscall.MNT_DETACH)
				}
			})
			cmd := exec.Command(exe, "up", "--data", data, "--no-login", "--addons-listen", "",
				"--api", gridtest.FreeAddr(t), "--api-tls", "", "--router", gridtest.FreeAddr(t), "--router-tls", "",
				"--nats", gridtest.FreeAddr(t))
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = w, w
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			var waitErr error
			done := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-done
			})

			ready := make(chan struct{})
			go func() {
				lines := bufio.NewScanner(r)
				for lines.Scan() {
					if strings.Contains(lines.Text(), `msg="manager synced"`) {
						close(ready)
						break
					}
				}
				r.Close() // the reader goes: grid up's next line meets EPIPE
			}()
			select {
			case <-ready:
			case <-done:
				t.Fatalf("grid up exited before it was ready: %v", waitErr)
			case <-time.After(60 * time.Second):
				t.Fatal("grid up not ready in 60s")
			}

			cmd.Process.Signal(sig)
			select {
			case <-done:
				var exit *exec.ExitError
				if errors.As(waitErr, &exit) {
					t.Fatalf("grid up, its log reader gone, after %v: %v (want a graceful stop, status 0)", sig, exit.ProcessState)
				} else if waitErr != nil {
					t.Fatal(waitErr)
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("grid up still running 60s after %v", sig)
			}
			if left := below(t, data); len(left) > 0 {
				t.Errorf("mounts left under the data directory: %v", left)
			}
		})
	}
}

// below lists the mount points under dir, failing the test if it cannot.
func below(t *testing.T, dir string) []string {
	t.Helper()
	points, err := mounts.Below(dir)
	if err != nil {
		t.Fatal(err)
	}
	return points
}
