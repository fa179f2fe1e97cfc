package mounts

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDetachBelow mounts a tmpfs, a tmpfs inside it and a sibling
// directory whose name starts like dir's, and checks that only the mounts
// below dir are listed and then detached.
func TestDetachBelow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount (CI runs as root)")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "run")
	outer := filepath.Join(dir, "a")
	inner := filepath.Join(outer, "b")
	sibling := filepath.Join(base, "run2")
	for _, d := range []string{outer, sibling} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(at string) {
		t.Helper()
		if err := unix.Mount("mountstest", at, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount %s: %v", at, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(at, unix.MNT_DETACH) })
	}
	mount(outer)
	if err := os.Mkdir(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	mount(inner)
	mount(sibling)

	points, err := Below(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(points)
	if want := []string{outer, inner}; !slices.Equal(points, want) {
		t.Fatalf("Below(%s) = %v, want %v", dir, points, want)
	}
	if err := DetachBelow(dir); err != nil {
		t.Fatal(err)
	}
	if points, _ := Below(dir); len(points) != 0 {
		t.Errorf("left mounted after DetachBelow: %v", points)
	}
	if points, _ := Below(base); !slices.Contains(points, sibling) {
		t.Errorf("the sibling %s was detached too: %v", sibling, points)
	}
	if err := DetachBelow(dir); err != nil {
		t.Errorf("second DetachBelow: %v", err)
	}
}
