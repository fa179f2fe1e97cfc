package slug_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

func packed(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := slug.Pack(sampleTree(t), &buf, 1<<30); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCachePathUnpacksOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	t.Parallel()
	archive := packed(t)
	c := &slug.Cache{Dir: t.TempDir()}
	var opens atomic.Int32
	gate := make(chan struct{})
	open := func(context.Context) (io.ReadCloser, error) {
		opens.Add(1)
		<-gate // hold the first unpack until every caller is waiting
		return io.NopCloser(bytes.NewReader(archive)), nil
	}
	const uid = 201234
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = c.Path(context.Background(), "slug-1", uid, open)
		}()
	}
	close(gate)
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != filepath.Join(c.Dir, "slug-1") {
			t.Fatalf("caller %d: %q, %v", i, paths[i], errs[i])
		}
	}
	if n := opens.Load(); n != 1 {
		t.Errorf("opened the archive %d times, want 1", n)
	}
	filepath.WalkDir(paths[0], func(p string, d fs.DirEntry, err error) error {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != uid {
			t.Errorf("%s owned by %d:%d, want %d", p, st.Uid, st.Gid, uid)
		}
		return nil
	})
	ents, _ := os.ReadDir(c.Dir)
	if len(ents) != 1 {
		t.Errorf("cache dir holds %d entries, want only the tree", len(ents))
	}
}

func TestCachePathFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	c := &slug.Cache{Dir: t.TempDir()}
	bad := func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz(t, makeTar(t, file("../x", "x"))))), nil
	}
	if _, err := c.Path(context.Background(), "bad", 0, bad); !errors.Is(err, grid.ErrInvalid) {
		t.Fatalf("Path: %v, want ErrInvalid", err)
	}
	missing := func(context.Context) (io.ReadCloser, error) { return nil, grid.ErrNotFound }
	if _, err := c.Path(context.Background(), "gone", 0, missing); !errors.Is(err, grid.ErrNotFound) {
		t.Fatalf("Path: %v, want the opener's error", err)
	}
	if ents, _ := os.ReadDir(c.Dir); len(ents) != 0 {
		t.Errorf("left %v behind", ents)
	}
}

func TestCacheRemove(t *testing.T) {
	t.Parallel()
	c := &slug.Cache{Dir: t.TempDir()}
	archive := packed(t)
	open := func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(archive)), nil }
	if _, err := c.Path(context.Background(), "s1", os.Getuid(), open); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("s1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("s1"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if ents, _ := os.ReadDir(c.Dir); len(ents) != 0 {
		t.Errorf("left %v behind", ents)
	}
}

func TestCacheIDs(t *testing.T) {
	t.Parallel()
	c := &slug.Cache{Dir: t.TempDir()}
	for _, id := range []string{"", ".", "..", "../x", "a/b", ".tmp-x", "-x", string(make([]byte, 200))} {
		if _, err := c.Path(context.Background(), id, 0, nil); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("Path(%q): %v", id, err)
		}
		if err := c.Remove(id); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("Remove(%q): %v", id, err)
		}
	}
}
