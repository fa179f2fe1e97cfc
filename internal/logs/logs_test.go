package logs_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

func openLog(t *testing.T) *logs.Log {
	t.Helper()
	l, err := logs.Open(context.Background(), storetest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func flush(t *testing.T, l *logs.Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// readAll reads a non-tail query to the end.
func readAll(t *testing.T, l *logs.Log, app string, q logs.Query) []logs.Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := l.Read(ctx, app, q)
	if err != nil {
		t.Fatal(err)
	}
	var out []logs.Line
	for line := range ch {
		out = append(out, line)
	}
	if ctx.Err() != nil {
		t.Fatal("read did not finish")
	}
	return out
}

// next waits for one line from a tail.
func next(t *testing.T, ch <-chan logs.Line) logs.Line {
	t.Helper()
	select {
	case line, ok := <-ch:
		if !ok {
			t.Fatal("tail closed")
		}
		return line
	case <-time.After(5 * time.Second):
		t.Fatal("no line within 5s")
	}
	return logs.Line{}
}

func texts(lines []logs.Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

func writeSeq(l *logs.Log, app string, from, to int) {
	for _, s := range seq(from, to) {
		l.Write(logs.Line{App: app, Source: "app", Dyno: "web.1", Text: s})
	}
}

func TestWriteThenReadLatest(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	writeSeq(l, "hello", 0, 150)
	l.Write(logs.Line{App: "other", Source: "app", Dyno: "web.1", Text: "not hello's"})
	flush(t, l)

	cases := []struct {
		name string
		q    logs.Query
		want []string
	}{
		{"default is 100", logs.Query{}, seq(50, 150)},
		{"last 5", logs.Query{Lines: 5}, seq(145, 150)},
		{"more than stored", logs.Query{Lines: 1000}, seq(0, 150)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, l, "hello", tc.q)
			if diff := cmp.Diff(tc.want, texts(got)); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
	got := readAll(t, l, "hello", logs.Query{Lines: 1})
	if got[0].Time.IsZero() || got[0].Time.Location() != time.UTC || got[0].App != "hello" {
		t.Errorf("line not stamped: %+v", got[0])
	}
	if got := readAll(t, l, "empty", logs.Query{}); len(got) != 0 {
		t.Errorf("app without logs: %d lines", len(got))
	}
}

// A reader that reconnects resumes right after the last line it saw.
func TestResumeAfterSeq(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	writeSeq(l, "resume", 0, 10)
	l.Write(logs.Line{App: "other", Source: "app", Dyno: "web.1", Text: "interleaved"})
	writeSeq(l, "resume", 10, 20)
	flush(t, l)
	all := readAll(t, l, "resume", logs.Query{Lines: 1500})
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("Seq not increasing: %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
	got := readAll(t, l, "resume", logs.Query{Lines: 1500, After: all[14].Seq})
	if diff := cmp.Diff(seq(15, 20), texts(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := readAll(t, l, "resume", logs.Query{After: all[19].Seq}); len(got) != 0 {
		t.Errorf("after the last line: %d lines", len(got))
	}
}

func TestRetentionKeepsLast1500(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	writeSeq(l, "busy", 0, 1600)
	flush(t, l)
	if d := l.Dropped(); d != 0 {
		t.Fatalf("%d lines dropped", d)
	}
	for _, n := range []int{1500, 5000} {
		got := readAll(t, l, "busy", logs.Query{Lines: n})
		if diff := cmp.Diff(seq(100, 1600), texts(got)); diff != "" {
			t.Errorf("Lines=%d (-want +got):\n%s", n, diff)
		}
	}
}

func TestQueryFilters(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	for _, in := range []struct{ src, dyno string }{
		{"app", "web.1"}, {"heroku", "web.1"}, {"app", "web.2"}, {"app", "webhook.1"},
		{"app", "worker.1"}, {"heroku", "router"}, {"app", "api"}, {"app", "web"},
	} {
		l.Write(logs.Line{App: "filters", Source: in.src, Dyno: in.dyno, Text: in.src + "[" + in.dyno + "]"})
	}
	flush(t, l)
	cases := []struct {
		name string
		q    logs.Query
		want []string
	}{
		{"all", logs.Query{}, []string{"app[web.1]", "heroku[web.1]", "app[web.2]", "app[webhook.1]", "app[worker.1]", "heroku[router]", "app[api]", "app[web]"}},
		{"process type", logs.Query{Dyno: "web"}, []string{"app[web.1]", "heroku[web.1]", "app[web.2]", "app[web]"}},
		{"one dyno", logs.Query{Dyno: "web.1"}, []string{"app[web.1]", "heroku[web.1]"}},
		{"source heroku", logs.Query{Source: "heroku"}, []string{"heroku[web.1]", "heroku[router]"}},
		{"both", logs.Query{Source: "app", Dyno: "web"}, []string{"app[web.1]", "app[web.2]", "app[web]"}},
		{"router", logs.Query{Dyno: "router"}, []string{"heroku[router]"}},
		{"limit after filter", logs.Query{Dyno: "web", Lines: 2}, []string{"app[web.2]", "app[web]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, texts(readAll(t, l, "filters", tc.q))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTailSeesNewLinesQuickly(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	writeSeq(l, "tail", 0, 3)
	flush(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := l.Read(ctx, "tail", logs.Query{Lines: 2, Tail: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{next(t, ch).Text, next(t, ch).Text}; !cmp.Equal(got, seq(1, 3)) {
		t.Fatalf("history %q", got)
	}
	var worst time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		l.Write(logs.Line{App: "tail", Source: "app", Dyno: "web.1", Text: fmt.Sprint("live ", i)})
		if got := next(t, ch); got.Text != fmt.Sprint("live ", i) {
			t.Fatalf("live line %d: %q", i, got.Text)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("write → tail: worst of 20 %v", worst)
	if worst > time.Second {
		t.Errorf("tail latency %v", worst)
	}
	cancel()
	for range ch { // must close once ctx ends
	}
}

// A tail opened right after a Write (before the publish is acknowledged)
// sees that line exactly once, whether as history or as a live line.
func TestTailRightAfterWriteHasNoGapOrDuplicate(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	for round := 0; round < 20; round++ {
		app := fmt.Sprintf("race%d", round)
		l.Write(logs.Line{App: app, Source: "app", Dyno: "web.1", Text: "first"})
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := l.Read(ctx, app, logs.Query{Tail: true})
		if err != nil {
			t.Fatal(err)
		}
		l.Write(logs.Line{App: app, Source: "app", Dyno: "web.1", Text: "second"})
		if got := []string{next(t, ch).Text, next(t, ch).Text}; !cmp.Equal(got, []string{"first", "second"}) {
			t.Fatalf("round %d: %q", round, got)
		}
		l.Write(logs.Line{App: app, Source: "app", Dyno: "web.1", Text: "third"})
		if got := next(t, ch).Text; got != "third" {
			t.Fatalf("round %d: third is %q", round, got)
		}
		cancel()
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	long := strings.Repeat("a", 25000)
	l.Write(logs.Line{App: "long", Source: "app", Dyno: "web.1", Text: long})
	// A 3-byte rune straddling the 10,000-byte mark moves to the next chunk.
	utf := strings.Repeat("b", 9999) + "€" + "c"
	l.Write(logs.Line{App: "long", Source: "app", Dyno: "web.1", Text: utf})
	flush(t, l)
	got := texts(readAll(t, l, "long", logs.Query{}))
	want := []string{long[:10000], long[10000:20000], long[20000:], utf[:9999], "€c"}
	if !cmp.Equal(got, want) {
		t.Fatalf("chunks of %v bytes, want %v", lens(got), lens(want))
	}
}

func lens(ss []string) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = len(s)
	}
	return out
}

func TestWriterSplitsLines(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	w := l.Writer("wr", "app", "web.3")
	for _, p := range []string{"one\ntw", "o\r", "\nthree\r\n\nfo", "ur", strings.Repeat("x", 10001), "y\n", "tail"} {
		if n, err := io.WriteString(w, p); n != len(p) || err != nil {
			t.Fatalf("write %q: %d %v", p, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Error("write after close succeeded")
	}
	flush(t, l)
	got := readAll(t, l, "wr", logs.Query{})
	want := []string{"one", "two", "three", "", "four" + strings.Repeat("x", 9996), "xxxxxy", "tail"}
	if diff := cmp.Diff(want, texts(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got[0].Source != "app" || got[0].Dyno != "web.3" || got[0].App != "wr" {
		t.Errorf("line fields %+v", got[0])
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	writeSeq(l, "gone", 0, 10)
	writeSeq(l, "kept", 0, 10)
	flush(t, l)
	if err := l.Purge(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l, "gone", logs.Query{}); len(got) != 0 {
		t.Errorf("%d lines after purge", len(got))
	}
	if got := readAll(t, l, "kept", logs.Query{}); len(got) != 10 {
		t.Errorf("other app has %d lines", len(got))
	}
}

func TestInvalidAppIsRejected(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	if _, err := l.Read(context.Background(), "a.b", logs.Query{}); err == nil {
		t.Error("Read of a.b succeeded")
	}
	l.Write(logs.Line{App: "x.>", Text: "sneaky"})
	if l.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", l.Dropped())
	}
}

// Write must not block when the server is gone: lines are dropped and
// counted instead, and Close still returns promptly.
func TestWriteNeverBlocksWithoutServer(t *testing.T) {
	t.Parallel()
	srv, err := store.StartServer(store.ServerConfig{Dir: t.TempDir(), Secret: []byte("tok")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{URL: srv.ClientURL(), Role: store.Role{Kind: store.RoleServer, ID: "t"}, Password: store.Role{Kind: store.RoleServer, ID: "t"}.Password([]byte("tok"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	l, err := logs.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()

	const n = 50000
	start := time.Now()
	for i := 0; i < n; i++ {
		l.Write(logs.Line{App: "dark", Source: "app", Dyno: "web.1", Text: "into the void"})
	}
	took := time.Since(start)
	t.Logf("%d writes without a server: %v (%v each)", n, took, took/n)
	if took > 2*time.Second {
		t.Errorf("writes took %v", took)
	}
	if l.Dropped() == 0 {
		t.Error("nothing counted as dropped")
	}
	start = time.Now()
	l.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %v", took)
	}
	before := l.Dropped()
	l.Write(logs.Line{App: "dark", Text: "after close"})
	if l.Dropped() != before+1 {
		t.Error("write after Close not counted")
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	line := logs.Line{
		Time:   time.Date(2026, 1, 5, 15, 47, 41, 593531000, time.FixedZone("CET", 3600)),
		Source: "app", Dyno: "web.1", Text: "=> Booting Puma",
	}
	if got, want := line.Format(), "2026-01-05T14:47:41.593531+00:00 app[web.1]: => Booting Puma"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// Re-opening keeps the stream and its lines; a single server's stream
// persists asynchronously (see streamConfig).
func TestOpenIsIdempotent(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	l, err := logs.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	writeSeq(l, "again", 0, 3)
	flush(t, l)
	l.Close()
	l2, err := logs.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l2.Close)
	if got := readAll(t, l2, "again", logs.Query{}); len(got) != 3 {
		t.Errorf("%d lines after re-open", len(got))
	}
	s, err := st.JetStream().Stream(context.Background(), "LOGS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.PersistMode != jetstream.AsyncPersistMode || cfg.MaxMsgsPerSubject != logs.History || cfg.Storage != jetstream.FileStorage || cfg.Discard != jetstream.DiscardOld {
		t.Errorf("stream config %+v", cfg)
	}
}

// Lines written together go out batched, many to a message, so a burst
// costs the stream far fewer entries than lines; reads see every line, in
// order, with the last 1,500 kept.
func TestBurstIsBatched(t *testing.T) {
	t.Parallel()
	st := storetest.Start(t)
	l, err := logs.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	for i := range 3000 {
		l.Write(logs.Line{App: "burst", Source: "app", Dyno: "web.1", Text: fmt.Sprintf("line %d", i)})
		if i%100 == 0 {
			l.Write(logs.Line{App: "quiet", Source: "app", Dyno: "web.1", Text: fmt.Sprintf("quiet %d", i/100)})
		}
	}
	flush(t, l)
	if d := l.Dropped(); d != 0 {
		t.Fatalf("%d lines dropped", d)
	}
	if diff := cmp.Diff(seq(1500, 3000), texts(readAll(t, l, "burst", logs.Query{Lines: 1500}))); diff != "" {
		t.Errorf("burst (-want +got):\n%s", diff)
	}
	if got := readAll(t, l, "quiet", logs.Query{Lines: 1500}); len(got) != 30 || got[29].Text != "quiet 29" {
		t.Errorf("quiet app: %d lines", len(got))
	}
	js, err := jetstream.New(st.Conn())
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "LOGS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("logs.burst"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects["logs.burst"]; n >= 1500 {
		t.Errorf("%d messages for 3,000 lines written at once: not batched", n)
	}
}

// TestWriterRateLimit floods one writer far past WriterRate, with a
// line longer than the rest of the burst in the middle: the excess is
// dropped and reported in one Error L12 line, and another dyno's lines
// written meanwhile all arrive.
func TestWriterRateLimit(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	flood, calm := l.Writer("flood", "app", "web.1"), l.Writer("flood", "app", "web.2")
	const lines = 3 * logs.WriterBurst
	begin := time.Now()
	chunk := strings.Repeat("spam\n", 100)
	for i := 0; i < lines/100; i++ {
		io.WriteString(flood, chunk)
		if i == lines/200 {
			io.WriteString(flood, "start of a long line "+strings.Repeat("x", 3*logs.MaxLineBytes))
			io.WriteString(flood, strings.Repeat("y", 3*logs.MaxLineBytes)+"\n")
		}
		if i%3 == 0 {
			fmt.Fprintf(calm, "calm %d\n", i/3)
		}
	}
	elapsed := time.Since(begin)
	flood.Close()
	calm.Close()
	flush(t, l)
	got := readAll(t, l, "flood", logs.Query{Lines: logs.History})
	var l12 []string
	calmLines := 0
	for _, line := range got {
		switch {
		case line.Source == "heroku" && line.Dyno == "web.1":
			l12 = append(l12, line.Text)
		case line.Dyno == "web.2":
			calmLines++
		}
	}
	if want := (lines/100 + 2) / 3; calmLines != want {
		t.Errorf("the calm dyno's lines: %d arrived, want %d", calmLines, want)
	}
	dropped := 0
	for _, s := range l12 {
		var n int
		if _, err := fmt.Sscanf(s, "Error L12 (Local buffer overflow) -> %d log lines dropped", &n); err != nil {
			t.Fatalf("not an L12 line: %q", s)
		}
		dropped += n
	}
	allowed := logs.WriterBurst + int(elapsed.Seconds()*logs.WriterRate) + 1
	if total := lines + 1; dropped < total-allowed || dropped > total {
		t.Errorf("dropped %d of %d lines in %v (at most %d may pass)", dropped, total, elapsed, allowed)
	}
	if len(l12) == 0 || len(l12) > int(elapsed.Seconds())+2 {
		t.Errorf("%d L12 lines in %v: want one per second with drops", len(l12), elapsed)
	}
}

// TestWriterSaysDropping: a write past the burst drops lines and the
// writer says so, until a write once the rate has refilled passes whole;
// skipping the rest of a giant line is not dropping.
func TestWriterSaysDropping(t *testing.T) {
	t.Parallel()
	w := openLog(t).Writer("drops", "app", "web.1")
	defer w.Close()
	d := w.(interface{ Dropping() bool })
	io.WriteString(w, strings.Repeat("line\n", logs.WriterBurst/2))
	if d.Dropping() {
		t.Fatal("dropping within the burst")
	}
	io.WriteString(w, strings.Repeat("line\n", logs.WriterBurst))
	if !d.Dropping() {
		t.Fatal("not dropping past the burst")
	}
	time.Sleep(2 * time.Second / logs.WriterRate) // two lines' worth of rate
	io.WriteString(w, "line\n")
	if d.Dropping() {
		t.Error("still dropping after a line the rate had refilled")
	}
	// A giant line: its chunks spend the burst, a drop cuts it, and its
	// rest is skipped, which is not dropping.
	long, writes := strings.Repeat("x", 4*logs.MaxLineBytes), 0
	for ; !d.Dropping() && writes < logs.WriterBurst; writes++ {
		io.WriteString(w, long)
	}
	if !d.Dropping() {
		t.Fatalf("not dropping after %d writes of a giant line's chunks", writes)
	}
	io.WriteString(w, long)
	if d.Dropping() {
		t.Error("dropping while skipping the rest of a cut line")
	}
}

// TestFloodKeepsOtherAppsLines (issue 8): while one app's lines are
// written far faster than they can be stored (as a router writes for a
// hammered app, with no rate limit), another app's lines all arrive: a
// flood may fill only its share of the host's queue.
func TestFloodKeepsOtherAppsLines(t *testing.T) {
	l := openLog(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					l.Write(logs.Line{App: "flood", Source: "heroku", Dyno: "router", Text: strings.Repeat("x", 200)})
				}
			}
		})
	}
	for i := range 1000 {
		l.Write(logs.Line{App: "calm", Source: "app", Dyno: "web.1", Text: fmt.Sprintf("line %d", i)})
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	flush(t, l)
	if l.Dropped() == 0 {
		t.Fatal("the flood lost nothing: it was no flood")
	}
	if got := texts(readAll(t, l, "calm", logs.Query{Lines: 1500})); !cmp.Equal(got, seq(0, 1000)) {
		t.Errorf("calm kept %d of 1,000 lines", len(got))
	}
}
