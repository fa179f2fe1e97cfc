package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

func TestSlugs(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ta.createApp("other")
	archive := "pretend tar.gz"
	meta := grid.Slug{ID: "slug-1", App: "hello", Commit: "abc", BuildpackDescription: "Go", ProcessTypes: map[string]string{"web": "bin/web"},
		Size: int64(len(archive)), Checksum: "SHA256:00", Stack: grid.Stack}
	if err := ta.store.PutSlug(context.Background(), meta, strings.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	var sl schema.Slug
	ta.do("GET", "/apps/hello/slugs/slug-1", nil).want(t, 200, &sl)
	if sl.ID != "slug-1" || deref(sl.Commit) != "abc" || deref(sl.BuildpackProvidedDescription) != "Go" || sl.ProcessTypes["web"] != "bin/web" ||
		sl.Size != int64(len(archive)) || sl.Blob.Method != "GET" || !strings.HasPrefix(sl.Blob.URL, ta.srv.URL+"/slug-blobs/") {
		t.Errorf("slug %+v", sl)
	}
	if code, b := ta.capability("GET", sl.Blob.URL, nil); code != 200 || string(b) != archive {
		t.Errorf("blob: %d %q", code, b)
	}
	if code, _ := ta.capability("GET", sl.Blob.URL+"x", nil); code != http.StatusNotFound {
		t.Errorf("a tampered blob URL: %d", code)
	}
	ta.do("GET", "/apps/other/slugs/slug-1", nil).wantError(t, 404, "not_found", "slug")
	ta.do("GET", "/apps/hello/slugs/nosuch", nil).wantError(t, 404, "not_found", "slug")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
