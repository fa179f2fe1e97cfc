package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/drain"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// BenchmarkLogs measures the log path a host's dynos write to: lines
// written by dyno log writers (logs.Writer, rate-limited per dyno) go
// through the LOGS stream on a real JetStream server, the drain shipper
// and a syslog drain to a receiver on loopback. Side by side, rsyslog
// relays the same lines (imtcp in, omfwd out, octet-counted) to the same
// kind of receiver. For rising rates it prints what each delivers, its
// loss and its write-to-receiver latency, then the tail latency (a line
// written until a `logs -t` reader has it) under load.
func BenchmarkLogs(b *testing.B) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		b.Fatal("rsyslogd is not installed (sudo ./run bench installs it)")
	}
	st := storetest.Start(b)
	lg, err := logs.Open(b.Context(), st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lg.Close)
	gridRecv := receive(b)
	shipDrain(b, st, lg, "syslog://"+gridRecv.addr)
	relayRecv := receive(b)
	relay := startRsyslog(b, rsyslogd, relayRecv.addr)

	fmt.Println("log path: dynos of one app writing 100-byte lines for 3 s at each rate, each under logs.WriterRate (2,000/s), to a syslog drain on loopback")
	fmt.Println("  grid: logs.Writer -> LOGS stream (JetStream) -> drain shipper -> syslog drain; rsyslog: TCP in -> omfwd TCP out")
	for run, c := range []struct{ dynos, rate int }{{48, 8000}, {48, 32000}, {48, 64000}, {48, 88000}, {96, 160000}} {
		dynos, rate := c.dynos, c.rate
		before, l10 := lg.Dropped(), gridRecv.reportedLost()
		g := gridRecv.measure(run, func() int { return writeGrid(lg, dynos, rate, run) })
		queueDrops, l10 := lg.Dropped()-before, gridRecv.reportedLost()-l10
		r := relayRecv.measure(run, func() int { return writeRelay(b, relay, dynos, rate, run) })
		fmt.Printf("  %3d dynos, %6d lines/s: grid delivered %6d/%6d (loss %5.2f%%: %d in the host's queue, %d reported by L10) p50 %6.1f ms p99 %7.1f ms | rsyslog %6d/%6d (loss %5.2f%%) p50 %6.1f ms p99 %7.1f ms\n",
			dynos, rate, g.got, g.sent, g.loss(), queueDrops, l10, ms(g.p(50)), ms(g.p(99)), r.got, r.sent, r.loss(), ms(r.p(50)), ms(r.p(99)))
		b.ReportMetric(g.loss(), fmt.Sprintf("grid-loss-%%-%dk", rate/1000))
		b.ReportMetric(ms(g.p(99))/max(ms(r.p(99)), 0.001), fmt.Sprintf("p99-ratio-%dk", rate/1000))
	}
	tailLatency(b, lg)
}

// runResult is what a receiver saw of one run.
type runResult struct {
	sent, got int
	lat       []time.Duration
}

func (r runResult) loss() float64 { return 100 * float64(r.sent-r.got) / float64(max(r.sent, 1)) }

func (r runResult) p(q int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return percentile(r.lat, q)
}

// receiver is a syslog receiver (octet-counted frames) that reads
// "run=R seq=N t=UNIXNANO" out of each message.
type receiver struct {
	addr string
	mu   sync.Mutex
	seen map[int]map[int]bool // run → seqs
	lat  map[int][]time.Duration
	l10  int // lines the drain reported lost (Error L10)
}

func receive(b *testing.B) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	r := &receiver{addr: ln.Addr().String(), seen: map[int]map[int]bool{}, lat: map[int][]time.Duration{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.read(c)
		}
	}()
	return r
}

func (r *receiver) read(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 1<<16)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		r.record(string(frame), time.Now())
	}
}

func (r *receiver) record(frame string, now time.Time) {
	if _, after, ok := strings.Cut(frame, "Error L10 (output buffer overflow): "); ok {
		var n int
		fmt.Sscanf(after, "%d", &n)
		r.mu.Lock()
		r.l10 += n
		r.mu.Unlock()
		return
	}
	i := strings.Index(frame, "run=")
	if i < 0 {
		return
	}
	var run, seq int
	var t int64
	if _, err := fmt.Sscanf(frame[i:], "run=%d seq=%d t=%d", &run, &seq, &t); err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[run] == nil {
		r.seen[run] = map[int]bool{}
	}
	if !r.seen[run][seq] {
		r.seen[run][seq] = true
		r.lat[run] = append(r.lat[run], now.Sub(time.Unix(0, t)))
	}
}

func (r *receiver) reportedLost() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l10
}

// measure runs write (which returns the lines sent) and waits until the
// run's lines stop arriving.
func (r *receiver) measure(run int, write func() int) runResult {
	sent := write()
	last, still := -1, 0
	for still < 10 { // 1 s without a new line
		time.Sleep(100 * time.Millisecond)
		r.mu.Lock()
		n := len(r.seen[run])
		r.mu.Unlock()
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		if n >= sent {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return runResult{sent: sent, got: len(r.seen[run]), lat: slices.Clone(r.lat[run])}
}

// pacedLines calls emit(dyno, seq) for dynos at rate lines/s in total
// for 3 s, in 10 ms ticks (then flush, if not nil), and returns how many
// lines it emitted.
func pacedLines(dynos, rate int, emit func(dyno, seq int), flush func()) int {
	const d, tick = 3 * time.Second, 10 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	seq := 0
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		for range perTick {
			emit(seq%dynos, seq)
			seq++
		}
		if flush != nil {
			flush()
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * tick)))
	}
	return seq
}

const pad = "................................................"

func text(run, seq int) string {
	return fmt.Sprintf("run=%d seq=%d t=%d %s", run, seq, time.Now().UnixNano(), pad)
}

// writeGrid writes through dyno log writers, as a host does.
func writeGrid(lg *logs.Log, dynos, rate, run int) int {
	ws := make([]io.WriteCloser, dynos)
	for i := range ws {
		ws[i] = lg.Writer("loud", "app", fmt.Sprintf("web.%d", i+1))
	}
	n := pacedLines(dynos, rate, func(dyno, seq int) { ws[dyno].Write([]byte(text(run, seq) + "\n")) }, nil)
	for _, w := range ws {
		w.Close()
	}
	return n
}

// writeRelay writes the same lines as RFC 5424 frames, one TCP
// connection per dyno, to rsyslog.
func writeRelay(b *testing.B, addr string, dynos, rate, run int) int {
	cs := make([]*bufio.Writer, dynos)
	var conns []net.Conn
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		cs[i] = bufio.NewWriter(c)
	}
	n := pacedLines(dynos, rate, func(dyno, seq int) {
		msg := fmt.Sprintf("<190>1 %s host app web.%d - - %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00"), dyno+1, text(run, seq))
		fmt.Fprintf(cs[dyno], "%d %s", len(msg), msg)
	}, func() {
		// Every tick, as a dyno's writes are: rsyslog gets what the
		// tick wrote at once.
		for _, w := range cs {
			w.Flush()
		}
	})
	for i, w := range cs {
		w.Flush()
		conns[i].Close()
	}
	return n
}

// shipDrain runs the drain shipper with one syslog drain of app "loud".
func shipDrain(b *testing.B, st *store.Store, lg *logs.Log, url string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		drain.Ship(ctx, drain.ShipperConfig{Store: st, Log: lg, Allow: func(netip.Addr) error { return nil }})
	}()
	b.Cleanup(func() { cancel(); <-done })
	if err := st.CreateDrain(ctx, grid.Drain{ID: "bench", App: "loud", URL: url, Token: "d.bench", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the shipper's consumer starts from new lines
}

// startRsyslog runs rsyslogd relaying TCP syslog to to; it returns the
// address it listens on.
func startRsyslog(b *testing.B, bin, to string) string {
	dir := b.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	host, toPort, _ := net.SplitHostPort(to)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="relay")
ruleset(name="relay" queue.type="LinkedList" queue.size="1000000") {
  action(type="omfwd" target=%q port=%q protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}
`, dir, port, host, toPort)
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", path, "-i", filepath.Join(dir, "pid"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatal("rsyslogd did not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tailLatency writes marked lines, 100 a second, while 32 dynos write
// 16,000 lines/s of another app, and measures how long each takes to
// reach a `logs -t` reader (logs.Read with Tail, what the log-session
// endpoint serves).
func tailLatency(b *testing.B, lg *logs.Log) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	ch, err := lg.Read(ctx, "tailed", logs.Query{Tail: true, Lines: 1})
	if err != nil {
		b.Fatal(err)
	}
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); writeGrid(lg, 32, 16000, 100) }()
	var lat []time.Duration
	read := make(chan struct{})
	go func() {
		defer close(read)
		for l := range ch {
			var run, seq int
			var t int64
			if _, err := fmt.Sscanf(l.Text, "run=%d seq=%d t=%d", &run, &seq, &t); err == nil {
				lat = append(lat, time.Since(time.Unix(0, t)))
			}
		}
	}()
	w := lg.Writer("tailed", "app", "web.1")
	for i := range 250 {
		w.Write([]byte(text(200, i) + "\n"))
		time.Sleep(10 * time.Millisecond)
	}
	<-loadDone
	time.Sleep(time.Second)
	cancel()
	<-read
	if len(lat) == 0 {
		b.Fatal("the tail read nothing")
	}
	fmt.Printf("  tail (write -> logs -t reader) under 16,000 lines/s of another app: %d lines, p50 %.1f ms, p99 %.1f ms\n",
		len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)))
	b.ReportMetric(ms(percentile(lat, 99)), "tail-p99-ms")
}
