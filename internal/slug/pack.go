package slug

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dynogrid/grid/internal/grid"
)

// Pack writes the tree under dir as a gzip'd tar to w and returns the
// archive's size and checksum. Entry names are relative to dir without a
// "./" prefix, in lexical order, so equal trees give equal entry lists.
// Only regular files, directories and symlinks whose target stays inside
// dir (resolved lexically from the link's directory) are packed; anything
// else is an ErrInvalid naming the path. Symlinks are never followed. When
// the compressed archive would exceed maxBytes, Pack stops with
// ErrTooLarge. The caller must make sure nothing changes the tree while it
// is packed.
func Pack(dir string, w io.Writer, maxBytes int64) (Info, error) {
	cw := &countWriter{w: w, max: maxBytes, h: sha256.New()}
	zw, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return Info{}, err
	}
	tw := tar.NewWriter(zw)
	p := packer{tw: tw, root: dir}
	if err := filepath.WalkDir(dir, p.add); err != nil {
		return Info{}, cw.explain(err)
	}
	if err := tw.Close(); err != nil {
		return Info{}, cw.explain(err)
	}
	if err := zw.Close(); err != nil {
		return Info{}, cw.explain(err)
	}
	return Info{Size: cw.n, Checksum: "SHA256:" + hex.EncodeToString(cw.h.Sum(nil))}, nil
}

type packer struct {
	tw      *tar.Writer
	root    string
	entries int
}

func (p *packer) add(name string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(p.root, name)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil
	}
	rel = filepath.ToSlash(rel)
	if p.entries++; p.entries > MaxEntries {
		return fmt.Errorf("slug has more than %d files: %w", MaxEntries, grid.ErrTooLarge)
	}
	fi, err := os.Lstat(name) // d.Info may be stale; Lstat never follows
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: rel, ModTime: fi.ModTime().Truncate(1e9), Mode: int64(fi.Mode().Perm())}
	switch fi.Mode().Type() {
	case fs.ModeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		return p.tw.WriteHeader(hdr)
	case fs.ModeSymlink:
		target, err := os.Readlink(name)
		if err != nil {
			return err
		}
		if !linkInside(rel, target) {
			return fmt.Errorf("%s: symlink to %q points outside the app: %w", rel, target, grid.ErrInvalid)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return p.tw.WriteHeader(hdr)
	case 0:
		return p.addFile(name, hdr)
	}
	return fmt.Errorf("%s: %s is not a regular file, directory or symlink: %w", rel, fileKind(fi.Mode()), grid.ErrInvalid)
}

// addFile copies a regular file, opened without following symlinks and
// sized from the open descriptor, so a swap after the walk cannot smuggle
// in another file.
func (p *packer) addFile(name string, hdr *tar.Header) error {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: changed while packing: %w", hdr.Name, grid.ErrInvalid)
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	if err := p.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(p.tw, f, hdr.Size); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	return nil
}

// linkInside reports whether a symlink at rel (slash-separated, relative
// to the root, below real directories only) pointing at target resolves
// inside the root. The target must be relative and may use ".." only at
// its start: "../lib/x" is fine, "lib/../../x" is not, because the kernel
// resolves "lib" (perhaps itself a link) before the "..", so a lexical
// check of such a target proves nothing.
func linkInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || len(target) > MaxNameBytes || strings.IndexByte(target, 0) >= 0 {
		return false
	}
	rest := target
	for strings.HasPrefix(rest, "../") {
		rest = rest[3:]
	}
	if rest == ".." {
		rest = ""
	}
	for _, p := range strings.Split(rest, "/") {
		if p == ".." {
			return false
		}
	}
	res := path.Join(path.Dir(rel), target)
	return res != ".." && !strings.HasPrefix(res, "../")
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a fifo"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "an irregular file"
}

// countWriter counts and hashes what passes through and fails once more
// than max bytes were written.
type countWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	max int64
}

var errOverLimit = errors.New("slug: over the size limit")

func (c *countWriter) Write(b []byte) (int, error) {
	if c.n+int64(len(b)) > c.max {
		return 0, errOverLimit
	}
	n, err := c.w.Write(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	return n, err
}

// explain turns the over-limit sentinel into the user-facing error.
func (c *countWriter) explain(err error) error {
	if errors.Is(err, errOverLimit) {
		return tooLarge("slug", c.max)
	}
	return err
}
