package cgroupfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestDirsAndProcs makes a cgroup in every hierarchy Dirs names, moves a
// process into it in one, and finds it there with Procs, and nowhere else.
func TestDirsAndProcs(t *testing.T) {
	rel := fmt.Sprintf("gridtest-cgroupfs-%d", os.Getpid())
	dirs := Dirs(rel)
	if !slices.Contains(dirs, filepath.Join(Root, "pids", rel)) {
		t.Fatalf("Dirs(%q) = %v: no pids hierarchy", rel, dirs)
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleep.Process.Kill()
		sleep.Wait()
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	pids := filepath.Join(Root, "pids", rel)
	if err := os.WriteFile(filepath.Join(pids, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		got := Procs(d)
		if want := d == pids; slices.Equal(got, []int{sleep.Process.Pid}) != want {
			t.Errorf("Procs(%s) = %v", d, got)
		}
	}
	if got := Procs(filepath.Join(pids, "nonesuch")); got != nil {
		t.Errorf("Procs of no cgroup = %v", got)
	}
}
