package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	live := context.Background()
	gone, cancel := context.WithCancel(live)
	cancel()
	timedOut, expire := context.WithCancelCause(live)
	expire(errRequestTimeout)
	conn := func(written, read int64) connUse {
		c := &dynoConn{}
		c.written.Store(10)
		c.read.Store(20)
		u := connUse{conn: c, written: 10, read: 20}
		c.written.Add(written)
		c.read.Add(read)
		return u
	}
	refused := &dialError{os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name string
		end  attemptEnd
		want failure
	}{
		{"our timeout, whatever the error", attemptEnd{err: io.EOF, ctx: timedOut, conn: conn(5, 0)}, responseTimeout},
		{"client left", attemptEnd{err: refused, ctx: gone, client: gone}, clientGone},
		{"client body broke", attemptEnd{err: io.EOF, bodyFailed: true, conn: conn(5, 0)}, clientGone},
		{"refused", attemptEnd{err: refused}, dialRefused},
		{"dial timed out", attemptEnd{err: &dialError{context.DeadlineExceeded}}, dialTimeout},
		{"dial failed", attemptEnd{err: &dialError{errors.New("no route")}}, dialFailed},
		{"sent on a reused connection, the resend's dial refused", attemptEnd{err: refused, conn: conn(5, 0)}, unreachable},
		{"sent, then nothing acknowledged", attemptEnd{err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}, conn: conn(5, 0)}, unreachable},
		{"sent, then the host unroutable", attemptEnd{err: os.NewSyscallError("read", syscall.EHOSTUNREACH), conn: conn(5, 0)}, unreachable},
		{"our deadline is not the host's silence", attemptEnd{err: os.ErrDeadlineExceeded, conn: conn(5, 0)}, unanswered},
		{"nothing sent on a reused connection, the resend's dial refused", attemptEnd{err: refused, conn: conn(0, 0)}, dialRefused},
		{"no connection, no dial error", attemptEnd{err: errors.New("bad request")}, noResponse},
		{"connected, nothing written", attemptEnd{err: syscall.ECONNRESET, conn: conn(0, 0)}, notSent},
		{"written, closed before a response byte", attemptEnd{err: io.EOF, conn: conn(5, 0)}, unanswered},
		{"written, response broken off", attemptEnd{err: io.ErrUnexpectedEOF, conn: conn(5, 3)}, interrupted},
		{"written, reset mid-headers", attemptEnd{err: syscall.ECONNRESET, conn: conn(5, 3)}, interrupted},
		{"written, malformed response", attemptEnd{err: errors.New(`malformed HTTP response "HTTP/9"`), conn: conn(5, 3)}, malformed},
		{"written, oversized response headers", attemptEnd{err: errors.New("net/http: server response headers exceeded 524288 bytes; aborted"), conn: conn(5, 3)}, restricted},
		{"closed while the client was still sending", attemptEnd{err: syscall.EPIPE, uploading: true, conn: conn(5, 0)}, uploadCut},
		{"closed after the client's whole body", attemptEnd{err: syscall.EPIPE, conn: conn(5, 0)}, unanswered},
		{"client went quiet mid-body", attemptEnd{err: io.EOF, bodyFailed: true, bodyIdle: true, conn: conn(5, 0)}, clientQuiet},
		{"body could not be replayed", attemptEnd{err: fmt.Errorf("rewind: %w", errBodyLost), conn: conn(0, 0)}, bodyLost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.end.ctx == nil {
				tc.end.ctx = live
			}
			if tc.end.client == nil {
				tc.end.client = live
			}
			if got := classify(tc.end); got != tc.want {
				t.Errorf("classify = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRetriable(t *testing.T) {
	t.Parallel()
	post, get := mustRequest(t, "POST", "http://x/", nil), mustRequest(t, "GET", "http://x/", nil)
	keyed := mustRequest(t, "POST", "http://x/", nil)
	keyed.Header.Set("Idempotency-Key", "k")
	cases := []struct {
		f      failure
		req    *http.Request
		resent bool
		want   bool
	}{
		{dialRefused, post, false, true},
		{dialTimeout, post, true, true},
		{notSent, post, true, true},
		{unanswered, get, false, true},
		{unanswered, keyed, false, true},
		{unanswered, get, true, false}, // once
		{unanswered, post, false, false},
		{unreachable, get, false, true},
		{unreachable, get, true, false},
		{unreachable, post, false, false},
		{uploadCut, get, false, true},
		{uploadCut, post, false, false},
		{uploadCut, get, true, false},
		{interrupted, get, false, false},
		{clientQuiet, get, false, false},
		{noResponse, get, false, false},
		{responseTimeout, get, false, false},
		{clientGone, get, false, false},
		{bodyLost, get, false, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d %s resent=%v", tc.f, tc.req.Method, tc.resent), func(t *testing.T) {
			if got := tc.f.retriable(replayable(tc.req), tc.resent); got != tc.want {
				t.Errorf("retriable = %v", got)
			}
		})
	}
}

// Each failure ends a request with Heroku's code for it.
func TestFailureCodes(t *testing.T) {
	t.Parallel()
	cases := map[failure]*hError{
		dialRefused: errH21, dialTimeout: errH19, dialFailed: errH99,
		notSent: errH13, unanswered: errH13, unreachable: errH13, noResponse: errH13, bodyLost: errH13,
		malformed: errH17, restricted: errH25,
		uploadCut: errH18, interrupted: errH18,
		responseTimeout: errH12, clientGone: errH27, clientQuiet: errH28,
	}
	for f, want := range cases {
		if got := f.hError(); got != want {
			t.Errorf("failure %d: %s, want %s", f, got.code, want.code)
		}
	}
	if !responseTimeout.hang() || dialRefused.hang() || noResponse.hang() {
		t.Error("only a response timeout is a sign of a hung dyno")
	}
}
