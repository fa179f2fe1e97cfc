// Package session is the wire format of an attached one-off dyno (grid
// run): a client's terminal joined to a dyno's stdio across the API and
// NATS.
//
//	grid run ──frames over HTTP upgrade──► API ──NATS──► host ──► sandbox
//	         ◄───────────────────────────────     ◄─────      ◄──
//
// The API and the host exchange NATS messages on three subjects per
// dyno, all under sessions.<host>. so that a host's credentials can be
// limited to its own sessions:
//
//	sessions.<host>.<dyno>.attach  API → host, request: the client is
//	                               here (payload: a Resize frame), start
//	sessions.<host>.<dyno>.in      API → host: Data, Resize, EOF, Hangup
//	sessions.<host>.<dyno>.out     host → API: Data, then one Exit
//
// A message is one frame: its kind byte, then its payload. Between the
// client and the API a frame is the kind byte, a big-endian uint32
// payload length and the payload.
package session

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame kinds.
const (
	Data   byte = 'd' // terminal bytes, either way
	Resize byte = 'r' // client → dyno: rows, cols (uint16 each)
	EOF    byte = 'z' // client → dyno: end of input (a pipe ran dry)
	Hangup byte = 'h' // client → dyno: the client has gone
	Exit   byte = 'x' // dyno → client: the exit status (int32), last
	Error  byte = 'e' // API → client: why the session could not start
)

// MaxPayload bounds a frame read from a client or a host: a terminal's
// chunks are a few KiB.
const MaxPayload = 1 << 20

// Frame is one message of a session.
type Frame struct {
	Kind    byte
	Payload []byte
}

// Subject is the NATS subject of one of a dyno's session channels
// ("attach", "in", "out").
func Subject(host, dynoID, channel string) string {
	return "sessions." + host + "." + dynoID + "." + channel
}

// HostSubjects matches every session subject of a host.
func HostSubjects(host string) string { return "sessions." + host + ".>" }

// ResizeFrame asks for a terminal of rows × cols.
func ResizeFrame(rows, cols uint16) Frame {
	p := make([]byte, 4)
	binary.BigEndian.PutUint16(p, rows)
	binary.BigEndian.PutUint16(p[2:], cols)
	return Frame{Resize, p}
}

// Size reads a Resize frame.
func (f Frame) Size() (rows, cols uint16, ok bool) {
	if f.Kind != Resize || len(f.Payload) != 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(f.Payload), binary.BigEndian.Uint16(f.Payload[2:]), true
}

// ExitFrame reports the dyno's exit status.
func ExitFrame(code int) Frame {
	p := make([]byte, 4)
	binary.BigEndian.PutUint32(p, uint32(int32(code)))
	return Frame{Exit, p}
}

// Code reads an Exit frame.
func (f Frame) Code() (int, bool) {
	if f.Kind != Exit || len(f.Payload) != 4 {
		return 0, false
	}
	return int(int32(binary.BigEndian.Uint32(f.Payload))), true
}

// Message is the frame as a NATS payload.
func (f Frame) Message() []byte {
	return append([]byte{f.Kind}, f.Payload...)
}

// FromMessage parses a NATS payload.
func FromMessage(m []byte) (Frame, error) {
	if len(m) == 0 {
		return Frame{}, errors.New("session: empty message")
	}
	return Frame{m[0], m[1:]}, nil
}

// Write writes f to a stream.
func Write(w io.Writer, f Frame) error {
	var h [5]byte
	h[0] = f.Kind
	binary.BigEndian.PutUint32(h[1:], uint32(len(f.Payload)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(f.Payload)
	return err
}

// Read reads a frame from a stream; a payload over MaxPayload is an
// error.
func Read(r *bufio.Reader) (Frame, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("session: frame of %d bytes, at most %d", n, MaxPayload)
	}
	f := Frame{Kind: h[0], Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, io.ErrUnexpectedEOF
	}
	return f, nil
}
