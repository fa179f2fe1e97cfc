package drain

import (
	"strings"
	"testing"

	"github.com/dynogrid/grid/internal/logs"
)

// An HTTPS receiver whose certificate does not verify gets nothing, and
// the app log one L14 line.
func TestHTTPSUntrustedCertificate(t *testing.T) {
	t.Parallel()
	r := serveHTTP(t, "user", "hunter2", token)
	otherCA, _ := testCert(t)
	var n notices
	cfg := testConfig(r.url())
	cfg.RootCAs, cfg.Notice = otherCA, n.add
	d := start(t, cfg)
	for i := range 3 {
		d.Send(line(i))
	}
	waitFor(t, "the batch to be dropped", func() bool { return d.Stats().Dropped == 3 })
	if got := n.all(); len(got) != 1 || !strings.HasPrefix(got[0].Text, "Error L14 (certificate validation error): ") {
		t.Errorf("notices = %+v, want one L14 line", got)
	}
	if p := r.allPosts(); len(p) != 0 {
		t.Errorf("receiver got %d posts", len(p))
	}
}

func TestHTTPSBatches(t *testing.T) {
	t.Parallel()
	r := serveHTTP(t, "user", "hunter2", token)
	cfg := testConfig(r.url())
	cfg.RootCAs, cfg.BufferLines = r.pool(), 2000
	d := start(t, cfg)
	var sent []logs.Line
	for i := range 1200 {
		sent = append(sent, line(i))
		d.Send(line(i))
	}
	diff(t, r.wait(t, len(sent)), wants(sent, "host"))
	posts, batched, total := r.allPosts(), false, 0
	for _, p := range posts {
		total += p.count
		batched = batched || p.count > 1
		if p.status != 200 {
			t.Errorf("post %+v", p)
		}
	}
	if total != len(sent) || !batched {
		t.Errorf("%d posts carried %d lines (batched: %v)", len(posts), total, batched)
	}
}

func TestHTTPSBatchBytes(t *testing.T) {
	t.Parallel()
	r := serveHTTP(t, "user", "hunter2", token)
	cfg := testConfig(r.url())
	cfg.RootCAs = r.pool()
	d := start(t, cfg)
	long := strings.Repeat("x", logs.MaxLineBytes)
	var sent []logs.Line
	for i := range 50 {
		l := line(i)
		l.Text = long
		sent = append(sent, l)
		d.Send(l)
	}
	diff(t, r.wait(t, len(sent)), wants(sent, "host"))
	for _, p := range r.allPosts() {
		if p.count > 10 {
			t.Errorf("a post of %d lines of 10,000 bytes: over 100 KB", p.count)
		}
	}
}

// A 500 is retried with the same frame ID, and the lines arrive once.
func TestHTTPSRetryKeepsFrameID(t *testing.T) {
	t.Parallel()
	r := serveHTTP(t, "user", "hunter2", token)
	r.failFirst = 1
	var n notices
	cfg := testConfig(r.url())
	cfg.RootCAs, cfg.Notice = r.pool(), n.add
	d := start(t, cfg)
	var sent []logs.Line
	for i := range 10 {
		sent = append(sent, line(i))
		d.Send(line(i))
	}
	diff(t, r.wait(t, len(sent)), wants(sent, "host"))
	p := r.allPosts()
	if p[0].status != 500 || p[1].status != 200 || p[1].id != p[0].id || p[1].count != p[0].count {
		t.Errorf("posts = %+v, want a 500 then a 200 of the same frame", p)
	}
	if s := d.Stats(); s.Dropped != 0 || len(n.all()) != 0 {
		t.Errorf("Stats = %+v, notices %+v", s, n.all())
	}
}

// A receiver that keeps failing: each batch is tried 3 times with one
// frame ID, then dropped; once it answers again, one L10 line counts
// every lost line.
func TestHTTPDropsBatchAfterRetries(t *testing.T) {
	t.Parallel()
	r := serveHTTP(t, "user", "hunter2", token)
	r.setDown(true)
	var n notices
	cfg := testConfig(r.url())
	cfg.RootCAs, cfg.Notice, cfg.Now, cfg.BufferLines = r.pool(), n.add, clock, 100
	d := start(t, cfg)
	for i := range 250 {
		d.Send(line(i))
	}
	waitFor(t, "250 dropped", func() bool { return d.Stats().Dropped == 250 })
	tries := map[string]int{}
	for _, p := range r.allPosts() {
		tries[p.id]++
	}
	for id, n := range tries {
		if n != httpTries {
			t.Errorf("frame %s posted %d times, want %d", id, n, httpTries)
		}
	}
	r.setDown(false)
	d.Send(line(250))
	diff(t, r.wait(t, 2), wants([]logs.Line{line(250), l10(250)}, "host"))
	if got := n.all(); len(got) != 1 || got[0] != l10(250) {
		t.Errorf("notices = %+v, want one L10", got)
	}
	waitFor(t, "Delivered 2", func() bool { return d.Stats().Delivered == 2 })
	if s := d.Stats(); s.Dropped != 250 {
		t.Errorf("Stats = %+v", s)
	}
}

// The password of an HTTPS drain stays out of its errors.
func TestHTTPErrorsHidePassword(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	ln.Close()
	d := start(t, testConfig("https://user:s3cr3t@"+ln.Addr().String()+"/logs"))
	d.Send(line(1))
	waitFor(t, "an error", func() bool { return d.Stats().LastError != "" })
	if s := d.Stats().LastError; strings.Contains(s, "s3cr3t") {
		t.Errorf("LastError %q shows the password", s)
	}
}
