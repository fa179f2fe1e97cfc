package drain

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dynogrid/grid/internal/logs"
)

// run is the drain's goroutine: it delivers until Close, then flushes.
func (d *Drain) run(ctx context.Context) {
	defer close(d.done)
	defer d.t.close()
	for d.wait() {
		if err := d.step(ctx); err != nil && !d.sleep(d.bo.next()) {
			break
		}
	}
	d.flush(ctx)
}

// wait returns once there is something to deliver, or false after Close.
func (d *Drain) wait() bool {
	for {
		select {
		case <-d.stop:
			return false
		default:
		}
		if d.hasWork() {
			return true
		}
		select {
		case <-d.buf.wake:
		case <-d.stop:
			return false
		}
	}
}

func (d *Drain) hasWork() bool {
	queued, lost, _ := d.buf.state()
	return d.pending != nil || queued > 0 || lost > 0 && d.healthy
}

// sleep waits for dur, false if Close came first.
func (d *Drain) sleep(dur time.Duration) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-d.stop:
		return false
	}
}

// flush delivers what is queued until ctx ends (closeGrace after Close)
// or an attempt fails: a drain that is down does not hold Close up.
func (d *Drain) flush(ctx context.Context) {
	for ctx.Err() == nil && d.hasWork() {
		if d.step(ctx) != nil {
			return
		}
	}
}

// step makes one attempt to deliver one batch.
func (d *Drain) step(ctx context.Context) error {
	live, err := d.t.open(ctx)
	if err != nil {
		d.healthy = false
		return d.failed(err)
	}
	if live {
		d.healthy, d.certNoticed = true, false
	}
	if d.pending == nil {
		if d.pending = d.cut(); d.pending == nil {
			return nil
		}
	}
	if err := d.t.write(ctx, d.pending); err != nil {
		d.healthy = false
		d.retry()
		return d.failed(err)
	}
	d.delivered.Add(uint64(len(d.pending.lines)))
	d.pending = nil
	d.healthy, d.certNoticed = true, false
	d.bo.reset()
	d.setErr(nil)
	return nil
}

// cut takes the next batch from the buffer, nil if it is empty. Once the
// drain answers again, an L10 line reporting the lines lost since the
// last one goes first.
func (d *Drain) cut() *batch {
	var lines []logs.Line
	if d.healthy {
		if n, since := d.buf.losses(); n > 0 {
			l10 := d.platformLine(fmt.Sprintf("Error L10 (output buffer overflow): %d messages dropped since %s.",
				n, since.UTC().Format(timeLayout)))
			lines = append(lines, l10)
			d.notice(l10)
		}
	}
	lines = d.buf.take(lines, maxBatchLines-len(lines), maxBatchBytes)
	if len(lines) == 0 {
		return nil
	}
	return &batch{lines: lines}
}

// retry decides the fate of the pending batch after a failed write: back
// to the buffer (syslog), another try, or dropped after its last try.
func (d *Drain) retry() {
	b := d.pending
	b.tries++
	switch {
	case d.t.tries() == 0:
		d.buf.requeue(b.lines, d.cfg.Now())
		d.pending = nil
	case b.tries >= d.t.tries():
		d.buf.lose(len(b.lines), d.cfg.Now())
		d.pending = nil
	}
}

// failed records err and, for a certificate that did not verify, writes
// an L14 line once per failure streak rather than once per retry.
func (d *Drain) failed(err error) error {
	d.setErr(err)
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && !d.certNoticed {
		d.certNoticed = true
		d.notice(d.platformLine("Error L14 (certificate validation error): " + err.Error()))
	}
	return err
}

func (d *Drain) setErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.lastErr, d.lastErrAt = "", time.Time{}
		return
	}
	d.lastErr, d.lastErrAt = err.Error(), d.cfg.Now()
}

// platformLine is a line Logplex itself would write: heroku[logplex].
func (d *Drain) platformLine(text string) logs.Line {
	return logs.Line{Time: d.cfg.Now(), App: d.cfg.App, Source: "heroku", Dyno: "logplex", Text: text}
}

func (d *Drain) notice(l logs.Line) {
	if d.cfg.Notice != nil {
		d.cfg.Notice(l)
	}
}

// backoff is an exponential back-off with jitter: each wait doubles the
// last, up to max, and is drawn from its upper half so drains that failed
// together do not retry together.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, b.min), b.max)
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }
