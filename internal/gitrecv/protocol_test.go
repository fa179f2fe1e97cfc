package gitrecv

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca, cb := newFrameConn(a), newFrameConn(b)
	big := strings.Repeat("x", 2*maxFrame+10)
	go func() {
		ca.send(frameHello, []byte("{}"))
		ca.send(frameOutput, nil)
		io.WriteString(ca.writer(frameData), big)
		ca.send(frameExit, []byte{1})
	}()
	want := []struct {
		t frameType
		n int
	}{{frameHello, 2}, {frameOutput, 0}, {frameData, maxFrame}, {frameData, maxFrame}, {frameData, 10}, {frameExit, 1}}
	for i, w := range want {
		typ, p, err := cb.read()
		if err != nil || typ != w.t || len(p) != w.n {
			t.Fatalf("frame %d = %q, %d bytes, %v; want %q, %d bytes", i, byte(typ), len(p), err, byte(w.t), w.n)
		}
	}
	if err := ca.send(frameData, make([]byte, maxFrame+1)); err == nil {
		t.Errorf("send of an oversized frame succeeded")
	}
}

func TestReadFrameRejects(t *testing.T) {
	t.Parallel()
	tests := map[string][]byte{
		"oversized": {'d', 0xff, 0xff, 0xff, 0xff},
		"truncated": {'d', 0, 0, 0, 5, 'a'},
		"short":     {'d', 0},
	}
	for name, in := range tests {
		if _, _, err := readFrame(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{'o', 0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{'x', 0, 0, 0, 1, 0})
	f.Add([]byte{'d', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, p, err := readFrame(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(p) > maxFrame || len(in) < 5+len(p) || in[0] != byte(typ) || !bytes.Equal(in[5:5+len(p)], p) {
			t.Fatalf("readFrame(%q) = %q, %q", in, byte(typ), p)
		}
	})
}
