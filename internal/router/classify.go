package router

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// Retrying a request is decided in two layers, each a named rule with its
// reason. Both retry only what the dyno cannot have acted on, or what is
// safe to repeat.
//
//  1. The Transport's reused-connection rule (net/http, Go's
//     persistConn.shouldRetryRequest), applied to the same dyno over
//     another connection. A pooled keep-alive connection can be closed by
//     the dyno at the instant the router reuses it: its keep-alive
//     timeout (dynoConn catches most of these before a byte goes out), or
//     a graceful shutdown closing idle connections (the router closes a
//     dyno's pool when it leaves the table, before the host stops it). The
//     Transport sends the request again when
//     - nothing of it was written to the connection (any method), or
//     - the connection was closed before the first response byte and the
//     request is replayable (see replayable).
//     A request with a body qualifies only because the router gives it
//     GetBody (clientBody.rewind).
//  2. The router's rule (failure.retriable), applied to another dyno:
//     - dial: no connection was made (refused, timed out: a dyno that
//     stopped listening, or crashed), or
//     - notSent: a connection was made but took no byte of the request
//     (reset before the first write: a connection the dyno's kernel
//     accepted just before the dyno closed its listener);
//     safe for any request, since the dyno saw nothing; and
//     - unanswered: the request went out and the connection closed
//     before a byte of response; only when replayable, and once per
//     request (what rule 1 does on a reused connection, here also on a
//     fresh one, which the Transport never retries); the same for
//     uploadCut, where the dyno closed while the client was still
//     sending the body, and for unreachable: the request went out, and
//     then the dyno's host acknowledged nothing for UnackedTimeout (a
//     power cut), or a rule-1 resend to the dyno could not connect (a
//     dial failure would wrongly say nothing went out).
//
// Anything else is never retried: the dyno may have acted on it (a POST
// charged twice), or is slow rather than gone (our timeout, H12).

// dialError marks a failure to connect to a dyno. The transport's dialer
// wraps every error in it, so the classifier can tell "never reached the
// dyno" from everything after.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial dyno: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errHostLost fails a dial to a dyno whose host the manager holds lost.
var errHostLost = errors.New("router: the dyno's host is lost")

// errHostSilent fails a dial to a dyno whose host just let a connection
// go unacknowledged for UnackedTimeout (endpoint.silence).
var errHostSilent = errors.New("router: the dyno's host acknowledges nothing")

// errRequestTimeout is the cause given to an attempt's context when the
// dyno sent no response headers in time.
var errRequestTimeout = errors.New("router: no response headers within the request timeout")

// failure is why one attempt at one dyno failed.
type failure int

const (
	// The dyno never saw the request: safe to retry elsewhere.
	dialRefused failure = iota + 1 // connection refused: nothing listens on the port
	dialTimeout                    // no connection within ConnectTimeout
	dialFailed                     // any other error before a connection was made
	notSent                        // connected, but no byte of the request went out

	// The request went out and the connection closed before any response
	// byte: retried when replayable, once. uploadCut: it closed while the
	// client was still sending the body (H18, not H13: the dyno hung up on
	// the client mid-request; a dyno that closes after the whole body is
	// read, even before the router finished writing it, is H13).
	unanswered
	uploadCut
	// unreachable: the request went out, then the dyno could not be
	// reached: its host acknowledged nothing for UnackedTimeout, or the
	// same-dyno resend (rule 1) could not connect. Retried as unanswered,
	// and the dyno is quarantined as after a failed dial.
	unreachable

	// The request was, or may have been, acted on: never retried.
	responseTimeout // no response headers within RequestTimeout
	noResponse      // failed before a connection, for no reason it gave
	malformed       // the dyno's response could not be parsed (H17)
	restricted      // its headers broke a limit: too large, conflicting Content-Length (H25)
	interrupted     // the dyno closed the connection in the middle of its response headers (H18)
	clientGone      // the client went away or broke its request body
	clientQuiet     // the client sent no byte of its body for RollingTimeout (H28)
	badBody         // the client's body was malformed (a bad chunk): H26, 400

	// The request should go out again, but more of its body was read than
	// the router keeps to replay it.
	bodyLost
)

// attemptEnd is what the router saw of a failed attempt.
type attemptEnd struct {
	err        error
	ctx        context.Context // the attempt's
	client     context.Context // the client request's
	bodyFailed bool            // reading the client's body failed
	// bodyMalformed says that failure was the body's framing.
	bodyMalformed bool
	bodyIdle      bool // … because the client went quiet (H28)
	uploading     bool // the client was still sending its body
	conn          connUse
}

// classify names why an attempt failed. Order matters: our own timeout
// and the client's departure also surface as dial or transport errors.
func classify(e attemptEnd) failure {
	var dial *dialError
	switch {
	case context.Cause(e.ctx) == errRequestTimeout:
		return responseTimeout
	case e.bodyIdle:
		return clientQuiet
	case e.bodyMalformed && e.client.Err() == nil:
		return badBody
	case e.client.Err() != nil || e.bodyFailed:
		return clientGone
	case errors.Is(e.err, errBodyLost):
		return bodyLost // from GetBody, in the Transport's retry
	case errors.As(e.err, &dial) && e.conn.sent() && !e.conn.answered():
		// The request went out on a reused connection that closed
		// unanswered, and the Transport's resend (rule 1) failed to
		// dial: a retry elsewhere is the request's one resend.
		return unreachable
	case errors.As(e.err, &dial):
		switch {
		case errors.Is(e.err, syscall.ECONNREFUSED):
			return dialRefused
		case isTimeout(e.err), errors.Is(e.err, errHostSilent):
			return dialTimeout
		}
		return dialFailed
	case !e.conn.made():
		return noResponse // failed before a connection: no telling why
	case !e.conn.sent():
		return notSent
	case !e.conn.answered() && silent(e.err):
		return unreachable
	case !e.conn.answered() && e.uploading:
		return uploadCut
	case !e.conn.answered():
		return unanswered
	case cutOff(e.err):
		return interrupted
	case restriction(e.err):
		return restricted
	}
	return malformed
}

// restriction reports whether err is net/http refusing a response for
// one of Heroku's H25 limits. Its errors for them have no types of their
// own, so their texts are matched (TestResponseRestrictionsAreH25 would
// notice a change).
func restriction(err error) bool {
	s := err.Error()
	return strings.Contains(s, "server response headers exceeded") || strings.Contains(s, "Content-Length")
}

// cutOff reports whether err says the connection ended (rather than that
// what came over it was malformed).
func cutOff(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// silent reports whether err is the kernel giving up a connection whose
// peer acknowledged nothing for UnackedTimeout (ETIMEDOUT), or could no
// longer be routed to meanwhile.
func silent(err error) bool {
	return errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// dial reports whether no connection was made.
func (f failure) dial() bool { return f == dialRefused || f == dialTimeout || f == dialFailed }

// quarantines reports whether the dyno cannot be reached: it is avoided a
// while (Config.Quarantine).
func (f failure) quarantines() bool { return f.dial() || f == unreachable }

// retriable is the router's rule (rule 2). replayable is the request's;
// resent says it has already been sent again after going out once.
func (f failure) retriable(replayable, resent bool) bool {
	switch {
	case f.dial(), f == notSent:
		return true
	case f.resends():
		return replayable && !resent
	}
	return false
}

// resends reports whether retrying after f sends the request a second
// time (the dyno may have seen it).
func (f failure) resends() bool { return f == unanswered || f == uploadCut || f == unreachable }

// hang reports whether f is a sign of a hung dyno (hang.go): it took the
// request and did not answer in time.
func (f failure) hang() bool { return f == responseTimeout }

// replayable is Go's rule (Request.isReplayable) for requests that may be
// sent again after they went out: safe methods, or a client-supplied
// idempotency key. (PUT and DELETE are idempotent by the letter of HTTP,
// but a repeated one can still act twice, as when a resource was
// re-created in between.)
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// hError is the answer when f ends the request: at once when it is not
// retriable, or as the last failure when every attempt failed.
func (f failure) hError() *hError {
	switch f {
	case dialRefused:
		return errH21
	case dialTimeout:
		return errH19
	case responseTimeout:
		return errH12
	case notSent, unanswered, unreachable, noResponse, bodyLost:
		return errH13
	case malformed:
		return errH17
	case restricted:
		return errH25
	case interrupted, uploadCut:
		return errH18
	case clientGone:
		return errH27
	case clientQuiet:
		return errH28
	case badBody:
		return errBadBody
	}
	return errH99
}
