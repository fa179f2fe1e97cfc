// Package bench measures Dynogrid side by side with reference tools in one
// run and prints ratios. Run with `sudo ./run bench` (root: dynos are
// sandboxes; wrk and nginx are installed by ./run).
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/gridtest"
)

// BenchmarkRouter compares requests/s and p99 latency of the grid router
// with nginx as a keep-alive reverse proxy in front of the same three web
// dynos, under the same wrk load, alternating rounds in one run.
func BenchmarkRouter(b *testing.B) {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is not installed (sudo ./run bench installs it)", tool)
		}
	}
	g := gridtest.Start(b, "--stop-grace", "2s")
	g.MustCLI("apps:create", "hello")
	if out, err := g.Push("hello", g.Repo("../e2e/testdata/go-hello")); err != nil {
		b.Fatalf("push: %v\n%s", err, out)
	}
	g.MustCLI("ps:scale", "web=3", "-a", "hello")
	var addrs []string
	st := g.Store()
	gridtest.WaitFor(b, time.Minute, "three web dynos up", func() error {
		ds, err := st.Dynos(b.Context(), "hello")
		if err != nil {
			return err
		}
		addrs = addrs[:0]
		for _, d := range ds {
			if d.Type == "web" && d.State == grid.DynoUp && d.Addr != "" {
				addrs = append(addrs, d.Addr)
			}
		}
		if len(addrs) != 3 {
			return fmt.Errorf("%d up", len(addrs))
		}
		return nil
	})
	nginxAddr := startNginx(b, addrs)

	var grid, ngx []wrkResult
	for round := 0; round < 3; round++ {
		grid = append(grid, runWrk(b, "http://"+g.RtAddr+"/", "hello.localhost"))
		ngx = append(ngx, runWrk(b, "http://"+nginxAddr+"/", "hello.localhost"))
	}
	gr, nr := median(grid), median(ngx)
	b.ReportMetric(gr.rps, "grid-req/s")
	b.ReportMetric(nr.rps, "nginx-req/s")
	b.ReportMetric(gr.rps/nr.rps, "ratio")
	fmt.Printf("router, 3 dynos, wrk %s:\n", wrkArgs)
	fmt.Printf("  grid router  %8.0f req/s  p99 %6.2f ms\n", gr.rps, gr.p99)
	fmt.Printf("  nginx        %8.0f req/s  p99 %6.2f ms\n", nr.rps, nr.p99)
	fmt.Printf("  ratio grid/nginx: throughput %.2f, p99 %.2f\n", gr.rps/nr.rps, gr.p99/nr.p99)
}

const wrkArgs = "-t2 -c32 -d5s"

type wrkResult struct{ rps, p99 float64 }

func runWrk(b *testing.B, url, host string) wrkResult {
	b.Helper()
	return runWrkArgs(b, wrkArgs, url, host)
}

// runWrkArgs runs wrk with args (threads, connections, duration) against
// url with the given Host.
func runWrkArgs(b *testing.B, wrkArgs, url, host string) wrkResult {
	b.Helper()
	args := append(strings.Fields(wrkArgs), "--latency", "-H", "Host: "+host, url)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(s); m != nil {
		b.Fatalf("wrk against %s saw %s failed responses:\n%s", url, m[1], s)
	}
	rps := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(s)
	p99 := regexp.MustCompile(`99%\s+([\d.]+)(us|ms|s)`).FindStringSubmatch(s)
	if rps == nil || p99 == nil {
		b.Fatalf("cannot read wrk output:\n%s", s)
	}
	r := wrkResult{}
	r.rps, _ = strconv.ParseFloat(rps[1], 64)
	r.p99, _ = strconv.ParseFloat(p99[1], 64)
	switch p99[2] {
	case "us":
		r.p99 /= 1000
	case "s":
		r.p99 *= 1000
	}
	return r
}

func median(rs []wrkResult) wrkResult {
	rps := make([]float64, len(rs))
	p99 := make([]float64, len(rs))
	for i, r := range rs {
		rps[i], p99[i] = r.rps, r.p99
	}
	return wrkResult{mid(rps), mid(p99)}
}

func mid(xs []float64) float64 {
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if xs[j] < xs[i] {
				xs[i], xs[j] = xs[j], xs[i]
			}
		}
	}
	return xs[len(xs)/2]
}

// startNginx runs nginx as a keep-alive reverse proxy to addrs, configured
// as one would in production (upstream keepalive, no access log).
func startNginx(b *testing.B, addrs []string) string {
	b.Helper()
	dir := b.TempDir()
	listen := gridtest.FreeAddr(b)
	var up strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&up, "    server %s;\n", a)
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream dynos {
%[2]s    keepalive 64;
  }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://dynos;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, dir, up.String(), listen)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("nginx", "-c", path, "-p", dir, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	// Its own process group, so that cleanup kills the workers with the
	// master: killing the master alone leaves them running, skewing later
	// runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	gridtest.WaitFor(b, 10*time.Second, "nginx listening", func() error {
		out, err := exec.Command("curl", "-sf", "-o", "/dev/null", "http://"+listen+"/").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	return listen
}
