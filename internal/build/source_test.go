package build_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/build"
	"github.com/dynogrid/grid/internal/grid"
)

// deployArchive deploys a Build API request: tarball as Source, or url.
func (h *harness) deployArchive(t *testing.T, app string, tarball []byte, url, checksum string) (grid.Release, string, error) {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req := build.Request{App: app, User: "pusher@example.com", Commit: "v1.0-label", Output: &out,
		Archive: true, SourceURL: url, Checksum: checksum}
	if tarball != nil {
		req.Source = bytes.NewReader(tarball)
	}
	rel, err := h.b.Deploy(ctx, req)
	t.Logf("build output:\n%s", out.String())
	return rel, out.String(), err
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// TestDeployArchive: Build API tarballs, gzip'd or not, with the app at
// the root or under one top directory (GitHub's archives), checked
// against their checksum, uploaded or fetched from a URL.
func TestDeployArchive(t *testing.T) {
	bh := newBuildpackHost(t)
	h := newHarness(t, nil)
	app := h.createApp(t, "archived", nil)

	// Under one top directory, gzip'd, checksum right.
	tgz := func(name, top string) []byte {
		bh.tarball(t, "../apps/procfile-only", name, top)
		b, err := os.ReadFile(filepath.Join(bh.files, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	github := tgz("github.tgz", "owner-repo-0123abc")
	rel, out, err := h.deployArchive(t, app.Name, github, "", sha(github))
	if err != nil {
		t.Fatal(err)
	}
	sl := h.checkReleasedAs(t, app.Name, rel, 2, "v1.0-lab")
	if _, err := os.Stat(filepath.Join(h.slugs.Dir, sl.ID, "Procfile")); err != nil {
		t.Errorf("the top directory was not hoisted: %v", err)
	}
	wantLines(t, out, "-----> Procfile app detected\n", "Released v2\n")

	// Fetched from a URL, at the root.
	tgz("flat.tgz", "")
	rel, out, err = h.deployArchive(t, app.Name, nil, bh.url+"/files/flat.tgz", "")
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "-----> Fetching the source from "+bh.url+"/files/flat.tgz\n", "Released v3\n")
	h.checkReleasedAs(t, app.Name, rel, 3, "v1.0-lab")

	// A plain tar, as git archive makes it.
	rel, _, err = h.deployArchive(t, app.Name, sourceTar(t, apps+"procfile-only"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	h.checkReleasedAs(t, app.Name, rel, 4, "v1.0-lab")

	for _, tc := range []struct {
		name, url, checksum string
		tarball             []byte
		line                string
	}{
		{"checksum", "", sha([]byte("other")), github, "the source tarball's checksum is " + sha(github) + ", not the " + sha([]byte("other"))},
		{"missing URL", bh.url + "/files/nosuch.tgz", "", nil, " !     Build rejected: could not fetch the source:\n !       curl: (22) The requested URL returned error: 404\n"},
		{"not a tarball", "", "", []byte("\x1f\x8bnot gzip at all"), "not valid gzip"},
		{"truncated gzip", "", "", github[:len(github)/2], "cannot be unpacked"},
	} {
		_, out, err := h.deployArchive(t, app.Name, tc.tarball, tc.url, tc.checksum)
		if !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
		wantLines(t, out, tc.line)
		a, _ := h.st.App(context.Background(), app.Name)
		if a.Release.Version != 4 {
			t.Errorf("%s: the app is at v%d, want v4 untouched", tc.name, a.Release.Version)
		}
	}
}

// checkReleasedAs checks a Build API release: current, with a slug and
// a description from the version label.
func (h *harness) checkReleasedAs(t *testing.T, app string, rel grid.Release, version int, label string) grid.Slug {
	t.Helper()
	a, err := h.st.App(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if a.Release.Version != version || rel.Version != version || !strings.HasSuffix(a.Release.Description, label) {
		t.Fatalf("release %+v, want v%d described with %q", a.Release, version, label)
	}
	sl, err := h.st.Slug(context.Background(), rel.SlugID)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}
