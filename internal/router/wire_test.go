package router

import (
	"strings"
	"testing"
)

// The fast path takes only plain HTTP/1.1 requests without a body;
// anything else, or in doubt, is net/http's.
func TestParseFastRequest(t *testing.T) {
	t.Parallel()
	const base = "GET /a?b=c HTTP/1.1\r\nHost: hello.localhost\r\n"
	cases := []struct {
		name, head string
		ok         bool
	}{
		{"plain GET", base + "\r\n", true},
		{"headers kept", base + "Accept: */*\r\nX-A:  spaced  \r\n\r\n", true},
		{"Content-Length 0", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", true},
		{"Connection close", base + "Connection: close\r\n\r\n", true},
		{"Connection keep-alive", base + "Connection: Keep-Alive\r\n\r\n", true},

		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", false},
		{"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false},
		{"unknown method", "PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"absolute-form", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"control byte in target", "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"no Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", false},
		{"two Hosts", base + "Host: other\r\n\r\n", false},
		{"odd Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", false},
		{"a body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", false},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", false},
		{"Content-Length +0", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +0\r\n\r\n", false},
		{"chunked", base + "Transfer-Encoding: chunked\r\n\r\n", false},
		{"Upgrade", base + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"Connection naming a header", base + "Connection: X-A\r\nX-A: 1\r\n\r\n", false},
		{"Expect", base + "Expect: 100-continue\r\n\r\n", false},
		{"TE", base + "TE: trailers\r\n\r\n", false},
		{"Trailer", base + "Trailer: X\r\n\r\n", false},
		{"Keep-Alive header", base + "Keep-Alive: 5\r\n\r\n", false},
		{"two request IDs", base + "X-Request-Id: aaaaaaaaaaaaaaaaaaaaaa\r\nX-Request-Id: bbbbbbbbbbbbbbbbbbbbbb\r\n\r\n", false},
		{"obs-fold", base + "X-A: 1\r\n  2\r\n\r\n", false},
		{"space before colon", base + "X-A : 1\r\n\r\n", false},
		{"bare LF", "GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n", false},
		{"bare CR in value", base + "X-A: 1\r2\r\n\r\n", false},
		{"NUL in value", base + "X-A: \x00\r\n\r\n", false},
		{"DEL in value", base + "X-A: \x7f\r\n\r\n", false},
		{"empty name", base + ": 1\r\n\r\n", false},
		{"too many headers", base + strings.Repeat("X-A: 1\r\n", maxFastHeaders) + "\r\n", false},
	}
	for _, tc := range cases {
		var req fastRequest
		if got := parseFastRequest([]byte(tc.head), &req); got != tc.ok {
			t.Errorf("%s: parse %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// What the parse records of a request: the fields the router uses, and
// which header lines go on to the dyno as they came.
func TestParseFastRequestFields(t *testing.T) {
	t.Parallel()
	head := "DELETE /x HTTP/1.1\r\nHost: App.localhost:8080\r\nConnection: close\r\nX-Forwarded-For: 10.0.0.1\r\n" +
		"X-Request-Id: abcdefghijklmnopqrstu\r\nX-Forwarded-Proto: https\r\nIdempotency-Key: k\r\nVia: 1.0 other\r\nAccept: text/html\r\n\r\n"
	var req fastRequest
	if !parseFastRequest([]byte(head), &req) {
		t.Fatal("refused")
	}
	if string(req.method) != "DELETE" || string(req.target) != "/x" || string(req.host) != "App.localhost:8080" ||
		string(req.requestID) != "abcdefghijklmnopqrstu" || req.forwardedFor != 1 || !req.close || !req.replayable {
		t.Errorf("parsed %+v", req)
	}
	var kept []string
	for i, sp := range req.spans {
		if req.keep[i] {
			kept = append(kept, string(sp.line(req.head)))
		}
	}
	want := []string{"Host: App.localhost:8080", "Idempotency-Key: k", "Via: 1.0 other", "Accept: text/html"}
	if strings.Join(kept, "|") != strings.Join(want, "|") {
		t.Errorf("kept %q, want %q", kept, want)
	}
}

// A dyno's response is parsed in full: what does not parse is H17, what
// breaks a limit H25.
func TestParseDynoResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, head string
		err        error
		status     int
		length     int64
		chunked    bool
		close      bool
	}{
		{"200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", nil, 200, 5, false, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", nil, 204, -1, false, false},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", nil, 200, -1, true, false},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", nil, 200, -1, false, true},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", nil, 200, -1, false, true},
		{"equal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", nil, 200, 5, false, false},

		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", errRestricted, 0, 0, false, false},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", errRestricted, 0, 0, false, false},
		{"hex length", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n", errRestricted, 0, 0, false, false},
		{"gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", errHead, 0, 0, false, false},
		{"two codings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", errHead, 0, 0, false, false},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", errHead, 0, 0, false, false},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", errHead, 0, 0, false, false},
		{"status 099", "HTTP/1.1 099 X\r\n\r\n", errHead, 0, 0, false, false},
		{"no space after status", "HTTP/1.1 200OK\r\n\r\n", errHead, 0, 0, false, false},
		{"bare LF", "HTTP/1.1 200 OK\nX: 1\r\n\r\n", errHead, 0, 0, false, false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n", errHead, 0, 0, false, false},
		{"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", errHead, 0, 0, false, false},
	}
	for _, tc := range cases {
		var res dynoResponse
		err := parseDynoResponse([]byte(tc.head), &res)
		if err != tc.err {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && (res.status != tc.status || res.length != tc.length || res.chunked != tc.chunked || res.close != tc.close) {
			t.Errorf("%s: status %d length %d chunked %v close %v", tc.name, res.status, res.length, res.chunked, res.close)
		}
	}
}

// Hop-by-hop response headers, those named by Connection and the framing
// headers (the router frames the body itself) stay behind.
func TestDynoResponsePassed(t *testing.T) {
	t.Parallel()
	head := "HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n" +
		"Transfer-Encoding: chunked\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-App: 2\r\nVia: 1.1 app\r\n\r\n"
	var res dynoResponse
	if err := parseDynoResponse([]byte(head), &res); err != nil {
		t.Fatal(err)
	}
	var passed []string
	for _, sp := range res.spans {
		if res.passed(sp) {
			passed = append(passed, string(sp.line(res.head)))
		}
	}
	if got, want := strings.Join(passed, "|"), "Trailer: X-T|X-App: 2|Via: 1.1 app"; got != want {
		t.Errorf("passed %q, want %q", got, want)
	}
}

func TestChunkSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		line string
		size int64
		ok   bool
	}{
		{"5\r\n", 5, true},
		{"1aF\r\n", 0x1af, true},
		{"5;ext=1\r\n", 5, true},
		{"0\r\n", 0, true},
		{"5\n", 0, false},
		{"\r\n", 0, false},
		{"-5\r\n", 0, false},
		{"0x5\r\n", 0, false},
		{"5;a\rb\r\n", 0, false},
		{"1000000000000000\r\n", 0, false},
	}
	for _, tc := range cases {
		size, ok := chunkSize([]byte(tc.line))
		if ok != tc.ok || ok && size != tc.size {
			t.Errorf("%q: %d %v, want %d %v", tc.line, size, ok, tc.size, tc.ok)
		}
	}
}
