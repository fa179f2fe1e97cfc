package slug_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

func TestUnpackRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a/", 2100) + "f"
	cases := []struct {
		name string
		ents []ent
		want error
	}{
		{"absolute path", []ent{file("/etc/evil", "x")}, grid.ErrInvalid},
		{"dotdot", []ent{file("../sentinel/x", "x")}, grid.ErrInvalid},
		{"dotdot inside", []ent{dir("a/"), file("a/../../sentinel/x", "x")}, grid.ErrInvalid},
		{"symlink then write", []ent{symlink("s", "../sentinel"), file("s/x", "pwned")}, grid.ErrInvalid},
		{"inside symlink then write", []ent{dir("d/"), symlink("s", "d"), file("s/x", "x")}, grid.ErrInvalid},
		{"symlink to parent", []ent{symlink("s", "..")}, grid.ErrInvalid},
		{"absolute symlink", []ent{symlink("s", "/etc/passwd")}, grid.ErrInvalid},
		{"escaping symlink", []ent{dir("a/"), symlink("a/s", "../../sentinel/x")}, grid.ErrInvalid},
		{"symlink via symlink dotdot", []ent{dir("d/"), symlink("d/up", ".."), symlink("l", "d/up/..")}, grid.ErrInvalid},
		{"symlink replaced by file", []ent{symlink("s", "f"), file("s", "x")}, grid.ErrInvalid},
		{"file then symlink", []ent{file("f", "x"), symlink("f", "../sentinel/x")}, grid.ErrInvalid},
		{"hard link outside", []ent{{name: "h", typ: tar.TypeLink, link: "../sentinel/x"}}, grid.ErrInvalid},
		{"hard link absolute", []ent{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, grid.ErrInvalid},
		{"hard link to symlink", []ent{symlink("s", "f"), {name: "h", typ: tar.TypeLink, link: "s"}}, grid.ErrInvalid},
		{"hard link to nothing", []ent{{name: "h", typ: tar.TypeLink, link: "nope"}}, grid.ErrInvalid},
		{"char device", []ent{{name: "null", typ: tar.TypeChar, mode: 0o666}}, grid.ErrInvalid},
		{"block device", []ent{{name: "sda", typ: tar.TypeBlock, mode: 0o666}}, grid.ErrInvalid},
		{"fifo", []ent{{name: "p", typ: tar.TypeFifo, mode: 0o666}}, grid.ErrInvalid},
		{"duplicate file", []ent{file("f", "a"), file("f", "b")}, grid.ErrInvalid},
		{"file below file", []ent{file("f", "a"), file("f/g", "b")}, grid.ErrInvalid},
		{"long name", []ent{file(long, "x")}, grid.ErrInvalid},
		{"truncated", []ent{{name: "f", typ: tar.TypeReg, mode: 0o644, body: "abc", size: 100}}, grid.ErrInvalid},
		{"too large", []ent{file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("y", 600))}, grid.ErrTooLarge},
		{"huge header size", []ent{{name: "f", typ: tar.TypeReg, mode: 0o644, size: 10 << 30}}, grid.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			target, sentinel := sandboxDirs(t, parent)
			archive := makeTar(t, tc.ents...)
			err := slug.UnpackTar(bytes.NewReader(archive), target, 1000)
			if !errors.Is(err, tc.want) {
				t.Fatalf("UnpackTar: %v, want %v", err, tc.want)
			}
			checkContained(t, parent, sentinel, false)
			// The same archive gzip'd through Unpack fails the same way.
			err = slug.Unpack(bytes.NewReader(gz(t, archive)), target, 1000)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unpack: %v, want %v", err, tc.want)
			}
			checkContained(t, parent, sentinel, false)
		})
	}
}

func TestUnpackModesAndLinks(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	target, sentinel := sandboxDirs(t, parent)
	archive := makeTar(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "./bin/run", typ: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\n"},
		ent{name: "sticky/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "locked/", typ: tar.TypeDir, mode: 0o000},
		ent{name: "g", typ: tar.TypeRegA, mode: 0o2644, body: "g"},
		ent{name: "hard", typ: tar.TypeLink, link: "./bin/run"},
		symlink("up/../x", "g"), // the name is refused below… see next case
	)
	if err := slug.UnpackTar(bytes.NewReader(archive), target, 1<<20); !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("dotdot in a symlink's own name: %v", err)
	}
	archive = makeTar(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "./bin/run", typ: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\n"},
		ent{name: "sticky/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "locked/", typ: tar.TypeDir, mode: 0o000},
		ent{name: "g", typ: tar.TypeRegA, mode: 0o2644, body: "g"},
		ent{name: "hard", typ: tar.TypeLink, link: "./bin/run"},
		symlink("bin/up", "../g"),
		dir("bin/"), // a directory entry after its contents is fine
		ent{name: "\xff\xfe-latin1", typ: tar.TypeReg, mode: 0o644, body: "non-UTF-8 names are bytes"},
	)
	if err := slug.UnpackTar(bytes.NewReader(archive), target, 1<<20); err != nil {
		t.Fatal(err)
	}
	checkContained(t, parent, sentinel, true)
	want := map[string]os.FileMode{
		"bin/run": 0o755, "sticky": os.ModeDir | 0o777, "locked": os.ModeDir | 0o700, "g": 0o644,
		"bin": os.ModeDir | 0o755, "bin/up": os.ModeSymlink | 0o777,
	}
	for name, mode := range want {
		fi, err := os.Lstat(filepath.Join(target, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode)
		}
	}
	a, _ := os.Stat(filepath.Join(target, "bin/run"))
	b, _ := os.Stat(filepath.Join(target, "hard"))
	if !os.SameFile(a, b) {
		t.Error("hard link is not the same file")
	}
}

func TestUnpackTargetExists(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "keep"), []byte("x"), 0o644)
	if err := slug.UnpackTar(bytes.NewReader(makeTar(t, file("f", "x"))), d, 1<<20); err == nil {
		t.Fatal("unpacking into an existing directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(d, "keep")); err != nil {
		t.Fatalf("existing directory was touched: %v", err)
	}
}

func TestUnpackNotGzip(t *testing.T) {
	t.Parallel()
	target := filepath.Join(t.TempDir(), "app")
	err := slug.Unpack(strings.NewReader("not gzip at all"), target, 1<<20)
	if !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Unpack: %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("target left behind: %v", err)
	}
}

// TestUnpackEntryCap streams MaxEntries+1 entries and checks the cap
// stops it quickly and cleans up.
func TestUnpackEntryCap(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := 0; i <= slug.MaxEntries; i++ {
			if err := tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	target := filepath.Join(t.TempDir(), "app")
	start := time.Now()
	err := slug.UnpackTar(pr, target, 1<<30)
	pr.Close()
	if !errors.Is(err, grid.ErrTooLarge) {
		t.Fatalf("UnpackTar: %v, want ErrTooLarge", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("target left behind: %v", err)
	}
	t.Logf("%d entries refused after %v", slug.MaxEntries+1, time.Since(start))
}

// TestUnpackGzipBomb checks a small archive that inflates far past the
// limit is refused as soon as a header announces too much, without
// inflating it.
func TestUnpackGzipBomb(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 10 << 30})
		_, err := io.Copy(tw, zeroReader{})
		pw.CloseWithError(err)
	}()
	target := filepath.Join(t.TempDir(), "app")
	start := time.Now()
	err := slug.UnpackTar(pr, target, 1<<20)
	pr.Close()
	if !errors.Is(err, grid.ErrTooLarge) {
		t.Fatalf("UnpackTar: %v, want ErrTooLarge", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to refuse", d)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func TestUnpackGitArchive(t *testing.T) {
	t.Parallel()
	// git archive starts with a pax global header carrying the commit id.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "0123456789abcdef0123456789abcdef01234567"}, Format: tar.FormatPAX})
	tw.WriteHeader(&tar.Header{Name: "main.go", Typeflag: tar.TypeReg, Mode: 0o644, Size: 12})
	tw.Write([]byte("package main"))
	tw.Close()
	target := filepath.Join(t.TempDir(), "app")
	if err := slug.UnpackTar(&buf, target, 1<<20); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "main.go")); err != nil || string(b) != "package main" {
		t.Fatalf("main.go: %q, %v", b, err)
	}
}
