package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/cgroupfs"
)

// cgroupParent is the cgroup the sandboxes of host id are created under
// (`grid host --cgroup-parent`), so hosts sharing this machine's cgroup
// tree never clean up each other's dynos.
func cgroupParent(id string) string { return "grid-hosts/" + id }

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid int
	zombie    bool
	netns     uint64 // inode of its network namespace; 0 if unknown
}

// procs reads every process of the machine. Processes that exit while
// it reads are skipped.
func procs() map[int]proc {
	entries, _ := os.ReadDir("/proc")
	out := make(map[int]proc, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if ok {
			out[pid] = p
		}
	}
	return out
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, false
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'. Then: state ppid ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	p := proc{pid: pid, ppid: ppid, zombie: f[0] == "Z" || f[0] == "X"}
	if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
		// "net:[4026531840]"
		p.netns, _ = strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 64)
	}
	return p, true
}

// netnsInode is the inode that identifies the namespace mounted at path.
func netnsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// netnsProcs returns the live processes in the network namespace with
// inode ino: a host's agent, without its dynos.
func netnsProcs(ino uint64) []int {
	var out []int
	for pid, p := range procs() {
		if p.netns == ino && !p.zombie && pid != os.Getpid() && pid > 1 {
			out = append(out, pid)
		}
	}
	return out
}

// hostProcs returns the live (non-zombie) processes of a host: those in
// its network namespace (the agent), their descendants (dyno sandboxes
// have namespaces of their own) and the members of its cgroup parent
// (dynos whose agent is already gone).
func hostProcs(ino uint64, cgroup string) []int {
	all := procs()
	in := map[int]bool{}
	if ino != 0 {
		for pid, p := range all {
			if p.netns == ino {
				in[pid] = true
			}
		}
	}
	for _, pid := range cgroupProcs(cgroup) {
		in[pid] = true
	}
	children := map[int][]int{}
	for pid, p := range all {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	queue := make([]int, 0, len(in))
	for pid := range in {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !in[c] {
				in[c] = true
				queue = append(queue, c)
			}
		}
	}
	self := os.Getpid()
	var out []int
	for pid := range in {
		if p, ok := all[pid]; ok && !p.zombie && pid != self && pid > 1 {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupProcs lists the processes in rel and below, in every hierarchy.
func cgroupProcs(rel string) []int {
	if rel == "" {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	for _, dir := range cgroupfs.Dirs(rel) {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			for _, pid := range cgroupfs.Procs(path) {
				if !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// removeCgroups removes rel and the cgroups below it in every hierarchy,
// deepest first. Their processes must be gone.
func removeCgroups(rel string) error {
	var errs []error
	for _, dir := range cgroupfs.Dirs(rel) {
		var dirs []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// killTimeout bounds how long a SIGKILLed process may take to die.
const killTimeout = 10 * time.Second

// killAll kills every process find returns, all at once as a power cut
// would: first each is stopped (SIGSTOP cannot be caught, and a stopped
// process can neither fork nor act on its children's deaths), again until
// find shows no process that is not stopped yet, then all get SIGKILL
// together. It returns once they are dead (zombies count as dead).
func killAll(ctx context.Context, find func() []int) (int, error) {
	stopped := map[int]bool{}
	for range 100 { // bounds a fork bomb racing the stop
		fresh := 0
		for _, pid := range find() {
			if !stopped[pid] {
				stopped[pid] = true
				_ = unix.Kill(pid, unix.SIGSTOP)
				fresh++
			}
		}
		if fresh == 0 {
			break
		}
	}
	pids := make([]int, 0, len(stopped))
	for pid := range stopped {
		_ = unix.Kill(pid, unix.SIGKILL)
		pids = append(pids, pid)
	}
	return len(pids), waitGone(ctx, pids, killTimeout)
}

// waitGone waits until none of pids is a live process, polling /proc.
func waitGone(ctx context.Context, pids []int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		left := 0
		for _, pid := range pids {
			if p, ok := readProc(pid); ok && !p.zombie {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d processes still alive: %w", left, len(pids), ctx.Err())
		case <-time.After(delay):
			delay = min(2*delay, 100*time.Millisecond)
		}
	}
}

// signalAll sends sig to pids, ignoring those already gone.
func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
}
