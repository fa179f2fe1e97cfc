package sandbox

// The escape regression suite (reliability.md I-4 (d), with I-2): a
// tenant controls the slug tree mounted at /app, whatever it writes into
// writable mounts, and nothing else. These tests fill those places with
// symlinks to host-looking targets (and swap them during a start) and
// check that every sandbox either refuses to start with a clear error or
// keeps everything inside its own root, and that host files a mount or
// a write that escaped would change stay as they were. The probe
// (TestIsolationProbe) covers the in-sandbox checks of I-4 (a), (b) and
// (e); seccomp and the read-only cgroupfs cover (c).

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/grid"
)

// hostWatch holds the hashes of host files an escape would change: a
// sentinel file of the test's own and the host files the hostile slugs
// point at.
type hostWatch struct {
	sentinel string // a host file no sandbox may reach
	before   map[string]string
}

// watchHost hashes the host files now and checks them again when the
// test ends, after every sandbox it started has been destroyed.
func watchHost(t *testing.T) *hostWatch {
	t.Helper()
	sentinel := filepath.Join(t.TempDir(), "sentinel")
	if err := os.WriteFile(sentinel, []byte(rand.Text()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{sentinel, "/proc/sys/kernel/core_pattern", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/shadow"}
	w := &hostWatch{sentinel: sentinel, before: hashFiles(t, paths)}
	t.Cleanup(func() {
		for p, after := range hashFiles(t, paths) {
			if after != w.before[p] {
				t.Errorf("host file %s changed: sha256 %s, was %s", p, after, w.before[p])
			}
		}
	})
	return w
}

// hashFiles returns the SHA-256 of each file's content ("absent" for a
// missing one).
func hashFiles(t *testing.T, paths []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out[p] = "absent"
		case err != nil:
			t.Fatal(err)
		default:
			out[p] = sha256Hex(b)
		}
	}
	return out
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// slugWith makes an app dir (see appDir) that also holds the symlinks
// links (path in the slug -> target), owned by the app's uid like the
// rest of a slug.
func slugWith(t *testing.T, links map[string]string) string {
	t.Helper()
	app := appDir(t)
	for name, target := range links {
		p := filepath.Join(app, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		for q := p; q != app; q = filepath.Dir(q) {
			if err := os.Lchown(q, testUID, testUID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return app
}

// refused checks that sp does not start, for a reason of ErrInvalid; a
// sandbox that does start is destroyed.
func refused(t *testing.T, m *Manager, sp Spec) error {
	t.Helper()
	s, err := m.Start(context.Background(), sp)
	if err == nil {
		waitExit(t, s, 30*time.Second)
		if err := s.Destroy(); err != nil {
			t.Error(err)
		}
		t.Errorf("sandbox %s started; want ErrInvalid", sp.ID)
		return nil
	}
	if !errors.Is(err, grid.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
	return err
}

// markedDir makes a host directory holding a file "marker", to bind
// into a sandbox and find there.
func markedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("marker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHostileSlugSymlinks is I-4 (d) for our design: the slug is /app,
// not the root, so a slug whose proc, dev/null, etc/hosts,
// etc/resolv.conf and tmp (and more) are symlinks to host-looking
// targets must not change where the sandbox's own /proc, /dev/null,
// /etc files and /tmp are, and every write the dyno makes through those
// symlinks must land inside the sandbox. The working directory is set
// through one of them too.
func TestHostileSlugSymlinks(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	host := watchHost(t)
	const id = "hostile-slug"
	app := slugWith(t, map[string]string{
		"proc":            "/proc",
		"dev/null":        host.sentinel,
		"etc/hosts":       "/etc/hostname",
		"etc/resolv.conf": "../../../../../../../etc/resolv.conf",
		"tmp":             filepath.Dir(host.sentinel),
		"core":            "/proc/sys/kernel/core_pattern",
		"kernel":          "/proc/sys/kernel",
		"sysrq":           "/proc/sysrq-trigger",
		"etc-dir":         "/etc",
		"shadow":          "/etc/shadow",
		".profile.d":      "/etc/profile.d",
		"root":            "/",
		"up":              "../../../../../../../..",
		"state":           m.cfg.StateDir,
		"layer":           newLayout(m.cfg.StateDir, id).upper(),
		"sentinel":        host.sentinel,
		"init":            initTarget,
		"cgroup":          "/sys/fs/cgroup",
		"loop":            "loop",
		"scratch":         "/tmp",
		"shm":             "/dev/shm",
		"self":            "/app",
	})
	script, err := os.ReadFile("testdata/hostileslug.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "hostileslug.py"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	sp, _, _ := spec(id, "python3", "/app/hostileslug.py")
	sp.AppDir, sp.Dir, sp.Hostname = app, "/app/up", "hostile-host"
	code, out, errOut := run(t, m, sp)
	if code != 0 || !strings.Contains(out, "\ndone\n") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"mount /proc proc", "mount /dev tmpfs", "mount /tmp tmpfs", "mount /app overlay", "mount /sys sysfs",
		"null chr 1:3", "cwd /",
		"file /etc/hosts " + sha256Hex([]byte(hosts(sp.Hostname, netip.Addr{}))),
		"file /etc/resolv.conf " + sha256Hex(resolv),
		"file /etc/hostname " + sha256Hex([]byte(sp.Hostname+"\n")),
	} {
		if !strings.Contains(out, "\n"+want+"\n") && !strings.HasPrefix(out, want+"\n") {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	var wrote, refused int
	for line := range strings.SplitSeq(out, "\n") {
		switch {
		case strings.HasPrefix(line, "refused "):
			refused++
		case strings.HasPrefix(line, "wrote "):
			wrote++
			_, real, _ := strings.Cut(line, " -> ")
			if !insideSandboxWritable(real) {
				t.Errorf("a write through the slug reached %s: %s", real, line)
			}
		}
	}
	t.Logf("%d writes through slug symlinks stayed inside, %d refused", wrote, refused)
	if wrote < 3 || refused < 20 {
		t.Errorf("%d writes made, %d refused; the script did not try them all:\n%s", wrote, refused, out)
	}
}

// insideSandboxWritable reports whether path (as the sandbox sees it) is
// in one of the sandbox's own writable places.
func insideSandboxWritable(path string) bool {
	for _, dir := range []string{"/app", "/tmp", "/dev/shm"} {
		if strings.HasPrefix(path, dir+"/") {
			return true
		}
	}
	return path == "/dev/null"
}

// TestMountTargetThroughSlugSymlink: an extra mount whose target under
// /app passes through a symlink in the slug is refused before anything
// is made, whatever the symlink points at (CVE-2021-30465 and
// CVE-2025-31133 class: the tenant must not choose where the platform's
// mounts land).
func TestMountTargetThroughSlugSymlink(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	host := watchHost(t)
	file := filepath.Join(markedDir(t), "marker")
	cases := []struct {
		name, link, to, target string
		fileSource, writable   bool
	}{
		{name: "to etc", link: "cache", to: "/etc", target: "/app/cache"},
		{name: "to etc writable", link: "cache", to: "/etc", target: "/app/cache", writable: true},
		{name: "to proc sys kernel", link: "cache", to: "/proc/sys/kernel", target: "/app/cache"},
		{name: "to core_pattern", link: "core", to: "/proc/sys/kernel/core_pattern", target: "/app/core", fileSource: true, writable: true},
		{name: "to dev null", link: "null", to: "/dev/null", target: "/app/null", fileSource: true},
		{name: "to dev", link: "devdir", to: "/dev", target: "/app/devdir"},
		{name: "to root", link: "cache", to: "/", target: "/app/cache"},
		{name: "dotdot out of the slug", link: "cache", to: "../../../../../../..", target: "/app/cache"},
		{name: "to host state dir", link: "cache", to: m.cfg.StateDir, target: "/app/cache", writable: true},
		{name: "to host sentinel", link: "cache", to: host.sentinel, target: "/app/cache", fileSource: true, writable: true},
		{name: "to init", link: "grid", to: "/.grid", target: "/app/grid"},
		{name: "to tmp", link: "tmp", to: "/tmp", target: "/app/tmp", writable: true},
		{name: "profile.d to etc", link: ".profile.d", to: "/etc/profile.d", target: "/app/.profile.d"},
		{name: "parent component", link: "vendor", to: "/etc", target: "/app/vendor/ssl"},
		{name: "deep parent component", link: "a/b", to: "/proc/sys", target: "/app/a/b/kernel/x"},
		{name: "inside the slug", link: "cache", to: "real-cache", target: "/app/cache"},
		{name: "loop", link: "cache", to: "cache", target: "/app/cache"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := slugWith(t, map[string]string{c.link: c.to})
			src := markedDir(t)
			if c.fileSource {
				src = file
			}
			sp, out, _ := spec(fmt.Sprintf("slug-target-%d", i), "sh", "-c", `grep -F "$MARK" /proc/self/mountinfo; echo pwned > "$TARGET/pwned"; echo pwned > "$TARGET"`)
			sp.Env = append(sp.Env, "MARK="+t.Name()[:strings.IndexByte(t.Name(), '/')], "TARGET="+c.target)
			sp.AppDir = app
			sp.Mounts = []Mount{{Source: src, Target: c.target, Writable: c.writable}}
			if err := refused(t, m, sp); err == nil {
				t.Logf("the mount landed at:\n%s", out.String())
			} else if !strings.Contains(err.Error(), "symlink") {
				t.Errorf("err = %v, want it to name the symlink", err)
			}
		})
	}
	// A target through real directories of a slug that has symlinks
	// elsewhere is fine.
	app := slugWith(t, map[string]string{"other": "/etc", "vendor/link": "/proc"})
	if err := os.Mkdir(filepath.Join(app, "vendor", "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	sp, _, _ := spec("slug-target-ok", "cat", "/app/vendor/cache/marker")
	sp.AppDir = app
	sp.Mounts = []Mount{{Source: markedDir(t), Target: "/app/vendor/cache"}}
	if code, out, errOut := run(t, m, sp); code != 0 || out != "marker\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want the marker at /app/vendor/cache", code, out, errOut)
	}
}

// TestMountTargetDotDot: targets are cleaned before they are checked and
// mounted, so ".." can neither reach a surface the sandbox manages nor
// be resolved through a slug symlink ("/app/link/.." is /app, not the
// link's parent).
func TestMountTargetDotDot(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	watchHost(t)
	app := slugWith(t, map[string]string{"link": "/proc/sys/kernel"})
	src := markedDir(t)
	for _, target := range []string{
		"/app/../proc/sys/kernel", "/tmp/../../../../dev/null", "/app/x/../../sys/fs/cgroup",
		"/tmp/../.grid/init", "/app/..", "/app/link/../..", "/app/link/..",
	} {
		t.Run(target, func(t *testing.T) {
			sp, _, _ := spec("dotdot", "true")
			sp.AppDir = app
			sp.Mounts = []Mount{{Source: src, Target: target, Writable: true}}
			refused(t, m, sp)
		})
	}
	// Cleaned, "/app/link/../etc" is "/app/etc": the mount lands there, not
	// at /proc/sys/etc where resolving the link first would go.
	sp, _, _ := spec("dotdot-live", "cat", "/app/etc/marker")
	sp.AppDir = app
	sp.Mounts = []Mount{{Source: src, Target: "/app/link/../etc"}}
	if code, out, errOut := run(t, m, sp); code != 0 || out != "marker\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want the marker at /app/etc", code, out, errOut)
	}
}

// TestMountSourceSymlink: a mount source is the operator's, but it may
// be a symlink. It is resolved when the spec is checked, so that the
// path checked is the path bound, and a source that resolves to the
// host's root or kernel surfaces is refused.
func TestMountSourceSymlink(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	watchHost(t)
	dir := t.TempDir()
	real := markedDir(t)
	link := func(name, to string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ name, to string }{
		{"root", "/"},
		{"proc", "/proc"},
		{"proc sys kernel", "/proc/sys/kernel"},
		{"core_pattern", "/proc/sys/kernel/core_pattern"},
		{"sysfs cgroup", "/sys/fs/cgroup"},
		{"dev", "/dev"},
		{"dotdot to root", strings.Repeat("../", 20)},
		{"dangling", "/nonexistent/grid-test"},
		{"loop", "loop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp, _, _ := spec("source-link", "true")
			sp.Mounts = []Mount{{Source: link(strings.ReplaceAll(c.name, " ", "-"), c.to), Target: "/data", Writable: true}}
			refused(t, m, sp)
		})
	}
	sp, _, _ := spec("source-link", "true")
	sp.Mounts = []Mount{{Source: link("good", real), Target: "/data"}}
	got, err := normalize(sp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mounts[0].Source != real {
		t.Errorf("source = %q, want it resolved to %q", got.Mounts[0].Source, real)
	}
	sp, _, _ = spec("source-link-live", "cat", "/data/marker")
	sp.Mounts = []Mount{{Source: link("good2", real), Target: "/data"}}
	if code, out, errOut := run(t, m, sp); code != 0 || out != "marker\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestMountTargetSymlinkRace is the CVE-2021-30465 shape: a running
// tenant sandbox swaps (renameat2 RENAME_EXCHANGE, in a tight loop) a
// directory in a writable mount it shares with the next sandbox, which
// mounts something below it, with symlinks to host-looking targets. The
// check at Start sees either; whatever libcontainer then finds is
// resolved inside the new sandbox's root. Each start must fail, or put
// the mount inside that root and nowhere the sandbox manages.
func TestMountTargetSymlinkRace(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	host := watchHost(t)
	shared, marker := t.TempDir(), markedDir(t)
	if err := os.Mkdir(filepath.Join(shared, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	targets := []string{"/proc/sys/kernel", "/etc", "../../../../../../..", filepath.Dir(host.sentinel), "/.grid"}
	for i, to := range targets {
		if err := os.Symlink(to, filepath.Join(shared, "l"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.Walk(shared, func(p string, _ fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, testUID, testUID)
	}); err != nil {
		t.Fatal(err)
	}
	attacker, attackOut, _ := spec("race-attacker", "python3", "-c", `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir("/tmp/cache")
links = sorted(n for n in os.listdir(".") if n.startswith("l"))
print("swapping", flush=True)
while True:
    for l in links:
        libc.renameat2(-100, b"sub", -100, l.encode(), 2)  # RENAME_EXCHANGE
        libc.renameat2(-100, b"sub", -100, l.encode(), 2)
`)
	attacker.Mounts = []Mount{{Source: shared, Target: "/tmp/cache", Writable: true}}
	start(t, m, attacker)
	attackOut.waitFor(t, "swapping", 30*time.Second)

	outcomes := map[string]int{}
	for i := range 16 {
		// The marker dir's mount, wherever it landed (mountinfo fields 4
		// and 5: its root in the host file system, the mount point), with
		// shell builtins only: a mount that landed on /etc hides
		// /etc/alternatives, and with it awk.
		sp, out, _ := spec(fmt.Sprintf("race-victim-%d", i), "sh", "-c", `while read -r _ _ _ root at _; do [ "$root" = "$SRC" ] && echo "mounted at $at"; done < /proc/self/mountinfo; true`)
		sp.Env = append(sp.Env, "SRC="+marker)
		sp.Mounts = []Mount{{Source: shared, Target: "/tmp/cache", Writable: true}, {Source: marker, Target: "/tmp/cache/sub"}}
		s, err := m.Start(context.Background(), sp)
		switch {
		case errors.Is(err, grid.ErrInvalid):
			outcomes["refused by the check"]++
			t.Logf("start %d: %v", i, err)
			continue
		case err != nil:
			outcomes["refused by libcontainer"]++
			t.Logf("start %d: %v", i, err)
			continue
		}
		code := waitExit(t, s, 30*time.Second)
		if err := s.Destroy(); err != nil {
			t.Fatal(err)
		}
		// A mount the swap raced with is on a directory the attacker then
		// renamed away: the kernel dissolves it, and nothing is mounted.
		where := strings.TrimSpace(out.String())
		outcomes["started, "+cmp.Or(where, "mount dissolved")]++
		if code != 0 || strings.Count(where, "\n") > 0 {
			t.Errorf("start %d: exit %d, mounts %q", i, code, where)
		}
		if p := strings.TrimPrefix(where, "mounted at "); p != "" && !strings.HasPrefix(p, "/tmp/") && !strings.HasPrefix(p, "/etc") {
			t.Errorf("start %d: the mount landed at %s", i, p)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestCrossTenantReach is I-2 on one Manager: from app A (one uid), try
// B's writable layer, slug and state through guessed host paths and
// /proc/<pid>/{root,environ,cwd}, every visible process's root and
// environment, and signals to B's processes by host pid. Nothing may
// get anywhere, B must still run, and B's files must be unchanged.
func TestCrossTenantReach(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	watchHost(t)
	const uidB = testUID + 1
	appB := t.TempDir()
	if err := os.WriteFile(filepath.Join(appB, "slug-sentinel"), []byte(rand.Text()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{appB, filepath.Join(appB, "slug-sentinel")} {
		if err := os.Chown(p, uidB, uidB); err != nil {
			t.Fatal(err)
		}
	}
	spB, outB, errB := spec("tenant-b", "sh", "-c", `echo "$B_ONLY_SECRET" > /app/layer-sentinel && chmod 600 /app/layer-sentinel && echo ready && exec sleep 1000`)
	spB.UID, spB.AppDir, spB.Dir = uidB, appB, "/app"
	spB.Env = append(spB.Env, "B_ONLY_SECRET="+rand.Text())
	b := start(t, m, spB)
	outB.waitFor(t, "ready", 30*time.Second)
	bFiles := []string{filepath.Join(appB, "slug-sentinel"), filepath.Join(b.layout.upper(), "layer-sentinel")}
	before := hashFiles(t, bFiles)

	bPids := []string{strconv.Itoa(b.Pid())}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", b.Pid(), b.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	bPids = append(bPids, strings.Fields(string(children))...)
	l := b.layout
	bPaths := []string{
		appB, bFiles[0], l.upper(), bFiles[1], l.layer(), l.image(), l.disk, l.rootfs(), l.run, l.record(),
		m.cfg.StateDir, m.runDir(),
	}
	reach, err := os.ReadFile("testdata/reach.py")
	if err != nil {
		t.Fatal(err)
	}
	spA, outA, errA := spec("tenant-a", "python3", "-c", string(reach))
	spA.AppDir = appDir(t)
	spA.Env = append(spA.Env,
		"B_PIDS="+strings.Join(bPids, ","),
		"B_PATHS="+strings.Join(bPaths, ":"),
		"B_FILES=slug-sentinel,layer-sentinel",
		"B_SECRET_NAME=B_ONLY_SECRET",
	)
	if code := waitExit(t, start(t, m, spA), 60*time.Second); code != 0 || !strings.Contains(outA.String(), "\ndone\n") {
		t.Fatalf("A exit %d:\n%s\n%s", code, outA.String(), errA.String())
	}
	tried := strings.Count(outA.String(), "tried ")
	for line := range strings.SplitSeq(outA.String(), "\n") {
		if strings.HasPrefix(line, "REACHED") {
			t.Error(line)
		}
	}
	if tried < 80 {
		t.Errorf("A made only %d attempts:\n%s", tried, outA.String())
	}
	t.Logf("A made %d attempts on B", tried)
	select {
	case <-b.Done():
		t.Fatalf("B exited: %s", errB.String())
	default:
	}
	for _, pid := range bPids {
		n, _ := strconv.Atoi(pid)
		if err := unix.Kill(n, 0); err != nil {
			t.Errorf("B's process %d is gone: %v", n, err)
		}
	}
	for p, after := range hashFiles(t, bFiles) {
		if after != before[p] {
			t.Errorf("B's file %s changed", p)
		}
	}
}

// TestDirThroughSlugSymlink: the working directory is set through a
// slug symlink that points at /proc/self/fd/N (the CVE-2024-21626 shape:
// a descriptor the runtime leaked would put the dyno's cwd on the host)
// or out of the root. The sandbox must refuse to start or run with its
// cwd inside its root.
func TestDirThroughSlugSymlink(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	watchHost(t)
	links := map[string]string{"up": "../../../../../../..", "init-cwd": "/proc/1/cwd", "init-root": "/proc/1/root"}
	for fd := 3; fd <= 9; fd++ {
		links["fd"+strconv.Itoa(fd)] = "/proc/self/fd/" + strconv.Itoa(fd)
	}
	app := slugWith(t, links)
	for name := range links {
		t.Run(name, func(t *testing.T) {
			sp, out, errOut := spec("cwd-"+name, "python3", "-c", `
import os
st, here = os.stat("."), os.getcwd()
same = os.stat(here)
print("inside" if (st.st_dev, st.st_ino) == (same.st_dev, same.st_ino) else "OUTSIDE", here)`)
			sp.AppDir, sp.Dir = app, "/app/"+name
			s, err := m.Start(context.Background(), sp)
			if err != nil {
				t.Logf("refused: %v", err)
				return
			}
			code := waitExit(t, s, 30*time.Second)
			if err := s.Destroy(); err != nil {
				t.Fatal(err)
			}
			if code != 0 || !strings.HasPrefix(out.String(), "inside ") {
				t.Errorf("exit %d, stdout %q, stderr %q: cwd not inside the root", code, out.String(), errOut.String())
			}
			t.Logf("ran with cwd %s", strings.TrimSpace(strings.TrimPrefix(out.String(), "inside ")))
		})
	}
}
