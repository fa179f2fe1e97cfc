package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moby/sys/mountinfo"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/mounts"
	"github.com/dynogrid/grid/internal/slug"
)

// The bare reference of BenchmarkNoisyNeighbour runs A's hog as a plain
// process rather than a dyno: the same program (bench/testdata/hog), at
// SCHED_IDLE, in cgroups under the eco dynos' idle parent whose CPU,
// cpuset, memory and process limits are copied from A's dyno of the same
// case, with tmpfs /tmp and /dev/shm of the dyno's sizes and, for /app,
// a plain ext4 image of the dyno's layer's size on a loop device (mkfs's
// and mount's defaults: what bounds a process's disk without grid). It
// has no namespaces, no seccomp filter, none of the layer's tuning (see
// internal/sandbox/disk.go) or disk bound, and no host agent reading its
// output, and it is restarted at once when it exits.
// What B pays beside it is what that neighbour costs on this machine with
// the kernel's own settings and no grid at all; the grid's ratio over the
// bare one is what the platform adds or saves.

// bareLimits are the cgroup files copied from A's dyno, in the order they
// must be written: cpuset's cores and memory nodes before a task joins,
// the memory limit before memory+swap.
var bareLimits = []struct{ ctrl, file string }{
	{"cpuset", "cpuset.cpus"}, {"cpuset", "cpuset.mems"},
	{"cpu", "cpu.shares"}, {"cpu", "cpu.cfs_period_us"}, {"cpu", "cpu.cfs_quota_us"},
	{"memory", "memory.limit_in_bytes"}, {"memory", "memory.memsw.limit_in_bytes"},
	{"memory", "memory.soft_limit_in_bytes"}, {"memory", "memory.swappiness"},
	{"pids", "pids.max"},
}

// bareControllers are the hierarchies the bare process joins: those of
// bareLimits, cpuacct to count its CPU, and freezer so that freeze stops
// it as it stops a dyno.
var bareControllers = []string{"cpuset", "cpu", "cpuacct", "memory", "pids", "freezer"}

// dynoLimits is what the bare reference copies of a running dyno.
type dynoLimits struct {
	values              []string // of bareLimits, in order; "" where the kernel has no such file
	tmpMB, shmMB, appMB int      // sizes of its /tmp, /dev/shm and /app
}

// readDynoLimits reads a dyno's limits from its newest sandbox. It fails
// while the dyno has no sandbox with a process in it (between a crash
// and its restart).
func readDynoLimits(dynoID string) (dynoLimits, error) {
	var l dynoLimits
	procs := cgroupFile("pids", dynoID, "cgroup.procs")
	pid, _, _ := strings.Cut(procs, "\n")
	if pid == "" {
		return l, errors.New("no process")
	}
	for _, f := range bareLimits {
		v := cgroupFile(f.ctrl, dynoID, f.file)
		if v == "" && f.file != "memory.memsw.limit_in_bytes" {
			return l, fmt.Errorf("%s: not read", f.file)
		}
		l.values = append(l.values, v)
	}
	var err error
	if l.tmpMB, err = tmpfsMB("/proc/" + pid + "/root/tmp"); err != nil {
		return l, err
	}
	if l.shmMB, err = tmpfsMB("/proc/" + pid + "/root/dev/shm"); err != nil {
		return l, err
	}
	dirs := cgroupDirs("pids", dynoID)
	if len(dirs) == 0 {
		return l, errors.New("no sandbox")
	}
	l.appMB, err = layerMB(filepath.Base(dirs[len(dirs)-1]))
	return l, err
}

// layerMB is the size of the loop device of a sandbox's layer, which
// the host mounts at .../<sandbox ID>/layer (internal/sandbox/rootfs.go).
func layerMB(sandboxID string) (int, error) {
	layers, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !strings.HasSuffix(m.Mountpoint, "/"+sandboxID+"/layer") || !strings.HasPrefix(m.Source, "/dev/loop"), false
	})
	if err != nil {
		return 0, err
	}
	if len(layers) == 0 {
		return 0, fmt.Errorf("sandbox %s: no layer on a loop device", sandboxID)
	}
	size, err := os.ReadFile("/sys/block/" + strings.TrimPrefix(layers[0].Source, "/dev/") + "/size")
	if err != nil {
		return 0, err
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(size)), 10, 64)
	return int(sectors >> 11), err // 512-byte sectors
}

// cpus is the dyno's cpuset, the first of bareLimits.
func (l dynoLimits) cpus() string { return l.values[0] }

func tmpfsMB(path string) (int, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int(st.Blocks * uint64(st.Bsize) >> 20), nil
}

// waitDynoLimits reads a dyno's limits once it has a sandbox: within a
// few seconds even for the memory bomb, whose sandboxes last about a
// second each.
func waitDynoLimits(b *testing.B, dynoID string) dynoLimits {
	var l dynoLimits
	gridtest.WaitFor(b, 30*time.Second, "the limits of A's dyno", func() (err error) {
		l, err = readDynoLimits(dynoID)
		return err
	})
	return l
}

// bareA is the bare reference's A: a shell that restarts the hog
// whenever it exits, and the hog, in the cgroups named name.
type bareA struct {
	b    *testing.B
	name string
	root string // HOG_ROOT: app/ on the host's disk, tmp/ and dev/shm/ tmpfs
	cmd  *exec.Cmd
	out  *tailBuffer
	t0   time.Time
	cpu0 int64
}

// startBare starts process type typ of bench/testdata/hog as a plain
// process with limits.
func startBare(b *testing.B, typ string, limits dynoLimits) *bareA {
	b.Helper()
	hog, err := procfileCommand("testdata/hog/Procfile", typ)
	if err != nil {
		b.Fatal(err)
	}
	a := &bareA{b: b, name: "bench-bare-" + typ, root: b.TempDir(), out: &tailBuffer{}}
	for _, d := range []string{"app", "tmp", "dev/shm"} {
		if err := os.MkdirAll(filepath.Join(a.root, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	img := filepath.Join(a.root, "app.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, int64(limits.appMB)<<20); err != nil {
		b.Fatal(err)
	}
	for _, c := range [][]string{{"mkfs.ext4", "-q", "-F", img}, {"mount", "-o", "loop", img, filepath.Join(a.root, "app")}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			a.stop()
			b.Fatalf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	for d, mb := range map[string]int{"tmp": limits.tmpMB, "dev/shm": limits.shmMB} {
		if err := unix.Mount("bench-bare", filepath.Join(a.root, d), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("mode=1777,size=%dm", mb)); err != nil {
			a.stop()
			b.Fatalf("mount %s: %v", d, err)
		}
	}
	var procs []string
	for _, ctrl := range bareControllers {
		dir := a.cgroup(ctrl)
		if err := os.Mkdir(dir, 0o755); err != nil {
			a.stop()
			b.Fatal(err)
		}
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	}
	for i, f := range bareLimits {
		if v := limits.values[i]; v != "" {
			if err := os.WriteFile(filepath.Join(a.cgroup(f.ctrl), f.file), []byte(v), 0); err != nil {
				a.stop()
				b.Fatalf("%s = %s: %v", f.file, v, err)
			}
		}
	}
	// The shell joins the cgroups before anything of A runs, then
	// becomes SCHED_IDLE, which every process of A inherits.
	script := `for f; do echo $$ > "$f" || exit 1; done; exec chrt -i 0 sh -c 'while :; do '"$HOG"'; done'`
	a.cmd = exec.Command("sh", append([]string{"-c", script, "sh"}, procs...)...)
	a.cmd.Dir = "testdata/hog"
	a.cmd.Env = append(os.Environ(), "HOG="+hog, "HOG_ROOT="+a.root)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		a.stop()
		b.Fatal(err)
	}
	a.t0, a.cpu0 = time.Now(), a.cpuUsage()
	return a
}

// cgroup is A's cgroup in the hierarchy of controller ctrl, beside the
// eco dynos' (freeze finds it there).
func (a *bareA) cgroup(ctrl string) string {
	return filepath.Join("/sys/fs/cgroup", ctrl, dynoCgroups[1], a.name)
}

func (a *bareA) cpuUsage() int64 {
	v, _ := os.ReadFile(filepath.Join(a.cgroup("cpuacct"), "cpuacct.usage"))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
	return n
}

// watch describes what A did since it started: its CPU against its cap
// and the last thing it said.
func (a *bareA) watch() string {
	used := float64(a.cpuUsage()-a.cpu0) / float64(time.Since(a.t0).Nanoseconds())
	said := a.out.last("hog: ")
	if said == "" {
		said = "nothing"
	}
	return fmt.Sprintf("A used %.3f cores; said last: %s", used, said)
}

// stop kills A, waits for its cgroups to empty and removes them and its
// file system.
func (a *bareA) stop() {
	a.b.Helper()
	freeze(a.b, false)
	procs := filepath.Join(a.cgroup("pids"), "cgroup.procs")
	gridtest.WaitFor(a.b, 30*time.Second, "the bare A gone", func() error {
		b, err := os.ReadFile(procs)
		if errors.Is(err, os.ErrNotExist) || len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		for _, p := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		return fmt.Errorf("processes left: %s", strings.Join(strings.Fields(string(b)), " "))
	})
	if a.cmd != nil && a.cmd.Process != nil {
		_ = a.cmd.Wait()
	}
	for _, ctrl := range bareControllers {
		if err := os.Remove(a.cgroup(ctrl)); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.b.Errorf("remove the bare A's cgroup: %v", err)
		}
	}
	if err := mounts.DetachBelow(a.root); err != nil {
		a.b.Errorf("unmount the bare A's tmpfs: %v", err)
	}
	_ = os.RemoveAll(a.root) // now, not at the benchmark's end: the image is up to 2 GB
}

// procfileCommand returns the command of process type typ in a Procfile.
func procfileCommand(path, typ string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	procs, err := slug.ParseProcfile(f)
	if err != nil {
		return "", err
	}
	if cmd, ok := procs[typ]; ok {
		return cmd, nil
	}
	return "", fmt.Errorf("%s: no process type %q", path, typ)
}

// tailBuffer keeps the last 64 KB written to it, for many writers.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 64<<10; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// last returns the last whole line that starts with prefix, without it.
func (t *tailBuffer) last(prefix string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(string(t.buf), "\n")
	for i := len(lines) - 2; i >= 0; i-- { // the last element is an unfinished line
		if s, ok := strings.CutPrefix(lines[i], prefix); ok {
			return s
		}
	}
	return ""
}
