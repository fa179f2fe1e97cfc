package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRootIsReadOnly(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("readonly", "sh", "-c", `
for p in /usr/x /usr/bin/sh /x /etc/x /etc/passwd /sys/x /proc/sys/kernel/hostname /.grid/init /etc/ssl/certs/x; do
  (echo x > "$p") 2>/dev/null && echo "WROTE $p"
done
mkdir /newdir 2>/dev/null && echo "WROTE /newdir"
echo ok > /tmp/t && echo tmp-writable
echo ok > /dev/shm/t && echo shm-writable
awk '$5 == "/" { print "root options " $6 }' /proc/self/mountinfo`)
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "WROTE") {
		t.Errorf("wrote to read-only paths:\n%s", out)
	}
	for _, want := range []string{"tmp-writable", "shm-writable"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
	// The root keeps the run tmpfs's nosuid and nodev when it is made
	// read-only (runc before 1.5.3 cleared them).
	_, opts, _ := strings.Cut(out, "root options ")
	got := strings.Split(strings.TrimSpace(opts), ",")
	for _, want := range []string{"ro", "nosuid", "nodev"} {
		if !slices.Contains(got, want) {
			t.Errorf("the root is mounted %v, without %s", got, want)
		}
	}
}

// TestKernelSurfacesMasked checks masked and read-only kernel files. This
// kernel has no /proc/kcore or /proc/sched_debug; /proc/keys and
// /proc/timer_list stand for the masked set.
func TestKernelSurfacesMasked(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("masked", "sh", "-c", `
echo "keys=$(wc -c < /proc/keys)"
echo "timer_list=$(wc -c < /proc/timer_list)"
echo "firmware=$(ls -A /sys/firmware | wc -l)"
echo "cgroupfs=$(ls -A /sys/fs/cgroup | wc -l)"
echo "devices=$(ls /dev | tr '\n' ' ')"
grep -q ' /proc/sys proc ro' /proc/mounts && echo procsys-ro
grep -q ' /sys sysfs ro' /proc/mounts && echo sys-ro`)
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"keys=0", "timer_list=0", "firmware=0", "cgroupfs=0", "procsys-ro", "sys-ro"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	devs := out[strings.Index(out, "devices="):]
	for _, bad := range []string{"kvm", "mem ", "vda", "sda"} {
		if strings.Contains(devs, bad) {
			t.Errorf("/dev exposes %q: %s", bad, devs)
		}
	}
}

func TestGeneratedEtc(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("etc", "sh", "-c", `
getent passwd u10123
getent hosts etc-host
cat /etc/resolv.conf
ls /etc/ssl/private 2>/dev/null && echo PRIVATE-VISIBLE
awk 'BEGIN { print "awk-works" }'
python3 -c 'import ssl; print("cas", ssl.create_default_context().cert_store_stats()["x509_ca"] > 0)'`)
	sp.Hostname = "etc-host"
	sp.Network = true
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	for _, want := range []string{"u10123:x:10123:10123::/app:/bin/bash\n", "etc-host\n", string(resolv), "awk-works\n", "cas True\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRIVATE-VISIBLE") {
		t.Error("/etc/ssl/private is visible inside")
	}
}

// appDir makes a slug-like tree owned by the test uid, as slug.Cache does.
func appDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "Procfile")} {
		if err := os.Chown(p, testUID, testUID); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAppOverlay(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	app := appDir(t)
	sp, _, _ := spec("overlay", "sh", "-c", `
cat /app/Procfile
echo changed > /app/Procfile && echo "new" > /app/new && mkdir /app/d && echo ok
stat -c '%U %a' /app
cat /app/Procfile /app/new`)
	sp.AppDir = app
	sp.Dir = "/app"
	s := start(t, m, sp)
	code := waitExit(t, s, 30*time.Second)
	out := sp.Stdout.(*syncBuffer).String()
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, sp.Stderr.(*syncBuffer).String())
	}
	if want := "web: true\nok\nu10123 755\nchanged\nnew\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if b, _ := os.ReadFile(filepath.Join(app, "Procfile")); string(b) != "web: true\n" {
		t.Errorf("host AppDir changed: Procfile = %q", b)
	}
	if _, err := os.Stat(filepath.Join(app, "new")); err == nil {
		t.Error("write leaked into the host AppDir")
	}
	upper := s.layout.upper()
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("write not in the upper layer: %v", err)
	}
	if err := s.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(upper); !os.IsNotExist(err) {
		t.Errorf("upper layer survived Destroy: %v", err)
	}
}

func TestExtraMounts(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	ro, rw := t.TempDir(), t.TempDir()
	for _, d := range []string{ro, rw} {
		if err := os.Chown(d, testUID, testUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "in"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, _, _ := spec("mounts", "sh", "-c", `cat /ro/in; (echo x > /ro/x) 2>/dev/null && echo WROTE-RO; echo out > /tmp/cache/out && echo rw-ok`)
	sp.Mounts = []Mount{{Source: ro, Target: "/ro"}, {Source: rw, Target: "/tmp/cache", Writable: true}}
	code, out, errOut := run(t, m, sp)
	if code != 0 || out != "from-host\nrw-ok\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(rw, "out")); string(b) != "out\n" {
		t.Errorf("rw mount write not on host: %q", b)
	}
}

func TestTmpSizeLimit(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sp, _, _ := spec("tmpfull", "sh", "-c", `dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>&1; echo "size=$(du -m /tmp/fill | cut -f1)"`)
	sp.TmpMB = 8
	code, out, errOut := run(t, m, sp)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "No space left on device") || !strings.Contains(out, "size=8\n") {
		t.Errorf("want ENOSPC at 8 MB, got:\n%s", out)
	}
}
