package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/grid"
)

// releaseApp writes an app whose Procfile has web and the given release
// command.
func releaseApp(t *testing.T, release string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>released</p>\n"), 0o644)
	procfile := "web: python3 -m http.server $PORT\nrelease: " + release + "\n"
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644)
	return dir
}

// TestDeployReleasePhase: the release command runs before the release
// goes live, with the app's config, as release.NNNN; its output reaches
// the push and the logs, and what it writes to /app is not kept.
func TestDeployReleasePhase(t *testing.T) {
	h := newHarness(t, nil)
	app := h.createApp(t, "migrates", map[string]string{"DATABASE_URL": "postgres://db.example/app"})
	src := releaseApp(t, `echo "migrating $DATABASE_URL as $DYNO" && touch /app/migrated && echo done >&2`)
	rel, out, err := h.deploy(t, app.Name, src, commit(1))
	if err != nil {
		t.Fatal(err)
	}
	// stdout and stderr come through pipes of their own, so "done" may
	// arrive before the line echoed ahead of it.
	wantLines(t, out, "-----> Running release command...\n", "\nmigrating postgres://db.example/app as release.", "\ndone\n",
		"       Release command succeeded in ", "Released v2\n")
	sl := h.checkReleased(t, app.Name, rel, 2, map[string]string{"web": "python3 -m http.server $PORT"})
	if _, err := os.Stat(filepath.Join(h.slugs.Dir, sl.ID, "migrated")); err == nil {
		t.Error("what the release command wrote to /app is in the slug")
	}
	f, err := h.st.Formation(context.Background(), app.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Types["release"]; ok {
		t.Errorf("formation %+v has the release type", f.Types)
	}

	dyno := regexp.MustCompile(`as (release\.\d{4})\n`).FindStringSubmatch(out)
	if dyno == nil {
		t.Fatalf("no release dyno name in %q", out)
	}
	var got []string
	for _, l := range h.logLines(t, app.Name) {
		if l.Dyno == dyno[1] || l.Dyno == "api" && strings.Contains(l.Text, "release") {
			got = append(got, l.Source+"["+l.Dyno+"]: "+l.Text)
		}
	}
	want := []string{
		"app[api]: Running release command by user pusher@example.com",
		"heroku[" + dyno[1] + "]: Starting process with command `" + `echo "migrating $DATABASE_URL as $DYNO" && touch /app/migrated && echo done >&2` + "`",
		"app[" + dyno[1] + "]: migrating postgres://db.example/app as " + dyno[1],
		"app[" + dyno[1] + "]: done",
		"heroku[" + dyno[1] + "]: Process exited with status 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDeployReleasePhaseFails: a failing or overlong release command
// rejects the push, records a failed release under the next version and
// leaves the current release serving; the next good push goes on from
// there.
func TestDeployReleasePhaseFails(t *testing.T) {
	h := newHarness(t, func(c *build.Config) { c.ReleaseTimeout = 2 * time.Second })
	app := h.createApp(t, "badmigrate", nil)
	ctx := context.Background()
	for i, tc := range []struct{ release, why string }{
		{"echo cannot reach the database >&2; exit 3", "the release command exited with status 3"},
		{"sleep 60", "the release command ran past its 2s limit"},
	} {
		_, out, err := h.deploy(t, app.Name, releaseApp(t, tc.release), commit(i+1))
		if !errors.Is(err, grid.ErrInvalid) {
			t.Fatalf("%s: deploy: %v, want ErrInvalid", tc.release, err)
		}
		version := i + 2
		wantLines(t, out, " !     Push rejected: "+tc.why+".\n",
			" !     Release v"+strconv.Itoa(version)+" is marked failed; v1 keeps serving. See grid logs --dyno release.")
		a, err := h.st.App(ctx, app.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Release.Version != 1 || a.ReleaseSeq != version {
			t.Errorf("after %q: current v%d, last version %d; want v1 and %d", tc.release, a.Release.Version, a.ReleaseSeq, version)
		}
		r, err := h.st.Release(ctx, app.Name, version)
		if err != nil || r.Status != grid.ReleaseFailed || r.SlugID != "" || r.Commit != commit(i+1) {
			t.Errorf("v%d = %+v, %v; want failed, no slug, the pushed commit", version, r, err)
		}
		if sl, _ := h.st.Slugs(ctx, app.Name); len(sl) != 0 {
			t.Errorf("slugs stored for a failed release: %v", sl)
		}
	}
	if !strings.Contains(strings.Join(h.apiLines(t, app.Name), "\n"), "Release v3 command failed by user pusher@example.com") {
		t.Errorf("no failed release in the API log: %q", h.apiLines(t, app.Name))
	}
	rel, out, err := h.deploy(t, app.Name, releaseApp(t, "true"), commit(9))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "Released v4\n")
	h.checkReleased(t, app.Name, rel, 4, nil)
}
