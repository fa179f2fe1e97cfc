package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/schema"
)

func TestSessionToken(t *testing.T) {
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	s := newServer(Config{SessionSecret: []byte("k")})
	s.now = func() time.Time { return now }
	c, err := s.claims("hello", schema.LogSessionCreate{Dyno: "web.1", Lines: new(5000), Source: "app", Tail: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.signToken(c)
	got, err := s.openToken(tok, false)
	if err != nil {
		t.Fatal(err)
	}
	want := logs.Query{Lines: 1500, Dyno: "web.1", Source: "app", Tail: true}
	if diff := cmp.Diff(want, got.query()); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}

	other := newServer(Config{SessionSecret: []byte("other")})
	other.now = s.now
	payload, sig, _ := strings.Cut(tok, ".")
	for name, bad := range map[string]string{
		"other key": "", "tampered": payload + "x." + sig, "no sig": payload, "garbage": "a.b", "empty": "",
	} {
		srv := s
		if name == "other key" {
			srv, bad = other, tok
		}
		if _, err := srv.openToken(bad, false); !errors.Is(err, errBadSession) {
			t.Errorf("%s: %v", name, err)
		}
	}

	now = now.Add(sessionOpenWindow + time.Second)
	if _, err := s.openToken(tok, false); err == nil {
		t.Error("expired token opened")
	}
	if _, err := s.openToken(tok, true); err != nil {
		t.Errorf("tail resume within a day: %v", err)
	}
	now = now.Add(sessionResumeWindow)
	if _, err := s.openToken(tok, true); err == nil {
		t.Error("tail resumed after a day")
	}
}

func TestLogSessionValidation(t *testing.T) {
	s := newServer(Config{})
	for name, body := range map[string]schema.LogSessionCreate{
		"negative lines": {Lines: new(-1)},
		"bad source":     {Source: "router"},
		"bad dyno":       {Dyno: "web 1"},
	} {
		if _, err := s.claims("a", body); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if c, _ := s.claims("a", schema.LogSessionCreate{Type: "worker"}); c.Dyno != "worker" || c.Lines != 100 {
		t.Errorf("type filter/default lines: %+v", c)
	}
}

func TestSendEvents(t *testing.T) {
	base := time.Date(2026, 1, 5, 14, 47, 41, 593531000, time.UTC)
	lines := make(chan logs.Line, 4)
	lines <- logs.Line{Seq: 7, Time: base, Source: "app", Dyno: "web.1", Text: "one"}
	lines <- logs.Line{Seq: 8, Time: base, Source: "app", Dyno: "web.1", Text: "same time"}
	lines <- logs.Line{Seq: 9, Time: base.Add(-time.Second), Source: "heroku", Dyno: "router", Text: "late\nsecond line"}
	close(lines)
	var b strings.Builder
	if err := sendEvents(context.Background(), &b, func() error { return nil }, lines, 0, nil); err != nil {
		t.Fatal(err)
	}
	want := "retry: 1000\n\n" +
		"id: 7\ndata: 2026-01-05T14:47:41.593531+00:00 app[web.1]: one\n\n" +
		"id: 8\ndata: 2026-01-05T14:47:41.593531+00:00 app[web.1]: same time\n\n" +
		"id: 9\ndata: 2026-01-05T14:47:40.593531+00:00 heroku[router]: late\ndata: second line\n\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Resuming skips what was sent, even a line stamped earlier.
	lines = make(chan logs.Line, 2)
	lines <- logs.Line{Seq: 9, Time: base, Source: "app", Dyno: "web.1", Text: "old"}
	lines <- logs.Line{Seq: 10, Time: base.Add(-time.Hour), Source: "app", Dyno: "web.1", Text: "new"}
	close(lines)
	b.Reset()
	if err := sendEvents(context.Background(), &b, func() error { return nil }, lines, 9, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "old") || !strings.Contains(b.String(), "new") {
		t.Errorf("resume sent:\n%s", b.String())
	}
}

// sse reads events from an SSE response: the data of each, joined.
func sse(t *testing.T, body io.Reader, n int) (data, ids []string) {
	t.Helper()
	sc := bufio.NewScanner(body)
	var cur []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ids = append(ids, strings.TrimPrefix(line, "id: "))
		case strings.HasPrefix(line, "data: "):
			cur = append(cur, strings.TrimPrefix(line, "data: "))
		case line == "" && cur != nil:
			data = append(data, strings.Join(cur, "\n"))
			cur = nil
			if len(data) == n {
				return data, ids
			}
		}
	}
	return data, ids
}

func (ta *testAPI) logSession(body schema.LogSessionCreate) string {
	ta.t.Helper()
	var ls schema.LogSession
	ta.do("POST", "/apps/hello/log-sessions", body).want(ta.t, 201, &ls)
	if !strings.HasPrefix(ls.LogplexURL, ta.srv.URL+"/log-stream/") || ls.ID == "" {
		ta.t.Fatalf("session %+v", ls)
	}
	return ls.LogplexURL
}

func openStream(t *testing.T, url string, headers ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestLogSessionStream(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ta.do("PATCH", "/apps/hello/config-vars", map[string]string{"SECRET": "hunter2"}).want(t, 200, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ta.logs.Write(logs.Line{App: "hello", Source: "app", Dyno: "web.1", Text: "hello from web.1"})
	if err := ta.logs.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	resp := openStream(t, ta.logSession(schema.LogSessionCreate{}))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	data, _ := sse(t, resp.Body, -1) // non-tail: the server closes after history
	var texts []string
	for _, d := range data {
		_, text, _ := strings.Cut(d, " ")
		texts = append(texts, text)
	}
	want := []string{
		"app[api]: Initial release by user admin@example.com",
		"app[api]: Release v1 created by user admin@example.com",
		"app[api]: Set SECRET config vars by user admin@example.com",
		"app[api]: Release v2 created by user admin@example.com",
		"app[web.1]: hello from web.1",
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	// Filters.
	resp = openStream(t, ta.logSession(schema.LogSessionCreate{Dyno: "web", Lines: new(10)}))
	if data, _ := sse(t, resp.Body, -1); len(data) != 1 || !strings.HasSuffix(data[0], "app[web.1]: hello from web.1") {
		t.Errorf("dyno filter: %q", data)
	}

	// Tail: history, then live lines; a reconnect with Last-Event-ID
	// resumes after what was seen.
	url := ta.logSession(schema.LogSessionCreate{Tail: true, Lines: new(1)})
	resp = openStream(t, url)
	data, ids := sse(t, resp.Body, 1)
	if len(data) != 1 || !strings.Contains(data[0], "hello from web.1") {
		t.Fatalf("tail history: %q", data)
	}
	ta.logs.Write(logs.Line{App: "hello", Source: "heroku", Dyno: "web.1", Text: "State changed from starting to up"})
	data, more := sse(t, resp.Body, 1)
	if len(data) != 1 || !strings.Contains(data[0], "heroku[web.1]: State changed") {
		t.Fatalf("tail live: %q", data)
	}
	resp.Body.Close()
	resp = openStream(t, url, "Last-Event-ID", more[0])
	ta.logs.Write(logs.Line{App: "hello", Source: "app", Dyno: "web.1", Text: "after reconnect"})
	if data, _ := sse(t, resp.Body, 1); len(data) != 1 || !strings.Contains(data[0], "after reconnect") {
		t.Errorf("resumed tail: %q (ids %v)", data, ids)
	}

	for _, u := range []string{ta.srv.URL + "/log-stream/nope", url + "x"} {
		if resp := openStream(t, u); resp.StatusCode != 404 {
			t.Errorf("%s: %d", u, resp.StatusCode)
		}
	}
	ta.do("POST", "/apps/hello/log-sessions", map[string]any{"source": "x"}).wantError(t, 422, "invalid_params", "source")
}
