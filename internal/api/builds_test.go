package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// fakeBuilder stands in for the slug compiler (tested in internal/build
// and end to end in e2e): it reads the source, says so, waits to be
// released and commits a release.
type fakeBuilder struct {
	st      *store.Store
	got     chan BuildRequest
	source  chan []byte
	proceed chan error
}

func (f *fakeBuilder) build(ctx context.Context, req BuildRequest) (grid.Release, error) {
	var src []byte
	if req.Source != nil {
		src, _ = io.ReadAll(req.Source)
	}
	f.got <- req
	f.source <- src
	fmt.Fprintf(req.Output, "-----> Building %d bytes\n", len(src))
	if err := <-f.proceed; err != nil {
		fmt.Fprintf(req.Output, " !     %v\n", err)
		return grid.Release{}, err
	}
	fmt.Fprintln(req.Output, "       Released")
	return f.st.CommitRelease(ctx, req.App, func(cur grid.App) (grid.Release, error) {
		return grid.Release{Description: grid.DeployDescription(req.Version), SlugID: "slug-1", Commit: req.Version, User: req.User}, nil
	})
}

// put sends body to a capability URL without credentials.
func (ta *testAPI) capability(method, url string, body []byte) (int, []byte) {
	ta.t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestSourcesAndBuilds(t *testing.T) {
	var fb *fakeBuilder
	purged := ""
	ta := startAPI(t, func(c *Config) {
		c.Build = func(ctx context.Context, r BuildRequest) (grid.Release, error) { return fb.build(ctx, r) }
		c.PurgeBuildCache = func(app string) error { purged = app; return nil }
		c.MaxSourceBytes = 1 << 20
	})
	fb = &fakeBuilder{st: ta.store, got: make(chan BuildRequest, 1), source: make(chan []byte, 1), proceed: make(chan error)}
	ta.createApp("hello")

	// An upload URL takes a tarball without credentials and gives it back.
	var src schema.Source
	ta.do("POST", "/sources", nil).want(t, http.StatusCreated, &src)
	if src.SourceBlob.PutURL != src.SourceBlob.GetURL || !strings.HasPrefix(src.SourceBlob.PutURL, ta.srv.URL+"/source-blobs/") {
		t.Fatalf("source URLs %+v", src)
	}
	tarball := []byte("pretend this is a tarball")
	if code, b := ta.capability("PUT", src.SourceBlob.PutURL, tarball); code != 200 {
		t.Fatalf("PUT source: %d %s", code, b)
	}
	if code, b := ta.capability("GET", src.SourceBlob.GetURL, nil); code != 200 || !bytes.Equal(b, tarball) {
		t.Fatalf("GET source: %d %q", code, b)
	}
	forged := src.SourceBlob.PutURL[:len(src.SourceBlob.PutURL)-3] + "AAA"
	if code, _ := ta.capability("PUT", forged, tarball); code != 404 {
		t.Errorf("PUT to a forged source URL: %d, want 404", code)
	}
	var unused schema.Source
	ta.do("POST", "/sources", nil).want(t, http.StatusCreated, &unused)
	if code, _ := ta.capability("PUT", unused.SourceBlob.PutURL, bytes.Repeat([]byte("x"), 2<<20)); code != 413 {
		t.Errorf("PUT of 2 MiB over a 1 MiB limit: %d, want 413", code)
	}

	// Bad build requests are refused before anything is recorded.
	for _, tc := range []struct {
		body   any
		status int
		msg    string
	}{
		{map[string]any{}, 422, "source tarball's URL"},
		{map[string]any{"source_blob": map[string]any{"url": "ftp://x/y.tgz"}}, 422, "http\\(s\\) URL"},
		{map[string]any{"source_blob": map[string]any{"url": src.SourceBlob.GetURL, "checksum": "MD5:abc"}}, 422, "SHA256"},
		{map[string]any{"source_blob": map[string]any{"url": src.SourceBlob.GetURL, "version": "a\nb"}}, 422, "one line"},
		{map[string]any{"source_blob": map[string]any{"url": src.SourceBlob.GetURL}, "buildpacks": []map[string]string{{"url": "heroku/ruby"}}}, 422, "no such built-in"},
		{map[string]any{"source_blob": map[string]any{"url": unused.SourceBlob.GetURL}}, 422, "Nothing was uploaded"},
		{map[string]any{"source_blob": map[string]any{"url": forged}}, 404, "expired source URL"},
	} {
		id := map[int]string{422: "invalid_params", 404: "not_found"}[tc.status]
		ta.do("POST", "/apps/hello/builds", tc.body).wantError(t, tc.status, id, tc.msg)
	}
	var none []schema.Build
	ta.do("GET", "/apps/hello/builds", nil).want(t, 200, &none)
	if len(none) != 0 {
		t.Fatalf("refused requests left builds: %+v", none)
	}

	// A build: pending at once, its output followed live, then succeeded.
	var b schema.Build
	ta.do("POST", "/apps/hello/builds", map[string]any{
		"source_blob": map[string]any{"url": src.SourceBlob.GetURL, "version": "0123456789abcdef0123456789abcdef01234567"},
		"buildpacks":  []map[string]string{{"url": "heroku/go"}, {"name": "heroku/procfile"}},
	}).want(t, http.StatusCreated, &b)
	if b.Status != "pending" || b.Release != nil || b.Slug != nil || len(b.Buildpacks) != 2 || b.User.Email != testEmail {
		t.Errorf("new build %+v", b)
	}
	req := <-fb.got
	if got := <-fb.source; !bytes.Equal(got, tarball) || req.SourceURL != "" || req.Version != "0123456789abcdef0123456789abcdef01234567" ||
		strings.Join(req.Buildpacks, ",") != "heroku/go,heroku/procfile" {
		t.Errorf("builder got %+v with source %q", req, got)
	}
	stream, err := http.Get(b.OutputStreamURL)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("-----> Building 25 bytes\n"))
	if _, err := io.ReadFull(stream.Body, first); err != nil || string(first) != "-----> Building 25 bytes\n" {
		t.Fatalf("live output: %q, %v", first, err)
	}
	fb.proceed <- nil
	rest, _ := io.ReadAll(stream.Body)
	stream.Body.Close()
	if string(rest) != "       Released\n" {
		t.Errorf("rest of the live output %q", rest)
	}
	waitBuild := func(id, status string) schema.Build {
		t.Helper()
		var got schema.Build
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ta.do("GET", "/apps/hello/builds/"+id, nil).want(t, 200, &got)
			if got.Status == status {
				return got
			}
		}
		t.Fatalf("build %s is %s, want %s", id, got.Status, status)
		return got
	}
	done := waitBuild(b.ID, "succeeded")
	if done.Slug == nil || done.Slug.ID != "slug-1" || done.Release == nil || done.Release.ID == "" {
		t.Errorf("finished build %+v", done)
	}
	// The stored output, from the store once the build is over.
	if code, out := ta.capability("GET", done.OutputStreamURL, nil); code != 200 || string(out) != "-----> Building 25 bytes\n       Released\n" {
		t.Errorf("stored output: %d %q", code, out)
	}

	// An external URL goes to the builder to fetch; a failure is recorded.
	ta.do("POST", "/apps/hello/builds", map[string]any{"source_blob": map[string]any{"url": "https://example.com/app.tgz"}}).want(t, 201, &b)
	if req := <-fb.got; req.SourceURL != "https://example.com/app.tgz" || req.Source != nil || req.Version != b.ID {
		t.Errorf("builder got %+v", req)
	}
	<-fb.source
	fb.proceed <- fmt.Errorf("compile failed: %w", grid.ErrInvalid)
	failed := waitBuild(b.ID, "failed")
	if code, out := ta.capability("GET", failed.OutputStreamURL, nil); code != 200 || !strings.Contains(string(out), "compile failed") {
		t.Errorf("failed build's output: %d %q", code, out)
	}

	var list []schema.Build
	ta.do("GET", "/apps/hello/builds", nil, "Range", "created_at ..; max=1, order=desc").want(t, 206, &list)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("newest build: %+v", list)
	}
	ta.do("GET", "/apps/hello/builds/nosuch", nil).wantError(t, 404, "not_found", "build")
	if code, _ := ta.capability("GET", ta.srv.URL+"/build-output/nope.nope", nil); code != 404 {
		t.Errorf("forged output URL: %d", code)
	}
	ta.do("DELETE", "/apps/hello/build-cache", nil).want(t, http.StatusAccepted, nil)
	if purged != "hello" {
		t.Errorf("purged %q", purged)
	}
}
