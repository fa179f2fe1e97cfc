package gitrecv

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

func TestHTTPStatuses(t *testing.T) {
	t.Parallel()
	g := newTestGrid(t, &recorder{}, func(c *Config) {
		auth := c.Authenticate
		c.Authenticate = func(ctx context.Context, key string) (string, error) {
			if key == "down" {
				return "", fmt.Errorf("store: %w", grid.ErrUnavailable)
			}
			return auth(ctx, key)
		}
		exists := c.AppExists
		c.AppExists = func(ctx context.Context, app string) error {
			switch app {
			case "secret":
				return fmt.Errorf("app %q: %w", app, grid.ErrForbidden)
			case "broken":
				return fmt.Errorf("store down: %w", grid.ErrUnavailable)
			}
			return exists(ctx, app)
		}
	})
	const adv = "/myapp.git/info/refs?service=git-receive-pack"
	tests := []struct {
		name, method, path, key, contentType string
		want                                 int
		wantBody                             string
	}{
		{name: "no credentials", method: "GET", path: adv, want: 401, wantBody: "API key"},
		{name: "wrong key", method: "GET", path: adv, key: "nope", want: 401},
		{name: "auth unavailable", method: "GET", path: adv, key: "down", want: 503},
		{name: "dumb protocol", method: "GET", path: "/myapp.git/info/refs", key: testKey, want: 403, wantBody: "dumb HTTP"},
		{name: "unknown service", method: "GET", path: "/myapp.git/info/refs?service=git-upload-archive", key: testKey, want: 403},
		{name: "dumb file", method: "GET", path: "/myapp.git/HEAD", key: testKey, want: 404},
		{name: "dumb objects", method: "GET", path: "/myapp.git/objects/info/packs", key: testKey, want: 404},
		{name: "not a repo path", method: "GET", path: "/myapp/info/refs?service=git-receive-pack", key: testKey, want: 404},
		{name: "root", method: "GET", path: "/", key: testKey, want: 404},
		{name: "POST info/refs", method: "POST", path: adv, key: testKey, want: 405},
		{name: "GET rpc", method: "GET", path: "/myapp.git/git-receive-pack", key: testKey, want: 405},
		{name: "wrong content type", method: "POST", path: "/myapp.git/git-receive-pack", key: testKey, contentType: "text/plain", want: 415},
		{name: "unknown app", method: "GET", path: "/nosuch.git/info/refs?service=git-receive-pack", key: testKey, want: 404, wantBody: "No such app as nosuch."},
		{name: "uppercase name", method: "GET", path: "/A.git/info/refs?service=git-receive-pack", key: testKey, want: 404},
		{name: "short name", method: "GET", path: "/x.git/info/refs?service=git-receive-pack", key: testKey, want: 404},
		{name: "dot dot", method: "GET", path: "/..%2Fx.git/info/refs?service=git-receive-pack", key: testKey, want: 404},
		{name: "dot dot segment", method: "GET", path: "/../x.git/info/refs?service=git-receive-pack", key: testKey, want: 404},
		{name: "dot name", method: "GET", path: "/..git/info/refs?service=git-receive-pack", key: testKey, want: 404},
		{name: "forbidden app", method: "GET", path: "/secret.git/info/refs?service=git-receive-pack", key: testKey, want: 403},
		{name: "app lookup down", method: "GET", path: "/broken.git/info/refs?service=git-receive-pack", key: testKey, want: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, g.srv.URL, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tt.path // sent as is, not cleaned
			if i := strings.IndexByte(tt.path, '?'); i >= 0 {
				req.URL.Opaque, req.URL.RawQuery = tt.path[:i], tt.path[i+1:]
			}
			if tt.key != "" {
				req.SetBasicAuth("git", tt.key)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.want, tt.wantBody)
			}
			if tt.want == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="grid"` {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	entries, err := os.ReadDir(g.reposDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{".hooks", ".tmp"}; !slices.Equal(names, want) {
		t.Errorf("refused requests left %v in the repos dir, want only %v", names, want)
	}
}

func TestAdvertisement(t *testing.T) {
	t.Parallel()
	g := newTestGrid(t, &recorder{})
	for _, svc := range []string{"git-receive-pack", "git-upload-pack"} {
		req, _ := http.NewRequest("GET", g.srv.URL+"/myapp.git/info/refs?service="+svc, nil)
		req.SetBasicAuth("", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		banner := pktLine("# service="+svc+"\n") + "0000"
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), banner) || len(body) <= len(banner) {
			t.Errorf("%s: %d %q", svc, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-"+svc+"-advertisement" {
			t.Errorf("%s: Content-Type %q", svc, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-cache") {
			t.Errorf("%s: Cache-Control %q", svc, cc)
		}
	}
	// Protocol v2 starts with git's capabilities, no banner.
	req, _ := http.NewRequest("GET", g.srv.URL+"/myapp.git/info/refs?service=git-upload-pack", nil)
	req.SetBasicAuth("", testKey)
	req.Header.Set("Git-Protocol", "version=2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), pktLine("version 2\n")) {
		t.Errorf("v2 advertisement = %q", body)
	}
}

// TestUploadPackGzipBody sends what git sends for a large fetch request:
// a gzip-encoded body.
func TestUploadPackGzipBody(t *testing.T) {
	t.Parallel()
	g := newTestGrid(t, &recorder{})
	c := newClient(t)
	sha := c.commit(map[string]string{"a": "1\n"}, "one")
	c.must("push", g.remote("myapp"), "main")

	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	io.WriteString(zw, pktLine("want "+sha+"\n")+"0000"+pktLine("done\n"))
	zw.Close()
	for _, tt := range []struct {
		encoding string
		want     int
	}{{"gzip", 200}, {"br", 415}} {
		req, _ := http.NewRequest("POST", g.srv.URL+"/myapp.git/git-upload-pack", bytes.NewReader(body.Bytes()))
		req.SetBasicAuth("", testKey)
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		req.Header.Set("Content-Encoding", tt.encoding)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.encoding, resp.StatusCode, tt.want)
			continue
		}
		if tt.want != 200 {
			continue
		}
		if !bytes.HasPrefix(got, []byte("0008NAK\n")) || !bytes.Contains(got, []byte("PACK")) {
			t.Errorf("upload-pack answer = %.80q", got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-upload-pack-result" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

func TestParsePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, app, rest string
		ok              bool
	}{
		{"/myapp.git/info/refs", "myapp", "info/refs", true},
		{"/myapp.git/git-receive-pack", "myapp", "git-receive-pack", true},
		{"/myapp.git", "", "", false},
		{"myapp.git/info/refs", "", "", false},
		{"/myapp/info/refs", "", "", false},
		{"/../x.git/info/refs", "", "", false},
		{"/a/b.git/info/refs", "", "", false},
		{"/.git/info/refs", "", "info/refs", true}, // empty app: refused by ValidateAppName
	}
	for _, tt := range tests {
		app, rest, ok := parsePath(tt.path)
		if app != tt.app || ok != tt.ok || (ok && rest != tt.rest) {
			t.Errorf("parsePath(%q) = %q, %q, %v; want %q, %q, %v", tt.path, app, rest, ok, tt.app, tt.rest, tt.ok)
		}
	}
}
