package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
	"github.com/dynogrid/grid/internal/schema"
)

// logplexReceiver is an HTTPS-drain endpoint (served over plain HTTP
// here): it takes application/logplex-1 posts, checks their headers and
// keeps each frame's "APP PROCID MSG".
type logplexReceiver struct {
	mu     sync.Mutex
	lines  []string
	tokens map[string]bool
	errs   []string
}

func (r *logplexReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	user, pass, _ := req.BasicAuth()
	if req.Method != "POST" || req.Header.Get("Content-Type") != "application/logplex-1" || user != "drainuser" || pass != "drainpass" {
		r.errs = append(r.errs, fmt.Sprintf("%s %s, %q, auth %q:%q", req.Method, req.URL, req.Header.Get("Content-Type"), user, pass))
		http.Error(w, "bad post", http.StatusBadRequest)
		return
	}
	r.tokens[req.Header.Get("Logplex-Drain-Token")] = true
	br := bufio.NewReader(req.Body)
	n := 0
	for {
		l, err := br.ReadString(' ')
		if err == io.EOF {
			break
		}
		size, _ := strconv.Atoi(strings.TrimSpace(l))
		frame := make([]byte, size)
		if _, err := io.ReadFull(br, frame); err != nil || size == 0 {
			r.errs = append(r.errs, fmt.Sprintf("bad frame %q: %v", l, err))
			break
		}
		// <PRI>1 TIMESTAMP host APP PROCID - MSG, as Heroku's samples
		f := strings.SplitN(strings.TrimSuffix(string(frame), "\n"), " ", 7)
		if len(f) == 7 && f[5] == "-" {
			r.lines = append(r.lines, f[3]+"["+f[4]+"]: "+f[6])
		} else {
			r.errs = append(r.errs, fmt.Sprintf("frame %q", frame))
		}
		n++
	}
	if c := req.Header.Get("Logplex-Msg-Count"); c != strconv.Itoa(n) {
		r.errs = append(r.errs, fmt.Sprintf("Logplex-Msg-Count %s for %d frames", c, n))
	}
}

func (r *logplexReceiver) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestDrains: an app's drain, outside the grid, gets the app's lines of
// every source (build, dynos, router, API) and no other app's; drains
// into the grid itself are refused; the drain's password stays out of the
// grid's log.
func TestDrains(t *testing.T) {
	recv := &logplexReceiver{tokens: map[string]bool{}}
	base := sandboxtest.ServeOutside(t, "drains", netip.MustParsePrefix("10.235.251.0/30"), recv)
	g := gridtest.Start(t, "--boot-timeout", "10s", "--stop-grace", "5s")
	g.MustCLI("apps:create", "logged")
	g.MustCLI("apps:create", "quiet")
	url := strings.Replace(base, "http://", "http://drainuser:drainpass@", 1) + "/drain"
	if out := g.MustCLI("drains:add", url, "-a", "logged"); !strings.Contains(out, "Successfully added drain") {
		t.Fatalf("drains:add: %s", out)
	}
	var ds []schema.LogDrain
	if err := json.Unmarshal([]byte(g.MustCLI("drains", "-a", "logged", "--json")), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("drains: %v %v", ds, err)
	}

	if out, err := g.Push("logged", g.Repo("testdata/addons-app")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	g.WaitBody("logged", "/", "no add-ons\n", 30*time.Second)
	g.MustCLI("config:set", "GREETING=hi", "-a", "logged")
	g.MustCLI("config:set", "SECRETLESS=1", "-a", "quiet")
	for _, want := range []string{
		`heroku[router]: at=info method=GET path="/"`, // the router
		`app[web.1]: `, // the dyno's stderr
		`app[api]: Set GREETING config vars by user`, // the API
		`app[api]: Build succeeded`,                  // the build
		`heroku[web.1]: State changed from starting to up`,
	} {
		gridtest.WaitFor(t, 30*time.Second, "the drain's "+want, func() error {
			if !recv.has(want) {
				return fmt.Errorf("no %q yet", want)
			}
			return nil
		})
	}
	recv.mu.Lock()
	if !recv.tokens[ds[0].Token] || len(recv.tokens) != 1 {
		t.Errorf("drain tokens %v, want %s", recv.tokens, ds[0].Token)
	}
	for _, e := range recv.errs {
		t.Errorf("receiver: %s", e)
	}
	recv.mu.Unlock()
	if recv.has("SECRETLESS") {
		t.Error("the drain got another app's line")
	}

	// grid drains shows how delivery goes: lines delivered, and why a
	// drain whose receiver refuses connections gets none.
	closed := strings.Replace(base, "http://", "syslog://", 1) + ":9"
	g.MustCLI("drains:add", closed, "-a", "logged")
	g.MustCLI("config:set", "AFTER=1", "-a", "logged")
	gridtest.WaitFor(t, 30*time.Second, "drain statuses", func() error {
		out := g.MustCLI("drains", "-a", "logged")
		if !regexp.MustCompile(`\n  [1-9]\d* lines delivered, 0 dropped`).MatchString(out) || !strings.Contains(out, "connection refused") {
			return fmt.Errorf("drains:\n%s", out)
		}
		return nil
	})
	g.MustCLI("drains:remove", closed, "-a", "logged")

	// Into the grid: this machine's addresses, its dyno subnet.
	for _, inside := range []string{"syslog://10.235.251.1:514", "syslog://10.231.0.9:514", "https://127.0.0.1/x"} {
		if _, errOut, err := g.CLI("drains:add", inside, "-a", "logged"); err == nil || !strings.Contains(errOut, "outside") {
			t.Errorf("drains:add %s: %v %s", inside, err, errOut)
		}
	}
	if strings.Contains(g.Output(), "drainpass") {
		t.Error("the drain's password is in the grid's log")
	}
	g.MustCLI("drains:remove", ds[0].Token, "-a", "logged")
	if out := g.MustCLI("drains", "-a", "logged"); !strings.Contains(out, "has no drains") {
		t.Errorf("drains after remove: %s", out)
	}
}
