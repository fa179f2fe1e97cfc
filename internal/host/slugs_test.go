package host_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/store"
)

// A release's slug reaches the host's cache before any dyno needs it, and
// cached trees go once nothing needs them.
func TestSlugPrefetchAndCleanup(t *testing.T) {
	h := newHarness(t, func(c *host.Config) { c.SlugKeep = 300 * time.Millisecond })
	h.start(t)
	ctx := context.Background()
	if err := h.st.CreateApp(ctx, grid.App{ID: "app-id", Name: appName, UID: appUID}); err != nil {
		t.Fatal(err)
	}
	cached := func(id string) bool {
		_, err := os.Stat(filepath.Join(h.cfg.Slugs.Dir, id))
		return err == nil
	}

	begin := time.Now()
	h.releaseSlug(t, h.slugID)
	eventually(t, 30*time.Second, "the release's slug in the cache", func() bool { return cached(h.slugID) })
	t.Logf("release created → slug unpacked on the host: %v", time.Since(begin))

	// A dyno of the release starts from the cache: the archive is not even
	// in the store any more.
	objects, err := h.st.JetStream().ObjectStore(ctx, "slugblobs")
	if err != nil {
		t.Fatal(err)
	}
	if err := objects.Delete(ctx, h.slugID); err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	web := h.assign(t, "web.1", webCmd, nil)
	h.waitDyno(t, web.DynoID, "web.1 up from the prefetched slug", 30*time.Second, up)
	t.Logf("assignment → up with the slug prefetched: %v", time.Since(begin))

	// Two more releases: the middle one's slug, neither current nor used,
	// goes after SlugKeep; the first one's stays while web.1 runs it.
	second, third := store.NewID(), store.NewID()
	for _, id := range []string{second, third} {
		h.storeSlug(t, id)
		h.releaseSlug(t, id)
		eventually(t, 30*time.Second, "a release's slug in the cache", func() bool { return cached(id) })
	}
	eventually(t, 10*time.Second, "the unused old slug removed", func() bool { return !cached(second) })
	if !cached(h.slugID) || !cached(third) {
		t.Fatalf("slugs in use or current removed: first %v, third %v", cached(h.slugID), cached(third))
	}
	h.unassign(t, web)
	eventually(t, 10*time.Second, "the first slug removed once unused", func() bool { return !cached(h.slugID) })
	if !cached(third) {
		t.Fatal("the current slug was removed")
	}
	// A slug gone from the store (its app destroyed) goes at once.
	if err := h.st.DeleteSlug(ctx, third); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the deleted slug removed", func() bool { return !cached(third) })
}

// releaseSlug makes slug id the app's current release.
func (h *harness) releaseSlug(t *testing.T, id string) {
	t.Helper()
	_, err := h.st.CommitRelease(context.Background(), appName, func(grid.App) (grid.Release, error) {
		return grid.Release{SlugID: id}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
