package drain

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// MaxURLLen is the longest drain URL accepted.
const MaxURLLen = 2000

// wantURL ends every ParseURL error: what the user should type instead.
const wantURL = "a drain URL looks like syslog://host:port, syslog+tls://host:port or https://user:pass@host/path"

// ParseURL checks that s is a drain URL Dynogrid can deliver to:
// syslog://host:port and syslog+tls://host:port (nothing else: no path,
// user or query, which a syslog stream has no place for), or
// http(s)://[user:pass@]host[:port][/path][?query]. It does not resolve
// the host; which addresses a drain may reach is checked on every
// connection (Config.Allow), since DNS answers change.
//
// Errors wrap grid.ErrInvalid and never repeat the URL, which may carry a
// password.
func ParseURL(s string) (*url.URL, error) {
	bad := func(format string, args ...any) (*url.URL, error) {
		return nil, fmt.Errorf("drain URL: %s; %s: %w", fmt.Sprintf(format, args...), wantURL, grid.ErrInvalid)
	}
	if len(s) > MaxURLLen {
		return bad("it is %d characters, at most %d are allowed", len(s), MaxURLLen)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return bad("it contains a control character at byte %d", i)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("it cannot be parsed")
	}
	if why := checkURL(u); why != "" {
		return bad("%s", why)
	}
	return u, nil
}

// checkURL returns what is wrong with a parsed drain URL, or "".
func checkURL(u *url.URL) string {
	switch u.Scheme {
	case "syslog", "syslog+tls", "http", "https":
	case "":
		return "the scheme is missing"
	default:
		return fmt.Sprintf("the scheme %q is not supported", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return "the host is missing"
	}
	if why := checkHost(u.Hostname()); why != "" {
		return why
	}
	if why := checkPort(u); why != "" {
		return why
	}
	if !isSyslog(u) {
		return ""
	}
	switch {
	case u.User != nil:
		return "a syslog drain cannot carry a user or password"
	case u.Path != "" && u.Path != "/":
		return "a syslog drain cannot have a path"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "a syslog drain cannot have a query or fragment"
	}
	return ""
}

// checkHost accepts an IP address or a DNS name: labels of letters,
// digits, hyphens and underscores (some providers use them), 1–63
// characters each, 253 in all.
func checkHost(h string) string {
	if h == "" {
		return "the host is missing"
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	if len(h) > 253 {
		return "the host name is longer than 253 characters"
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.IndexFunc(label, notHostChar) >= 0 {
			return "the host is not a valid name or IP address"
		}
	}
	return ""
}

func notHostChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
}

func checkPort(u *url.URL) string {
	p := u.Port()
	if p == "" {
		if isSyslog(u) {
			return "a syslog drain needs a port"
		}
		if strings.HasSuffix(u.Host, ":") {
			return "the port is empty"
		}
		return ""
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p[0] == '0' {
		return fmt.Sprintf("the port %q is not a number from 1 to 65535", p)
	}
	return ""
}

func isSyslog(u *url.URL) bool { return u.Scheme == "syslog" || u.Scheme == "syslog+tls" }
