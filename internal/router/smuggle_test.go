package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// seen is a request as the dyno saw it.
type seen struct{ method, uri, body string }

// smuggleCase is one raw request sequence of the corpus; HOST stands for
// the app's host name.
type smuggleCase struct {
	name string
	raw  string
	want []seen // nil: rejected. Otherwise what the dyno must see, in order.
}

// smuggleCorpus is the corpus, also the fuzz seeds.
func smuggleCorpus() []smuggleCase {
	const end = "GET /end HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n"
	endReq := seen{"GET", "/end", ""}
	return []smuggleCase{
		{"plain", "GET / HTTP/1.1\r\nHost: HOST\r\n\r\n" + end, []seen{{"GET", "/", ""}, endReq}},
		// CL.TE and TE.CL: chunked wins (RFC 9112 §6.3, as on Heroku); the
		// dyno gets the chunked body, and what follows it is the next
		// request on both sides.
		{"cl.te", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG" + end,
			[]seen{{"POST", "/a", ""}, {"GGET", "/end", ""}}},
		{"te.cl", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n" + end,
			[]seen{{"POST", "/a", "SMUGGLED"}, endReq}},
		{"te.cl smuggled request", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n26\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: \r\n\r\n0\r\n\r\n" + end,
			[]seen{{"POST", "/a", "GET /smuggled HTTP/1.1\r\nHost: x\r\nX: \r\n"}, endReq}},
		{"cl duplicate equal", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + end,
			[]seen{{"POST", "/a", "abc"}, endReq}},
		{"cl differing", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 3\r\nContent-Length: 8\r\n\r\nabcGET /x HTTP/1.1\r\n\r\n" + end, nil},
		{"cl list", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 3, 8\r\n\r\nabc" + end, nil},
		{"cl plus", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: +3\r\n\r\nabc" + end, nil},
		{"cl negative", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: -1\r\n\r\n" + end, nil},
		{"cl hex", "POST /a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0x3\r\n\r\nabc" + end, nil},
		{"te xchunked", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc" + end, nil},
		{"te chunked, identity", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"te identity, chunked", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"te twice", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"te uppercase", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + end,
			[]seen{{"POST", "/a", "abc"}, endReq}},
		{"te space before colon", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc" + end, nil},
		{"te tab value", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding:\tchunked\t\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + end,
			[]seen{{"POST", "/a", "abc"}, endReq}},
		{"te vertical tab", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: \vchunked\r\nContent-Length: 3\r\n\r\nabc" + end, nil},
		{"te obs-fold", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc" + end, nil},
		// net/http ignores Transfer-Encoding on HTTP/1.0 (golang/go#12785)
		// and frames by Content-Length, and so does the dyno.
		{"te http/1.0", "POST /a HTTP/1.0\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
			[]seen{{"POST", "/a", "abc"}}},
		// obs-fold is replaced by a space (RFC 9112 §5.2 allows it).
		{"obs-fold continuation", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: one\r\n two\r\n\r\n" + end,
			[]seen{{"GET", "/a", ""}, endReq}},
		{"obs-fold first line", "GET /a HTTP/1.1\r\n Host: HOST\r\n\r\n" + end, nil},
		{"bare LF lines", "GET /a HTTP/1.1\nHost: HOST\n\n" + end, []seen{{"GET", "/a", ""}, endReq}},
		{"bare CR in header", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: a\rX-B: b\r\n\r\n" + end, nil},
		{"NUL in value", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: a\x00b\r\n\r\n" + end, nil},
		{"NUL in name", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-\x00A: a\r\n\r\n" + end, nil},
		{"DEL in value", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: a\x7fb\r\n\r\n" + end, nil},
		{"CTL in value", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: a\x01b\r\n\r\n" + end, nil},
		{"two Host headers", "GET /a HTTP/1.1\r\nHost: HOST\r\nHost: other.localhost\r\n\r\n" + end, nil},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n" + end, nil},
		{"chunk size invalid", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"chunk size negative", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"chunk size overflow", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"chunk size 0x", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n" + end, nil},
		{"chunk size bare LF", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n" + end, nil},
		{"chunk ext bare LF", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n" + end, nil},
		{"chunk data too long", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n" + end, nil},
		{"chunk extension", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0;last\r\n\r\n" + end,
			[]seen{{"POST", "/a", "abc"}, endReq}},
		{"trailers", "POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\nContent-Length: 99\r\n\r\n" + end,
			[]seen{{"POST", "/a", "abc"}, endReq}},
		{"absolute-form", "GET http://HOST/abs?q=1 HTTP/1.1\r\nHost: other.localhost\r\n\r\n" + end,
			[]seen{{"GET", "/abs?q=1", ""}, endReq}},
		// The absolute-form's host wins over Host (RFC 9112 §3.2.2).
		{"absolute-form other host", "GET http://other.localhost/abs HTTP/1.1\r\nHost: HOST\r\n\r\n" + end, []seen{endReq}},
		{"pipelined", "GET /1 HTTP/1.1\r\nHost: HOST\r\n\r\nPOST /2 HTTP/1.1\r\nHost: HOST\r\nContent-Length: 2\r\n\r\nhiPOST /3 HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n" + end,
			[]seen{{"GET", "/1", ""}, {"POST", "/2", "hi"}, {"POST", "/3", "x"}, endReq}},
		{"http/1.0 keep-alive", "GET /a HTTP/1.0\r\nHost: HOST\r\nConnection: keep-alive\r\n\r\n" + end,
			[]seen{{"GET", "/a", ""}, endReq}},
		{"request line lowercase version", "GET /a http/1.1\r\nHost: HOST\r\n\r\n" + end, nil},
		{"request line extra space", "GET  /a HTTP/1.1\r\nHost: HOST\r\n\r\n" + end, nil},
		{"request line 8 KiB + 1", "GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: HOST\r\n\r\n" + end, nil},
		{"header line 8 KiB + 1", "GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: " + strings.Repeat("a", 8<<10) + "\r\n\r\n" + end, nil},
		{"CONNECT", "CONNECT HOST:443 HTTP/1.1\r\nHost: HOST:443\r\n\r\n" + end, []seen{endReq}},
		{"expect 100-continue", "PUT /a HTTP/1.1\r\nHost: HOST\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc" + end,
			[]seen{{"PUT", "/a", "abc"}, endReq}},
		{"bare CR line endings", "GET /a HTTP/1.1\rHost: HOST\r\r" + end, nil},
		{"Host with space", "GET /a HTTP/1.1\r\nHost: HOST other\r\n\r\n" + end, nil},
	}
}

// TestSmuggling is the differential request-smuggling corpus
// (reliability.md B-1): a raw client sends hand-written requests to the
// router in front of a backend that records exactly what reached it. For
// every case the router either rejects the request (a 4xx or 5xx of its
// own, the connection closed, nothing sent to the dyno) or the dyno sees
// exactly the requests the router parsed, each framed as the router framed
// it, each answered to the client. (A chunked body found malformed midway
// may leave the dyno one cut-off request: the router streams bodies.)
// Every case ends with a sentinel request that closes the connection, so
// a desync (bytes left over and glued to the next request) shows up as a
// request nobody meant.
func TestSmuggling(t *testing.T) {
	h := startRouter(t, func(c *Config) {
		c.IdleTimeout = 2 * time.Second
		c.HeaderTimeout = 2 * time.Second
		c.RequestTimeout = 5 * time.Second
	})
	cases := smuggleCorpus()
	// Cases whose first request the router answers itself (a 4xx) before
	// carrying on with the next.
	answersFirst := map[string]bool{"absolute-form other host": true, "CONNECT": true}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := fmt.Sprintf("smuggle%d", i)
			host := app + ".localhost"
			b := newRawBackend(t)
			h.app(app, 1)
			h.dyno(app, 1, grid.DynoUp, b.addr())
			h.await(app, endpointsAre(1))
			raw := strings.ReplaceAll(c.raw, "HOST", host)
			want := make([]seen, len(c.want))
			for i, w := range c.want {
				w.body = strings.ReplaceAll(w.body, "HOST", host)
				want[i] = w
			}
			resps, err := exchangeAll(h.addr, raw)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("statuses %v", statuses(resps))
			if c.want == nil {
				b.awaitHead(5 * time.Second)
			}
			got := b.requests()
			var answered []*http.Response // by the dyno
			errs := 0                     // by the router itself
			for _, r := range resps {
				switch {
				case r.Header.Get("X-Seen-Id") != "":
					answered = append(answered, r)
				case r.StatusCode >= 400:
					errs++
				default:
					t.Errorf("router answered %d without the dyno", r.StatusCode)
				}
			}
			if c.want == nil {
				// A body found malformed midway may follow a head the
				// router already streamed to the dyno: then the dyno sees
				// that one request cut off, never a complete one.
				if len(got) > 1 || len(got) == 1 && got[0].Complete || len(got) == 0 && b.raw() != "" {
					t.Fatalf("rejected case reached the dyno: %q", clip(b.raw()))
				}
				if errs > 1 || len(answered) > 0 {
					t.Fatalf("want at most one 4xx/5xx and a closed connection, got %v", statuses(resps))
				}
				return
			}
			var have []seen
			for _, r := range got {
				if !r.Complete {
					t.Errorf("dyno saw an incomplete request %s %s", r.Method, clip(r.URI))
				}
				if r.Host != host {
					t.Errorf("dyno saw Host %q, want %q", r.Host, host)
				}
				if len(r.TE) > 0 && r.CL >= 0 || len(r.Header["Content-Length"]) > 1 {
					t.Errorf("dyno saw ambiguous framing: TE %q CL %q", r.TE, r.Header["Content-Length"])
				}
				have = append(have, seen{r.Method, clip(r.URI), r.Body})
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Fatalf("dyno saw\n  %q\nwant\n  %q\nresponses %v\nraw: %q", have, want, statuses(resps), clip(b.raw()))
			}
			if errs > 0 != answersFirst[c.name] || errs > 1 {
				t.Errorf("router answered %d requests itself: %v", errs, statuses(resps))
			}
			if len(answered) != len(got) {
				t.Fatalf("%d requests reached the dyno, %d of its responses came back: %v", len(got), len(answered), statuses(resps))
			}
			for i, r := range answered {
				if id := got[i].Header.Get("X-Request-Id"); r.StatusCode != 200 || r.Header.Get("X-Seen-Id") != id {
					t.Errorf("response %d: status %d for request %q; the dyno's request %d was %q", i, r.StatusCode, r.Header.Get("X-Seen-Id"), i, id)
				}
			}
		})
	}
}

// exchangeAll writes raw to the router and reads responses until it closes
// the connection (the cases end with Connection: close, or are rejected).
// A reset after complete responses counts as a close.
func exchangeAll(addr, raw string) ([]*http.Response, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go io.WriteString(conn, raw) // the router may stop reading early
	br := bufio.NewReader(conn)
	var resps []*http.Response
	for {
		if _, err := br.Peek(1); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return resps, fmt.Errorf("router neither answered nor closed: %v so far", statuses(resps))
			}
			return resps, nil
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return resps, fmt.Errorf("malformed response after %v: %v", statuses(resps), err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return resps, fmt.Errorf("response body: %v", err)
		}
		if res.StatusCode == http.StatusContinue {
			continue // interim: the answer follows
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		resps = append(resps, res)
	}
}

func statuses(rs []*http.Response) []int {
	s := make([]int, len(rs))
	for i, r := range rs {
		s[i] = r.StatusCode
	}
	return s
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}
