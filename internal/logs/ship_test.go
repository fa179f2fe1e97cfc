package logs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/logs"
)

// shipped collects what a shipper hands over, per app.
type shipped struct {
	mu    sync.Mutex
	lines map[string][]string
	skip  string // a text not to collect
}

func (s *shipped) add(app string, lines []logs.Line) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range texts(lines) {
		if t != s.skip {
			s.lines[app] = append(s.lines[app], t)
		}
	}
}

func (s *shipped) waitFor(t *testing.T, app string, n int) []string {
	t.Helper()
	return s.waitUpTo(app, n, 10*time.Second)
}

func (s *shipped) waitUpTo(app string, n int, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.lines[app]...)
		s.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ship runs a shipper of name until the returned func stops it.
func ship(t *testing.T, l *logs.Log, name string, s *shipped) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Ship(ctx, name, func(app string) bool { return app != "quiet" }, s.add) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("ship: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return stop
}

// TestShipResumes: a shipper gets the lines stored after it first
// starts, in order, but not those of apps it does not want; a restarted
// one of the same name resumes with what was written while it was away,
// repeating nothing.
func TestShipResumes(t *testing.T) {
	l := openLog(t)
	writeSeq(l, "loud", 0, 5) // before the shipper's first start: not shipped
	flush(t, l)
	s := &shipped{lines: map[string][]string{}}
	stop := ship(t, l, "drains", s)
	// The consumer exists once Ship has created it; lines from then on
	// are shipped. Wait for a marker to be sure.
	for i := 0; len(s.waitUpTo("loud", 1, 200*time.Millisecond)) == 0 && i < 50; i++ {
		l.Write(logs.Line{App: "loud", Source: "app", Dyno: "web.1", Text: "marker"})
		flush(t, l)
	}
	s.mu.Lock()
	s.lines["loud"] = nil
	s.skip = "marker" // a later one may still come
	s.mu.Unlock()
	writeSeq(l, "loud", 10, 20)
	writeSeq(l, "quiet", 0, 10)
	flush(t, l)
	if got := s.waitFor(t, "loud", 10); !cmp.Equal(got, seq(10, 20)) {
		t.Fatalf("shipped %q", got)
	}
	stop()
	writeSeq(l, "loud", 20, 30)
	flush(t, l)
	s2 := &shipped{lines: map[string][]string{}}
	ship(t, l, "drains", s2)
	if got := s2.waitFor(t, "loud", 10); !cmp.Equal(got, seq(20, 30)) {
		t.Errorf("after a restart, shipped %q", got)
	}
	if len(s.lines["quiet"])+len(s2.lines["quiet"]) > 0 {
		t.Error("shipped an app nobody wants")
	}
}
