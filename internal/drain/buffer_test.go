package drain

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/logs"
)

func texts(lines []logs.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

func textLine(s string) logs.Line { return logs.Line{Text: s} }

func TestBufferKeepsNewest(t *testing.T) {
	t.Parallel()
	b := newBuffer(3)
	tick := t0
	now := func() time.Time { tick = tick.Add(time.Second); return tick }
	for _, s := range []string{"1", "2", "3", "4", "5"} {
		b.push(textLine(s), now)
	}
	if q, lost, dropped := b.state(); q != 3 || lost != 2 || dropped != 2 {
		t.Errorf("state = %d, %d, %d; want 3 queued, 2 lost and dropped", q, lost, dropped)
	}
	if n, since := b.losses(); n != 2 || !since.Equal(t0.Add(time.Second)) {
		t.Errorf("losses = %d since %v, want 2 since the first drop", n, since)
	}
	if n, _ := b.losses(); n != 0 {
		t.Errorf("losses after reporting = %d", n)
	}
	if got := texts(b.take(nil, 10, 1<<20)); !cmp.Equal(got, []string{"3", "4", "5"}) {
		t.Errorf("take = %q", got)
	}
}

func TestBufferRequeue(t *testing.T) {
	t.Parallel()
	b := newBuffer(3)
	b.push(textLine("6"), time.Now)
	b.requeue([]logs.Line{textLine("3"), textLine("4"), textLine("5")}, t0)
	if got := texts(b.take(nil, 10, 1<<20)); !cmp.Equal(got, []string{"4", "5", "6"}) {
		t.Errorf("after requeue: %q, want the oldest dropped", got)
	}
	if _, lost, _ := b.state(); lost != 1 {
		t.Errorf("lost = %d, want 1", lost)
	}
	b.lose(10, t0)
	if n, since := b.losses(); n != 11 || !since.Equal(t0) {
		t.Errorf("losses = %d since %v", n, since)
	}
}

func TestBufferTakeLimits(t *testing.T) {
	t.Parallel()
	b := newBuffer(10)
	for range 5 {
		b.push(textLine(strings.Repeat("x", 1000)), time.Now)
	}
	if got := b.take(nil, 10, 2500); len(got) != 2 {
		t.Errorf("take of 2,500 bytes took %d lines of 1,000", len(got))
	}
	if got := b.take(nil, 10, 10); len(got) != 1 {
		t.Errorf("take with a tiny limit took %d lines, want the first anyway", len(got))
	}
	if got := b.take(nil, 1, 1<<20); len(got) != 1 {
		t.Errorf("take of 1 line took %d", len(got))
	}
	if got := b.take(nil, 10, 1<<20); len(got) != 1 {
		t.Errorf("take of the rest took %d, want 1", len(got))
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := backoff{min: 10 * time.Millisecond, max: 80 * time.Millisecond}
	for i, ceil := range []time.Duration{10, 20, 40, 80, 80, 80} {
		ceil *= time.Millisecond
		if d := b.next(); d < ceil/2 || d > ceil {
			t.Errorf("wait %d = %v, want %v to %v", i, d, ceil/2, ceil)
		}
	}
	b.reset()
	if d := b.next(); d > 10*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
}
