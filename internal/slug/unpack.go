package slug

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

const (
	// maxNameTotal bounds the bytes of all entry names of one archive,
	// which Unpack keeps in memory to know what it created.
	maxNameTotal = 64 << 20
	// headerAllowance is how many bytes of tar headers and padding per
	// entry the uncompressed stream may hold beyond the file contents;
	// with MaxEntries it bounds the work a gzip bomb can cause.
	headerAllowance = 1024
)

// Unpack extracts a gzip'd tar (a slug) into dir, which must not exist
// yet; see UnpackTar for what is refused.
func Unpack(r io.Reader, dir string, maxBytes int64) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("slug archive is not a gzip'd tar: %v: %w", err, grid.ErrInvalid)
	}
	return UnpackTar(zr, dir, maxBytes)
}

// UnpackTar extracts an uncompressed tar into dir, which must not exist
// yet and is created with mode 0755. It refuses, with ErrInvalid naming
// the entry: absolute paths and ".." components; entries below a symlink
// or a file of the archive; symlinks whose target is absolute or resolves
// outside dir; hard links to anything but a regular file extracted before;
// duplicate non-directory entries; devices, fifos and every other type.
// More than maxBytes of file contents or MaxEntries entries is
// ErrTooLarge. Modes keep only the permission bits (never setuid, setgid
// or sticky); owners are not restored. On any error everything it created
// is removed.
func UnpackTar(r io.Reader, dir string, maxBytes int64) (err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		os.Remove(dir)
		return fmt.Errorf("unpack: %w", err)
	}
	defer func() {
		root.Close()
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	budget := maxBytes + MaxEntries*headerAllowance
	lr := &limitReader{r: r, left: budget}
	x := &extractor{root: root, max: maxBytes, kinds: map[string]byte{}}
	tr := tar.NewReader(lr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if lr.over {
				return tooLarge("unpacked archive", budget)
			}
			return readErr(err)
		}
		src := &readTracker{r: tr}
		if err := x.entry(hdr, src); err != nil {
			if lr.over {
				return tooLarge("unpacked archive", budget)
			}
			if src.err != nil {
				return readErr(src.err)
			}
			return err
		}
	}
}

// extractor remembers what it created, by cleaned name, so it can refuse
// to write through a symlink or a file without asking the filesystem.
// dir is empty and private to it, so the record is the whole truth.
type extractor struct {
	root      *os.Root
	max       int64
	total     int64 // file bytes written
	entries   int
	nameBytes int
	kinds     map[string]byte // tar.TypeDir, tar.TypeReg, tar.TypeSymlink
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	if x.entries++; x.entries > MaxEntries {
		return fmt.Errorf("archive has more than %d entries: %w", MaxEntries, grid.ErrTooLarge)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader { // git archive's commit id
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" && hdr.Typeflag == tar.TypeDir {
		return nil // "./" itself
	}
	if x.nameBytes += len(name); x.nameBytes > maxNameTotal {
		return fmt.Errorf("archive entry names add up to more than %d bytes: %w", maxNameTotal, grid.ErrTooLarge)
	}
	if err := x.parents(name); err != nil {
		return err
	}
	if k, ok := x.kinds[name]; ok && !(k == tar.TypeDir && hdr.Typeflag == tar.TypeDir) {
		return invalidEntry(name, "appears twice")
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, hdr)
	case tar.TypeReg, tar.TypeRegA:
		return x.file(name, hdr, r)
	case tar.TypeSymlink:
		return x.symlink(name, hdr)
	case tar.TypeLink:
		return x.link(name, hdr)
	}
	return invalidEntry(name, fmt.Sprintf("has type %q: only files, directories and links are allowed", hdr.Typeflag))
}

// parents creates the missing directories above name, refusing to go
// through anything that is not a directory.
func (x *extractor) parents(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		p := name[:i]
		switch x.kinds[p] {
		case tar.TypeDir:
			continue
		case tar.TypeSymlink:
			return invalidEntry(name, "is below a symlink ("+p+")")
		case 0:
			if err := x.root.Mkdir(p, 0o755); err != nil {
				return fmt.Errorf("unpack %s: %w", p, err)
			}
			x.kinds[p] = tar.TypeDir
		default:
			return invalidEntry(name, "is below a file ("+p+")")
		}
	}
	return nil
}

func (x *extractor) dir(name string, hdr *tar.Header) error {
	if x.kinds[name] != tar.TypeDir {
		if err := x.root.Mkdir(name, 0o700); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
		x.kinds[name] = tar.TypeDir
	}
	return x.root.Chmod(name, fs.FileMode(hdr.Mode)&0o777|0o700)
}

func (x *extractor) file(name string, hdr *tar.Header, r io.Reader) error {
	if hdr.Size < 0 {
		return invalidEntry(name, "has a negative size")
	}
	if hdr.Size > x.max-x.total {
		return tooLarge("unpacked app", x.max)
	}
	x.total += hdr.Size
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	x.kinds[name] = tar.TypeReg
	_, err = io.CopyN(f, r, hdr.Size)
	if err == nil {
		err = f.Chmod(fs.FileMode(hdr.Mode) & 0o777)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	if !hdr.ModTime.IsZero() {
		_ = x.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

func (x *extractor) symlink(name string, hdr *tar.Header) error {
	if !linkInside(name, hdr.Linkname) {
		return invalidEntry(name, fmt.Sprintf("is a symlink to %q, outside the archive", hdr.Linkname))
	}
	if err := x.root.Symlink(hdr.Linkname, name); err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	x.kinds[name] = tar.TypeSymlink
	return nil
}

func (x *extractor) link(name string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil || x.kinds[target] != tar.TypeReg {
		return invalidEntry(name, fmt.Sprintf("is a hard link to %q, not a file extracted before it", hdr.Linkname))
	}
	if err := x.root.Link(target, name); err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	x.kinds[name] = tar.TypeReg
	return nil
}

// cleanName turns an entry name into a slash-separated path relative to
// the root without "." or empty components; "" is the root itself. It
// refuses absolute names, ".." components, NUL bytes and overlong names.
func cleanName(n string) (string, error) {
	if len(n) > MaxNameBytes {
		return "", invalidEntry(n[:64]+"…", "has a name longer than 4096 bytes")
	}
	if strings.HasPrefix(n, "/") {
		return "", invalidEntry(n, "has an absolute path")
	}
	if strings.IndexByte(n, 0) >= 0 {
		return "", invalidEntry(n, "has a NUL byte in its name")
	}
	parts := strings.Split(n, "/")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", invalidEntry(n, "has a \"..\" path component")
		}
		out = append(out, p)
	}
	return strings.Join(out, "/"), nil
}

func invalidEntry(name, what string) error {
	return fmt.Errorf("archive entry %q %s: %w", name, what, grid.ErrInvalid)
}

// readErr categorises an error from reading the archive: the caller's
// cancellation stays itself, anything else means a corrupt archive.
func readErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("archive is corrupt: %v: %w", err, grid.ErrInvalid)
}

// readTracker remembers the first error of reading an entry's contents,
// so a corrupt archive is told apart from a failing disk.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// limitReader fails once more than left bytes were read.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.left <= 0 {
		l.over = true
		return 0, grid.ErrTooLarge
	}
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	n, err := l.r.Read(b)
	l.left -= int64(n)
	return n, err
}
