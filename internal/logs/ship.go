package logs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// Ship hands every app's lines, as they are stored, to f until ctx ends;
// it is how lines leave the grid (drains). want, called with an app's
// name before its lines are decoded, skips apps nobody ships (most).
//
// The consumer is durable and named name, so a shipper that restarts
// resumes where the last one stopped (what the stream still holds);
// shippers of one name share the stream, each message going to one of
// them. Lines are acknowledged once f returns: f must not block on the
// network (hand lines to buffers).
func (l *Log) Ship(ctx context.Context, name string, want func(app string) bool, f func(app string, lines []Line)) error {
	cons, err := l.js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: subjectPrefix + ">",
		DeliverPolicy: jetstream.DeliverNewPolicy, // on creation only; a durable resumes
		AckPolicy:     jetstream.AckAllPolicy,
		MaxAckPending: 1 << 16,
		AckWait:       time.Minute,
	})
	if err != nil {
		return fmt.Errorf("logs: shipper %s: %v: %w", name, err, grid.ErrUnavailable)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("logs: shipper %s: %v: %w", name, err, grid.ErrUnavailable)
	}
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	defer msgs.Stop()
	var unacked jetstream.Msg
	lastAck := time.Now()
	for {
		msg, err := msgs.Next()
		if err != nil {
			if unacked != nil {
				_ = unacked.Ack()
			}
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("logs: shipper %s: %v: %w", name, err, grid.ErrUnavailable)
		}
		var pending uint64
		if app := strings.TrimPrefix(msg.Subject(), subjectPrefix); want(app) {
			var lines []Line
			pending = decode(msg, func(l Line) bool { lines = append(lines, l); return true })
			if len(lines) > 0 {
				f(app, lines)
			}
		} else if md, err := msg.Metadata(); err == nil {
			pending = md.NumPending
		}
		// AckAll: one ack covers every earlier message; send one when
		// caught up, else at most every 100 ms.
		unacked = msg
		if pending == 0 || time.Since(lastAck) > 100*time.Millisecond {
			_ = msg.Ack()
			unacked, lastAck = nil, time.Now()
		}
	}
}
