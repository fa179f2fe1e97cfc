// Package e2e drives the real grid binary the way a user does: CLI, git
// push over smart HTTP, the router. It needs root (dynos are sandboxes).
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
)

// TestWalkingSkeleton is issue 2's script: push, config, releases,
// rollback, scale, logs, rejected pushes that keep serving, restart,
// destroy.
func TestWalkingSkeleton(t *testing.T) {
	g := gridtest.Start(t, "--boot-timeout", "5s", "--stop-grace", "5s")
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	goRepo := g.Repo("testdata/go-hello")
	step("push Go app", func(t *testing.T) {
		out := g.MustCLI("apps:create", "hello")
		if !strings.Contains(out, "hello") {
			t.Errorf("apps:create output: %s", out)
		}
		start := time.Now()
		push, err := g.Push("hello", goRepo)
		if err != nil {
			t.Fatalf("push: %v\n%s", err, push)
		}
		t.Logf("push to live (cold): %v", time.Since(start))
		for _, want := range []string{"remote: -----> Go app detected", "remote: -----> Discovering process types", "Released v2", "http://hello.localhost:"} {
			if !strings.Contains(push, want) {
				t.Errorf("push output lacks %q:\n%s", want, push)
			}
		}
		g.WaitBody("hello", "/", `hello from web.1 greeting=""`, 30*time.Second)
	})

	step("warm push", func(t *testing.T) {
		g.Commit(goRepo, "again")
		start := time.Now()
		if push, err := g.Push("hello", goRepo); err != nil {
			t.Fatalf("push: %v\n%s", err, push)
		}
		t.Logf("push to live (warm): %v", time.Since(start))
		g.WaitBody("hello", "/", "hello from web.1", 30*time.Second)
	})

	step("config set restarts with new env", func(t *testing.T) {
		out := g.MustCLI("config:set", "GREETING=hi", "-a", "hello")
		if !strings.Contains(out, "v4") {
			t.Errorf("config:set should report v4: %s", out)
		}
		g.WaitBody("hello", "/", `greeting="hi"`, 30*time.Second)
		if out := g.MustCLI("config", "-a", "hello"); !regexp.MustCompile(`GREETING:\s+hi`).MatchString(out) {
			t.Errorf("config: %s", out)
		}
	})

	step("releases and rollback", func(t *testing.T) {
		out := g.MustCLI("releases", "-a", "hello")
		for _, want := range []string{"v4", "Set GREETING config vars", "v3", "Deploy ", "v1", "Initial release"} {
			if !strings.Contains(out, want) {
				t.Errorf("releases lacks %q:\n%s", want, out)
			}
		}
		g.MustCLI("rollback", "v2", "-a", "hello")
		g.WaitBody("hello", "/", `greeting=""`, 30*time.Second)
		if out := g.MustCLI("releases", "-a", "hello"); !strings.Contains(out, "Rollback to v2") {
			t.Errorf("releases after rollback:\n%s", out)
		}
		g.MustCLI("config:set", "GREETING=back", "-a", "hello")
		g.WaitBody("hello", "/", `greeting="back"`, 30*time.Second)
	})

	step("scale to three dynos", func(t *testing.T) {
		g.MustCLI("ps:scale", "web=3", "-a", "hello")
		gridtest.WaitFor(t, 30*time.Second, "three web dynos up", func() error {
			out := g.MustCLI("ps", "-a", "hello")
			if n := strings.Count(out, ": up "); n != 3 {
				return fmt.Errorf("%d up:\n%s", n, out)
			}
			return nil
		})
		seen := map[string]bool{}
		gridtest.WaitFor(t, 30*time.Second, "requests reach web.1, web.2 and web.3", func() error {
			_, body, _, err := g.Get("hello", "/")
			if err != nil {
				return err
			}
			if m := regexp.MustCompile(`from (web\.\d)`).FindStringSubmatch(body); m != nil {
				seen[m[1]] = true
			}
			if len(seen) < 3 {
				return fmt.Errorf("seen %v", seen)
			}
			return nil
		})
	})

	step("router headers", func(t *testing.T) {
		_, body, _, err := g.Get("hello", "/headers")
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Request-Id", "X-Request-Start", "Via"} {
			if !strings.Contains(body, h+":") {
				t.Errorf("dyno did not get %s:\n%s", h, body)
			}
		}
	})

	step("logs", func(t *testing.T) {
		gridtest.WaitFor(t, 15*time.Second, "log lines of every source", func() error {
			out := g.MustCLI("logs", "-n", "1500", "-a", "hello")
			for _, re := range []string{
				`app\[web\.\d\]: .*listening on`,
				`heroku\[web\.\d\]: State changed from starting to up`,
				`heroku\[router\]: at=info method=GET path="/" host=hello\.localhost\S* .*dyno=web\.\d connect=\d+ms service=\d+ms status=200 bytes=\d+`,
				`app\[api\]: Set GREETING config vars by user`,
				`app\[api\]: Deploy [0-9a-f]{8} by user`,
			} {
				if !regexp.MustCompile(re).MatchString(out) {
					return fmt.Errorf("no line matching %s in:\n%s", re, out)
				}
			}
			return nil
		})
	})

	step("rejected pushes keep the app serving", func(t *testing.T) {
		stop, failures := hammer(g, "hello")
		for _, app := range []string{"broken-go", "no-bind"} {
			repo := g.Repo("testdata/" + app)
			out, err := g.GitErr(repo, "push", "-f", g.GitURL("hello"), "main")
			if err == nil {
				t.Errorf("push of %s was accepted:\n%s", app, out)
			}
			if !strings.Contains(out, "pre-receive hook declined") {
				t.Errorf("push of %s: no hook decline:\n%s", app, out)
			}
			t.Logf("%s push output:\n%s", app, out)
		}
		n, failed, _ := stop()
		if failed > 0 {
			t.Errorf("%d of %d requests failed during rejected pushes: %v", failed, n, failures())
		}
		if out := g.MustCLI("releases", "-a", "hello"); strings.Contains(out, "v7") {
			t.Errorf("a rejected push made a release:\n%s", out)
		}
	})

	step("node app", func(t *testing.T) {
		g.MustCLI("apps:create", "nodeapp")
		if out, err := g.Push("nodeapp", g.Repo("testdata/node-hello")); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		g.WaitBody("nodeapp", "/", "node says hi from web.1 env=production", 30*time.Second)
	})

	step("restart brings everything back", func(t *testing.T) {
		g.Restart()
		if !strings.Contains(g.Output(), "SIGTERM received, shutting down gracefully") &&
			!strings.Contains(g.MustCLI("logs", "-n", "1500", "-a", "hello"), "SIGTERM received, shutting down gracefully") {
			t.Errorf("dynos were not stopped with SIGTERM")
		}
		g.WaitBody("hello", "/", `greeting="back"`, 60*time.Second)
		g.WaitBody("nodeapp", "/", "node says hi", 60*time.Second)
		gridtest.WaitFor(t, 30*time.Second, "three web dynos up again", func() error {
			if n := strings.Count(g.MustCLI("ps", "-a", "hello"), ": up "); n != 3 {
				return fmt.Errorf("%d up", n)
			}
			return nil
		})
	})

	step("destroy", func(t *testing.T) {
		for _, p := range []string{"repos/hello.git", "buildcache/hello"} {
			if _, err := os.Stat(filepath.Join(g.Data, p)); err != nil {
				t.Fatalf("before destroy: %v", err)
			}
		}
		g.MustCLI("apps:destroy", "hello", "--confirm", "hello")
		gridtest.WaitFor(t, 15*time.Second, "router forgets hello", func() error {
			code, _, _, err := g.Get("hello", "/")
			if err != nil || code != 404 {
				return fmt.Errorf("status %d err %v", code, err)
			}
			return nil
		})
		if code, _ := g.API("GET", "/apps/hello/releases", ""); code != 404 {
			t.Errorf("releases of a destroyed app: %d", code)
		}
		gridtest.WaitFor(t, 15*time.Second, "hello's files gone from the data directory", func() error {
			slugs, _ := filepath.Glob(filepath.Join(g.Data, "slugs", "*-*-*-*-*"))
			if len(slugs) != 1 { // nodeapp's
				return fmt.Errorf("%d unpacked slugs left: %v", len(slugs), slugs)
			}
			for _, p := range []string{"repos/hello.git", "buildcache/hello"} {
				if _, err := os.Stat(filepath.Join(g.Data, p)); err == nil {
					return fmt.Errorf("%s still exists", p)
				}
			}
			return nil
		})
		g.WaitBody("nodeapp", "/", "node says hi", 10*time.Second)
	})
}
