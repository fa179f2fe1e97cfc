package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
)

// spaces is a run of spaces, which expect counts as one.
var spaces = regexp.MustCompile(` {2,}`)

// herokuVersion is the official CLI the grid is tested against.
const herokuVersion = "11.10.0"

// herokuBin installs heroku@herokuVersion from npm once per machine (the
// user's cache directory; a lock keeps parallel test binaries from racing)
// and returns its executable.
func herokuBin(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "dynogrid-test", "heroku-"+herokuVersion)
	bin := filepath.Join(dir, "node_modules", ".bin", "heroku")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "heroku@"+herokuVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install heroku@%s: %v\n%s", herokuVersion, err, out)
	}
	return bin
}

// heroku runs the official CLI against g's HTTPS API, as the README's
// migration section sets it up.
type heroku struct {
	t    *testing.T
	g    *gridtest.Grid
	bin  string
	home string
	host string // https://localhost:PORT
}

func newHeroku(t *testing.T, g *gridtest.Grid) *heroku {
	_, port, _ := strings.Cut(g.APITLSAddr, ":")
	return &heroku{t: t, g: g, bin: herokuBin(t), home: t.TempDir(), host: "https://localhost:" + port}
}

func (h *heroku) env() []string {
	ca := filepath.Join(h.g.Data, "ca", "ca.pem")
	return append(userEnv(),
		"HOME="+h.home,
		"XDG_CONFIG_HOME="+filepath.Join(h.home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(h.home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(h.home, ".local", "share"),
		"HEROKU_HOST="+h.host,
		"HEROKU_API_KEY="+h.g.Key,
		"NODE_EXTRA_CA_CERTS="+ca,
		"GIT_SSL_CAINFO="+ca,
		"HEROKU_PARTICLEBOARD_URL="+h.host,
		"HEROKU_BUILDPACK_REGISTRY_URL="+h.host+"/buildpack-registry",
		"PATH="+filepath.Dir(h.bin)+":"+os.Getenv("PATH"), // git's credential helper runs heroku
		"DISABLE_TELEMETRY=true",
		"HEROKU_SKIP_NEW_VERSION_CHECK=true",
		"HEROKU_DISABLE_AUTOUPDATE=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"NO_COLOR=1",
		"COLUMNS=200",
	)
}

// userEnv is the test's environment without the variables by which the
// CLI knows it runs in CI: with them its tables are drawn plainly, not as
// a user at a terminal sees them.
func userEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "CI" || k == "CONTINUOUS_INTEGRATION" || strings.HasPrefix(k, "CI_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// run runs `heroku args...` in dir ("" for the test's HOME).
func (h *heroku) run(dir string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env, cmd.Dir = h.env(), dir
	if dir == "" {
		cmd.Dir = h.home
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// expect runs `heroku args...` in dir and checks that stdout, then
// stderr, contain each of the wanted strings (stderr ones prefixed "2>").
// Runs of spaces count as one, so that a table's column widths do not
// matter.
func (h *heroku) expect(dir string, args []string, want ...string) {
	h.t.Helper()
	out, errOut := h.must(dir, args...)
	for _, w := range want {
		got, where := out, "stdout"
		if rest, ok := strings.CutPrefix(w, "2>"); ok {
			got, where, w = errOut, "stderr", rest
		}
		if !strings.Contains(spaces.ReplaceAllString(got, " "), spaces.ReplaceAllString(w, " ")) {
			h.t.Errorf("heroku %s: %s lacks %q:\n%s", strings.Join(args, " "), where, w, got)
		}
	}
}

func (h *heroku) must(dir string, args ...string) (string, string) {
	h.t.Helper()
	out, errOut, err := h.run(dir, args...)
	if err != nil {
		h.t.Fatalf("heroku %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out, errOut
}

// TestHerokuCLI (issue 9) drives a grid with the official Heroku CLI,
// installed from npm, the way a user moving from Heroku would: the API,
// git and `run` on one HTTPS origin with the grid's local CA.
func TestHerokuCLI(t *testing.T) {
	g := gridtest.Start(t, "--boot-timeout", "10s", "--stop-grace", "5s")
	h := newHeroku(t, g)
	a := []string{"-a", "herokued"}
	args := func(xs ...string) []string { return append(xs, a...) }

	h.expect("", []string{"auth:whoami"}, "admin@grid.local")
	repo := g.Repo("testdata/addons-app")
	h.expect(repo, []string{"apps:create", "herokued"}, "http://herokued.localhost:", " | "+h.host+"/herokued.git", "2>Creating herokued... done")
	if remotes := g.Git(repo, "remote", "-v"); !strings.Contains(remotes, "heroku\t"+h.host+"/herokued.git (push)") {
		t.Fatalf("apps:create made no heroku remote:\n%s", remotes)
	}
	cmd := exec.Command("git", "push", "heroku", "main")
	cmd.Dir, cmd.Env = repo, h.env()
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Released v2") {
		t.Fatalf("git push heroku main: %v\n%s", err, out)
	}
	g.WaitBody("herokued", "/", "no add-ons\n", 30*time.Second)

	h.expect("", []string{"apps"}, "=== admin@grid.local Apps", "herokued")
	h.expect("", args("apps:info"), "=== herokued", "Git URL:        "+h.host+"/herokued.git", "Dynos:          web: 1", "Owner:          admin@grid.local")
	h.expect("", args("config:set", "GREETING=hi"), "GREETING: hi", "2>Setting GREETING and restarting herokued... done, v3")
	h.expect("", args("config"), "=== herokued Config Vars", "GREETING: hi")
	h.expect("", args("config:unset", "GREETING"), "2>Unsetting GREETING and restarting herokued... done, v4")
	h.expect("", args("ps"), "=== web (Standard-1X): python3 app.py (1)", "web.1: ")
	h.expect("", args("ps:scale", "web=2"), "2>Scaling dynos... done, now running web at 2:Standard-1X")
	h.expect("", args("ps:restart"), "2>Restarting all dynos on herokued... done")
	h.expect("", args("ps:stop", "--dyno-name", "web.2"), "2>Stopping dyno web.2 on herokued... done")
	h.expect("", args("releases"), "=== herokued Releases - Current: v4", "v4   Remove GREETING config vars", "v2   Deploy ")
	h.expect("", args("releases:info", "v3"), "=== Release v3", "Change:                 Set GREETING config vars", "GREETING: hi")
	h.expect("", args("rollback", "v3"), "2>Rolling back herokued to v3... done, v5")
	h.expect("", args("config"), "GREETING: hi")
	h.expect("", args("logs", "-n", "200"), "app[api]: Rollback to v3 by user admin@grid.local", "heroku[web.1]: State changed from starting to up")
	tailLogs(t, h, g)
	h.expect("", args("drains:add", "syslog+tls://logs.example.com:6514"), "Successfully added drain syslog+tls://logs.example.com:6514")
	h.expect("", args("drains"), "=== Drains", "syslog+tls://logs.example.com:6514 (d.")
	h.expect("", args("drains:remove", "syslog+tls://logs.example.com:6514"), "Successfully removed drain syslog+tls://logs.example.com:6514")

	h.expect("", args("addons:create", "heroku-postgresql"), "as DATABASE_URL", "2>Creating heroku-postgresql on herokued")
	h.expect("", args("addons"), "heroku-postgresql (postgresql-", "essential-0", "DATABASE")
	h.expect("", args("domains:add", "www.example.com"), "herokued.localhost", "2>Adding www.example.com to herokued... done")
	h.expect("", args("domains"), "=== herokued Heroku Domain", "herokued.localhost", "www.example.com   CNAME")
	h.expect("", args("maintenance:on"), "2>Enabling maintenance mode for herokued... done")
	h.expect("", args("maintenance"), "on")
	if code, _, _, _ := g.Get("herokued", "/"); code != 503 {
		t.Errorf("in maintenance the app answers %d", code)
	}
	h.expect("", args("maintenance:off"), "2>Disabling maintenance mode for herokued... done")

	out, errOut, err := h.run("", "run", "-a", "herokued", "--exit-code", "--", "sh", "-c", "echo $DATABASE_URL | cut -d: -f1; exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || strings.TrimSpace(out) != "postgres" {
		t.Errorf("run --exit-code: %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	piped := exec.Command(h.bin, "run", "-a", "herokued", "--", "cat")
	piped.Env, piped.Dir, piped.Stdin = h.env(), h.home, strings.NewReader("one\ntwo\n")
	if out, err := piped.Output(); err != nil || !strings.Contains(string(out), "two") {
		t.Errorf("heroku run cat with piped input: %v\n%q", err, out)
	}
	herokuInteractive(t, h)
	h.expect("", args("run:detached", "echo", "detached", "says", "hi"), "Run heroku logs --app herokued --dyno run.", "2>Running echo detached says hi on herokued... done, run.")
	gridtest.WaitFor(t, 30*time.Second, "the detached dyno's output in heroku logs", func() error {
		out, _, err := h.run("", args("logs", "-n", "200", "--dyno", "run")...)
		if err != nil || !regexp.MustCompile(`app\[run\.\d+\]: detached says hi`).MatchString(out) {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})

	h.expect(repo, args("git:remote", "-r", "other"), "set git remote other to "+h.host+"/herokued.git")
	if remotes := g.Git(repo, "remote", "-v"); !strings.Contains(remotes, "other\t"+h.host+"/herokued.git") {
		t.Errorf("git:remote made no remote other:\n%s", remotes)
	}
	h.expect("", args("buildpacks:set", "heroku/python"), "Buildpack set. Next release on herokued will use heroku/python.")
	h.expect("", args("buildpacks"), "=== herokued Classic Buildpack", "heroku/python")
	badRendezvous(t, g)
	h.expect("", args("addons:destroy", "heroku-postgresql", "--confirm", "herokued"), "2>Destroying postgresql-")
	h.expect("", args("apps:destroy", "--confirm", "herokued"), "2>Destroying herokued (including all add-ons)... done")
	if out, _, err := h.run("", "apps"); err != nil || strings.Contains(out, "herokued") {
		t.Errorf("apps after destroy: %v\n%s", err, out)
	}
}

// tailLogs follows the app's log with `heroku logs --tail` and sees a
// line written after it started.
func tailLogs(t *testing.T, h *heroku, g *gridtest.Grid) {
	t.Helper()
	cmd := exec.Command(h.bin, "logs", "--tail", "-a", "herokued")
	cmd.Env, cmd.Dir = h.env(), h.home
	var out gridtest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	gridtest.WaitFor(t, 30*time.Second, "logs --tail to start", func() error {
		if !strings.Contains(out.String(), "app[api]") {
			return fmt.Errorf("output so far: %q", out.String())
		}
		return nil
	})
	g.Get("herokued", "/tailed-path")
	gridtest.WaitFor(t, 30*time.Second, "logs --tail to show the request", func() error {
		if !strings.Contains(out.String(), `heroku[router]: at=info method=GET path="/tailed-path"`) {
			return fmt.Errorf("output so far: %q", out.String())
		}
		return nil
	})
}

// herokuInteractive runs `heroku run bash` on a terminal: the dyno gets
// a terminal of the window's size, typed commands run, and exit ends it.
func herokuInteractive(t *testing.T, h *heroku) {
	t.Helper()
	ptm, pts := openPTY(t)
	setSize(t, ptm, 30, 100)
	cmd := exec.Command(h.bin, "run", "-a", "herokued", "--", "bash", "--norc", "--noprofile")
	cmd.Env, cmd.Dir = append(h.env(), "TERM=xterm"), h.home
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	var screen gridtest.SyncBuffer
	go io.Copy(&screen, ptm)
	seen := func(re string) {
		t.Helper()
		gridtest.WaitFor(t, 30*time.Second, "terminal shows "+re, func() error {
			if !regexp.MustCompile(re).MatchString(screen.String()) {
				return fmt.Errorf("screen:\n%q", screen.String())
			}
			return nil
		})
	}
	seen(`up, run\.\d{4}`)
	ptm.Write([]byte("tty; stty size; echo $((6*7))\r"))
	// node's raw mode keeps the local terminal's ONLCR: "\r\r\n".
	seen(`/dev/pts/0\r+\n30 100\r+\n42\r+\n`)
	ptm.Write([]byte("exit\r"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("heroku run bash: %v\n%q", err, screen.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Errorf("heroku run bash did not end after exit:\n%q", screen.String())
	}
}

// badRendezvous: a rendezvous with a forged token gets an error, not a
// dyno.
func badRendezvous(t *testing.T, g *gridtest.Grid) {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(g.Data, "ca", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", g.APITLSAddr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "r/eyJhcHAiOiJoZXJva3VlZCJ9.Zm9yZ2Vk\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "rendezvous\r\nError: this attach URL is not valid") {
		t.Errorf("a forged rendezvous got %q", b)
	}
}
