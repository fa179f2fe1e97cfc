package gitrecv

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The hook and the Receiver speak a small framed protocol over the unix
// socket that the Receiver made for one receive-pack request:
//
//	hook (inside git)                                     Receiver
//	  hello {version, token, updates} ───────────────────►
//	                                  ◄─────────────────── output …        notes, rejections
//	                                  ◄─────────────────── archive {rev}   only when deploying
//	  data … (git archive of rev) ───────────────────────►
//	  end {"" or error text} ────────────────────────────►
//	                                  ◄─────────────────── output …        Deploy's output
//	                                  ◄─────────────────── exit {status}   0 accepts the refs
//
// A frame is one type byte, a 4-byte big-endian payload length and the
// payload, at most maxFrame bytes. The hook relays output frames to its
// stdout as they arrive and exits with the status of the exit frame.

// protocolVersion changes whenever the frames above change, so that a hook
// from a newer or older grid binary than the running Receiver is refused
// with a clear message rather than misunderstood.
const protocolVersion = 1

// maxFrame is the largest payload of one frame.
const maxFrame = 64 << 10

// frameWriteTimeout bounds one frame write, so that a pusher who stops
// reading cannot block a build forever.
const frameWriteTimeout = time.Minute

// frameType says what a frame carries.
type frameType byte

const (
	frameHello   frameType = 'h' // hook → Receiver: JSON hello
	frameData    frameType = 'd' // hook → Receiver: bytes of the tar
	frameEnd     frameType = 'e' // hook → Receiver: tar complete; payload is an error text or empty
	frameArchive frameType = 'a' // Receiver → hook: send `git archive` of this commit
	frameOutput  frameType = 'o' // Receiver → hook: bytes for the pusher
	frameExit    frameType = 'x' // Receiver → hook: one byte, the hook's exit status
)

// hello is the first frame of a conversation.
type hello struct {
	Version int      `json:"version"`
	Token   string   `json:"token"`
	Updates []update `json:"updates"`
}

// update is one line of pre-receive input: ref moves from Old to New. Old
// is git's all-zero name for a new ref, New for a deleted one.
type update struct {
	Old string `json:"old"`
	New string `json:"new"`
	Ref string `json:"ref"`
}

// frameConn reads and writes frames on one connection. Reads must come
// from one goroutine; writes may come from many (Deployers write output
// from several).
type frameConn struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
}

func newFrameConn(c net.Conn) *frameConn {
	return &frameConn{conn: c, r: bufio.NewReader(c)}
}

// send writes one frame; p must not exceed maxFrame.
func (c *frameConn) send(t frameType, p []byte) error {
	if len(p) > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(p), maxFrame)
	}
	buf := make([]byte, 5+len(p))
	buf[0] = byte(t)
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(p)))
	copy(buf[5:], p)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(frameWriteTimeout)); err != nil {
		return err
	}
	_, err := c.conn.Write(buf)
	return err
}

// read reads the next frame.
func (c *frameConn) read() (frameType, []byte, error) {
	return readFrame(c.r)
}

// writer returns an io.Writer that sends everything written as frames of
// type t. It is safe for concurrent use.
func (c *frameConn) writer(t frameType) io.Writer {
	return frameWriter{c: c, t: t}
}

// readFrame reads one frame from r.
func readFrame(r io.Reader) (frameType, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return frameType(hdr[0]), p, nil
}

// frameWriter splits writes into frames of one type.
type frameWriter struct {
	c *frameConn
	t frameType
}

func (w frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		if err := w.c.send(w.t, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}
