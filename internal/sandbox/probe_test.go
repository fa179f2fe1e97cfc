package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIsolationProbe runs the in-sandbox probe (testdata/probe.py) the way
// a dyno runs: networked, as the app's uid, with a slug at /app that holds
// a setuid-root binary. Every check it makes must pass, and all of them
// must have run.
func TestIsolationProbe(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	app := appDir(t)
	probe, err := os.ReadFile("testdata/probe.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "probe.py"), probe, 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile("/usr/bin/id")
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(app, "suid-id")
	if err := os.WriteFile(suid, id, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o755|os.ModeSetuid); err != nil { // owned by root: a setuid-root binary
		t.Fatal(err)
	}
	sp, _, _ := spec("probe", "python3", "/app/probe.py")
	sp.AppDir, sp.Network, sp.Dir, sp.Hostname = app, true, "/app", "probe-host"
	names := []string{"PATH", "HOME", "HOSTPID", "HOSTPATHS", "PROBE_UID", "PROBE_HOSTNAME", "PROBE_ENV"}
	sp.Env = append(sp.Env,
		"HOSTPID="+strconv.Itoa(os.Getpid()),
		"HOSTPATHS="+strings.Join([]string{m.cfg.StateDir, app, "/var/lib/grid", "/root"}, ":"),
		"PROBE_UID="+strconv.Itoa(testUID),
		"PROBE_HOSTNAME=probe-host",
		"PROBE_ENV="+strings.Join(names, ","),
	)
	code, out, errOut := run(t, m, sp)
	if code != 0 || !strings.Contains(out, "\ndone passed\n") {
		t.Errorf("probe exit %d:\n%s\n%s", code, out, errOut)
	}
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, "FAIL") {
			t.Error(line)
		}
	}
	n := strings.Count("\n"+out, "\nok ")
	if n < 60 {
		t.Errorf("only %d checks passed; the probe did not run them all:\n%s", n, out)
	}
	t.Logf("%d isolation checks passed", n)
}
