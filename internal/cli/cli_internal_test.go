package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/schema"
)

func TestParseFlags(t *testing.T) {
	flags := []flag{appFlag, {name: "tail", short: "t"}, {name: "num", short: "n", value: "N"}}
	tests := []struct {
		args []string
		pos  []string
		opts map[string]string
	}{
		{[]string{"A=1", "-a", "x", "B=2"}, []string{"A=1", "B=2"}, map[string]string{"app": "x"}},
		{[]string{"--app=x", "-t", "-n5"}, nil, map[string]string{"app": "x", "tail": "true", "num": "5"}},
		{[]string{"--num", "5", "--", "-a", "--tail"}, []string{"-a", "--tail"}, map[string]string{"num": "5"}},
		{[]string{"-", "worker-1"}, []string{"-", "worker-1"}, map[string]string{}},
		{[]string{"-a=x"}, nil, map[string]string{"app": "x"}},
	}
	for _, tt := range tests {
		pos, opts, err := parseFlags(flags, tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.pos, pos); diff != "" {
			t.Errorf("%q positional (-want +got):\n%s", tt.args, diff)
		}
		if diff := cmp.Diff(tt.opts, opts); diff != "" {
			t.Errorf("%q options (-want +got):\n%s", tt.args, diff)
		}
	}
	for _, bad := range [][]string{{"-z"}, {"--tail=yes"}, {"-n"}, {"--bogus"}} {
		if _, _, err := parseFlags(flags, bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseScaleArg(t *testing.T) {
	q := func(s string) *schema.Quantity { return (*schema.Quantity)(&s) }
	tests := map[string]schema.FormationUpdate{
		"web=3":             {Type: "web", Quantity: q("3")},
		"worker+1":          {Type: "worker", Quantity: q("+1")},
		"worker-2":          {Type: "worker", Quantity: q("-2")},
		"web=2:Standard-2X": {Type: "web", Quantity: q("2"), Size: "Standard-2X"},
		"my-worker-1":       {Type: "my-worker", Quantity: q("-1")},
		"web:performance-m": {Type: "web", Size: "performance-m"},
		"clock_1=0:basic":   {Type: "clock_1", Quantity: q("0"), Size: "basic"},
	}
	for arg, want := range tests {
		got, ok := parseScaleArg(arg)
		if !ok {
			t.Errorf("%s: not parsed", arg)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", arg, diff)
		}
	}
	for _, bad := range []string{"web", "web=", "=3", "web=x", "web=3:", "web 3", "web=+1"} {
		if _, ok := parseScaleArg(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestAppFromURL(t *testing.T) {
	const api = "http://localhost:5000"
	for u, want := range map[string]string{
		"http://localhost:5000/hello.git":          "hello",
		"http://user:key@localhost:5000/hello.git": "hello",
		"https://localhost:5000/hello.git/":        "hello",
		"http://LOCALHOST:5000/hello.git":          "hello",
		"http://localhost:5001/hello.git":          "",
		"https://git.heroku.com/hello.git":         "",
		"http://localhost:5000/Hello.git":          "",
		"http://localhost:5000/x/hello.git":        "",
		"git@github.com:example/hello.git":         "",
		"http://localhost:5000/hello":              "",
	} {
		got, ok := appFromURL(u, api)
		if got != want || ok != (want != "") {
			t.Errorf("appFromURL(%q) = %q, %v; want %q", u, got, ok, want)
		}
	}
	if got, _ := appFromURL("http://h/grid/a1.git", "http://h/grid/"); got != "a1" {
		t.Errorf("API under a path: %q", got)
	}
}

func TestTimeFormats(t *testing.T) {
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	k := clock{now: func() time.Time { return now }, loc: time.UTC}
	for d, want := range map[time.Duration]string{
		5 * time.Second:  "2026/01/05 11:59:55 +0000 (~ 5s ago)",
		5 * time.Minute:  "2026/01/05 11:55:00 +0000 (~ 5m ago)",
		3 * time.Hour:    "2026/01/05 09:00:00 +0000 (~ 3h ago)",
		48 * time.Hour:   "2026/01/03 12:00:00 +0000",
		-2 * time.Second: "2026/01/05 12:00:02 +0000 (~ 0s ago)",
	} {
		if got := k.format(now.Add(-d)); got != want {
			t.Errorf("%v ago: %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 12_300_000: "12.3 MB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReadEvents(t *testing.T) {
	stream := "retry: 1000\n\n: keepalive\n\nid: 7\ndata: one\n\nid: 8\ndata: two\ndata: lines\n\ndata: no id\n\n"
	var got []string
	last, err := readEvents(strings.NewReader(stream), "", func(d string) { got = append(got, d) })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"one", "two\nlines", "no id"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if last != "8" {
		t.Errorf("last id %q", last)
	}
}

// TestTailReconnects: when a --tail stream drops, the CLI reconnects with
// Last-Event-ID, as an EventSource does, and stops when interrupted.
func TestTailReconnects(t *testing.T) {
	defer func(d time.Duration) { reconnectDelay = d }(reconnectDelay)
	reconnectDelay = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lastIDs []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/apps/a1/log-sessions":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"s","logplex_url":%q}`, srv.URL+"/stream")
		case "/stream":
			lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
			if len(lastIDs) == 4 {
				cancel() // the user presses Ctrl-C
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "id: %d\ndata: line %d\n\n", len(lastIDs), len(lastIDs))
		}
	}))
	defer srv.Close()
	var out strings.Builder
	env := map[string]string{"GRID_API_URL": srv.URL, "GRID_API_KEY": "k", "HOME": t.TempDir()}
	code := Main(ctx, []string{"logs", "-t", "-a", "a1"}, Env{Stdout: &out, Getenv: func(k string) string { return env[k] }})
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	if diff := cmp.Diff([]string{"", "1", "2", "3"}, lastIDs); diff != "" {
		t.Errorf("Last-Event-IDs (-want +got):\n%s", diff)
	}
	if !strings.Contains(out.String(), "line 1\nline 2\nline 3\n") {
		t.Errorf("output %q", out.String())
	}
}

func TestSaveCredentials(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home}
	getenv := func(k string) string { return env[k] }
	if err := SaveCredentials("http://localhost:5000", "secret", getenv); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, ".config", "grid", "credentials.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	url, key, err := endpoint(getenv)
	if url != "http://localhost:5000" || key != "secret" || err != nil {
		t.Errorf("endpoint: %q %q %v", url, key, err)
	}
	env["GRID_API_URL"] = "http://other:1"
	if url, _, _ := endpoint(getenv); url != "http://other:1" {
		t.Errorf("GRID_API_URL not preferred: %q", url)
	}
	env["XDG_CONFIG_HOME"] = filepath.Join(home, "xdg")
	if err := SaveCredentials("http://x:1", "k2", getenv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "xdg", "grid", "credentials.json")); err != nil {
		t.Error(err)
	}
}

func TestCommandLine(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"ls -la | wc -l"}, "ls -la | wc -l"},
		{[]string{"bash"}, "bash"},
		{[]string{"rake", "db:migrate", "VERSION=2"}, "rake db:migrate VERSION=2"},
		{[]string{"sh", "-c", "echo $HOME; exit 3"}, "sh -c 'echo $HOME; exit 3'"},
		{[]string{"echo", "it's", ""}, `echo 'it'\''s' ''`},
	} {
		if got := commandLine(tt.args); got != tt.want {
			t.Errorf("commandLine(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
