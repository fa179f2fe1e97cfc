package router

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// replayLimit is how much of a request body the router keeps for sending
// the request again. It equals the transport's write buffer: until the
// first write to a connection succeeds, the transport cannot have taken
// more of the body than fits in that buffer, so every request the dyno
// cannot have seen can be replayed.
const replayLimit = 32 << 10

// errBodyLost means a request must be sent again but more of its body was
// read than the router keeps.
var errBodyLost = errors.New("router: request body already sent, cannot replay it")

// errBodyRewound is what a reader of an abandoned attempt gets.
var errBodyRewound = errors.New("router: request body rewound for another attempt")

// clientBody is the client's request body as given to dynos. It keeps the
// first replayLimit bytes read from the client, so that a request a dyno
// never saw can be sent again with its body intact: to the same dyno by
// the Transport (through Request.GetBody, when its reused-connection rule
// allows; see classify.go) or to another dyno by forward. Each attempt
// reads through its own bodyReader; rewind starts a new one at byte 0 and
// cuts off the previous.
//
// The real body is closed by net/http's server when the handler returns,
// so closing a reader does nothing (the Transport closes the body of a
// failed attempt, and it may still be needed). A read error is remembered,
// so that a client breaking off its upload is not blamed on the dyno.
type clientBody struct {
	src    io.Reader
	failed atomic.Bool // reading src failed (not io.EOF)
	// malformed says the failure was the body's framing (a bad chunk),
	// not the client going away: the client is answered 400.
	malformed atomic.Bool

	mu   sync.Mutex // held across reads of src: one attempt reads at a time
	kept []byte     // everything read from src so far, unless lost
	lost bool       // more than replayLimit was read: no replay
	gen  int        // the current reader's generation
}

func newClientBody(src io.Reader) *clientBody { return &clientBody{src: src} }

// rewind returns a reader of the whole body from its start, or
// errBodyLost.
func (b *clientBody) rewind() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost {
		return nil, errBodyLost
	}
	b.gen++
	return &bodyReader{b: b, gen: b.gen}, nil
}

// first is the first attempt's reader.
func (b *clientBody) first() io.ReadCloser { return &bodyReader{b: b} }

// err reports whether reading the client's body failed; nil-safe.
func (b *clientBody) err() bool { return b != nil && b.failed.Load() }

// badFraming reports whether the body's framing was invalid; nil-safe.
func (b *clientBody) badFraming() bool { return b != nil && b.malformed.Load() }

// framingError tells a malformed chunked body (net/http's chunked reader
// reports it with plain errors) from a client that went away or went
// quiet (unexpected EOF, a network error, a deadline).
func framingError(err error) bool {
	var ne net.Error
	return !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) &&
		!errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) &&
		!errors.Is(err, context.Canceled)
}

type bodyReader struct {
	b   *clientBody
	gen int
	off int // bytes of the body this reader has returned
}

func (r *bodyReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.gen != b.gen {
		return 0, errBodyRewound
	}
	if r.off < len(b.kept) {
		n := copy(p, b.kept[r.off:])
		r.off += n
		return n, nil
	}
	n, err := b.src.Read(p)
	r.off += n
	switch {
	case b.lost:
	case len(b.kept)+n <= replayLimit:
		b.kept = append(b.kept, p[:n]...)
	default:
		b.kept, b.lost = nil, true
	}
	if err != nil && err != io.EOF {
		b.failed.Store(true)
		if framingError(err) {
			b.malformed.Store(true)
		}
	}
	return n, err
}

func (r *bodyReader) Close() error { return nil }
