package router

import (
	"bytes"
	"errors"
	"strconv"
)

// The fast path's HTTP/1.1 wire format (fast.go). Requests are parsed only
// to decide whether they belong to the strict subset the fast path takes:
// anything outside it, or in doubt, is left to net/http, so these parsers
// may refuse freely and never have to answer. Responses are parsed fully,
// since a dyno's response has nowhere else to go: one that breaks the
// grammar is H17, one that breaks a limit H25 (classify.go).

// span is a header line within a head: [start, end) without its CRLF;
// name ends at colon, value is [vstart, vend).
type span struct {
	start, colon, vstart, vend int32
}

func (s span) line(b []byte) []byte  { return b[s.start:s.vend] }
func (s span) name(b []byte) []byte  { return b[s.start:s.colon] }
func (s span) value(b []byte) []byte { return b[s.vstart:s.vend] }

// Header lines the fast path gives a meaning to. What is not listed is
// passed on as it came.
const (
	hdrOther = iota
	hdrHost
	hdrContentLength
	hdrConnection
	hdrTransferEncoding
	hdrForwardedFor
	hdrRouterSet // X-Forwarded-Proto, X-Forwarded-Port, X-Request-Start: the router's own
	hdrRequestID
	hdrVia
	hdrIdempotency
	hdrDate
	hdrTrailer
	hdrHop     // other hop-by-hop headers (headers.go's hopHeaders)
	hdrRefused // headers a request on the fast path must not have
)

// headerKind names a header line by its (case-insensitive) name.
func headerKind(name []byte) int {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return hdrHop
		}
	case 3:
		if eqFold(name, "via") {
			return hdrVia
		}
	case 4:
		switch {
		case eqFold(name, "host"):
			return hdrHost
		case eqFold(name, "date"):
			return hdrDate
		}
	case 6:
		if eqFold(name, "expect") {
			return hdrRefused
		}
	case 7:
		switch {
		case eqFold(name, "upgrade"):
			return hdrHop
		case eqFold(name, "trailer"):
			return hdrTrailer
		}
	case 10:
		switch {
		case eqFold(name, "connection"):
			return hdrConnection
		case eqFold(name, "keep-alive"):
			return hdrHop
		}
	case 12:
		if eqFold(name, "x-request-id") {
			return hdrRequestID
		}
	case 14:
		if eqFold(name, "content-length") {
			return hdrContentLength
		}
	case 15:
		switch {
		case eqFold(name, "x-forwarded-for"):
			return hdrForwardedFor
		case eqFold(name, "x-request-start"):
			return hdrRouterSet
		case eqFold(name, "idempotency-key"):
			return hdrIdempotency
		}
	case 16:
		if eqFold(name, "proxy-connection") {
			return hdrHop
		}
		if eqFold(name, "x-forwarded-port") {
			return hdrRouterSet
		}
	case 17:
		switch {
		case eqFold(name, "transfer-encoding"):
			return hdrTransferEncoding
		case eqFold(name, "x-forwarded-proto"):
			return hdrRouterSet
		case eqFold(name, "x-idempotency-key"):
			return hdrIdempotency
		}
	case 18:
		if eqFold(name, "proxy-authenticate") {
			return hdrHop
		}
	case 19:
		if eqFold(name, "proxy-authorization") {
			return hdrHop
		}
	}
	return hdrOther
}

// eqFold compares b with lower-case ASCII s, ignoring b's case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// tchar is RFC 9110's token character set.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// fieldByte reports whether c may appear in a header value: visible
// ASCII, space, tab and obs-text; never a control byte or DEL.
func fieldByte(c byte) bool { return c >= 0x20 && c != 0x7f || c == '\t' }

// errHead is a head that breaks the grammar.
var errHead = errors.New("malformed head")

// splitHeaders cuts the header lines of head, which starts after the
// start line and ends with the empty line's CRLF, into spans, appended to
// spans. Every line must end in CRLF; names must be tokens followed
// directly by a colon; values may hold no control bytes. A line starting
// with whitespace (obs-fold) is malformed.
func splitHeaders(head []byte, off int, spans []span) ([]span, error) {
	for {
		eol := bytes.IndexByte(head[off:], '\n')
		if eol < 0 {
			return spans, errHead
		}
		end := off + eol
		if end == off || head[end-1] != '\r' {
			return spans, errHead // bare LF
		}
		end-- // the CR
		if end == off {
			return spans, nil // the empty line
		}
		colon := off
		for colon < end && tchar[head[colon]] {
			colon++
		}
		if colon == off || colon == end || head[colon] != ':' {
			return spans, errHead
		}
		vs, ve := colon+1, end
		for vs < ve && (head[vs] == ' ' || head[vs] == '\t') {
			vs++
		}
		for ve > vs && (head[ve-1] == ' ' || head[ve-1] == '\t') {
			ve--
		}
		for _, c := range head[vs:ve] {
			if !fieldByte(c) {
				return spans, errHead
			}
		}
		spans = append(spans, span{int32(off), int32(colon), int32(vs), int32(ve)})
		off = end + 2
	}
}

// fastRequest is a request head the fast path takes: HTTP/1.1, origin-form
// target, one plain Host, no body and nothing that changes how the
// connection or the exchange works (no Upgrade, Expect, Transfer-Encoding,
// TE or Trailer). Its slices point into head.
type fastRequest struct {
	head           []byte
	method, target []byte
	host           []byte
	requestID      []byte // the client's X-Request-Id; nil: none
	forwardedFor   int    // X-Forwarded-For lines, kept out of keep
	close          bool   // Connection: close
	replayable     bool   // see classify.go's replayable
	spans          []span // every header line
	keep           []bool // spans[i] goes to the dyno as it is
}

// fastMethods are the methods the fast path takes, as the log spells them.
var fastMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// methodName returns the interned name of m, or "" when the fast path does
// not take it.
func methodName(m []byte) string {
	for _, s := range fastMethods {
		if string(m) == s {
			return s
		}
	}
	return ""
}

// parseFastRequest parses head (the request line to the empty line's CRLF
// included) into req, reusing req's slices. It reports false for any
// request outside the fast path's subset.
func parseFastRequest(head []byte, req *fastRequest) bool {
	*req = fastRequest{head: head, spans: req.spans[:0], keep: req.keep[:0]}
	eol := bytes.IndexByte(head, '\n')
	if eol < 1 || head[eol-1] != '\r' {
		return false
	}
	line := head[:eol-1]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return false
	}
	req.method = line[:sp1]
	method := methodName(req.method)
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if method == "" || sp2 < 1 || string(rest[sp2+1:]) != "HTTP/1.1" {
		return false
	}
	req.target = rest[:sp2]
	if req.target[0] != '/' {
		return false // absolute-form, asterisk-form: net/http's
	}
	for _, c := range req.target {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	req.replayable = method == "GET" || method == "HEAD" || method == "OPTIONS"
	var err error
	if req.spans, err = splitHeaders(head, eol+1, req.spans); err != nil || len(req.spans) > maxFastHeaders {
		return false
	}
	sawLength := false
	for _, s := range req.spans {
		keep := false
		v := s.value(head)
		switch headerKind(s.name(head)) {
		case hdrHost:
			if req.host != nil || !plainHost(v) {
				return false
			}
			req.host = v
			keep = true
		case hdrContentLength:
			if string(v) != "0" || sawLength {
				return false
			}
			sawLength, keep = true, true
		case hdrConnection:
			if !req.connectionTokens(v) {
				return false
			}
		case hdrForwardedFor:
			req.forwardedFor++
		case hdrRequestID:
			if req.requestID != nil {
				return false // which one? net/http's path decides
			}
			req.requestID = v
		case hdrRouterSet:
		case hdrIdempotency:
			req.replayable, keep = true, true
		case hdrTransferEncoding, hdrTrailer, hdrHop, hdrRefused:
			return false
		default:
			keep = true
		}
		req.keep = append(req.keep, keep)
	}
	return req.host != nil
}

// maxFastHeaders is the most header lines a request on the fast path may
// have; more are net/http's to judge (limits.go).
const maxFastHeaders = 64

// connectionTokens reads a request's Connection value: only "close" and
// "keep-alive" are taken; any other token names hop-by-hop headers to
// strip, which is net/http's job.
func (req *fastRequest) connectionTokens(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte(","))
		tok = bytes.Trim(tok, " \t")
		switch {
		case eqFold(tok, "close"):
			req.close = true
		case eqFold(tok, "keep-alive"), len(tok) == 0:
		default:
			return false
		}
	}
	return true
}

// plainHost reports whether a Host value is a plain name or address with
// an optional port: letters, digits, '.', '-', '_', ':', '[' and ']'.
func plainHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// dynoResponse is a dyno's response head as the fast path relays it.
type dynoResponse struct {
	head   []byte
	status int
	reason []byte // without the leading space; may be empty
	// length is the body's Content-Length; -1 when none was given.
	length  int64
	chunked bool
	close   bool // Connection: close: the connection is not reused
	date    bool // a Date header came
	spans   []span
	// drop names the response's Connection tokens other than close and
	// keep-alive: hop-by-hop headers that must not be passed on.
	drop [][]byte
}

// errRestricted is a response head over one of Heroku's limits (H25).
var errRestricted = errors.New("response breaks a limit: bad or conflicting Content-Length")

// parseDynoResponse parses a response head (status line to the empty
// line's CRLF) into res, reusing res's slices.
func parseDynoResponse(head []byte, res *dynoResponse) error {
	*res = dynoResponse{head: head, length: -1, spans: res.spans[:0], drop: res.drop[:0]}
	eol := bytes.IndexByte(head, '\n')
	if eol < 1 || head[eol-1] != '\r' {
		return errHead
	}
	line := head[:eol-1]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return errHead
	}
	code := line[9:12]
	for _, c := range code {
		if c < '0' || c > '9' {
			return errHead
		}
	}
	res.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if res.status < 100 {
		return errHead
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return errHead
		}
		res.reason = line[13:]
		for _, c := range res.reason {
			if !fieldByte(c) {
				return errHead
			}
		}
	}
	var err error
	if res.spans, err = splitHeaders(head, eol+1, res.spans); err != nil {
		return err
	}
	te := 0
	for _, s := range res.spans {
		v := s.value(head)
		switch headerKind(s.name(head)) {
		case hdrContentLength:
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || v[0] == '+' || res.length >= 0 && n != res.length {
				return errRestricted
			}
			res.length = n
		case hdrTransferEncoding:
			te++
			if te > 1 || !eqFold(v, "chunked") {
				return errHead // net/http's Transport refuses other codings too
			}
			res.chunked = true
		case hdrConnection:
			for len(v) > 0 {
				var tok []byte
				tok, v, _ = bytes.Cut(v, []byte(","))
				tok = bytes.Trim(tok, " \t")
				switch {
				case eqFold(tok, "close"):
					res.close = true
				case eqFold(tok, "keep-alive"), len(tok) == 0:
				default:
					res.drop = append(res.drop, tok)
				}
			}
		case hdrDate:
			res.date = true
		}
	}
	if res.chunked {
		res.length = -1 // Transfer-Encoding wins (RFC 9112 §6.3)
	}
	if line[7] == '0' && !res.close {
		res.close = true // an HTTP/1.0 dyno closes unless told otherwise; never reuse it
	}
	return nil
}

// passed reports whether the response's header line s goes to the client
// as it came: not hop-by-hop, not named by Connection, not one the
// router frames itself (Content-Length, Transfer-Encoding).
func (res *dynoResponse) passed(s span) bool {
	name := s.name(res.head)
	switch headerKind(name) {
	case hdrContentLength, hdrTransferEncoding, hdrConnection, hdrHop:
		return false
	case hdrTrailer:
		return res.chunked // the trailers themselves come after the chunks
	}
	for _, d := range res.drop {
		if bytes.EqualFold(name, d) {
			return false
		}
	}
	return true
}

// bodyless reports whether a response to method with this status has no
// body whatever its headers say.
func bodyless(method string, status int) bool {
	return method == "HEAD" || status == 204 || status == 304 || status < 200
}
