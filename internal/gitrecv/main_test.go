package gitrecv

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

// The pre-receive hook must be a real program that calls RunHook. The test
// binary is one: started with GITRECV_TEST_HOOK=1 it acts as `grid`. A
// wrapper script sets the variable (the Receiver gives git a clean
// environment) and lives in a directory whose name needs shell quoting, to
// prove the hook script quotes HookExe.
var hookExe string

func TestMain(m *testing.M) {
	if os.Getenv("GITRECV_TEST_HOOK") == "1" {
		if len(os.Args) < 2 || os.Args[1] != "hook" {
			fmt.Fprintln(os.Stderr, "usage: grid hook pre-receive")
			os.Exit(2)
		}
		os.Exit(RunHook(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "gitrecv test's hook $dir ")
	if err != nil {
		panic(err)
	}
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	hookExe = filepath.Join(dir, "grid")
	script := "#!/bin/sh\nGITRECV_TEST_HOOK=1 exec " + shellQuote(self) + " \"$@\"\n"
	if err := os.WriteFile(hookExe, []byte(script), 0o755); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testKey  = "test-api-key-7f3a9c"
	testUser = "dev@example.com"
)

// testGrid is a Receiver behind a real HTTP server, with apps "myapp" and
// "other".
type testGrid struct {
	t        testing.TB
	recv     *Receiver
	srv      *httptest.Server
	reposDir string
	logs     *syncBuffer
}

func newTestGrid(t testing.TB, d Deployer, opts ...func(*Config)) *testGrid {
	t.Helper()
	g := &testGrid{t: t, reposDir: filepath.Join(t.TempDir(), "repos"), logs: &syncBuffer{}}
	cfg := Config{
		ReposDir: g.reposDir,
		HookExe:  hookExe,
		Authenticate: func(_ context.Context, key string) (string, error) {
			if key != testKey {
				return "", fmt.Errorf("api key: %w", grid.ErrUnauthorized)
			}
			return testUser, nil
		},
		AppExists: func(_ context.Context, app string) error {
			if app != "myapp" && app != "other" {
				return fmt.Errorf("app %q: %w", app, grid.ErrNotFound)
			}
			return nil
		},
		Deployer: d,
		Logger:   slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	recv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.recv = recv
	g.srv = httptest.NewServer(recv)
	t.Cleanup(func() {
		g.srv.Close()
		if strings.Contains(g.logs.String(), testKey) {
			t.Errorf("the API key appears in the logs:\n%s", g.logs)
		}
	})
	return g
}

// remote is the git URL of app with the test key embedded.
func (g *testGrid) remote(app string) string {
	return g.remoteWithKey(app, testKey)
}

func (g *testGrid) remoteWithKey(app, key string) string {
	return "http://git:" + key + "@" + strings.TrimPrefix(g.srv.URL, "http://") + "/" + app + ".git"
}

// repoExists reports whether app's bare repository exists.
func (g *testGrid) repoExists(app string) bool {
	_, err := os.Stat(filepath.Join(g.reposDir, app+".git"))
	return err == nil
}

// bareGit runs git in app's bare repository on the server.
func (g *testGrid) bareGit(app string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"--git-dir=" + filepath.Join(g.reposDir, app+".git")}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// client is a git working copy on the pusher's side.
type client struct {
	t   testing.TB
	dir string
	env []string
}

func newClient(t testing.TB) *client {
	t.Helper()
	c := &client{t: t, dir: t.TempDir(), env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=" + testUser,
		"GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=" + testUser,
		"LC_ALL=C",
	}}
	c.must("init", "--quiet", "--initial-branch=main")
	return c
}

func (c *client) command(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	return cmd
}

// git runs git and returns its combined output.
func (c *client) git(args ...string) (string, error) {
	out, err := c.command(args...).CombinedOutput()
	return string(out), err
}

func (c *client) must(args ...string) string {
	c.t.Helper()
	out, err := c.git(args...)
	if err != nil {
		c.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// commit writes files (content "" deletes a file; "-> x" makes a symlink
// to x) and commits them, returning the commit.
func (c *client) commit(files map[string]string, msg string) string {
	c.t.Helper()
	for name, content := range files {
		p := filepath.Join(c.dir, name)
		os.Remove(p)
		if content == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			c.t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			c.t.Fatal(err)
		}
	}
	c.must("add", "-A")
	c.must("commit", "--quiet", "--allow-empty", "-m", msg)
	return c.must("rev-parse", "HEAD")
}

// remoteLines returns the "remote: " lines of git output, without prefix
// and the padding git adds after each.
func remoteLines(out string) []string {
	var lines []string
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(line, "remote:"); ok {
			lines = append(lines, strings.TrimSpace(strings.TrimRight(rest, "\n")))
		}
	}
	return lines
}

// recorder is a Deployer that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	pushes []deployed
	// before runs inside Deploy after the source was read; its error is
	// Deploy's.
	before func(ctx context.Context, p Push) error
}

// deployed is a Push as the Deployer saw it.
type deployed struct {
	App, User, Ref, OldRev, NewRev string
	Files                          map[string]string
}

func (r *recorder) Deploy(ctx context.Context, p Push) error {
	files, err := readTar(p.Source)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.pushes = append(r.pushes, deployed{p.App, p.User, p.Ref, p.OldRev, p.NewRev, files})
	r.mu.Unlock()
	if r.before != nil {
		return r.before(ctx, p)
	}
	fmt.Fprintln(p.Output, "-----> Building on the grid")
	fmt.Fprintln(p.Output, "       Released v2")
	return nil
}

func (r *recorder) all() []deployed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]deployed(nil), r.pushes...)
}

// readTar maps the regular files of a tar to their content and symlinks to
// "-> target".
func readTar(r io.Reader) (map[string]string, error) {
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			files[h.Name] = string(b)
		case tar.TypeSymlink:
			files[h.Name] = "-> " + h.Linkname
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
