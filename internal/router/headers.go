package router

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// via is this router's Via entry, on requests to dynos and responses.
const via = "1.1 grid-router"

// appFor maps a Host header to an app name: "<app>.<domain>" with any
// port, any case and an optional trailing dot. ok is false for any other
// host.
func appFor(host, domain string) (app string, ok bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	name, rest, found := strings.Cut(host, ".")
	if !found || rest != domain || name == "" {
		return "", false
	}
	return name, true
}

// hopHeaders are meaningful for one connection only and are never passed
// on (RFC 9110 §7.6.1), in either direction. Canonical, as net/http keys
// parsed headers.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers, including those the
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}

// upgradeType is the protocol a request or response asks to switch to, or
// "" when it does not ask.
func upgradeType(h http.Header) string {
	for _, v := range h["Connection"] {
		for _, token := range strings.Split(v, ",") {
			if strings.EqualFold(textproto.TrimString(token), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// validRequestID reports whether a client's X-Request-Id may be passed on
// as it is: 20 to 200 characters of [A-Za-z0-9+/=-], as on Heroku.
func validRequestID(id string) bool {
	if len(id) < 20 || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-') {
			return false
		}
	}
	return true
}

// requestID returns the client's request ID if valid, else a new UUID.
func requestID(h http.Header) string {
	if id := h.Get("X-Request-Id"); validRequestID(id) {
		return id
	}
	return newRequestID()
}

// newRequestID is a random (version 4) UUID. Request IDs need to be
// unique, not secret, so they come from math/rand/v2's per-thread
// generator (itself seeded from the system's) without a system call per
// request.
func newRequestID() string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], rand.Uint64())
	binary.BigEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant RFC 9562
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// appendForwardedFor returns X-Forwarded-For with the client's IP added
// after any values the client (or a proxy before us) sent.
func appendForwardedFor(prior []string, remoteAddr string) string {
	ip, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		ip = ""
	}
	list := strings.Join(prior, ", ")
	switch {
	case list == "":
		return ip
	case ip == "":
		return list
	}
	return list + ", " + ip
}

// forwardedPort is the port the client connected to, from the server's
// local address; 80 or 443 when unknown.
func forwardedPort(ctx context.Context, tls bool) string {
	switch addr := ctx.Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		return strconv.Itoa(addr.Port)
	case net.Addr:
		if _, port, err := net.SplitHostPort(addr.String()); err == nil {
			return port
		}
	}
	if tls {
		return "443"
	}
	return "80"
}

// proto is the client's protocol, for X-Forwarded-Proto and the log.
func proto(req *http.Request) string {
	if req.TLS != nil {
		return "https"
	}
	return "http"
}

// Header values the router sets, shared by every request (net/http never
// modifies header values it is given).
var (
	teTrailers = []string{"trailers"}
	noAgent    = []string{""} // an absent User-Agent stays absent (net/http would add its own)
	viaOnly    = []string{via}
)

// outbound is the request for dynos, built once per client request: a
// shallow copy (the client's body, trailers, URL and context) with its own
// header map, hop-by-hop headers removed and the router's headers set.
// Only its URL host changes between attempts (attempt copies the URL).
func outbound(req *http.Request, id, fwd string, startMs int64) *http.Request {
	out := new(http.Request)
	*out = *req
	out.RequestURI = ""
	out.Close = false
	h := make(http.Header, len(req.Header)+6)
	for k, vv := range req.Header {
		h[k] = vv // shared: never modified in place below
	}
	removeHopHeaders(h)
	if strings.Contains(strings.ToLower(strings.Join(req.Header["Te"], ",")), "trailers") {
		h["Te"] = teTrailers
	}
	if up := upgradeType(req.Header); up != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{up}
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noAgent
	}
	v := []string{fwd, proto(req), forwardedPort(req.Context(), req.TLS != nil), strconv.FormatInt(startMs, 10), id}
	h["X-Forwarded-For"] = v[0:1:1]
	h["X-Forwarded-Proto"] = v[1:2:2]
	h["X-Forwarded-Port"] = v[2:3:3]
	h["X-Request-Start"] = v[3:4:4]
	h["X-Request-Id"] = v[4:5:5]
	if prior := h["Via"]; len(prior) > 0 {
		h["Via"] = append(prior[:len(prior):len(prior)], via) // a copy: the client's stays as it was
	} else {
		h["Via"] = viaOnly
	}
	out.Header = h
	return out
}

// copyResponseHeader passes a dyno's response headers to the client,
// without hop-by-hop headers, with our Via added.
func copyResponseHeader(dst, src http.Header) {
	removeHopHeaders(src)
	for k, vv := range src {
		dst[k] = vv
	}
	if prior := dst["Via"]; len(prior) > 0 {
		dst["Via"] = append(prior[:len(prior):len(prior)], via)
	} else {
		dst["Via"] = viaOnly // shared, as on requests: never modified in place
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil // pass through as absent; net/http would sniff one
	}
}
