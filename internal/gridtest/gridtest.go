// Package gridtest starts the real grid binary for end-to-end tests, so
// they read like scripts: start a grid, create an app, push code, wait for
// HTTP 200. Everything goes through the same doors a user has: the CLI,
// git over smart HTTP, the Platform API and the router.
package gridtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

var (
	buildOnce sync.Once
	buildExe  string
	buildErr  error
)

// Exe builds the grid binary once per test process and returns its path.
// Each process builds its own, so that a change to the code never reaches
// a grid another run started (it runs itself as the sandboxes' init and
// the git hook), into a directory named for its pid; nothing removes it
// at the end of the process (the testing package has no hook for that),
// so each build first removes those of processes that have ended.
func Exe(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildExe, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildExe
}

const binPrefix = "gridtest-bin-"

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	removeEndedBuilds()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", binPrefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	exe := filepath.Join(dir, "grid")
	cmd := exec.Command("go", "build", "-o", exe, "./cmd/grid")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return exe, nil
}

// removeEndedBuilds removes the build directories of test processes that
// are gone.
func removeEndedBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*"))
	for _, dir := range dirs {
		pid, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(dir), binPrefix), "-")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 {
			continue // not ours, or from before directories were named so
		}
		if syscall.Kill(n, 0) == syscall.ESRCH {
			os.RemoveAll(dir)
		}
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Grid is one running `grid up`.
type Grid struct {
	t       testing.TB
	Exe     string
	Data    string // data directory
	Home    string // HOME for the CLI and git
	APIAddr string // 127.0.0.1:port
	RtAddr  string // 127.0.0.1:port
	TLSAddr string // 127.0.0.1:port of the router's HTTPS
	// APITLSAddr is 127.0.0.1:port of the API and git over HTTPS.
	APITLSAddr string
	APIURL     string // http://127.0.0.1:port
	NATS       string // nats://127.0.0.1:port of the embedded server
	Key        string // admin API key
	args       []string
	cmd        *exec.Cmd
	done       chan struct{}
	out        *SyncBuffer
}

// Start runs `grid up` on free ports with a temporary data directory and
// waits until its API answers. Extra args go to `grid up`. The grid is
// stopped (SIGINT, then SIGKILL) when the test ends.
func Start(t testing.TB, args ...string) *Grid {
	t.Helper()
	g := &Grid{t: t, Exe: Exe(t), Data: t.TempDir(), Home: t.TempDir(), args: args}
	// The add-on servers' OS users pass through to DATA (grid makes it
	// 0711 itself), as they do through /var/lib.
	os.Chmod(filepath.Dir(g.Data), 0o711)
	g.APIAddr, g.RtAddr, g.TLSAddr, g.APITLSAddr = FreeAddr(t), FreeAddr(t), FreeAddr(t), FreeAddr(t)
	g.APIURL = "http://" + g.APIAddr
	natsAddr := FreeAddr(t)
	g.NATS = "nats://" + natsAddr
	g.args = append([]string{"--nats", natsAddr}, g.args...)
	g.start()
	t.Cleanup(func() {
		if g.cmd != nil {
			g.Stop()
		}
		if t.Failed() {
			t.Logf("grid up output:\n%s", g.out.String())
		}
	})
	return g
}

func (g *Grid) start() {
	g.t.Helper()
	if g.out == nil {
		g.out = &SyncBuffer{}
	}
	args := append([]string{"up", "--data", g.Data, "--api", g.APIAddr, "--api-tls", g.APITLSAddr, "--router", g.RtAddr, "--router-tls", g.TLSAddr, "--domain", "localhost"}, g.args...)
	g.cmd = exec.Command(g.Exe, args...)
	g.cmd.Env = append(os.Environ(), "HOME="+g.Home, "XDG_CONFIG_HOME="+filepath.Join(g.Home, ".config"))
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(g.cmd, g.done)
	WaitFor(g.t, 60*time.Second, "grid up answers on its API", func() error {
		select {
		case <-g.done:
			g.t.Fatalf("grid up exited early:\n%s", g.out.String())
		default:
		}
		key, err := os.ReadFile(filepath.Join(g.Data, "admin-api-key"))
		if err != nil {
			return err
		}
		g.Key = strings.TrimSpace(string(key))
		code, _ := g.API("GET", "/account", "")
		if code != 200 {
			return fmt.Errorf("GET /account: %d", code)
		}
		return nil
	})
}

// Stop sends SIGINT and waits for grid up to exit (SIGKILL after 90s).
func (g *Grid) Stop() {
	g.t.Helper()
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.done
		g.t.Errorf("grid up did not stop within 90s of SIGINT")
	}
	g.cmd = nil
}

// Restart stops grid up and starts it again on the same data and ports.
func (g *Grid) Restart() {
	g.t.Helper()
	g.Stop()
	g.start()
}

// Store connects to the grid's NATS as a server would, with the cluster
// secret from the data directory; closed when the test ends.
func (g *Grid) Store() *store.Store {
	g.t.Helper()
	secret, err := os.ReadFile(filepath.Join(g.Data, "cluster-secret"))
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	role := store.Role{Kind: store.RoleServer, ID: "gridtest"}
	st, err := store.Open(ctx, store.Config{URL: g.NATS, Role: role, Password: role.Password([]byte(strings.TrimSpace(string(secret))))})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(st.Close)
	return st
}

// Output is what grid up has printed so far.
func (g *Grid) Output() string { return g.out.String() }

// Env is the environment for CLI and git commands against this grid.
func (g *Grid) Env() []string {
	return append(os.Environ(),
		"HOME="+g.Home,
		"XDG_CONFIG_HOME="+filepath.Join(g.Home, ".config"),
		"GRID_API_URL="+g.APIURL,
		"GRID_API_KEY="+g.Key,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
	)
}

// CLI runs `grid args...` and returns stdout and stderr.
func (g *Grid) CLI(args ...string) (stdout, stderr string, err error) {
	return g.CLIIn("", args...)
}

// CLIIn runs the CLI in directory dir (for git remote detection).
func (g *Grid) CLIIn(dir string, args ...string) (stdout, stderr string, err error) {
	return g.cli(dir, "", args)
}

// CLIInput runs the CLI with stdin (none if empty).
func (g *Grid) CLIInput(stdin string, args ...string) (stdout, stderr string, err error) {
	return g.cli("", stdin, args)
}

func (g *Grid) cli(dir, stdin string, args []string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.Exe, args...)
	cmd.Env, cmd.Dir = g.Env(), dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// MustCLI runs the CLI and fails the test if it exits non-zero.
func (g *Grid) MustCLI(args ...string) string {
	g.t.Helper()
	out, errOut, err := g.CLI(args...)
	if err != nil {
		g.t.Fatalf("grid %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// GitURL is the push URL of app, with the API key as password.
func (g *Grid) GitURL(app string) string {
	return "http://user:" + g.Key + "@" + g.APIAddr + "/" + app + ".git"
}

// Repo copies src into a fresh git repository (one commit on main) and
// returns its directory.
func (g *Grid) Repo(src string) string {
	g.t.Helper()
	dir := g.t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		g.t.Fatal(err)
	}
	g.Git(dir, "init", "-q", "-b", "main")
	g.Commit(dir, "initial")
	return dir
}

// Commit commits everything in dir.
func (g *Grid) Commit(dir, msg string) {
	g.t.Helper()
	g.Git(dir, "add", "-A")
	g.Git(dir, "-c", "user.email=test@example.com", "-c", "user.name=test", "commit", "-q", "--allow-empty", "-m", msg)
}

// Git runs git in dir and fails the test on error.
func (g *Grid) Git(dir string, args ...string) string {
	g.t.Helper()
	out, err := g.GitErr(dir, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// GitErr runs git in dir and returns its combined output.
func (g *Grid) GitErr(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env, cmd.Dir = g.Env(), dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Push pushes dir's main branch to app and returns git's output.
func (g *Grid) Push(app, dir string) (string, error) {
	return g.GitErr(dir, "push", g.GitURL(app), "main")
}

// API makes an authenticated Platform API request and returns status and body.
func (g *Grid) API(method, path, body string) (int, string) {
	req, err := http.NewRequest(method, g.APIURL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.Key)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Get requests path from app through the router.
func (g *Grid) Get(app, path string) (int, string, http.Header, error) {
	req, err := http.NewRequest("GET", "http://"+g.RtAddr+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Host = app + ".localhost"
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// WaitBody waits until app answers path with status 200 and a body
// containing want, and returns the body.
func (g *Grid) WaitBody(app, path, want string, timeout time.Duration) string {
	g.t.Helper()
	var body string
	WaitFor(g.t, timeout, fmt.Sprintf("%s%s says %q", app, path, want), func() error {
		code, b, _, err := g.Get(app, path)
		if err != nil {
			return err
		}
		body = b
		if code != 200 || !strings.Contains(b, want) {
			return fmt.Errorf("status %d, body %.200q", code, b)
		}
		return nil
	})
	return body
}

var client = &http.Client{Timeout: 30 * time.Second}

// WaitFor polls cond until it returns nil or timeout passes, then fails
// the test with what cond last said.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a process's
// stdout and stderr) and readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
