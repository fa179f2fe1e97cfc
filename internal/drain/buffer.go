package drain

import (
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/logs"
)

// buffer is a drain's queue: a ring of lines that never blocks its
// writer. When full it drops the oldest line, as Logplex does, so a
// drain that comes back gets the newest lines, and it remembers how many
// it dropped since when, for the L10 line. Safe for concurrent use.
type buffer struct {
	mu      sync.Mutex
	ring    []logs.Line // fixed capacity; lines live at ring[(head+i)%len(ring)]
	head, n int
	lost    uint64    // dropped and not yet reported by an L10 line
	since   time.Time // when the first of lost was dropped
	dropped uint64    // dropped in all, for Stats
	wake    chan struct{}
}

func newBuffer(size int) *buffer {
	return &buffer{ring: make([]logs.Line, size), wake: make(chan struct{}, 1)}
}

// push appends l, dropping the oldest line when full, and wakes the
// reader.
func (b *buffer) push(l logs.Line, now func() time.Time) {
	b.mu.Lock()
	if b.n == len(b.ring) {
		b.ring[b.head] = logs.Line{}
		b.head = (b.head + 1) % len(b.ring)
		b.n--
		b.loseLocked(1, now())
	}
	b.ring[(b.head+b.n)%len(b.ring)] = l
	b.n++
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take appends to dst the oldest lines, at least one if any wait, at
// most maxLines and, past the first, at most maxBytes by size.
func (b *buffer) take(dst []logs.Line, maxLines, maxBytes int) []logs.Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	bytes := 0
	for taken := 0; b.n > 0 && taken < maxLines; taken++ {
		l := b.ring[b.head]
		bytes += size(l)
		if taken > 0 && bytes > maxBytes {
			break
		}
		dst = append(dst, l)
		b.ring[b.head] = logs.Line{}
		b.head = (b.head + 1) % len(b.ring)
		b.n--
	}
	return dst
}

// requeue puts lines that could not be delivered back at the front, in
// order. Lines that no longer fit are the oldest and are dropped.
func (b *buffer) requeue(lines []logs.Line, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := len(b.ring) - b.n
	if len(lines) > room {
		b.loseLocked(len(lines)-room, now)
		lines = lines[len(lines)-room:]
	}
	for i := len(lines) - 1; i >= 0; i-- {
		b.head = (b.head - 1 + len(b.ring)) % len(b.ring)
		b.ring[b.head] = lines[i]
		b.n++
	}
}

// lose counts n lines dropped outside the buffer (a batch that failed
// all its tries), so the next L10 line reports them too.
func (b *buffer) lose(n int, now time.Time) {
	b.mu.Lock()
	b.loseLocked(n, now)
	b.mu.Unlock()
}

func (b *buffer) loseLocked(n int, now time.Time) {
	if b.lost == 0 {
		b.since = now
	}
	b.lost += uint64(n)
	b.dropped += uint64(n)
}

// losses returns the lines dropped since the last call and when the first
// of them was, and starts a new count.
func (b *buffer) losses() (n uint64, since time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, since = b.lost, b.since
	b.lost, b.since = 0, time.Time{}
	return n, since
}

// state reports the queued lines, the unreported losses and all drops.
func (b *buffer) state() (queued int, lost, dropped uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.lost, b.dropped
}

// size estimates the bytes a line takes on the wire, for batching.
func size(l logs.Line) int {
	return len(l.Text) + len(l.Dyno) + len(l.Source) + 80
}
