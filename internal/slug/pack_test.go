package slug_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

// sampleTree makes a small app tree with the kinds Pack accepts.
func sampleTree(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(d, "node_modules/.bin"), 0o755))
	must(os.MkdirAll(filepath.Join(d, "node_modules/pkg/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(d, "empty"), 0o700))
	must(os.WriteFile(filepath.Join(d, "Procfile"), []byte("web: bin/app\n"), 0o644))
	must(os.WriteFile(filepath.Join(d, "bin/app"), bytes.Repeat([]byte("binary"), 10000), 0o755))
	must(os.WriteFile(filepath.Join(d, "node_modules/pkg/bin/x.js"), []byte("#!/usr/bin/env node\n"), 0o755))
	must(os.Symlink("../pkg/bin/x.js", filepath.Join(d, "node_modules/.bin/x")))
	must(os.Symlink("bin", filepath.Join(d, "b")))
	must(os.Symlink("missing-but-inside", filepath.Join(d, "dangling")))
	return d
}

func TestPackUnpackRoundtrip(t *testing.T) {
	t.Parallel()
	src := sampleTree(t)
	var buf bytes.Buffer
	info, err := slug.Pack(src, &buf, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if info.Size != int64(buf.Len()) || info.Checksum != "SHA256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("info %+v does not describe the %d bytes written", info, buf.Len())
	}
	names := entryNames(t, buf.Bytes())
	want := "Procfile b bin/ bin/app dangling empty/ node_modules/ node_modules/.bin/ node_modules/.bin/x node_modules/pkg/ node_modules/pkg/bin/ node_modules/pkg/bin/x.js"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries:\n%s\nwant\n%s", got, want)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := slug.Unpack(bytes.NewReader(buf.Bytes()), dst, 1<<30); err != nil {
		t.Fatal(err)
	}
	if got, want := treeHash(t, dst), treeHash(t, src); !equal(got, want) {
		t.Errorf("unpacked tree differs:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var again bytes.Buffer
	info2, err := slug.Pack(src, &again, 1<<30)
	if err != nil || info2 != info {
		t.Errorf("packing the same tree twice: %+v, %v; first %+v", info2, err, info)
	}
}

func entryNames(t *testing.T, archive []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Mode&^0o777 != 0 {
			t.Errorf("%s: uid %d gid %d mode %o", h.Name, h.Uid, h.Gid, h.Mode)
		}
		names = append(names, h.Name)
	}
}

func TestPackRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		make func(dir string) error
	}{
		{"fifo", func(d string) error { return syscall.Mkfifo(filepath.Join(d, "pipe"), 0o644) }},
		{"socket", func(d string) error {
			l, err := net.Listen("unix", filepath.Join(d, "sock"))
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		}},
		{"chardev", func(d string) error { return syscall.Mknod(filepath.Join(d, "null"), syscall.S_IFCHR|0o666, 0x103) }},
		{"escaping symlink", func(d string) error { return os.Symlink("../../etc/passwd", filepath.Join(d, "sub/pw")) }},
		{"absolute symlink", func(d string) error { return os.Symlink("/etc/passwd", filepath.Join(d, "pw")) }},
		{"dotdot after name", func(d string) error { return os.Symlink("sub/../../x", filepath.Join(d, "x")) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := t.TempDir()
			os.Mkdir(filepath.Join(d, "sub"), 0o755)
			if err := tc.make(d); err != nil {
				t.Skipf("cannot make a %s here: %v", tc.name, err)
			}
			_, err := slug.Pack(d, io.Discard, 1<<30)
			if !errors.Is(err, grid.ErrInvalid) {
				t.Fatalf("Pack: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestPackTooLarge(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	big := make([]byte, 2<<20)
	rand.NewChaCha8([32]byte{1}).Read(big) // incompressible
	if err := os.WriteFile(filepath.Join(d, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err := slug.Pack(d, &buf, 1<<20)
	if !errors.Is(err, grid.ErrTooLarge) || !strings.Contains(err.Error(), "slug is larger than the 1 MiB limit") {
		t.Fatalf("Pack: %v, want ErrTooLarge saying the limit", err)
	}
	if buf.Len() > 1<<20 {
		t.Errorf("wrote %d bytes past the limit", buf.Len())
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512B", 2202009: "2.1M", 1 << 30: "1.0G", 1536: "1.5K"} {
		if got := slug.HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %s, want %s", n, got, want)
		}
	}
	if got := slug.HumanSize(1 << 30); got != "1 GiB" {
		t.Errorf("HumanSize(1<<30) = %s", got)
	}
}
