package router

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// dialError marks a failure to connect to a dyno. The transport's dialer
// wraps every error in it, so the classifier can tell "never reached the
// dyno" from everything after.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial dyno: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

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

	// The request was, or may have been, delivered: never retried, since
	// the dyno may have acted on it (a POST charged twice).
	responseTimeout // no response headers within RequestTimeout
	noResponse      // the dyno closed the connection without a response
	clientGone      // the client went away or broke its request body
)

// classify names why an attempt failed. ctx is the attempt's context,
// client the client request's; bodyErr is a read error of the client's
// body, if any. Order matters: our own timeout and the client's departure
// also surface as dial or transport errors.
func classify(err error, ctx, client context.Context, bodyErr error) failure {
	var dial *dialError
	switch {
	case context.Cause(ctx) == errRequestTimeout:
		return responseTimeout
	case client.Err() != nil || bodyErr != nil:
		return clientGone
	case !errors.As(err, &dial):
		return noResponse
	case errors.Is(err, syscall.ECONNREFUSED):
		return dialRefused
	case isTimeout(err):
		return dialTimeout
	}
	return dialFailed
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// retriable is the retry decision: only when the dyno cannot have seen
// the request, which makes a retry safe for any method, with any body
// (the body is still unread).
func (f failure) retriable() bool {
	return f == dialRefused || f == dialTimeout || f == dialFailed
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
	case noResponse:
		return errH13
	case clientGone:
		return errH27
	}
	return errH99
}
