package router

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		host string
		app  string
		ok   bool
	}{
		{"hello.localhost", "hello", true},
		{"hello.localhost:8080", "hello", true},
		{"HeLLo.LocalHost", "hello", true},
		{"hello.localhost.", "hello", true},
		{"hello.localhost.:80", "hello", true},
		{"localhost", "", false},
		{".localhost", "", false},
		{"a.b.localhost", "", false},
		{"hello.example.com", "", false},
		{"hello.localhostx", "", false},
		{"[::1]:80", "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		app, ok := appFor(tc.host, "localhost")
		if app != tc.app || ok != tc.ok {
			t.Errorf("appFor(%q) = %q, %v; want %q, %v", tc.host, app, ok, tc.app, tc.ok)
		}
	}
	if app, ok := appFor("shop.apps.example.com:443", "apps.example.com"); app != "shop" || !ok {
		t.Errorf("multi-label domain: %q %v", app, ok)
	}
}

func TestValidRequestID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id string
		ok bool
	}{
		{"", false},
		{strings.Repeat("a", 19), false},
		{strings.Repeat("a", 20), true},
		{strings.Repeat("Z", 200), true},
		{strings.Repeat("a", 201), false},
		{"9f0b7f4e-8d2a-4c55-a4f0-5b1d6c1f2e3d", true},
		{"abcDEF0123+/=-abcdefgh", true},
		{"abcdefghijklmnopqrst uvw", false},
		{"abcdefghijklmnopqrst_uvw", false},
		{"abcdefghijklmnopqrst\nuvw", false},
		{"abcdefghijklmnopqrstüvw", false},
	}
	for _, tc := range cases {
		if got := validRequestID(tc.id); got != tc.ok {
			t.Errorf("validRequestID(%q) = %v", tc.id, got)
		}
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if id := requestID(http.Header{"X-Request-Id": {"short"}}); !uuid.MatchString(id) {
		t.Errorf("replacement id %q is not a UUID", id)
	}
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := newRequestID()
		if !uuid.MatchString(id) || seen[id] {
			t.Fatalf("new id %q: not a UUID, or repeated", id)
		}
		seen[id] = true
	}
	keep := strings.Repeat("k", 30)
	if id := requestID(http.Header{"X-Request-Id": {keep}}); id != keep {
		t.Errorf("valid id replaced by %q", id)
	}
}

func TestAppendForwardedFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prior  []string
		remote string
		want   string
	}{
		{nil, "10.0.0.1:5555", "10.0.0.1"},
		{[]string{"1.2.3.4"}, "10.0.0.1:5555", "1.2.3.4, 10.0.0.1"},
		{[]string{"1.2.3.4, 5.6.7.8", "9.9.9.9"}, "[::1]:5555", "1.2.3.4, 5.6.7.8, 9.9.9.9, ::1"},
		{[]string{"1.2.3.4"}, "@", "1.2.3.4"},
	}
	for _, tc := range cases {
		if got := appendForwardedFor(tc.prior, tc.remote); got != tc.want {
			t.Errorf("appendForwardedFor(%q, %q) = %q, want %q", tc.prior, tc.remote, got, tc.want)
		}
	}
}

func TestOutboundHeaders(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("POST", "http://hello.localhost/p?q=1", strings.NewReader("x"))
	req.Header = http.Header{
		"Connection":          {"keep-alive, X-Private"},
		"X-Private":           {"hop"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Basic secret"},
		"Te":                  {"gzip, trailers"},
		"Upgrade":             {"h2c"},
		"X-Forwarded-Proto":   {"https"},
		"X-Forwarded-Port":    {"443"},
		"Via":                 {"1.0 corp-proxy"},
		"Authorization":       {"Bearer end-to-end"},
		"Cookie":              {"a=b"},
	}
	laddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
	req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, laddr))
	out := outbound(req, "req-id-0123456789abcdef", "1.2.3.4, 192.0.2.1", 1700000000123)
	want := http.Header{
		"Te":                {"trailers"},
		"User-Agent":        {""},
		"X-Forwarded-For":   {"1.2.3.4, 192.0.2.1"},
		"X-Forwarded-Proto": {"http"},
		"X-Forwarded-Port":  {"8443"},
		"X-Request-Start":   {"1700000000123"},
		"X-Request-Id":      {"req-id-0123456789abcdef"},
		"Via":               {"1.0 corp-proxy", "1.1 grid-router"},
		"Authorization":     {"Bearer end-to-end"},
		"Cookie":            {"a=b"},
	}
	if diff := cmp.Diff(want, out.Header); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if out.Host != "hello.localhost" || out.RequestURI != "" || out.URL.RawQuery != "q=1" {
		t.Errorf("host %q, request URI %q, query %q", out.Host, out.RequestURI, out.URL.RawQuery)
	}
	if req.Header.Get("X-Private") != "hop" {
		t.Error("client request modified")
	}
}

func TestOutboundKeepsUpgrade(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("GET", "http://hello.localhost/ws", nil)
	req.Header.Set("Connection", "keep-alive, Upgrade")
	req.Header.Set("Upgrade", "websocket")
	out := outbound(req, "id", "", 0)
	if out.Header.Get("Connection") != "Upgrade" || out.Header.Get("Upgrade") != "websocket" {
		t.Errorf("upgrade headers lost: %v", out.Header)
	}
}

func TestCopyResponseHeader(t *testing.T) {
	t.Parallel()
	src := http.Header{
		"Connection":        {"close, X-Hop"},
		"X-Hop":             {"1"},
		"Transfer-Encoding": {"chunked"},
		"Content-Type":      {"text/plain"},
		"Set-Cookie":        {"a=1", "b=2"},
	}
	dst := http.Header{}
	copyResponseHeader(dst, src)
	want := http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}, "Via": {"1.1 grid-router"}}
	if diff := cmp.Diff(want, dst); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	dst = http.Header{}
	copyResponseHeader(dst, http.Header{})
	if v, ok := dst["Content-Type"]; !ok || v != nil {
		t.Error("absent Content-Type must stay absent (and unsniffed)")
	}
}
