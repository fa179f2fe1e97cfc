package host

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/session"
)

// An attached one-off dyno (Assignment.Attach) starts only once its
// client is there, so that nothing it prints is lost: the API sends an
// attach request (internal/session) when `grid run` connects, and the
// dyno waiting for it takes it and starts. The session then carries the
// client's keys and window sizes in and the dyno's output and exit
// status out.

// outChunk bounds one output message, well under NATS's payload limit.
const outChunk = 32 << 10

// sessions hands attach requests to the dynos waiting for them.
type sessions struct {
	nc      *nats.Conn
	host    string
	mu      sync.Mutex
	waiting map[string]chan *attached // by dyno ID
	sub     *nats.Subscription
}

func newSessions(nc *nats.Conn, host string) *sessions {
	return &sessions{nc: nc, host: host, waiting: map[string]chan *attached{}}
}

// listen subscribes to the host's attach requests until stop.
func (s *sessions) listen() error {
	sub, err := s.nc.Subscribe(session.Subject(s.host, "*", "attach"), s.onAttach)
	s.sub = sub
	return err
}

func (s *sessions) stop() {
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
}

// onAttach answers "ok" when a dyno takes the request, and "wait" when
// none waits for it yet (its assignment or slug has not arrived): the
// API asks again.
func (s *sessions) onAttach(m *nats.Msg) {
	id := strings.Split(m.Subject, ".")[2]
	s.mu.Lock()
	ch := s.waiting[id]
	delete(s.waiting, id)
	s.mu.Unlock()
	if ch == nil {
		_ = m.Respond([]byte("wait"))
		return
	}
	at, err := s.open(id, m.Data)
	if err != nil {
		_ = m.Respond([]byte("error: " + err.Error()))
		return
	}
	ch <- at // buffered: the dyno is waiting or has given up
	_ = m.Respond([]byte("ok"))
}

// await waits up to limit for the client of dyno id.
func (s *sessions) await(ctx context.Context, id string, limit time.Duration) (*attached, error) {
	ch := make(chan *attached, 1)
	s.mu.Lock()
	s.waiting[id] = ch
	s.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case at := <-ch:
		return at, nil
	case <-ctx.Done():
	case <-t.C:
	}
	s.mu.Lock()
	delete(s.waiting, id)
	s.mu.Unlock()
	select { // taken meanwhile
	case at := <-ch:
		at.close()
	default:
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errors.New("no client attached")
}

// open subscribes to the client's input of dyno id. first is the
// attach request's payload: the terminal size.
func (s *sessions) open(id string, first []byte) (*attached, error) {
	r, w := io.Pipe()
	at := &attached{
		nc: s.nc, out: session.Subject(s.host, id, "out"),
		stdin: r, stdinW: w, hangup: make(chan struct{}),
		resize: make(chan sandbox.WindowSize, 8),
	}
	if f, err := session.FromMessage(first); err == nil {
		if rows, cols, ok := f.Size(); ok {
			at.size = sandbox.WindowSize{Rows: rows, Cols: cols}
		}
	}
	at.touch()
	sub, err := s.nc.Subscribe(session.Subject(s.host, id, "in"), at.onInput)
	if err != nil {
		return nil, err
	}
	// Input waits for a command that reads slowly; past these limits
	// NATS drops it rather than grow without bound.
	_ = sub.SetPendingLimits(4096, 8<<20)
	at.sub = sub
	return at, nil
}

// attached is one dyno's session.
type attached struct {
	nc        *nats.Conn
	out       string
	sub       *nats.Subscription
	stdin     *io.PipeReader
	stdinW    *io.PipeWriter
	size      sandbox.WindowSize // the first size, before the sandbox runs
	resize    chan sandbox.WindowSize
	hangup    chan struct{}
	hungUp    sync.Once
	lastInOut atomic.Int64 // unix nanoseconds of the last input or output
}

func (at *attached) touch() { at.lastInOut.Store(time.Now().UnixNano()) }

// idle is how long neither side has sent anything.
func (at *attached) idle() time.Duration {
	return time.Since(time.Unix(0, at.lastInOut.Load()))
}

func (at *attached) onInput(m *nats.Msg) {
	f, err := session.FromMessage(m.Data)
	if err != nil {
		return
	}
	at.touch()
	switch f.Kind {
	case session.Data:
		_, _ = at.stdinW.Write(f.Payload) // waits for the command to read
	case session.Resize:
		if rows, cols, ok := f.Size(); ok {
			select {
			case at.resize <- sandbox.WindowSize{Rows: rows, Cols: cols}:
			default: // a burst of resizes: the last ones will follow
			}
		}
	case session.EOF:
		at.stdinW.Close()
	case session.Hangup:
		at.hungUp.Do(func() { close(at.hangup) })
	}
}

// Write sends the dyno's output to the client.
func (at *attached) Write(p []byte) (int, error) {
	at.touch()
	for rest := p; len(rest) > 0; {
		n := min(len(rest), outChunk)
		if err := at.nc.Publish(at.out, session.Frame{Kind: session.Data, Payload: rest[:n]}.Message()); err != nil {
			return len(p) - len(rest), err
		}
		rest = rest[n:]
	}
	return len(p), nil
}

// exit sends the exit status, the session's last frame.
func (at *attached) exit(code int) {
	_ = at.nc.Publish(at.out, session.ExitFrame(code).Message())
	_ = at.nc.FlushTimeout(writeTimeout)
}

func (at *attached) close() {
	if at.sub != nil {
		_ = at.sub.Unsubscribe()
	}
	at.stdinW.Close()
}
