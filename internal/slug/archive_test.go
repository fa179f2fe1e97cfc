package slug_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// ent is one entry of a hand-made archive.
type ent struct {
	name string
	typ  byte
	mode int64
	body string
	link string
	size int64 // header size when it should differ from len(body)
}

func file(name, body string) ent      { return ent{name: name, typ: tar.TypeReg, mode: 0o644, body: body} }
func dir(name string) ent             { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }

// makeTar builds an uncompressed tar of ents. A body shorter than size
// makes a truncated archive.
func makeTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		size := int64(len(e.body))
		if e.size != 0 {
			size = e.size
		}
		if e.typ != tar.TypeReg && e.typ != tar.TypeRegA {
			size = 0
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: size, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil && len(ents) > 0 && ents[len(ents)-1].size == 0 {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// treeHash summarises a tree: every path with its type, mode, link
// target and content hash, sorted.
func treeHash(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			line += " " + hex.EncodeToString(s[:8])
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// sandboxDirs lays out parent/{sentinel/…} and returns the parent, the
// not yet existing target parent/app and the sentinel's hash.
func sandboxDirs(t testing.TB, parent string) (target string, sentinel []string) {
	t.Helper()
	s := filepath.Join(parent, "sentinel")
	if err := os.MkdirAll(filepath.Join(s, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s, "x"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(parent, "app"), treeHash(t, s)
}

// checkContained fails unless the sentinel is unchanged and parent holds
// nothing but the sentinel and (when ok) the target.
func checkContained(t testing.TB, parent string, sentinel []string, ok bool) {
	t.Helper()
	if got := treeHash(t, filepath.Join(parent, "sentinel")); !equal(got, sentinel) {
		t.Fatalf("sentinel changed:\n%v\nwant\n%v", got, sentinel)
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "sentinel" || (ok && e.Name() == "app") {
			continue
		}
		t.Fatalf("unexpected %s in parent (unpack ok=%v)", e.Name(), ok)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
