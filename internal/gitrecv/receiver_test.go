package gitrecv

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPushDeploysAndStreamsOutput(t *testing.T) {
	t.Parallel()
	// The Deployer waits until the pusher has seen its first line before
	// it goes on: output that is buffered anywhere deadlocks the test.
	seen := make(chan struct{})
	rec := &recorder{before: func(ctx context.Context, p Push) error {
		io.WriteString(p.Output, "-----> Building on the grid\n")
		select {
		case <-seen:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return errors.New("the pusher never saw the first line")
		}
		io.WriteString(p.Output, "       Released v2\n")
		return nil
	}}
	g := newTestGrid(t, rec)
	c := newClient(t)
	first := c.commit(map[string]string{
		"README.md":      "hello\n",
		"Procfile":       "web: ./server\n",
		"lib/deep/x.txt": "x\n",
		"link":           "-> README.md",
		".gitattributes": "secret.txt export-ignore\nver.txt export-subst\nhidden export-ignore\n",
		"secret.txt":     "kept\n",
		"ver.txt":        "$Format:%H$\n",
		"hidden/h.txt":   "h\n",
	}, "first")

	cmd := c.command("push", g.remote("myapp"), "main")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "remote: -----> Building on the grid") {
			close(seen)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	wantLines := []string{
		"Updated 8 paths from " + first[:7],
		"Compressing source files... done.",
		"Building source:",
		"",
		"-----> Building on the grid",
		"Released v2",
	}
	if diff := cmp.Diff(wantLines, remoteLines(out.String())); diff != "" {
		t.Errorf("remote lines (-want +got):\n%s\nfull output:\n%s", diff, out.String())
	}
	if !strings.Contains(out.String(), "* [new branch]      main -> main") {
		t.Errorf("push output lacks the new branch:\n%s", out.String())
	}

	second := c.commit(map[string]string{"README.md": "hello again\n", "lib/deep/x.txt": ""}, "second")
	if out, err := c.git("push", g.remote("myapp"), "main"); err != nil {
		t.Fatalf("second push: %v\n%s", err, out)
	}

	files1 := map[string]string{
		"README.md":      "hello\n",
		"Procfile":       "web: ./server\n",
		"lib/deep/x.txt": "x\n",
		"link":           "-> README.md",
		".gitattributes": "secret.txt export-ignore\nver.txt export-subst\nhidden export-ignore\n",
		"secret.txt":     "kept\n",
		"ver.txt":        "$Format:%H$\n",
		"hidden/h.txt":   "h\n",
	}
	files2 := map[string]string{}
	for k, v := range files1 {
		files2[k] = v
	}
	files2["README.md"] = "hello again\n"
	delete(files2, "lib/deep/x.txt")
	want := []deployed{
		{App: "myapp", User: testUser, Ref: "refs/heads/main", OldRev: "", NewRev: first, Files: files1},
		{App: "myapp", User: testUser, Ref: "refs/heads/main", OldRev: first, NewRev: second, Files: files2},
	}
	if diff := cmp.Diff(want, rec.all()); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
	if got, err := g.bareGit("myapp", "rev-parse", "refs/heads/main"); err != nil || got != second {
		t.Errorf("server main = %q, %v; want %s", got, err, second)
	}
}

func TestDeployErrorRejectsPush(t *testing.T) {
	t.Parallel()
	fail := true
	rec := &recorder{before: func(ctx context.Context, p Push) error {
		io.WriteString(p.Output, "-----> Go app detected\n")
		if fail {
			return errors.New("Push rejected, failed to compile Go app")
		}
		return nil
	}}
	g := newTestGrid(t, rec)
	c := newClient(t)
	sha := c.commit(map[string]string{"main.go": "package main\n"}, "broken")
	out, err := c.git("push", g.remote("myapp"), "main")
	if err == nil {
		t.Fatalf("push succeeded; want rejection:\n%s", out)
	}
	want := []string{
		"Updated 1 paths from " + sha[:7],
		"Compressing source files... done.",
		"Building source:",
		"",
		"-----> Go app detected",
		"!     Push rejected, failed to compile Go app",
		"",
		"!     Push rejected to myapp.",
		"",
	}
	if diff := cmp.Diff(want, remoteLines(out)); diff != "" {
		t.Errorf("remote lines (-want +got):\n%s", diff)
	}
	if !strings.Contains(out, "! [remote rejected] main -> main (pre-receive hook declined)") {
		t.Errorf("git did not report the hook's rejection:\n%s", out)
	}
	if got, err := g.bareGit("myapp", "rev-parse", "--verify", "--quiet", "refs/heads/main"); err == nil {
		t.Errorf("server has main = %s after a rejected push", got)
	}
	if _, err := g.bareGit("myapp", "cat-file", "-e", sha); err == nil {
		t.Errorf("rejected commit %s left the quarantine", sha)
	}

	// The rejection released the app: the next push goes through.
	fail = false
	if out, err := c.git("push", g.remote("myapp"), "main"); err != nil {
		t.Fatalf("push after a rejection: %v\n%s", err, out)
	}
	if got, _ := g.bareGit("myapp", "rev-parse", "refs/heads/main"); got != sha {
		t.Errorf("server main = %q, want %s", got, sha)
	}
}

func TestPushToOtherRefsDoesNotDeploy(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	c := newClient(t)
	sha := c.commit(map[string]string{"a": "a\n"}, "a")
	c.must("tag", "v1")
	out, err := c.git("push", g.remote("myapp"), "main:feature", "v1")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	want := []string{
		"Pushed to non-deploy branch feature; only main or master deploys",
		"Pushed tag v1; only main or master deploys",
	}
	if diff := cmp.Diff(want, remoteLines(out)); diff != "" {
		t.Errorf("remote lines (-want +got):\n%s", diff)
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d deploys, want 0", n)
	}
	if got, _ := g.bareGit("myapp", "rev-parse", "refs/heads/feature"); got != sha {
		t.Errorf("server feature = %q, want %s", got, sha)
	}
}

func TestPushMasterDeploysAndMainWins(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	c := newClient(t)
	one := c.commit(map[string]string{"a": "1\n"}, "one")
	if out, err := c.git("push", g.remote("myapp"), "main:master"); err != nil {
		t.Fatalf("push master: %v\n%s", err, out)
	}
	// HEAD follows the deployed branch, so a clone checks out master.
	if got, _ := g.bareGit("myapp", "symbolic-ref", "HEAD"); got != "refs/heads/master" {
		t.Errorf("HEAD = %q after deploying master", got)
	}
	two := c.commit(map[string]string{"a": "2\n"}, "two")
	out, err := c.git("push", g.remote("myapp"), "main:main", "main:master")
	if err != nil {
		t.Fatalf("push both: %v\n%s", err, out)
	}
	if !strings.Contains(out, "remote: Pushed to both main and master; only main deploys") {
		t.Errorf("no note about main winning:\n%s", out)
	}
	got := rec.all()
	if len(got) != 2 || got[0].Ref != "refs/heads/master" || got[0].NewRev != one ||
		got[1].Ref != "refs/heads/main" || got[1].NewRev != two || got[1].OldRev != "" {
		t.Errorf("deploys = %+v", got)
	}
}

func TestForcePush(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	c := newClient(t)
	c.commit(map[string]string{"a": "1\n"}, "one")
	two := c.commit(map[string]string{"a": "2\n"}, "two")
	c.must("push", g.remote("myapp"), "main")
	c.must("reset", "--hard", "--quiet", "HEAD~1")
	three := c.commit(map[string]string{"a": "3\n"}, "three")

	// Like Heroku, a non-fast-forward needs -f (the git client refuses).
	if out, err := c.git("push", g.remote("myapp"), "main"); err == nil || !strings.Contains(out, "rejected") {
		t.Fatalf("non-fast-forward push: err=%v\n%s", err, out)
	}
	if out, err := c.git("push", "-f", g.remote("myapp"), "main"); err != nil {
		t.Fatalf("force push: %v\n%s", err, out)
	}
	got := rec.all()
	if len(got) != 2 || got[1].OldRev != two || got[1].NewRev != three || got[1].Files["a"] != "3\n" {
		t.Errorf("deploys = %+v", got)
	}
}

func TestDeleteDeployBranchRejected(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	c := newClient(t)
	sha := c.commit(map[string]string{"a": "1\n"}, "one")
	c.must("push", g.remote("myapp"), "main")
	out, err := c.git("push", g.remote("myapp"), ":main")
	if err == nil {
		t.Fatalf("delete of main succeeded:\n%s", out)
	}
	if !strings.Contains(out, "remote:  !     deleting main is not allowed: the app deploys from it") {
		t.Errorf("no reason given:\n%s", out)
	}
	if got, _ := g.bareGit("myapp", "rev-parse", "refs/heads/main"); got != sha {
		t.Errorf("server main = %q, want %s", got, sha)
	}
}

func TestAuthFailureCreatesNothing(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	c := newClient(t)
	c.commit(map[string]string{"a": "1\n"}, "one")
	for name, url := range map[string]string{
		"wrong key": g.remoteWithKey("myapp", "wrong"),
		"no key":    g.srv.URL + "/myapp.git",
	} {
		out, err := c.git("push", url, "main")
		if err == nil || !(strings.Contains(out, "Authentication failed") || strings.Contains(out, "could not read Username")) {
			t.Errorf("%s: err=%v, output:\n%s", name, err, out)
		}
	}
	if g.repoExists("myapp") || len(rec.all()) != 0 {
		t.Errorf("failed authentication created a repo or deployed")
	}
}

func TestUnknownAppCreatesNothing(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g := newTestGrid(t, rec)
	c := newClient(t)
	c.commit(map[string]string{"a": "1\n"}, "one")
	out, err := c.git("push", g.remote("nosuch"), "main")
	if err == nil || !strings.Contains(out, "remote: No such app as nosuch.") {
		t.Errorf("push to unknown app: err=%v, output:\n%s", err, out)
	}
	if g.repoExists("nosuch") {
		t.Errorf("push to an unknown app created a repo")
	}
}

func TestCloneAfterPush(t *testing.T) {
	t.Parallel()
	g := newTestGrid(t, &recorder{})
	c := newClient(t)
	sha := c.commit(map[string]string{"a": "1\n", "dir/b": "2\n"}, "one")
	c.must("push", g.remote("myapp"), "main")
	for _, version := range []string{"0", "1", "2"} {
		t.Run("protocol v"+version, func(t *testing.T) {
			// Not parallel: each subtest pushes to the same app.
			d := newClient(t)
			d.must("-c", "protocol.version="+version, "clone", "--quiet", g.remote("myapp"), "copy")
			d.dir += "/copy"
			if got := d.must("rev-parse", "HEAD"); got != sha {
				t.Errorf("clone HEAD = %s, want %s", got, sha)
			}
			if got := d.must("show", "HEAD:dir/b"); got != "2" {
				t.Errorf("dir/b = %q", got)
			}
			// Fetch of a new push, incrementally.
			next := c.commit(map[string]string{"a": "again " + version + "\n"}, "next "+version)
			c.must("push", g.remote("myapp"), "main")
			d.must("-c", "protocol.version="+version, "pull", "--quiet", "--ff-only")
			if got := d.must("rev-parse", "HEAD"); got != next {
				t.Errorf("after pull HEAD = %s, want %s", got, next)
			}
			sha = next
		})
	}
}
