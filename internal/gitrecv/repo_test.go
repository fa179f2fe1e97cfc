package gitrecv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	base := func() Config {
		return Config{
			ReposDir:     t.TempDir(),
			HookExe:      hookExe,
			Authenticate: func(context.Context, string) (string, error) { return "", nil },
			AppExists:    func(context.Context, string) error { return nil },
			Deployer:     DeployerFunc(func(context.Context, Push) error { return nil }),
		}
	}
	notExec := filepath.Join(t.TempDir(), "grid")
	os.WriteFile(notExec, []byte("x"), 0o644)
	tests := map[string]func(*Config){
		"no repos dir":        func(c *Config) { c.ReposDir = "" },
		"no deployer":         func(c *Config) { c.Deployer = nil },
		"no authenticate":     func(c *Config) { c.Authenticate = nil },
		"no app check":        func(c *Config) { c.AppExists = nil },
		"relative hook":       func(c *Config) { c.HookExe = "grid" },
		"missing hook":        func(c *Config) { c.HookExe = "/nonexistent/grid" },
		"non-executable hook": func(c *Config) { c.HookExe = notExec },
	}
	for name, breakIt := range tests {
		cfg := base()
		breakIt(&cfg)
		if _, err := New(cfg); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}

	cfg := base()
	os.MkdirAll(filepath.Join(cfg.ReposDir, ".tmp", "stale"), 0o700)
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(cfg.ReposDir, ".hooks", "pre-receive"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "#!/bin/sh\nexec " + shellQuote(hookExe) + " hook pre-receive\n"; string(script) != want {
		t.Errorf("hook script = %q, want %q", script, want)
	}
	if fi, _ := os.Stat(filepath.Join(cfg.ReposDir, ".hooks", "pre-receive")); fi.Mode().Perm() != 0o755 {
		t.Errorf("hook mode = %v", fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(cfg.ReposDir, ".tmp", "stale")); err == nil {
		t.Errorf("New left a previous process's temporary files")
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	if got := shellQuote(`/a b/it's $x`); got != `'/a b/it'\''s $x'` {
		t.Errorf("shellQuote = %s", got)
	}
}

func TestEnsureRepoConcurrent(t *testing.T) {
	t.Parallel()
	g := newTestGrid(t, &recorder{})
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = g.recv.ensureRepo(context.Background(), "myapp") })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != filepath.Join(g.reposDir, "myapp.git") {
			t.Errorf("ensureRepo %d = %q, %v", i, paths[i], errs[i])
		}
	}
	if got, err := g.bareGit("myapp", "config", "receive.denyDeletes"); err != nil || got != "true" {
		t.Errorf("receive.denyDeletes = %q, %v", got, err)
	}
	if got, _ := g.bareGit("myapp", "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Errorf("HEAD = %q", got)
	}
	if _, err := os.Stat(filepath.Join(g.reposDir, "myapp.git", "hooks")); err == nil {
		t.Errorf("the repository has its own hooks directory")
	}
	if entries, _ := os.ReadDir(filepath.Join(g.reposDir, ".tmp")); len(entries) != 0 {
		t.Errorf("losing creators left %d temporary repos", len(entries))
	}
}

func TestRemoveRepo(t *testing.T) {
	t.Parallel()
	g := newTestGrid(t, &recorder{})
	c := newClient(t)
	c.commit(map[string]string{"a": "1\n"}, "one")
	c.must("push", g.remote("myapp"), "main")
	if err := g.recv.RemoveRepo("myapp"); err != nil {
		t.Fatal(err)
	}
	if g.repoExists("myapp") {
		t.Errorf("repo still there")
	}
	if err := g.recv.RemoveRepo("myapp"); err != nil {
		t.Errorf("second remove: %v", err)
	}
	for _, bad := range []string{"../x", "A", "", "myapp/../../etc"} {
		if err := g.recv.RemoveRepo(bad); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("RemoveRepo(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(g.reposDir, ".tmp")); len(entries) != 0 {
		t.Errorf("remove left %d entries in .tmp", len(entries))
	}
	// A new app of the same name starts from an empty repository.
	out, err := c.git("push", g.remote("myapp"), "main")
	if err != nil || !strings.Contains(out, "[new branch]") {
		t.Errorf("push after remove: %v\n%s", err, out)
	}
}
