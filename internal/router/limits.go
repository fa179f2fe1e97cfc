package router

import (
	"net/http"
)

// Request size limits, as Heroku's router has them (heroku.md §2.6): a
// request line or a header line may be at most 8 KiB, and a request at
// most 1,000 header lines. net/http reads the whole head first, bounded by
// MaxHeaderBytes; admit then holds each line to its own limit, so that a
// client learns which one it broke (414 or 431) and the app's log says
// so. A head beyond MaxHeaderBytes gets net/http's own 431, with no log
// line: it never gets far enough to name an app.
const (
	maxRequestLine = 8 << 10
	maxHeaderLine  = 8 << 10
	maxHeaderCount = 1000
	// maxLoggedPath bounds the path in the log line of a request refused
	// for its size: the whole path is what was too long.
	maxLoggedPath = 1 << 10
)

// Answers to requests over a limit. H26 is Heroku's code for a request
// the router refuses as malformed; the status says which limit.
var (
	errURITooLong = &hError{"H26", "Request Error", http.StatusRequestURITooLong, "error",
		page("Request-URI Too Long", "The request line is longer than 8 KiB.")}
	// errBadBody answers a request whose chunked body is malformed; the
	// dyno may have seen its head, never a complete request.
	errBadBody = &hError{"H26", "Request Error", http.StatusBadRequest, "error",
		page("Bad Request", "The request body's chunked encoding is malformed.")}
	errHeaderTooLarge = &hError{"H26", "Request Error", http.StatusRequestHeaderFieldsTooLarge, "error",
		page("Request Header Fields Too Large", "A request header line is longer than 8 KiB, or there are more than 1,000 of them.")}
)

// admit answers a request over a size limit, logs it for its app, and
// closes the connection; it reports whether the request may go on.
func (r *Router) admit(w http.ResponseWriter, req *http.Request) bool {
	e := oversized(req)
	if e == nil {
		return true
	}
	path := req.URL.RequestURI()
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath] + "…"
	}
	rec := logRecord{fail: e, status: e.status, method: req.Method, path: path, host: req.Host,
		requestID: requestID(req.Header), fwd: appendForwardedFor(req.Header["X-Forwarded-For"], req.RemoteAddr), protocol: proto(req)}
	if req.ProtoMajor == 1 {
		w.Header().Set("Connection", "close") // what else this client sends is suspect
	}
	writePage(w, e.status, e.page)
	if app, ok := appFor(req.Host, r.cfg.Domain); ok {
		r.logLine(app, &rec)
	}
	return false
}

// oversized returns the error for a request that breaks a size limit, or
// nil. Lines are measured as they were sent ("Name: value", without CRLF);
// an obs-folded line counts as its unfolded value.
func oversized(req *http.Request) *hError {
	if len(req.Method)+len(req.RequestURI)+len(req.Proto)+2 > maxRequestLine {
		return errURITooLong
	}
	if len("Host: ")+len(req.Host) > maxHeaderLine {
		return errHeaderTooLarge
	}
	n := 1 // Host, which net/http keeps out of Header
	for name, values := range req.Header {
		n += len(values)
		for _, v := range values {
			if len(name)+2+len(v) > maxHeaderLine {
				return errHeaderTooLarge
			}
		}
	}
	if n > maxHeaderCount {
		return errHeaderTooLarge
	}
	return nil
}
