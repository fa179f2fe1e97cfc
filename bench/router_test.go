package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/router"
)

// BenchmarkRouterConns compares the grid router with nginx (upstream
// keep-alive) in front of the same three web dynos of the Go sample app,
// with wrk from loopback at 64 and at 256 connections, alternating rounds
// in one run, and prints the throughput and p99 ratios for each.
func BenchmarkRouterConns(b *testing.B) {
	g := gridtest.Start(b, "--stop-grace", "2s")
	addrs := helloApp(b, g, "hello", 3)
	nginxAddr := startNginx(b, addrs)
	fmt.Println("router vs nginx (upstream keep-alive), 3 Go dynos, small responses, wrk on loopback:")
	for _, conns := range []int{64, 256} {
		args := fmt.Sprintf("-t2 -c%d -d5s", conns)
		var gr, nr []wrkResult
		for range 3 {
			gr = append(gr, runWrkArgs(b, args, "http://"+g.RtAddr+"/", "hello.localhost"))
			nr = append(nr, runWrkArgs(b, args, "http://"+nginxAddr+"/", "hello.localhost"))
		}
		gm, nm := median(gr), median(nr)
		fmt.Printf("  %3d connections: grid %8.0f req/s p99 %6.2f ms | nginx %8.0f req/s p99 %6.2f ms | ratio grid/nginx: throughput %.2f, p99 %.2f\n",
			conns, gm.rps, gm.p99, nm.rps, nm.p99, gm.rps/nm.rps, gm.p99/nm.p99)
		b.ReportMetric(gm.rps/nm.rps, fmt.Sprintf("rps-ratio-c%d", conns))
		b.ReportMetric(gm.p99/nm.p99, fmt.Sprintf("p99-ratio-c%d", conns))
	}
}

// BenchmarkRouterIdleConns measures what 10,000 idle keep-alive client
// connections cost a router: goroutines, Go heap and runtime memory, and
// the process's RSS. The router runs in this process (on the grid's
// store, in front of the grid's dynos) so the runtime can be read; the
// clients are a separate process (python3, which the grid needs anyway),
// so that their memory and file descriptors are not counted: each
// connection makes one request and then stays idle.
func BenchmarkRouterIdleConns(b *testing.B) {
	const n = 10000
	g := gridtest.Start(b, "--stop-grace", "2s")
	helloApp(b, g, "hello", 1)
	ctx, cancel := context.WithCancel(context.Background())
	rt := router.New(router.Config{Store: g.Store(), Domain: "localhost"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rt.Run(ctx) }()
	go func() { defer wg.Done(); rt.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); wg.Wait() })
	<-rt.Ready()
	addr := ln.Addr().String()
	idleClients(b, addr, 1) // warms the router's pool to the dyno
	before := sample()
	start := time.Now()
	stop := idleClients(b, addr, n)
	opened := time.Since(start)
	after := sample()
	stop()
	mib := func(x uint64) float64 { return float64(x) / (1 << 20) }
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / 1024 / n }
	fmt.Printf("router with %d idle keep-alive client connections (opened in %.1f s):\n", n, opened.Seconds())
	fmt.Printf("  goroutines %d -> %d (+%d, %.2f per connection)\n", before.goroutines, after.goroutines,
		after.goroutines-before.goroutines, float64(after.goroutines-before.goroutines)/n)
	fmt.Printf("  Go heap in use %.1f -> %.1f MiB (%.1f KiB per connection); runtime sys %.1f -> %.1f MiB; RSS %.1f -> %.1f MiB (%.1f KiB per connection)\n",
		mib(before.heap), mib(after.heap), per(before.heap, after.heap), mib(before.sys), mib(after.sys),
		mib(before.rss), mib(after.rss), per(before.rss, after.rss))
	b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/conn")
	b.ReportMetric(per(before.rss, after.rss), "KiB-rss/conn")
}

// idleClientsPy opens argv[2] connections to argv[1], makes one request
// on each, reads its response, prints "ready" and holds them until stdin
// closes.
const idleClientsPy = `
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
conns = []
for i in range(int(sys.argv[2])):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("router closed connection %d" % i)
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("status: " + head.split(b"\r\n")[0].decode())
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < length:
        body += s.recv(4096)
    conns.append(s)
print("ready", flush=True)
sys.stdin.read()
`

// idleClients starts n idle keep-alive connections to addr in a child
// process and returns once all made their request; stop closes them.
func idleClients(b *testing.B, addr string, n int) (stop func()) {
	b.Helper()
	cmd := exec.Command("python3", "-c", idleClientsPy, addr, strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		stop()
		b.Fatalf("idle clients: %q %v", line, err)
	}
	return stop
}

type memSample struct {
	goroutines     int
	heap, sys, rss uint64
}

func sample() memSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse, sys: m.Sys, rss: rss()}
}

// rss is this process's resident set, from /proc.
func rss() uint64 {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkRouterFairness measures whether one app flooded with
// connections slows another down: app B gets a steady 200 req/s from a
// paced Go client, alone and then while wrk floods app A with 512
// connections through the same router; it prints B's p99 both ways and
// the ratio (the target is at most 1.2). Both apps run one dyno of the Go
// sample app. On a small machine the flood also takes CPU from the
// router, B's dyno and the client, so a control run sends the same flood
// to A's dyno directly: the gap between the two is what the router adds.
// FLOOD_CPU (see floodWrk) caps the flooding client's CPU.
func BenchmarkRouterFairness(b *testing.B) {
	g := gridtest.Start(b, "--stop-grace", "2s")
	aDyno := helloApp(b, g, "appa", 1)[0]
	helloApp(b, g, "appb", 1)
	const rate, dur = 200, 10 * time.Second
	alone := paced(b, g.RtAddr, "appb.localhost", rate, dur)
	// The control: the same flood sent to A's dyno directly, past the
	// router, takes as much CPU from the machine but none of the router's
	// attention; B's p99 then is what CPU contention alone costs.
	control := make(chan string, 1)
	go func() { control <- floodWrk("http://"+aDyno+"/", "appa.localhost") }()
	time.Sleep(time.Second)
	cpuOnly := paced(b, g.RtAddr, "appb.localhost", rate, dur)
	<-control
	flood := make(chan string, 1)
	go func() { flood <- floodWrk("http://"+g.RtAddr+"/", "appa.localhost") }()
	time.Sleep(time.Second) // the flood is at full strength
	flooded := paced(b, g.RtAddr, "appb.localhost", rate, dur)
	a := <-flood
	fmt.Printf("fairness control: B's p99 while the same flood goes to A's dyno directly, not through the router: p50 %.2f ms p99 %.2f ms (ratio to alone %.2f)\n",
		cpuOnly.p50, cpuOnly.p99, cpuOnly.p99/alone.p99)
	aRPS, aFailed := "?", "0"
	if m := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(a); m != nil {
		aRPS = m[1]
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(a); m != nil {
		aFailed = m[1]
	}
	fmt.Printf("fairness: app B at %d req/s: alone p50 %.2f ms p99 %.2f ms; while wrk -c512 floods app A (%s req/s, %s non-2xx): p50 %.2f ms p99 %.2f ms; ratio p99 %.2f (target ≤ 1.2); B errors %d/%d\n",
		rate, alone.p50, alone.p99, aRPS, aFailed, flooded.p50, flooded.p99, flooded.p99/alone.p99, alone.errs+flooded.errs, alone.n+flooded.n)
	b.ReportMetric(flooded.p99/alone.p99, "p99-ratio")
}

// floodWrk runs wrk with 512 connections for 12 s and returns its
// output. The flooded app's own answers are not judged: past its backlog
// it gets H11. With FLOOD_CPU set (a share of one core, e.g. 0.5), wrk
// runs in a cpu cgroup with that quota, as if it were on another machine.
func floodWrk(url, host string) string {
	cmd := exec.Command("wrk", "-t1", "-c512", "-d12s", "-H", "Host: "+host, url)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err.Error()
	}
	if share, err := strconv.ParseFloat(os.Getenv("FLOOD_CPU"), 64); err == nil {
		dir := "/sys/fs/cgroup/cpu/gridbench-flood"
		os.Mkdir(dir, 0o755)
		os.WriteFile(dir+"/cpu.cfs_period_us", []byte("100000"), 0o644)
		os.WriteFile(dir+"/cpu.cfs_quota_us", []byte(strconv.Itoa(int(share*100000))), 0o644)
		os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		defer os.Remove(dir)
	}
	cmd.Wait()
	return out.String()
}

type pacedResult struct {
	p50, p99 float64 // ms
	n, errs  int
	firstErr error           // of the first failed request; nil if none failed
	lat      []time.Duration // of every request, in the order sent
	sent     []time.Time     // when each was sent
}

// paced sends rate requests per second for dur, each at its scheduled
// time (open loop: a slow answer does not delay the next request), over
// keep-alive connections, and returns latency percentiles.
func paced(b *testing.B, addr, host string, rate int, dur time.Duration) pacedResult {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	total := int(dur.Seconds() * float64(rate))
	lat, sent := make([]time.Duration, total), make([]time.Time, total)
	fails := make([]error, total)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = host
			t0 := time.Now()
			res, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					err = fmt.Errorf("status %d", res.StatusCode)
				}
			}
			lat[i], sent[i], fails[i] = time.Since(t0), t0, err
		}()
	}
	wg.Wait()
	r := pacedResult{n: total, lat: lat, sent: sent}
	for _, err := range fails {
		if err != nil {
			r.errs++
			if r.firstErr == nil {
				r.firstErr = err
			}
		}
	}
	r.p50, r.p99 = ms(percentile(lat, 50)), ms(percentile(lat, 99))
	return r
}

// helloApp creates app, pushes the Go sample app to it, scales web to n
// and returns the dynos' addresses once all are up.
func helloApp(b *testing.B, g *gridtest.Grid, app string, n int) []string {
	b.Helper()
	g.MustCLI("apps:create", app)
	if out, err := g.Push(app, g.Repo("../e2e/testdata/go-hello")); err != nil {
		b.Fatalf("push: %v\n%s", err, out)
	}
	g.MustCLI("ps:scale", fmt.Sprintf("web=%d", n), "-a", app)
	st := g.Store()
	var addrs []string
	gridtest.WaitFor(b, time.Minute, fmt.Sprintf("%d web dynos of %s up", n, app), func() error {
		ds, err := st.Dynos(b.Context(), app)
		if err != nil {
			return err
		}
		addrs = addrs[:0]
		for _, d := range ds {
			if d.Type == "web" && d.State == grid.DynoUp && d.Addr != "" {
				addrs = append(addrs, d.Addr)
			}
		}
		if len(addrs) != n {
			return fmt.Errorf("%d up", len(addrs))
		}
		return nil
	})
	slices.Sort(addrs)
	g.WaitBody(app, "/", "hello from", time.Minute)
	return addrs
}
