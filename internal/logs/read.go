package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// Query selects lines to read.
type Query struct {
	Lines  int    // how many of the latest lines; 0 means 100; at most 1500
	Dyno   string // "web" matches web.1, web.2…; "web.1" only that dyno
	Source string // "app" or "heroku"; empty means both
	Tail   bool   // keep following after the history
	// After, when not zero, skips lines up to and including this Seq (a
	// reconnecting reader's last one). Lines still caps the history.
	After uint64
}

// limit is the number of history lines to send.
func (q Query) limit() int {
	switch {
	case q.Lines <= 0:
		return DefaultLines
	case q.Lines > History:
		return History
	}
	return q.Lines
}

// Match reports whether a line passes the query's dyno and source filters.
// The dyno filter matches the exact name or, as a process type, every
// "<type>.<n>" (Logplex's rule).
func (q Query) Match(l Line) bool {
	if q.Source != "" && l.Source != q.Source {
		return false
	}
	if q.Dyno == "" || l.Dyno == q.Dyno {
		return true
	}
	return strings.HasPrefix(l.Dyno, q.Dyno) && l.Dyno[len(q.Dyno)] == '.'
}

// consumerIdle is when the server removes a reader's consumer that was
// abandoned without clean-up (the reader's process died).
const consumerIdle = 30 * time.Second

// Read sends the selected history and, with Tail, live lines until ctx
// ends. The channel is closed at the end.
//
// History is every line stored when Read is called, filtered, of which
// the last q.Lines are sent in order. One ordered consumer delivers both
// history and live lines, so nothing is lost or repeated between them: a
// line written before Read whose publish had not reached the server yet
// arrives as a live line.
func (l *Log) Read(ctx context.Context, app string, q Query) (<-chan Line, error) {
	if err := grid.ValidateAppName(app); err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject(app)},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: consumerIdle,
	}
	if q.After > 0 {
		// From the message that holds the last line seen; its earlier
		// lines are skipped.
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, max(q.After>>seqShift, 1)
	}
	cons, err := l.js.OrderedConsumer(ctx, streamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("logs: read %s: %v: %w", app, err, grid.ErrUnavailable)
	}
	var stored uint64
	if info := cons.CachedInfo(); info != nil {
		stored = info.NumPending
	}
	var msgs jetstream.MessagesContext
	if stored > 0 || q.Tail {
		if msgs, err = cons.Messages(); err != nil {
			deleteConsumer(ctx, l.js, cons)
			return nil, fmt.Errorf("logs: read %s: %v: %w", app, err, grid.ErrUnavailable)
		}
	}
	out := make(chan Line, 64)
	go func() {
		defer deleteConsumer(ctx, l.js, cons)
		defer close(out)
		if msgs == nil {
			return
		}
		stop := context.AfterFunc(ctx, msgs.Stop)
		defer stop()
		defer msgs.Stop()
		r := reader{msgs: msgs, q: q, out: out}
		if r.history(ctx, stored) && q.Tail {
			r.follow(ctx)
		}
	}()
	return out, nil
}

// reader moves one Read's lines from the consumer to the caller.
type reader struct {
	msgs jetstream.MessagesContext
	q    Query
	out  chan<- Line
}

// history reads the stored messages, keeps the last q.Lines lines that
// match and sends them. It reports whether the reader may go on.
func (r reader) history(ctx context.Context, stored uint64) bool {
	keep := newRing(r.q.limit())
	for seen := uint64(0); seen < stored; seen++ {
		msg, err := r.msgs.Next()
		if err != nil {
			return false
		}
		pending := decode(msg, func(line Line) bool {
			if r.wanted(line) {
				keep.push(line)
			}
			return true
		})
		if pending == 0 {
			break
		}
	}
	for _, line := range keep.lines() {
		if !r.send(ctx, line) {
			return false
		}
	}
	return true
}

// follow sends live lines until ctx ends or the consumer fails.
func (r reader) follow(ctx context.Context) {
	for {
		msg, err := r.msgs.Next()
		if err != nil {
			return
		}
		sent := true
		decode(msg, func(line Line) bool {
			sent = !r.wanted(line) || r.send(ctx, line)
			return sent
		})
		if !sent {
			return
		}
	}
}

func (r reader) send(ctx context.Context, line Line) bool {
	select {
	case r.out <- line:
		return true
	case <-ctx.Done():
		return false
	}
}

// wanted reports whether the query selects line: it matches, and it is
// past the line a resuming reader saw last.
func (r reader) wanted(line Line) bool { return line.Seq > r.q.After && r.q.Match(line) }

// seqShift makes a line's Seq from its message's stream sequence and its
// place in the message: sequence<<seqShift | index. A message holds far
// fewer than 1<<seqShift lines (batchLines).
const seqShift = 10

// decode calls fn with each of a message's lines, with its Seq, until fn
// returns false; lines that do not parse are skipped. It returns how many
// messages were still pending for the consumer after this one.
func decode(msg jetstream.Msg, fn func(Line) bool) (pending uint64) {
	md, err := msg.Metadata()
	if err != nil {
		return 1
	}
	data := msg.Data()
	for i := uint64(0); len(data) > 0 && i < 1<<seqShift; i++ {
		var one []byte
		one, data, _ = bytes.Cut(data, []byte("\n"))
		var line Line
		if json.Unmarshal(one, &line) != nil {
			continue
		}
		line.Seq = md.Sequence.Stream<<seqShift | i
		if !fn(line) {
			break
		}
	}
	return md.NumPending
}

// deleteConsumer removes a finished reader's consumer now rather than
// after consumerIdle. Best effort.
func deleteConsumer(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = js.DeleteConsumer(ctx, streamName, info.Name)
}

// ring keeps the last n lines pushed.
type ring struct {
	buf  []Line
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]Line, 0, n)} }

func (r *ring) push(l Line) {
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, l)
		return
	}
	r.buf[r.next] = l
	r.next = (r.next + 1) % len(r.buf)
	r.full = true
}

// lines returns the kept lines, oldest first.
func (r *ring) lines() []Line {
	if !r.full {
		return r.buf
	}
	return append(append([]Line(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}
