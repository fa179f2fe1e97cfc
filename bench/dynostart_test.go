package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/sandbox"
)

// TestMain lets this test binary serve as the sandboxes' init, as grid
// does (BenchmarkDynoStart starts sandboxes in this process).
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

// BenchmarkDynoStart times a web dyno's start, as the host agent makes
// it: a networked sandbox (namespaces, cgroups, seccomp, read-only root,
// /app overlay over a slug tree, veth and firewall) running the Go sample
// app. From the Start call it takes the time until the process runs
// (Start returned) and until $PORT accepts a TCP connection from the
// host. The reference, in the same run, is bare namespaces:
// `unshare --fork --pid --mount --uts --ipc --net --mount-proc true`,
// from fork to exit. Target: p50 < 50 ms to running.
func BenchmarkDynoStart(b *testing.B) {
	const n, port = 50, 5000
	dir := b.TempDir()
	app := filepath.Join(dir, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(app, "hello"), ".")
	build.Dir = "../e2e/testdata/go-hello"
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the sample app: %v\n%s", err, out)
	}
	m, err := sandbox.New(sandbox.Config{
		StateDir:     filepath.Join(dir, "state"),
		Subnet:       netip.MustParsePrefix("10.239.0.0/24"),
		CgroupParent: "gridbench-dynostart",
	})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	var running, accepting []time.Duration
	for i := range n {
		sp := sandbox.Spec{
			ID:      fmt.Sprint("start-", i),
			Args:    []string{"/app/hello"},
			Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/app", "PORT=" + strconv.Itoa(port), "DYNO=web.1"},
			UID:     20001,
			GID:     20001,
			AppDir:  app,
			Network: true,
			Stdout:  io.Discard,
			Stderr:  io.Discard,
		}
		start := time.Now()
		s, err := m.Start(ctx, sp)
		if err != nil {
			b.Fatal(err)
		}
		running = append(running, time.Since(start))
		addr := netip.AddrPortFrom(s.Addr(), port).String()
		for {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("%s: $PORT not accepting within 10 s", sp.ID)
			}
			time.Sleep(100 * time.Microsecond)
		}
		accepting = append(accepting, time.Since(start))
		if err := s.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
	var bare []time.Duration
	for range n {
		start := time.Now()
		out, err := exec.Command("unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--mount-proc", "true").CombinedOutput()
		if err != nil {
			b.Fatalf("unshare: %v\n%s", err, out)
		}
		bare = append(bare, time.Since(start))
	}
	fmt.Printf("dyno start, %d networked sandboxes of the Go sample app, one at a time:\n", n)
	fmt.Printf("  to running:         p50 %.1f ms p99 %.1f ms (target p50 < 50 ms)\n", ms(percentile(running, 50)), ms(percentile(running, 99)))
	fmt.Printf("  to $PORT accepting: p50 %.1f ms p99 %.1f ms\n", ms(percentile(accepting, 50)), ms(percentile(accepting, 99)))
	fmt.Printf("  bare namespaces (unshare … true): p50 %.1f ms p99 %.1f ms; ratio to running p50 %.1f\n",
		ms(percentile(bare, 50)), ms(percentile(bare, 99)), ms(percentile(running, 50))/ms(percentile(bare, 50)))
	b.ReportMetric(ms(percentile(running, 50)), "ms-p50-running")
	b.ReportMetric(ms(percentile(accepting, 50)), "ms-p50-accepting")
}
