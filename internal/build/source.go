package build

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"context"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
)

// Build API sources are tarballs users make (tar czf, GitHub's archive
// links), not git archive's stream: gzip'd or not, with the app at the
// root or under one top directory, optionally with a checksum.

// archive is a user's tarball being read: tar is the tar stream inside
// it, raw the tarball itself, h (when a checksum is wanted) the hash the
// whole tarball is fed to.
type archive struct {
	tar io.Reader
	raw *bufio.Reader
	h   hash.Hash
}

func openArchive(r io.Reader, checksum string) (archive, error) {
	var a archive
	if checksum != "" {
		a.h = sha256.New()
		r = io.TeeReader(r, a.h)
	}
	a.raw = bufio.NewReader(r)
	a.tar = a.raw
	if magic, _ := a.raw.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(a.raw)
		if err != nil {
			return a, fmt.Errorf("the source tarball is not valid gzip: %v: %w", err, grid.ErrInvalid)
		}
		zr.Multistream(false)
		a.tar = zr
	}
	return a, nil
}

// verify reads what unpacking left (tar padding, the gzip trailer,
// anything after) so that the hash covers the whole tarball, and compares
// it with want.
func (a archive) verify(want string) error {
	if _, err := io.Copy(io.Discard, a.tar); err != nil {
		return fmt.Errorf("source tarball: %v: %w", err, grid.ErrInvalid)
	}
	if _, err := io.Copy(io.Discard, a.raw); err != nil {
		return fmt.Errorf("source tarball: %w", err)
	}
	if got := "SHA256:" + hex.EncodeToString(a.h.Sum(nil)); got != want {
		return fmt.Errorf("the source tarball's checksum is %s, not the %s the build asked for: %w", got, want, grid.ErrInvalid)
	}
	return nil
}

// hoistTopDir moves the contents of dir's only entry up into dir, when
// that entry is a directory (GitHub's archives put the tree under
// "owner-repo-sha/").
func hoistTopDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || !ents[0].IsDir() {
		return err
	}
	// Renamed first: the top directory may hold an entry of its own name.
	top := filepath.Join(dir, ".grid-hoist")
	if err := os.Rename(filepath.Join(dir, ents[0].Name()), top); err != nil {
		return err
	}
	inner, err := os.ReadDir(top)
	if err != nil {
		return err
	}
	for _, e := range inner {
		if err := os.Rename(filepath.Join(top, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(top)
}

// fetchSource downloads a Build API source URL into the build's work dir
// from inside a build sandbox (the app's uid and network: the internet,
// not the grid) and opens it. At most MaxSourceBytes are fetched.
func (b *Builder) fetchSource(ctx context.Context, j *job, url string, out *output) (*os.File, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, reject(fmt.Errorf("source URL %q: %w", url, grid.ErrInvalid), out, "Build rejected: the source URL must be http(s)")
	}
	dir := filepath.Join(j.work, "source")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Lchown(dir, j.app.UID, j.app.UID); err != nil {
		return nil, err
	}
	out.step("Fetching the source from %s", url)
	errs := &tail{n: 5}
	code, err := b.run(ctx, j, sandbox.Spec{
		Args: []string{"curl", "-fsSL", "--proto", "=http,https", "--proto-redir", "=http,https",
			"--max-filesize", strconv.FormatInt(b.cfg.MaxSourceBytes, 10), "--max-time", "600", "-o", "/tmp/out/source", url},
		Mounts:  []sandbox.Mount{{Source: dir, Target: "/tmp/out", Writable: true}},
		Network: true,
		Stdout:  errs, Stderr: errs,
	})
	if err != nil {
		return nil, err
	}
	if code != 0 {
		lines := []string{"Build rejected: could not fetch the source:"}
		for _, l := range errs.Lines() {
			lines = append(lines, "  "+l)
		}
		return nil, reject(fmt.Errorf("fetch source %s: exit status %d: %w", url, code, grid.ErrInvalid), out, lines...)
	}
	// The sandbox wrote it: never follow a link it might have left.
	fd, err := unix.Open(filepath.Join(dir, "source"), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fetched source: %w", err)
	}
	return os.NewFile(uintptr(fd), "source"), nil
}
