package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

func TestMain(m *testing.M) { sandboxtest.Main(m, "build", "10.236.0.0/22") }

// harness is a Builder on a real store, log and sandbox manager.
type harness struct {
	st    *store.Store
	log   *logs.Log
	b     *build.Builder
	cfg   build.Config
	slugs *slug.Cache
}

func newHarness(t *testing.T, mod func(*build.Config)) *harness {
	t.Helper()
	if sandboxtest.Manager == nil {
		t.Skip("needs root: starts real sandboxtest.Manager")
	}
	st := storetest.Start(t)
	ctx := context.Background()
	lg, err := logs.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Close)
	base := t.TempDir()
	os.Chmod(base, 0o755)
	slugs := &slug.Cache{Dir: filepath.Join(base, "slugs")}
	os.Mkdir(slugs.Dir, 0o755)
	cfg := build.Config{
		Store: st, Logs: lg, Sandboxes: sandboxtest.Manager, Slugs: slugs,
		WorkDir: filepath.Join(base, "work"), CacheDir: filepath.Join(base, "cache"),
		WebURL: func(app string) string { return "http://" + app + ".localhost:8080/" },
		Logger: slog.New(slog.NewTextHandler(tlog{t}, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := build.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{st: st, log: lg, b: b, cfg: cfg, slugs: slugs}
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// createApp creates an app at v1 with config, as the API does.
func (h *harness) createApp(t *testing.T, name string, config map[string]string) grid.App {
	t.Helper()
	ctx := context.Background()
	uid, err := h.st.NextUID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if config == nil {
		config = map[string]string{}
	}
	now := time.Now().UTC()
	app := grid.App{
		ID: store.NewID(), Name: name, Owner: "owner@example.com", UID: uid, CreatedAt: now, UpdatedAt: now,
		Release: grid.Release{ID: store.NewID(), Version: 1, Description: "Initial release", Status: grid.ReleaseSucceeded,
			Config: config, User: "owner@example.com", CreatedAt: now},
		ReleaseSeq: 1,
	}
	if err := h.st.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	return app
}

// deploy pushes testdata app dir (or any directory) to app.
func (h *harness) deploy(t *testing.T, app, dir, commit string) (grid.Release, string, error) {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rel, err := h.b.Deploy(ctx, build.Request{
		App: app, User: "pusher@example.com", Commit: commit, Source: bytes.NewReader(sourceTar(t, dir)), Output: &out,
	})
	t.Logf("push output of %s:\n%s", filepath.Base(dir), out.String())
	return rel, out.String(), err
}

// sourceTar makes what `git archive` sends: a pax global header with the
// commit, then the tree.
func sourceTar(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
		PAXRecords: map[string]string{"comment": strings.Repeat("ab", 20)}, Format: tar.FormatPAX})
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// apiLines returns the app[api] log lines of app.
func (h *harness) apiLines(t *testing.T, app string) []string {
	t.Helper()
	var out []string
	for _, l := range h.logLines(t, app) {
		if l.Dyno == "api" {
			out = append(out, l.Text)
		}
	}
	return out
}

// logLines returns app's last 1,000 log lines.
func (h *harness) logLines(t *testing.T, app string) []logs.Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := h.log.Read(ctx, app, logs.Query{Lines: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []logs.Line
	for l := range ch {
		out = append(out, l)
	}
	return out
}

// commit makes a fake 40-hex commit id.
func commit(n int) string { return fmt.Sprintf("%040x", 0xc0ffee000+n) }
