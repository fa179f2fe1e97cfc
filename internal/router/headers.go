package router

import (
	"context"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/store"
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
// on (RFC 9110 §7.6.1), in either direction.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers, including those the
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
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
	return store.NewID()
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
	if addr, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok {
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

// outbound is the request for dynos, built once per client request: a
// copy with hop-by-hop headers removed and the router's headers set. Only
// its URL host changes between attempts.
func outbound(req *http.Request, id, fwd string, startMs int64) *http.Request {
	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.URL.Scheme = "http"
	out.Close = false
	up := upgradeType(req.Header)
	h := out.Header
	removeHopHeaders(h)
	if strings.Contains(strings.ToLower(strings.Join(req.Header["Te"], ",")), "trailers") {
		h.Set("Te", "trailers")
	}
	if up != "" {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", up)
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // or net/http would add its own
	}
	h.Set("X-Forwarded-For", fwd)
	h.Set("X-Forwarded-Proto", proto(req))
	h.Set("X-Forwarded-Port", forwardedPort(req.Context(), req.TLS != nil))
	h.Set("X-Request-Start", strconv.FormatInt(startMs, 10))
	h.Set("X-Request-Id", id)
	h.Add("Via", via)
	return out
}

// copyResponseHeader passes a dyno's response headers to the client,
// without hop-by-hop headers, with our Via added.
func copyResponseHeader(dst, src http.Header) {
	removeHopHeaders(src)
	for k, vv := range src {
		dst[k] = vv
	}
	dst.Add("Via", via)
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil // pass through as absent; net/http would sniff one
	}
}
