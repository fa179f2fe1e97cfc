package cli_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/cli"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// run calls cli.Main in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = cli.Main(context.Background(), args, cli.Env{
		Stdout: &o, Stderr: &e, Dir: t.TempDir(),
		Getenv: func(k string) string { return env[k] },
	})
	return code, o.String(), e.String()
}

func TestExitCodes(t *testing.T) {
	home := t.TempDir()
	offline := map[string]string{"HOME": home, "GRID_API_URL": "http://127.0.0.1:1", "GRID_API_KEY": "k"}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"help", nil, []string{"help"}, 0, ""},
		{"command help", nil, []string{"config:set", "--help"}, 0, ""},
		{"unknown command", nil, []string{"cofig"}, 2, "Perhaps you meant config?"},
		{"bad flag", offline, []string{"apps", "--nope"}, 2, "unknown flag --nope"},
		{"flag without value", offline, []string{"config", "-a"}, 2, "needs a value"},
		{"bad scale arg", offline, []string{"ps:scale", "web=lots", "-a", "x"}, 2, "not a scaling argument"},
		{"missing config arg", offline, []string{"config:set", "-a", "x"}, 2, "at least one KEY=VALUE"},
		{"no app", offline, []string{"config"}, 2, "No app specified."},
		{"not logged in", map[string]string{"HOME": home}, []string{"apps"}, 1, "not logged in"},
		{"unreachable", offline, []string{"apps"}, 1, "cannot reach the grid API at http://127.0.0.1:1: is grid up running?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

// notifyWriter collects output and signals each write.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

// waitFor waits until the output contains s.
func (w *notifyWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		out := w.buf.String()
		w.mu.Unlock()
		if strings.Contains(out, s) {
			return
		}
		select {
		case <-w.wrote:
		case <-deadline:
			t.Fatalf("no %q in output:\n%s", s, out)
		}
	}
}

func TestLogsTail(t *testing.T) {
	st := storetest.Start(t)
	ctx := context.Background()
	lg, err := logs.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Close)
	if err := st.PutAPIKey(ctx, "k", "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = api.New(api.Config{Store: st, Logs: lg, BaseURL: url, Logger: slog.New(slog.DiscardHandler)})
	srv.Start()
	t.Cleanup(srv.Close)
	env := map[string]string{"GRID_API_URL": url, "GRID_API_KEY": "k", "HOME": t.TempDir()}
	if code, _, stderr := run(t, env, "apps:create", "hello"); code != 0 {
		t.Fatal(stderr)
	}

	tailCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &notifyWriter{wrote: make(chan struct{}, 1)}
	done := make(chan int)
	go func() {
		done <- cli.Main(tailCtx, []string{"logs", "--tail", "-a", "hello"}, cli.Env{
			Stdout: out, Getenv: func(k string) string { return env[k] },
		})
	}()
	out.waitFor(t, "app[api]: Release v1 created by user admin@example.com")
	lg.Write(logs.Line{App: "hello", Source: "app", Dyno: "web.1", Text: "a live line"})
	out.waitFor(t, "app[web.1]: a live line")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("interrupted tail exited %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop when interrupted")
	}
}
