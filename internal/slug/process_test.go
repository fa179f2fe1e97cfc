package slug_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/slug"
)

func TestProcessEnv(t *testing.T) {
	t.Parallel()
	got := slug.ProcessEnv(map[string]string{"GREETING": "hi there", "PORT": "1", "DYNO": "x", "HOME": "/root", "_LIBCONTAINER_X": "1", "PATH": "/custom"}, "web.1", 12345)
	want := []string{"DYNO=web.1", "GREETING=hi there", "HOME=/app", "PATH=/custom", "PORT=12345"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := slug.ProcessEnv(nil, "worker.2", 5000); !contains(got, "PATH="+slug.DefaultPath) {
		t.Errorf("default PATH missing: %v", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDynoCommandQuoting runs the dyno command's bash on the host with a
// fake /app made by rewriting the paths, to check that the command is run
// verbatim after the profile scripts, with nothing evaluated twice.
func TestProcessCommandQuoting(t *testing.T) {
	t.Parallel()
	app := t.TempDir()
	os.MkdirAll(filepath.Join(app, ".profile.d"), 0o755)
	os.WriteFile(filepath.Join(app, ".profile.d/a.sh"), []byte("export FROM_PROFILE_D=yes\nset -- clobbered\n"), 0o644)
	os.WriteFile(filepath.Join(app, ".profile"), []byte("export FROM_PROFILE=${FROM_PROFILE_D}-too\n"), 0o644)
	argv := slug.ProcessCommand(`echo "$FROM_PROFILE_D $FROM_PROFILE" '$(touch pwned)'; echo $PORT`)
	argv[2] = strings.ReplaceAll(argv[2], "/app/", app+"/")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = app
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PORT=5000"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got, want := string(out), "yes yes-too $(touch pwned)\n5000\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(app, "pwned")); err == nil {
		t.Error("a quoted part of the command was evaluated")
	}
}

// The command reaches bash -c verbatim: quotes, $ and ; are the
// command's own, never re-evaluated by the wrapper.
func TestProcessCommandVerbatim(t *testing.T) {
	for cmd, want := range map[string]string{
		`echo "a'b" $X`:                   "a'b 1\n",
		`echo '$X' "$X"; echo done`:       "$X 1\ndone\n",
		"printf '%s|' \"$0\" \"$#\"":      "/bin/bash|0|",
		`X=2 bash -c 'echo $X' && exit 0`: "2\n",
	} {
		args := slug.ProcessCommand(cmd)
		c := exec.Command(args[0], args[1:]...)
		c.Env = []string{"X=1", "PATH=/usr/bin:/bin"}
		out, err := c.CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("%s: %q %v, want %q", cmd, out, err, want)
		}
	}
}
