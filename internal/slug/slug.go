// Package slug is the slug archive format: packing a built app tree into a
// tar.gz, unpacking one safely (no path escapes, no devices, no symlinks
// pointing out, size limits), the per-host cache of unpacked slugs, and the
// Procfile. It has no knowledge of NATS or sandboxes.
package slug

// CONTRACT (implementation pending): build and host code against these.

import (
	"context"
	"errors"
	"io"
)

var errTODO = errors.New("slug: not implemented")

// Info describes a packed archive.
type Info struct {
	Size     int64  // compressed bytes
	Checksum string // "SHA256:<hex>"
}

// Pack writes dir as a gzip'd tar to w. Only regular files, directories and
// symlinks that stay inside dir are packed; anything else is an error.
func Pack(dir string, w io.Writer, maxBytes int64) (Info, error) { return Info{}, errTODO }

// Unpack extracts a slug archive into dir (which must not exist yet).
func Unpack(r io.Reader, dir string, maxBytes int64) error { return errTODO }

// ParseProcfile parses a Procfile into process type -> command.
func ParseProcfile(r io.Reader) (map[string]string, error) { return nil, errTODO }

// Cache keeps one unpacked, read-only tree per slug on this host, shared by
// all dynos of that slug.
type Cache struct {
	Dir string
}

// Path returns the tree of slug id, unpacking it from open() once (even
// under concurrent calls) if it is not there yet. The tree is owned by uid
// (the app's uid, so that the dyno can write /app through its overlay the
// way it could on Heroku) and never modified after unpacking.
func (c *Cache) Path(ctx context.Context, id string, uid int, open func(context.Context) (io.ReadCloser, error)) (string, error) {
	return "", errTODO
}

// Adopt moves an already-built tree (on the same filesystem) into the cache
// as slug id, so the host that built a slug need not unpack it.
func (c *Cache) Adopt(id, dir string) error { return errTODO }

// Remove deletes slug id's tree. Dynos still using it keep their mounts.
func (c *Cache) Remove(id string) error { return errTODO }
