package slug

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// DefaultMaxUnpacked is the uncompressed size limit of a cached slug when
// Cache.MaxBytes is zero.
const DefaultMaxUnpacked = 4 << 30

// tmpPrefix marks work in progress in a cache directory. Such entries are
// never returned by Path and are swept when older than staleTmp.
const (
	tmpPrefix = ".tmp-"
	staleTmp  = 24 * time.Hour
)

// Cache keeps one unpacked, read-only tree per slug on this host, shared by
// all dynos of that slug, at Dir/<id>. A tree appears there only complete
// (it is unpacked into a temporary directory and renamed in), so a crash
// never leaves a half tree where Path would return it.
//
// Use one Cache value per directory in a process: concurrent Path calls
// for the same slug unpack it once only within one value.
type Cache struct {
	// Dir holds the trees; it is created (0700) if missing. Set before
	// first use.
	Dir string
	// MaxBytes bounds the uncompressed size of one slug. Zero means
	// DefaultMaxUnpacked.
	MaxBytes int64

	mu       sync.Mutex
	inflight map[string]*call
	sweep    sync.Once
}

// call is one unpack in progress; done is closed when err is set.
type call struct {
	done chan struct{}
	err  error
}

var slugIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidateID reports whether id can name a slug on disk.
func ValidateID(id string) error {
	if !slugIDRE.MatchString(id) {
		return fmt.Errorf("slug id %q: %w", id, grid.ErrInvalid)
	}
	return nil
}

// Path returns the tree of slug id, unpacking it from open() once (even
// under concurrent calls) if it is not there yet. The tree is owned by uid
// (the app's uid, so that the dyno can write /app through its overlay the
// way it could on Heroku) and never modified after unpacking. Symlinks are
// chowned themselves, never followed.
func (c *Cache) Path(ctx context.Context, id string, uid int, open func(context.Context) (io.ReadCloser, error)) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	c.sweep.Do(c.prepare)
	dst := filepath.Join(c.Dir, id)
	for {
		if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
			return dst, nil
		}
		cl, leader := c.join(id)
		if leader {
			cl.err = c.fill(ctx, id, uid, open)
			c.leave(id, cl)
			return dst, cl.err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-cl.done:
		}
		// The leader's own deadline is not ours: try again ourselves.
		if cl.err != nil && !errors.Is(cl.err, context.Canceled) && !errors.Is(cl.err, context.DeadlineExceeded) {
			return "", cl.err
		}
	}
}

// join returns the call in flight for id, or starts one with the caller
// as its leader.
func (c *Cache) join(id string) (*call, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.inflight[id]; ok {
		return cl, false
	}
	if c.inflight == nil {
		c.inflight = map[string]*call{}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[id] = cl
	return cl, true
}

func (c *Cache) leave(id string, cl *call) {
	c.mu.Lock()
	delete(c.inflight, id)
	c.mu.Unlock()
	close(cl.done)
}

// fill unpacks slug id into a temporary directory, chowns it and renames
// it into place.
func (c *Cache) fill(ctx context.Context, id string, uid int, open func(context.Context) (io.ReadCloser, error)) error {
	dst := filepath.Join(c.Dir, id)
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		return nil // another leader finished between our check and join
	}
	tmp, err := os.MkdirTemp(c.Dir, tmpPrefix+id+"-")
	if err != nil {
		return fmt.Errorf("slug cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	tree := filepath.Join(tmp, "tree")
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxUnpacked
	}
	if err := Unpack(ctxReader{ctx, rc}, tree, maxBytes); err != nil {
		return fmt.Errorf("slug %s: %w", id, err)
	}
	if err := Chown(tree, uid); err != nil {
		return fmt.Errorf("slug %s: %w", id, err)
	}
	if err := os.Rename(tree, dst); err != nil {
		if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
			return nil // someone outside this process won the race
		}
		return fmt.Errorf("slug cache: %w", err)
	}
	return nil
}

// Remove deletes slug id's tree. Dynos still using it keep their mounts.
// The tree is first renamed aside so a half-removed tree is never found.
func (c *Cache) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	cl, leader := c.join(id)
	for !leader {
		<-cl.done
		cl, leader = c.join(id)
	}
	defer c.leave(id, cl)
	dst := filepath.Join(c.Dir, id)
	tmp, err := os.MkdirTemp(c.Dir, tmpPrefix+"rm-")
	if err != nil {
		return fmt.Errorf("slug cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Rename(dst, filepath.Join(tmp, "tree")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("slug cache: remove %s: %w", id, err)
	}
	return nil
}

// prepare creates Dir and removes temporary directories a crashed process
// left behind. Only old ones: a younger one may belong to another live
// Cache value.
func (c *Cache) prepare() {
	_ = os.MkdirAll(c.Dir, 0o700)
	ents, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmp {
			os.RemoveAll(filepath.Join(c.Dir, e.Name()))
		}
	}
}

// Chown gives every file, directory and symlink under dir (and dir itself)
// to uid:uid, never following symlinks. Only for trees no tenant process
// can change while it runs.
func Chown(dir string, uid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// IDs lists the slugs whose trees are in the cache.
func (c *Cache) IDs() ([]string, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("slug cache: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), tmpPrefix) && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
