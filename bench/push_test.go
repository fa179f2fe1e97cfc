package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/slug"
	"github.com/dynogrid/grid/internal/store"
)

// BenchmarkPush times `git push` until the new release answers through
// the router, for the Go, Node.js (express) and static sample apps: cold
// (a new app: empty build cache) and warm (a one-line change pushed to
// the same app). Side by side, the same build without the platform: the
// host's toolchain on a copy of the app (go build, npm ci, or nothing),
// then tar+gzip, with an empty cache and then a warm one; the ratio is
// the platform's cost (git, sandboxes, boot check, store, dyno start,
// routing) over that. Then, per slug, what hosts do with it: pack,
// upload to and download from the store (NATS JetStream object store),
// unpack.
func BenchmarkPush(b *testing.B) {
	g := gridtest.Start(b, "--stop-grace", "2s")
	apps := []pushApp{
		{name: "go", src: "../e2e/testdata/go-hello", edit: "main.go", comment: "// warm\n", bare: bareGo},
		{name: "node", src: "testdata/node-express", edit: "index.js", comment: "// warm\n", bare: bareNode},
		{name: "static", src: "../internal/build/testdata/apps/static-site", edit: "public/index.html", comment: "<!-- warm -->\n", bare: bareStatic},
	}
	fmt.Println("push to live (git push until the release serves through the router) vs the bare build (toolchain + tar.gz):")
	for _, a := range apps {
		app := "push-" + a.name
		g.MustCLI("apps:create", app)
		repo := g.Repo(a.src)
		cold := pushUntilLive(b, g, app, repo)
		appendLine(b, filepath.Join(repo, a.edit), a.comment)
		g.Commit(repo, "one-line change")
		warm := pushUntilLive(b, g, app, repo)
		bareCold, bareWarm := a.bareBuilds(b)
		fmt.Printf("  %-6s cold %6.2fs (bare %6.2fs, ratio %s)   warm %5.2fs (bare %5.2fs, ratio %s)\n",
			a.name, cold.Seconds(), bareCold.Seconds(), ratio(cold, bareCold), warm.Seconds(), bareWarm.Seconds(), ratio(warm, bareWarm))
		b.ReportMetric(cold.Seconds(), "s-cold-"+a.name)
		b.ReportMetric(warm.Seconds(), "s-warm-"+a.name)
	}
	fmt.Println("slugs: pack, upload to / download from the store, unpack (as a host does once per release):")
	for _, a := range apps {
		slugIO(b, g, "push-"+a.name)
	}
}

// ratio is grid/bare, or "-" when the bare build is next to nothing (a
// static site: only tar).
func ratio(grid, bare time.Duration) string {
	if bare < 100*time.Millisecond {
		return "    -"
	}
	return fmt.Sprintf("%5.2f", grid.Seconds()/bare.Seconds())
}

type pushApp struct {
	name, src     string
	edit, comment string // the one-line change: a comment appended to edit
	bare          func(b *testing.B, dir, cache string)
}

// bareBuilds builds a copy of the app with the host's toolchain, cold
// (empty cache) and warm (after the same one-line change), and returns
// both times including tar.gz of the result.
func (a pushApp) bareBuilds(b *testing.B) (cold, warm time.Duration) {
	dir, cache := b.TempDir(), b.TempDir()
	if err := os.CopyFS(dir, os.DirFS(a.src)); err != nil {
		b.Fatal(err)
	}
	timed := func() time.Duration {
		start := time.Now()
		a.bare(b, dir, cache)
		run(b, dir, nil, "tar", "-czf", filepath.Join(b.TempDir(), "slug.tgz"), ".")
		return time.Since(start)
	}
	cold = timed()
	appendLine(b, filepath.Join(dir, a.edit), a.comment)
	return cold, timed()
}

func bareGo(b *testing.B, dir, cache string) {
	run(b, dir, []string{"GOCACHE=" + cache + "/build", "GOMODCACHE=" + cache + "/mod", "GOPATH=" + cache + "/gopath",
		"GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOBIN=" + dir + "/bin"},
		"go", "install", "./...")
}

func bareNode(b *testing.B, dir, cache string) {
	run(b, dir, []string{"npm_config_cache=" + cache, "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"},
		"npm", "ci", "--omit=dev")
}

func bareStatic(*testing.B, string, string) {}

func run(b *testing.B, dir string, env []string, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func appendLine(b *testing.B, path, line string) {
	b.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(line)
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
}

// pushUntilLive pushes repo's HEAD to app and returns how long until the
// new release is current and the app answers 200 through the router.
func pushUntilLive(b *testing.B, g *gridtest.Grid, app, repo string) time.Duration {
	b.Helper()
	head := strings.TrimSpace(g.Git(repo, "rev-parse", "HEAD"))
	start := time.Now()
	if out, err := g.Push(app, repo); err != nil {
		b.Fatalf("push %s: %v\n%s", app, err, out)
	}
	gridtest.WaitFor(b, 2*time.Minute, "new release serving", func() error {
		code, _, _, err := g.Get(app, "/")
		if err != nil || code != 200 {
			return fmt.Errorf("status %d: %v", code, err)
		}
		a, err := g.Store().App(context.Background(), app)
		if err != nil || a.Release.Description != grid.DeployDescription(head) {
			return fmt.Errorf("release of %s not current (%v)", head[:8], err)
		}
		return nil
	})
	return time.Since(start)
}

// slugIO times what happens to app's current slug between the build and
// a dyno: pack the tree, upload it, download it, unpack it.
func slugIO(b *testing.B, g *gridtest.Grid, app string) {
	b.Helper()
	ctx := context.Background()
	st := g.Store()
	a, err := st.App(ctx, app)
	if err != nil {
		b.Fatal(err)
	}
	tree := filepath.Join(g.Data, "slugs", a.Release.SlugID)
	var archive bytes.Buffer
	start := time.Now()
	info, err := slug.Pack(tree, &archive, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	pack := time.Since(start)
	meta := grid.Slug{ID: store.NewID(), App: app, ProcessTypes: map[string]string{}, Size: info.Size, Checksum: info.Checksum, Stack: grid.Stack}
	start = time.Now()
	if err := st.PutSlug(ctx, meta, bytes.NewReader(archive.Bytes())); err != nil {
		b.Fatal(err)
	}
	upload := time.Since(start)
	defer st.DeleteSlug(ctx, meta.ID)
	start = time.Now()
	rc, err := st.OpenSlug(ctx, meta.ID)
	if err != nil {
		b.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(got) != archive.Len() {
		b.Fatalf("download: %d of %d bytes: %v", len(got), archive.Len(), err)
	}
	download := time.Since(start)
	dst := filepath.Join(b.TempDir(), "tree")
	start = time.Now()
	if err := slug.Unpack(bytes.NewReader(got), dst, 4<<30); err != nil {
		b.Fatal(err)
	}
	unpack := time.Since(start)
	fmt.Printf("  %-12s %8s  pack %6.1f ms  upload %6.1f ms  download %6.1f ms  unpack %6.1f ms\n",
		app, slug.HumanBytes(info.Size), ms(pack), ms(upload), ms(download), ms(unpack))
}
