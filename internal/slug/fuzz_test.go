package slug_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

// FuzzUnpack feeds arbitrary bytes to UnpackTar and (gzip'd) to Unpack.
// Whatever they are, nothing outside the target may change, every path
// created must resolve inside it, nothing may panic, and a failure must
// leave nothing behind.
func FuzzUnpack(f *testing.F) {
	seeds := [][]ent{
		{file("a", "x"), dir("d/"), file("d/b", "y"), symlink("l", "d/b")},
		{symlink("s", "../sentinel"), file("s/x", "pwned")},
		{file("../sentinel/x", "pwned")},
		{dir("d/"), symlink("d/up", ".."), symlink("l", "d/up/.."), file("l/sentinel/x", "pwned")},
		{{name: "h", typ: tar.TypeLink, link: "../sentinel/x"}},
		{file("f", "a"), {name: "h", typ: tar.TypeLink, link: "f"}},
		{{name: "c", typ: tar.TypeChar}},
		{{name: "big", typ: tar.TypeReg, size: 1 << 40}},
	}
	for _, s := range seeds {
		b := makeTar(f, s...)
		f.Add(b)
		f.Add(gz(f, b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		target, sentinel := sandboxDirs(t, parent)
		for _, unpack := range []func() error{
			func() error { return slug.UnpackTar(bytes.NewReader(data), target, 1<<20) },
			func() error { return slug.Unpack(bytes.NewReader(data), target, 1<<20) },
		} {
			err := unpack()
			if err != nil && !errors.Is(err, grid.ErrInvalid) && !errors.Is(err, grid.ErrTooLarge) {
				t.Fatalf("uncategorised error: %v", err)
			}
			checkContained(t, parent, sentinel, err == nil)
			if err == nil {
				checkInside(t, target)
				if err := os.RemoveAll(target); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// checkInside fails when any path under root resolves outside it.
func checkInside(t *testing.T, root string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // a dangling link: resolves nowhere
		}
		if r != real && !strings.HasPrefix(r, real+"/") {
			t.Fatalf("%s resolves to %s, outside %s", p, r, real)
		}
		return nil
	})
}
