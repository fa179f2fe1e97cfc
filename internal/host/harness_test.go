package host_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit() // first: libcontainer re-executes this binary
	if js := os.Getenv(agentProcessEnv); js != "" {
		os.Exit(runAgentProcess(js)) // for TestAgentKilled: runs until killed
	}
	sandboxtest.Main(m, "host", "10.237.0.0/22")
}

const (
	appName = "hello"
	appUID  = 200777
	hostID  = "h1"
)

// server.py is the test app's web process: it answers with its
// environment, and on SIGTERM says so and exits 0 (or, with IGNORE_TERM
// set, ignores it).
const serverPy = `import http.server, json, os, signal, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        keys = ("PORT", "DYNO", "HOME", "PATH", "GREETING", "PROFILED")
        body = json.dumps({k: os.environ.get(k) for k in keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
def term(*args):
    print("graceful shutdown", flush=True)
    sys.exit(0)
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, term)
srv = http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H)
print("listening on", os.environ["PORT"], flush=True)
srv.serve_forever()
`

// harness is an agent on a real NATS server, log, slug cache and
// sandboxtest.Manager. The agent connects with its host's credentials, so
// a permission it lacks fails the test; the test itself is a server.
type harness struct {
	srv    *store.Server
	srvCfg store.ServerConfig // Listen fixed after the first start, for restarts
	st     *store.Store       // the test's: server role
	log    *logs.Log          // the test's, to read the app's log
	cfg    host.Config
	slugID string
}

func newHarness(t *testing.T, mod func(*host.Config)) *harness {
	t.Helper()
	if sandboxtest.Manager == nil {
		t.Skip("needs root: starts real sandboxtest.Manager")
	}
	h := &harness{srvCfg: store.ServerConfig{Dir: t.TempDir(), Secret: storetest.Secret}, slugID: store.NewID()}
	h.startNATS(t)
	t.Cleanup(func() { h.srv.Shutdown() })
	u, err := url.Parse(h.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	h.srvCfg.Listen = u.Host
	srv := &storetest.Server{Server: h.srv}
	h.st = srv.As(t, store.Role{Kind: store.RoleServer, ID: "test"})
	ctx := context.Background()
	if h.log, err = logs.Open(ctx, h.st); err != nil { // creates the stream
		t.Fatal(err)
	}
	t.Cleanup(h.log.Close)
	hostSt := srv.As(t, store.Role{Kind: store.RoleHost, ID: hostID})
	hostLog, err := logs.Open(ctx, hostSt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hostLog.Close)
	h.putSlug(t)
	h.cfg = host.Config{
		ID:        hostID,
		Store:     hostSt,
		Logs:      hostLog,
		Sandboxes: sandboxtest.Manager,
		Slugs:     &slug.Cache{Dir: t.TempDir()},
		StopGrace: 5 * time.Second,
		Heartbeat: 100 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MemoryMB:  8192,
		// The tests share one sandbox manager: leave nothing to the next.
		StopDynosOnExit: true,
	}
	if mod != nil {
		mod(&h.cfg)
	}
	return h
}

// startNATS starts the server (again, on the same port and directory).
func (h *harness) startNATS(t *testing.T) {
	t.Helper()
	srv, err := store.StartServer(h.srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// putSlug packs the test app and stores it as h.slugID.
func (h *harness) putSlug(t *testing.T) {
	t.Helper()
	h.storeSlug(t, h.slugID)
}

// storeSlug packs the test app and stores it as slug id.
func (h *harness) storeSlug(t *testing.T, id string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"server.py":          serverPy,
		".profile.d/grid.sh": "export PROFILED=yes\n",
		"bin/hello":          "#!/bin/sh\necho hello from bin\n",
		"Procfile":           "web: python3 /app/server.py\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	info, err := slug.Pack(dir, &buf, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	meta := grid.Slug{ID: id, App: appName, Size: info.Size, Checksum: info.Checksum, Stack: grid.Stack}
	if err := h.st.PutSlug(context.Background(), meta, &buf); err != nil {
		t.Fatal(err)
	}
}

// agent runs an agent; stop cancels it and returns how long Run took to
// return. Cleanup stops it if the test did not.
type agent struct {
	cancel context.CancelFunc
	done   chan error
	took   time.Duration
}

func (h *harness) start(t *testing.T) *agent {
	t.Helper()
	a, err := host.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ag := &agent{cancel: cancel, done: make(chan error, 1)}
	go func() { ag.done <- a.Run(ctx) }()
	t.Cleanup(func() { ag.stop(t) })
	return ag
}

func (ag *agent) stop(t *testing.T) time.Duration {
	t.Helper()
	if ag.done == nil {
		return ag.took
	}
	begin := time.Now()
	ag.cancel()
	select {
	case err := <-ag.done:
		if err != nil {
			t.Errorf("agent Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("agent did not stop within a minute")
	}
	ag.done, ag.took = nil, time.Since(begin)
	return ag.took
}

// assign tells the host to run a dyno.
func (h *harness) assign(t *testing.T, name, command string, mod func(*grid.Assignment)) grid.Assignment {
	t.Helper()
	a := newAssignment(name, command, func(a *grid.Assignment) {
		a.SlugID = h.slugID
		if mod != nil {
			mod(a)
		}
	})
	if err := h.st.PutAssignment(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

// newAssignment describes a dyno of the test app on the test host.
func newAssignment(name, command string, mod func(*grid.Assignment)) grid.Assignment {
	typ, _, _ := strings.Cut(name, ".")
	a := grid.Assignment{
		DynoID: store.NewID(), App: appName, UID: appUID, Host: hostID, Name: name, Type: typ,
		Command: command, Size: grid.DefaultSize, Release: 2,
		Env: map[string]string{"GREETING": "hi there"}, CreatedAt: time.Now(),
	}
	if mod != nil {
		mod(&a)
	}
	return a
}

func (h *harness) unassign(t *testing.T, a grid.Assignment) {
	t.Helper()
	if err := h.st.DeleteAssignment(context.Background(), a.Host, a.DynoID); err != nil {
		t.Fatal(err)
	}
}

// waitDyno waits until the record of dyno id satisfies ok (found is false
// when there is no record) and returns it.
func (h *harness) waitDyno(t *testing.T, id, what string, limit time.Duration, ok func(d grid.Dyno, found bool) bool) grid.Dyno {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ds, err := h.st.Dynos(context.Background(), appName)
		if err != nil {
			t.Fatal(err)
		}
		var d grid.Dyno
		found := false
		for _, x := range ds {
			if x.ID == id {
				d, found = x, true
			}
		}
		if ok(d, found) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; record %+v (found %v)\nlogs:\n%s", limit, what, d, found, strings.Join(h.lines(t), "\n"))
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func up(d grid.Dyno, found bool) bool { return found && d.State == grid.DynoUp }

func gone(_ grid.Dyno, found bool) bool { return !found }

// lines returns the app's log as "src[dyno]: text" lines.
func (h *harness) lines(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := h.log.Read(ctx, appName, logs.Query{Lines: logs.History})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range ch {
		out = append(out, l.Source+"["+l.Dyno+"]: "+l.Text)
	}
	return out
}

// waitLines waits until the log holds want as a subsequence (in order,
// other lines between allowed) and returns the log.
func (h *harness) waitLines(t *testing.T, limit time.Duration, want ...string) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := h.lines(t)
		if subsequence(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for log lines\n%s\nlog:\n%s", limit, strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func subsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

func logQuery(dyno string) logs.Query { return logs.Query{Lines: logs.History, Dyno: dyno} }
