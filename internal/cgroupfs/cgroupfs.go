// Package cgroupfs reads the host's cgroup hierarchies as files: which
// directories a cgroup path names, and which processes one holds. Both
// the sandboxes' and the simulated hosts' cgroups live in every mounted
// hierarchy at once (the cgroup v1 controllers, name=systemd, and the
// cgroup2 "unified" mount in hybrid mode), and are cleaned up by walking
// them all.
package cgroupfs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Root holds one directory per mounted hierarchy.
const Root = "/sys/fs/cgroup"

// Dirs returns <hierarchy>/<rel> for every mounted hierarchy, whether or
// not the cgroup exists there.
func Dirs(rel string) []string {
	entries, _ := os.ReadDir(Root)
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(Root, e.Name(), rel))
		}
	}
	return dirs
}

// Procs lists the processes in the cgroup at dir (not below it); none if
// it does not exist.
func Procs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}
