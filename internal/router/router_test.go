package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

func TestRoutesToEveryUpWebDyno(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("hello", 3)
	var bs []*backend
	for i := 1; i <= 3; i++ {
		b := newBackend(t, fmt.Sprint("web.", i), nil)
		bs = append(bs, b)
		h.dyno("hello", i, grid.DynoUp, b.addr())
	}
	h.await("hello", endpointsAre(3))
	for i := 0; i < 60; i++ {
		res, body := h.get("http://hello.localhost/")
		if res.StatusCode != 200 || !strings.HasPrefix(body, "web.") {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
		if res.Header.Get("Via") != "1.1 grid-router" {
			t.Errorf("response Via %q", res.Header.Get("Via"))
		}
	}
	for _, b := range bs {
		if b.hits.Load() == 0 {
			t.Errorf("%s got no requests", b.name)
		}
		t.Logf("%s: %d of 60", b.name, b.hits.Load())
	}
}

func TestUnknownHostOrApp(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	for _, url := range []string{"http://nope.localhost/", "http://elsewhere.example/", "http://localhost/"} {
		res, body := h.get(url)
		if res.StatusCode != 404 || !strings.Contains(body, "There's nothing here, yet.") {
			t.Errorf("%s: %d %q", url, res.StatusCode, body)
		}
	}
}

// A dyno marked down in the store stops getting requests as soon as the
// watch delivers the change.
func TestDynoDownStopsTrafficWithinMilliseconds(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("shrink", 3)
	var bs []*backend
	for i := 1; i <= 3; i++ {
		b := newBackend(t, fmt.Sprint("web.", i), nil)
		bs = append(bs, b)
		h.dyno("shrink", i, grid.DynoUp, b.addr())
	}
	h.await("shrink", endpointsAre(3))

	var worst time.Duration
	for round := 0; round < 10; round++ {
		start := time.Now()
		h.dyno("shrink", 2, grid.DynoDown, bs[1].addr())
		h.await("shrink", endpointsAre(2))
		worst = max(worst, time.Since(start))
		h.dyno("shrink", 2, grid.DynoUp, bs[1].addr())
		h.await("shrink", endpointsAre(3))
	}
	t.Logf("store write → route change: worst of 10 %v", worst)
	if worst > time.Second {
		t.Errorf("route change took %v", worst)
	}

	h.dyno("shrink", 2, grid.DynoDown, bs[1].addr())
	h.await("shrink", endpointsAre(2))
	before := bs[1].hits.Load()
	for i := 0; i < 30; i++ {
		if res, _ := h.get("http://shrink.localhost/"); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if got := bs[1].hits.Load() - before; got != 0 {
		t.Errorf("down dyno got %d requests", got)
	}
}

// A dyno that refuses connections (its process died before the host
// noticed) is skipped: the request goes to another dyno, whatever its
// method, with its body intact, and the client sees no error.
func TestDeadDynoIsRetriedTransparently(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("flaky", 3)
	live1, live2 := newBackend(t, "web.1", nil), newBackend(t, "web.2", nil)
	dead := newBackend(t, "web.3", nil)
	dead.Close()
	h.dyno("flaky", 1, grid.DynoUp, live1.addr())
	h.dyno("flaky", 2, grid.DynoUp, live2.addr())
	h.dyno("flaky", 3, grid.DynoUp, dead.addr())
	h.await("flaky", endpointsAre(3))
	for i := 0; i < 40; i++ {
		payload := fmt.Sprint("payload-", i)
		res, body := h.do(mustRequest(t, "POST", "http://flaky.localhost/charge", strings.NewReader(payload)))
		if res.StatusCode != 200 || !strings.HasSuffix(body, ":"+payload) {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	rt := h.r.table.Load().routes["flaky"]
	if !rt.endpoints[2].quarantined(time.Now().UnixNano()) {
		t.Error("dead dyno not quarantined")
	}
	if live1.hits.Load()+live2.hits.Load() != 40 {
		t.Errorf("live dynos served %d", live1.hits.Load()+live2.hits.Load())
	}
}

func TestAllDynosRefuseIsH21(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("down", 2)
	for i := 1; i <= 2; i++ {
		b := newBackend(t, "x", nil)
		b.Close()
		h.dyno("down", i, grid.DynoUp, b.addr())
	}
	h.await("down", endpointsAre(2))
	logs := h.tailRouter("down")
	res, body := h.get("http://down.localhost/")
	if res.StatusCode != 503 || !strings.Contains(body, "Application error") {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if line := nextLine(t, logs); !strings.Contains(line, `at=error code=H21 desc="Backend connection refused"`) {
		t.Errorf("log line %s", line)
	}
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	up := newBackend(t, "web.1", nil)

	h.app("crashed", 2)
	h.dyno("crashed", 1, grid.DynoCrashed, "")
	h.dyno("crashed", 2, grid.DynoCrashed, "")
	h.app("zero", 0)
	h.dyno("zero", 1, grid.DynoDown, up.addr())
	if err := h.st.CreateApp(bg, grid.App{ID: "x", Name: "noform", Release: grid.Release{SlugID: "s"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.CreateApp(bg, grid.App{ID: "y", Name: "blank"}); err != nil {
		t.Fatal(err)
	}
	h.app("closed", 1)
	h.dyno("closed", 1, grid.DynoUp, up.addr())
	h.maintenance("closed", true)
	h.await("closed", func(rt *route) bool { return rt.maintenance && len(rt.endpoints) == 1 })
	h.await("crashed", func(rt *route) bool { return rt.web == 2 && rt.crashed == 2 })
	h.await("blank", func(*route) bool { return true })
	h.await("noform", func(rt *route) bool { return !rt.blank })
	h.await("zero", func(rt *route) bool { return rt.web == 0 })

	cases := []struct {
		app, page, log string
	}{
		{"crashed", "Application error", `at=error code=H10 desc="App crashed"`},
		{"zero", "Application error", `at=error code=H14 desc="No web processes running"`},
		{"noform", "Application error", `at=error code=H14 desc="No web processes running"`},
		{"closed", "Offline for Maintenance", `at=info code=H80 desc="Maintenance mode"`},
		{"blank", "Nothing has been deployed here yet", `at=info code=H81 desc="Blank app"`},
	}
	for _, tc := range cases {
		t.Run(tc.app, func(t *testing.T) {
			logs := h.tailRouter(tc.app)
			res, body := h.get("http://" + tc.app + ".localhost/x")
			if res.StatusCode != 503 || !strings.Contains(body, tc.page) {
				t.Errorf("%d %q", res.StatusCode, body)
			}
			if res.Header.Get("Cache-Control") != "no-cache, no-store" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("headers %v", res.Header)
			}
			line := nextLine(t, logs)
			if !strings.HasPrefix(line, tc.log) || !strings.Contains(line, `dyno= connect= service= status=503 bytes=0`) {
				t.Errorf("log line %s", line)
			}
		})
	}
	if up.hits.Load() != 0 {
		t.Error("maintenance or scaled-down app reached its dyno")
	}
	// Maintenance off: served again at once.
	h.maintenance("closed", false)
	h.await("closed", func(rt *route) bool { return !rt.maintenance })
	if res, _ := h.get("http://closed.localhost/"); res.StatusCode != 200 {
		t.Errorf("after maintenance: %d", res.StatusCode)
	}
}

// A request for an app whose web dyno is starting waits for it.
func TestBootWait(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.BootTimeout = 300 * time.Millisecond })
	b := newBackend(t, "web.1", nil)

	t.Run("comes up", func(t *testing.T) {
		h.app("booting", 1)
		h.dyno("booting", 1, grid.DynoStarting, "")
		h.await("booting", func(rt *route) bool { return rt.web == 1 && rt.starting == 1 })
		done := make(chan int)
		go func() {
			res, err := h.client.Get("http://booting.localhost/")
			if err != nil {
				t.Error(err)
				done <- 0
				return
			}
			res.Body.Close()
			done <- res.StatusCode
		}()
		h.dyno("booting", 1, grid.DynoUp, b.addr())
		if code := <-done; code != 200 {
			t.Errorf("status %d", code)
		}
	})
	t.Run("never comes up: H20", func(t *testing.T) {
		h.app("slowboot", 1)
		h.dyno("slowboot", 1, grid.DynoStarting, "")
		h.await("slowboot", func(rt *route) bool { return rt.web == 1 && rt.starting == 1 })
		logs := h.tailRouter("slowboot")
		start := time.Now()
		res, _ := h.get("http://slowboot.localhost/")
		if res.StatusCode != 503 || time.Since(start) < 300*time.Millisecond {
			t.Errorf("%d after %v", res.StatusCode, time.Since(start))
		}
		if line := nextLine(t, logs); !strings.Contains(line, "code=H20") {
			t.Errorf("log %s", line)
		}
	})
	t.Run("crashes while waiting: H10", func(t *testing.T) {
		h.app("bootcrash", 1)
		h.dyno("bootcrash", 1, grid.DynoStarting, "")
		h.await("bootcrash", func(rt *route) bool { return rt.web == 1 && rt.starting == 1 })
		logs := h.tailRouter("bootcrash")
		done := make(chan int)
		go func() {
			res, err := h.client.Get("http://bootcrash.localhost/")
			if err != nil {
				t.Error(err)
				done <- 0
				return
			}
			res.Body.Close()
			done <- res.StatusCode
		}()
		h.dyno("bootcrash", 1, grid.DynoCrashed, "")
		if code := <-done; code != 503 {
			t.Errorf("status %d", code)
		}
		if line := nextLine(t, logs); !strings.Contains(line, "code=H10") {
			t.Errorf("log %s", line)
		}
	})
}

func TestRequestTimeoutIsH12(t *testing.T) {
	t.Parallel()
	h := startRouter(t, func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
	release := make(chan struct{})
	defer close(release)
	slow := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	h.app("slow", 1)
	h.dyno("slow", 1, grid.DynoUp, slow.addr())
	h.await("slow", endpointsAre(1))
	logs := h.tailRouter("slow")
	start := time.Now()
	res, body := h.do(mustRequest(t, "POST", "http://slow.localhost/report", strings.NewReader("data")))
	took := time.Since(start)
	if res.StatusCode != 503 || !strings.Contains(body, "Application error") || took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("%d after %v", res.StatusCode, took)
	}
	line := nextLine(t, logs)
	if !regexp.MustCompile(`^at=error code=H12 desc="Request timeout" method=POST path="/report" .* dyno=web.1 connect=\d+ms service=2\d\dms status=503 bytes=0 protocol=http$`).MatchString(line) {
		t.Errorf("log line %s", line)
	}
	if slow.hits.Load() != 1 {
		t.Errorf("timed-out request was retried: %d hits", slow.hits.Load())
	}
}

func TestClosedWithoutResponseIsH13(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	rude := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	h.app("rude", 1)
	h.dyno("rude", 1, grid.DynoUp, rude.addr())
	h.await("rude", endpointsAre(1))
	logs := h.tailRouter("rude")
	res, _ := h.do(mustRequest(t, "POST", "http://rude.localhost/", strings.NewReader("x")))
	if res.StatusCode != 503 {
		t.Errorf("status %d", res.StatusCode)
	}
	if line := nextLine(t, logs); !strings.HasPrefix(line, `at=error code=H13 desc="Connection closed without response"`) {
		t.Errorf("log %s", line)
	}
}

func TestForwardedHeadersReachTheDyno(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Backend-Hop")
		w.Header().Set("X-Backend-Hop", "1")
		w.Header().Set("X-App", "yes")
		io.WriteString(w, "ok")
	})
	h.app("fwd", 1)
	h.dyno("fwd", 1, grid.DynoUp, b.addr())
	h.await("fwd", endpointsAre(1))

	before := time.Now().UnixMilli()
	req := mustRequest(t, "GET", "http://FWD.localhost:8080/path?q=1", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Request-Id", "client-chosen-id-0123456789")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "1")
	res, _ := h.do(req)
	after := time.Now().UnixMilli()
	got := b.last.Load()
	_, port, _ := net.SplitHostPort(h.addr)
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Port":  port,
		"X-Request-Id":      "client-chosen-id-0123456789",
		"Via":               "1.1 grid-router",
		"X-Client-Hop":      "",
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if got.Host != "FWD.localhost:8080" || got.URL.RequestURI() != "/path?q=1" {
		t.Errorf("host %q uri %q", got.Host, got.URL.RequestURI())
	}
	var start int64
	fmt.Sscan(got.Header.Get("X-Request-Start"), &start)
	if start < before || start > after {
		t.Errorf("X-Request-Start %d not in [%d, %d]", start, before, after)
	}
	if res.Header.Get("X-Backend-Hop") != "" || res.Header.Get("X-App") != "yes" || res.Header.Get("Via") != "1.1 grid-router" {
		t.Errorf("response headers %v", res.Header)
	}

	// An invalid request ID is replaced by a fresh UUID.
	req = mustRequest(t, "GET", "http://fwd.localhost/", nil)
	req.Header.Set("X-Request-Id", "bad id")
	h.do(req)
	if id := b.last.Load().Header.Get("X-Request-Id"); len(id) != 36 || id == "bad id" {
		t.Errorf("request id %q", id)
	}
}

func TestRouterLogLines(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world!") })
	h.app("logged", 1)
	h.dyno("logged", 1, grid.DynoUp, b.addr())
	h.await("logged", endpointsAre(1))
	logs := h.tailRouter("logged")
	req := mustRequest(t, "POST", "http://logged.localhost/a/b?c=d", strings.NewReader("secret-body"))
	req.Header.Set("Authorization", "Bearer secret-token")
	req.Header.Set("X-Request-Id", "log-test-request-id-000001")
	h.do(req)
	line := nextLine(t, logs)
	re := regexp.MustCompile(`^at=info method=POST path="/a/b\?c=d" host=logged.localhost request_id=log-test-request-id-000001 fwd="127.0.0.1" dyno=web.1 connect=\d+ms service=\d+ms status=200 bytes=12 protocol=http$`)
	if !re.MatchString(line) {
		t.Errorf("log line %s", line)
	}
	if strings.Contains(line, "secret") {
		t.Error("log line leaks the body or the Authorization header")
	}
}

// Streamed responses reach the client as they are written, not when the
// dyno finishes.
func TestStreamingResponseIsNotBuffered(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	finish := make(chan struct{})
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-finish
		io.WriteString(w, "data: last\n\n")
	})
	h.app("stream", 1)
	h.dyno("stream", 1, grid.DynoUp, b.addr())
	h.await("stream", endpointsAre(1))
	res, err := h.client.Get("http://stream.localhost/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event %q %v", line, err)
	}
	close(finish)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: last\n\n" {
		t.Errorf("rest %q", rest)
	}
}

func TestLargeBodiesStreamBothWays(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		n, _ := io.Copy(sum, r.Body)
		fmt.Fprintf(w, "%d %x\n", n, sum.Sum(nil))
		io.Copy(w, io.LimitReader(zeros{}, 8<<20))
	})
	h.app("big", 1)
	h.dyno("big", 1, grid.DynoUp, b.addr())
	h.await("big", endpointsAre(1))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	req := mustRequest(t, "PUT", "http://big.localhost/upload", io.MultiReader(bytes.NewReader(payload)))
	res, body := h.do(req)
	want := fmt.Sprintf("%d %x\n", len(payload), sha256.Sum256(payload))
	if res.StatusCode != 200 || !strings.HasPrefix(body, want) || len(body) != len(want)+8<<20 {
		t.Errorf("%d, %d bytes, head %q", res.StatusCode, len(body), body[:min(len(body), 80)])
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Many clients at once, with dynos coming and going: no client errors.
func TestConcurrentRequestsDuringChurn(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	h.app("churn", 3)
	var bs []*backend
	for i := 1; i <= 3; i++ {
		b := newBackend(t, fmt.Sprint("web.", i), nil)
		bs = append(bs, b)
		h.dyno("churn", i, grid.DynoUp, b.addr())
	}
	h.await("churn", endpointsAre(3))
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := h.client.Get("http://churn.localhost/")
				if err != nil {
					errs <- err.Error()
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs <- res.Status
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		state := grid.DynoDown
		if i%2 == 1 {
			state = grid.DynoUp
		}
		h.dyno("churn", 1+i%3, state, bs[i%3].addr())
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A client that gives up while its dyno works is logged as H27, and the
// dyno's connection is released.
func TestClientGoneIsH27(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	started := make(chan struct{})
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // the router cancels the dyno's request
	})
	h.app("quitter", 1)
	h.dyno("quitter", 1, grid.DynoUp, b.addr())
	h.await("quitter", endpointsAre(1))
	logs := h.tailRouter("quitter")
	ctx, cancel := context.WithCancel(bg)
	go func() { <-started; cancel() }()
	if _, err := h.client.Do(mustRequest(t, "GET", "http://quitter.localhost/", nil).WithContext(ctx)); err == nil {
		t.Fatal("request succeeded")
	}
	line := nextLine(t, logs)
	if !strings.HasPrefix(line, `sock=client at=warning code=H27 desc="Client Request Interrupted"`) || !strings.Contains(line, "status=499") {
		t.Errorf("log %s", line)
	}
	// The attempt is released before the line is written.
	if n := h.r.table.Load().routes["quitter"].endpoints[0].inflight.Load(); n != 0 {
		t.Errorf("%d requests still counted in flight", n)
	}
}

// Serve lets an in-flight request finish when its context ends, closes
// upgraded connections, and returns nil.
func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	h := startRouter(t, nil)
	release, arrived := make(chan struct{}), make(chan struct{})
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "raw" {
			conn, brw, _ := http.NewResponseController(w).Hijack()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			io.Copy(io.Discard, conn)
			conn.Close()
			return
		}
		close(arrived)
		<-release
		io.WriteString(w, "finished")
	})
	h.app("grace", 1)
	h.dyno("grace", 1, grid.DynoUp, b.addr())
	h.await("grace", endpointsAre(1))

	r2 := New(Config{Store: h.rst, Domain: "localhost", Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	runCtx, stopRun := context.WithCancel(bg)
	defer stopRun()
	go r2.Run(runCtx)
	<-r2.Ready()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r2.Serve(ctx, ln) }()

	ws, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	io.WriteString(ws, "GET / HTTP/1.1\r\nHost: grace.localhost\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n")
	wsr := bufio.NewReader(ws)
	if res, err := http.ReadResponse(wsr, nil); err != nil || res.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", res, err)
	}

	got := make(chan string, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: grace.localhost\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			got <- err.Error()
			return
		}
		body, _ := io.ReadAll(res.Body)
		got <- string(body)
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("slow request never reached the dyno")
	}
	cancel()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := wsr.ReadByte(); err != io.EOF {
		t.Errorf("upgraded connection not closed on shutdown: %v", err)
	}
	close(release)
	if body := <-got; body != "finished" {
		t.Errorf("in-flight request: %q", body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// cannedBackend answers every connection's first request with raw, then
// closes it.
func cannedBackend(t *testing.T, raw string) string {
	t.Helper()
	return cannedFunc(t, func() string { return raw })
}

// A response the router cannot parse is H17; one past Heroku's limits on
// headers (512 KiB of them, conflicting Content-Length) is H25. Neither is
// retried: the dyno has seen the request.
func TestBadResponsesAreH17AndH25(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw, line string
		status          int
	}{
		{"bad status code", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", `at=error code=H17 desc="Poorly formatted HTTP response"`, 503},
		{"bad header line", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", `at=error code=H17 desc="Poorly formatted HTTP response"`, 503},
		{"headers over 512 KiB", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 600<<10) + "\r\n\r\n", `at=error code=H25 desc="HTTP Restriction"`, 502},
		{"conflicting Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", `at=error code=H25 desc="HTTP Restriction"`, 502},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := startRouter(t, nil)
			app := fmt.Sprintf("bad%d", i)
			h.app(app, 1)
			h.dyno(app, 1, grid.DynoUp, cannedBackend(t, tc.raw))
			h.await(app, endpointsAre(1))
			logs := h.tailRouter(app)
			res, _ := h.do(mustRequest(t, "GET", "http://"+app+".localhost/", nil))
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			if line := nextLine(t, logs); !strings.HasPrefix(line, tc.line) || !strings.Contains(line, " dyno=web.1 ") {
				t.Errorf("log %s", line)
			}
		})
	}
}
