package drain

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
)

const token = "d.5e6f1b7a-3c1d-4a53-9c0e-2f1f9b1c6a10"

// t0 is when test lines are written, and the fixed clock's time.
var t0 = time.Date(2026, 11, 26, 13, 50, 1, 123456000, time.UTC)

func clock() time.Time { return t0 }

func line(i int) logs.Line {
	return logs.Line{Time: t0.Add(time.Duration(i) * time.Millisecond), App: "demo", Source: "app", Dyno: "web.1", Text: fmt.Sprintf("line %d", i)}
}

// allowLoopback lets tests reach their receivers on 127.0.0.1.
func allowLoopback(a netip.Addr) error {
	if a.IsLoopback() {
		return nil
	}
	return DefaultAllow(a)
}

func testConfig(url string) Config {
	return Config{
		URL: url, App: "demo", Token: token, Allow: allowLoopback,
		MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, SendTimeout: 2 * time.Second,
	}
}

func start(t *testing.T, cfg Config) *Drain {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// notices records the lines a drain hands to Config.Notice.
type notices struct {
	mu    sync.Mutex
	lines []logs.Line
}

func (n *notices) add(l logs.Line) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, l)
}

func (n *notices) all() []logs.Line {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]logs.Line(nil), n.lines...)
}

// want is the message l must arrive as, with HOSTNAME host.
func want(l logs.Line, host string) msg {
	pri := "134"
	if l.Source == "app" {
		pri = "190"
	}
	return msg{pri: pri, time: l.Time.UTC().Truncate(time.Microsecond), host: host, app: l.Source, procid: l.Dyno, text: l.Text}
}

func wants(lines []logs.Line, host string) []msg {
	var out []msg
	for _, l := range lines {
		out = append(out, want(l, host))
	}
	return out
}

func diff(t *testing.T, got, want []msg) {
	t.Helper()
	if d := cmp.Diff(want, got, cmp.AllowUnexported(msg{})); d != "" {
		t.Errorf("messages (-want +got):\n%s", d)
	}
}

// l10 is the line that reports n lost lines, lost since t0.
func l10(n int) logs.Line {
	return logs.Line{Time: t0, App: "demo", Source: "heroku", Dyno: "logplex",
		Text: fmt.Sprintf("Error L10 (output buffer overflow): %d messages dropped since 2026-11-26T13:50:01.123456+00:00.", n)}
}

func TestSyslogDeliversInOrder(t *testing.T) {
	t.Parallel()
	r := serveSyslog(t, listen(t), false)
	d := start(t, testConfig(r.url("syslog")))
	var sent []logs.Line
	for i := range 300 {
		l := line(i)
		if i%50 == 7 {
			l.Source, l.Dyno, l.Text = "heroku", "router", `at=info method=GET path="/" status=200`
		}
		d.Send(l)
		sent = append(sent, l)
	}
	diff(t, r.wait(t, len(sent)), wants(sent, token))
	waitFor(t, "Delivered 300", func() bool { return d.Stats().Delivered == 300 })
	if s := d.Stats(); s.Dropped != 0 || s.LastError != "" || s.Queued != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestSyslogTLSDelivers(t *testing.T) {
	t.Parallel()
	pool, cert := testCert(t)
	r := serveSyslog(t, tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}}), false)
	cfg := testConfig(r.url("syslog+tls"))
	cfg.RootCAs = pool
	d := start(t, cfg)
	var sent []logs.Line
	for i := range 100 {
		sent = append(sent, line(i))
		d.Send(line(i))
	}
	diff(t, r.wait(t, len(sent)), wants(sent, token))
}

// A certificate from an unknown CA: nothing is delivered, the app log
// gets one L14 line however often the drain retries, and the lines wait.
func TestSyslogTLSUntrustedCertificate(t *testing.T) {
	t.Parallel()
	_, cert := testCert(t)
	otherCA, _ := testCert(t)
	r := serveSyslog(t, tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}}), false)
	var n notices
	cfg := testConfig(r.url("syslog+tls"))
	cfg.RootCAs, cfg.Notice = otherCA, n.add
	d := start(t, cfg)
	for i := range 5 {
		d.Send(line(i))
	}
	waitFor(t, "5 handshakes", func() bool { return r.accepted() >= 5 })
	got := n.all()
	if len(got) != 1 || !strings.HasPrefix(got[0].Text, "Error L14 (certificate validation error): ") ||
		!strings.Contains(got[0].Text, "x509") || got[0].Source != "heroku" || got[0].Dyno != "logplex" || got[0].App != "demo" {
		t.Fatalf("notices = %+v, want one L14 line", got)
	}
	s := d.Stats()
	if s.Delivered != 0 || s.Queued != 5 || !strings.Contains(s.LastError, "certificate") {
		t.Errorf("Stats = %+v", s)
	}
	if m := r.messages(); len(m) != 0 {
		t.Errorf("receiver got %d messages", len(m))
	}
}

// A syslog drain that is down keeps the newest BufferLines lines; when it
// comes back they arrive after exactly one L10 line with the exact count.
func TestSyslogOutageAndRecovery(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // down, but the port is ours to listen on again
	var n notices
	cfg := testConfig("syslog://" + addr)
	cfg.Notice, cfg.Now, cfg.BufferLines = n.add, clock, 100
	d := start(t, cfg)
	var sent []logs.Line
	for i := range 250 {
		sent = append(sent, line(i))
		d.Send(line(i))
	}
	waitFor(t, "a connection error", func() bool { return d.Stats().LastError != "" })
	if s := d.Stats(); s.Dropped != 150 || s.Queued != 100 || s.Delivered != 0 {
		t.Errorf("while down: Stats = %+v", s)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	r := serveSyslog(t, ln, false)
	diff(t, r.wait(t, 101), wants(append([]logs.Line{l10(150)}, sent[150:]...), token))
	for i := 250; i < 260; i++ {
		sent = append(sent, line(i))
		d.Send(line(i))
	}
	r.wait(t, 111)
	if got := n.all(); len(got) != 1 || got[0] != l10(150) {
		t.Errorf("notices = %+v, want one L10", got)
	}
	waitFor(t, "Delivered 111", func() bool { return d.Stats().Delivered == 111 })
	if s := d.Stats(); s.Dropped != 150 || s.LastError != "" {
		t.Errorf("after recovery: Stats = %+v", s)
	}
}

// A receiver that closes its side of the connection (a restart, an idle
// timeout) makes the drain reconnect before its next batch, rather than
// write into a connection that is going away, and nothing is lost.
func TestSyslogReconnectsAfterReceiverCloses(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"syslog", "syslog+tls"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			pool, cert := testCert(t)
			ln := listen(t)
			if scheme == "syslog+tls" {
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
			}
			r := serveSyslog(t, ln, false)
			cfg := testConfig(r.url(scheme))
			cfg.RootCAs = pool
			d := start(t, cfg)
			var sent []logs.Line
			send := func() {
				sent = append(sent, line(len(sent)))
				d.Send(sent[len(sent)-1])
			}
			for range 10 {
				send()
			}
			for conns := 2; conns <= 3; conns++ {
				r.wait(t, len(sent))
				r.closeWrite()
				waitFor(t, "a new connection", func() bool { send(); return r.accepted() == conns })
			}
			got := r.wait(t, len(sent))
			// Lines on the old and the new connection are read concurrently.
			slices.SortFunc(got, func(a, b msg) int { return a.time.Compare(b.time) })
			diff(t, got, wants(sent, token))
			waitFor(t, "the drain to close the old connections", func() bool { return r.openConns() == 1 })
		})
	}
}

// A receiver that accepts and never reads costs its own drain's buffer
// and nothing else: Send never waits for it, and another drain keeps
// delivering meanwhile.
func TestStuckDrainDoesNotBlock(t *testing.T) {
	t.Parallel()
	stuck := serveSyslog(t, listen(t), true)
	healthy := serveSyslog(t, listen(t), false)
	cfg := testConfig(stuck.url("syslog"))
	cfg.SendTimeout = 10 * time.Second // a Send that waited for the socket would take this long
	ds := start(t, cfg)
	dh := start(t, testConfig(healthy.url("syslog")))
	big := strings.Repeat("y", 1000) // 100 MB in all: more than any socket buffer
	var sent []logs.Line
	var slowest time.Duration
	for i := range 100_000 {
		l := line(i)
		l.Text = big
		begin := time.Now()
		ds.Send(l)
		slowest = max(slowest, time.Since(begin))
		if i%100 == 0 {
			sent = append(sent, line(i/100))
			dh.Send(line(i / 100))
		}
	}
	// Not a benchmark: a blocked Send would take SendTimeout; a loaded
	// machine can pause a goroutine for a good fraction of a second.
	if slowest > 2*time.Second {
		t.Errorf("the slowest of 100,000 Sends took %v", slowest)
	}
	diff(t, healthy.wait(t, len(sent)), wants(sent, token))
	if s := ds.Stats(); s.Dropped == 0 || s.Queued > DefaultBufferLines {
		t.Errorf("stuck drain: Stats = %+v", s)
	}
	begin := time.Now()
	ds.Close()
	if took := time.Since(begin); took > closeGrace+2*time.Second {
		t.Errorf("Close of a stuck drain took %v", took)
	}
}

// A write blocked longer than SendTimeout marks the connection dead: the
// drain dials again.
func TestSendTimeoutReconnects(t *testing.T) {
	t.Parallel()
	r := serveSyslog(t, listen(t), true)
	cfg := testConfig(r.url("syslog"))
	cfg.SendTimeout = 50 * time.Millisecond
	d := start(t, cfg)
	l := line(1)
	l.Text = strings.Repeat("z", 1000)
	waitFor(t, "a second connection", func() bool {
		for range 1000 {
			d.Send(l) // 1 MB more, until the socket buffers are full
		}
		return r.accepted() >= 2
	})
}

func TestOddLines(t *testing.T) {
	t.Parallel()
	in := []logs.Line{
		{Time: t0, Source: "app", Dyno: "web.1", Text: strings.Repeat("x", 10000)},
		{Time: t0, Source: "app", Dyno: "web.1", Text: "first\nsecond\r\nthird"},
		{Time: t0, Source: "app", Dyno: "web.1", Text: "bad \xff\xfe utf8, nul\x00byte"},
		{Time: t0, Source: "app", Dyno: "", Text: "no dyno"},
		{Time: t0, Source: "app", Dyno: "web 1", Text: "space"},
		{Time: t0, Source: "app", Dyno: "wéb.1", Text: "héllo ✓ \x1b[32mgreen\x1b[0m"},
		{Time: t0, Source: "app", Dyno: strings.Repeat("d", 200), Text: "long dyno"},
		{Time: t0, Source: "", Dyno: "api", Text: ""},
		{Source: "heroku", Dyno: "router", Text: "no time"},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 2*3600)), Source: "app", Dyno: "web.2", Text: "zone"},
	}
	out := []msg{
		{pri: "190", time: t0, app: "app", procid: "web.1", text: strings.Repeat("x", 10000)},
		{pri: "190", time: t0, app: "app", procid: "web.1", text: "first second  third"},
		{pri: "190", time: t0, app: "app", procid: "web.1", text: "bad \uFFFD\uFFFD utf8, nul byte"},
		{pri: "190", time: t0, app: "app", procid: "-", text: "no dyno"},
		{pri: "190", time: t0, app: "app", procid: "web_1", text: "space"},
		{pri: "190", time: t0, app: "app", procid: "w__b.1", text: "héllo ✓ \x1b[32mgreen\x1b[0m"},
		{pri: "190", time: t0, app: "app", procid: strings.Repeat("d", 128), text: "long dyno"},
		{pri: "134", time: t0, app: "-", procid: "api", text: ""},
		{pri: "134", time: t0, app: "heroku", procid: "router", text: "no time"},
		{pri: "190", time: time.Date(2026, 1, 2, 1, 4, 5, 123456000, time.UTC), app: "app", procid: "web.2", text: "zone"},
	}
	for _, tc := range []struct{ name, host string }{{"syslog", token}, {"https", "host"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rec *recorder
			cfg := testConfig("")
			if tc.name == "syslog" {
				r := serveSyslog(t, listen(t), false)
				cfg.URL, rec = r.url("syslog"), &r.recorder
			} else {
				r := serveHTTP(t, "user", "hunter2", token)
				cfg.URL, cfg.RootCAs, rec = r.url(), r.pool(), &r.recorder
			}
			cfg.Now = clock
			d := start(t, cfg)
			for _, l := range in {
				d.Send(l)
			}
			var w []msg
			for _, m := range out {
				m.host = tc.host
				w = append(w, m)
			}
			diff(t, rec.wait(t, len(w)), w)
		})
	}
}

// Close lets queued lines go out first, and Send after Close is ignored.
func TestCloseFlushes(t *testing.T) {
	t.Parallel()
	r := serveSyslog(t, listen(t), false)
	d := start(t, testConfig(r.url("syslog")))
	var sent []logs.Line
	for i := range 300 {
		sent = append(sent, line(i))
		d.Send(line(i))
	}
	d.Close()
	d.Send(line(300))
	if s := d.Stats(); s.Delivered != 300 || s.Queued != 0 {
		t.Errorf("after Close: Stats = %+v", s)
	}
	diff(t, r.wait(t, len(sent)), wants(sent, token))
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"bad URL":         {URL: "ftp://example.com"},
		"token spaces":    {URL: "syslog://example.com:514", Token: "d.a b"},
		"token newline":   {URL: "syslog://example.com:514", Token: "d.a\r\nX-Evil: 1"},
		"negative buffer": {URL: "syslog://example.com:514", BufferLines: -1},
	} {
		if d, err := New(cfg); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", name, err)
			if d != nil {
				d.Close()
			}
		}
	}
}

// Close leaves no goroutine or connection behind, whatever state the
// drain is in.
// Not parallel: it counts the process's goroutines.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		sys := serveSyslog(t, listen(t), false)
		stuck := serveSyslog(t, listen(t), true)
		web := serveHTTP(t, "user", "hunter2", token)
		down := listen(t)
		down.Close()
		httpCfg := testConfig(web.url())
		httpCfg.RootCAs = web.pool()
		stuckCfg := testConfig(stuck.url("syslog"))
		stuckCfg.SendTimeout = 50 * time.Millisecond
		var drains []*Drain
		for _, cfg := range []Config{testConfig(sys.url("syslog")), httpCfg, stuckCfg, testConfig("syslog://" + down.Addr().String())} {
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			drains = append(drains, d)
			for i := range 2000 {
				d.Send(line(i))
			}
		}
		sys.wait(t, 1)
		web.wait(t, 1)
		for _, d := range drains {
			d.Close()
		}
		waitFor(t, "drains to close their connections", func() bool { return sys.openConns() == 0 && web.openConns() == 0 })
		sys.close()
		stuck.close()
		web.srv.Close()
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
