package grid

import (
	"fmt"
	"strings"
	"time"
)

// Domain is a custom hostname routed to an app. A hostname belongs to at
// most one app: it is the record's key (DomainKey), so claiming it is one
// create that either wins or finds the holder.
type Domain struct {
	ID        string    `json:"id"`
	Hostname  string    `json:"hostname"` // normalized (NormalizeHostname); "*.example.com" for a wildcard
	App       string    `json:"app"`
	AppID     string    `json:"app_id"` // tells a new app of the same name from the one that claimed it
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Hostname limits of RFC 1123 (and RFC 1035 for the total length).
const (
	maxHostnameLen = 253
	maxLabelLen    = 63
)

// NormalizeHostname lowercases host and drops a trailing dot, then checks
// that it is a name Dynogrid can route: RFC 1123 labels (letters, digits,
// inner hyphens, 1–63 characters, 253 in all), at least two of them, a
// top-level label that is not all digits (no IP addresses), and an
// optional leading "*." wildcard over at least two more labels, as Heroku
// allows ("*.example.com", never "*.com").
func NormalizeHostname(host string) (string, error) {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("hostname %q %s: %w", host, why, ErrInvalid)
	}
	if h == "" {
		return bad("is empty")
	}
	if len(h) > maxHostnameLen {
		return bad(fmt.Sprintf("is longer than %d characters", maxHostnameLen))
	}
	labels := strings.Split(h, ".")
	rest := labels
	if labels[0] == "*" {
		rest = labels[1:]
		if len(rest) < 2 {
			return bad("is a wildcard over a top-level domain; use *.example.com")
		}
	}
	if len(rest) < 2 {
		return bad("needs a domain and a top-level domain, like www.example.com")
	}
	for _, l := range rest {
		if err := checkLabel(l); err != "" {
			return bad(err)
		}
	}
	if strings.Trim(rest[len(rest)-1], "0123456789") == "" {
		return bad("is an IP address or ends in a numeric label")
	}
	return h, nil
}

// checkLabel says what is wrong with one DNS label, or "".
func checkLabel(l string) string {
	switch {
	case l == "":
		return "has an empty label"
	case len(l) > maxLabelLen:
		return fmt.Sprintf("has a label longer than %d characters", maxLabelLen)
	case l[0] == '-' || l[len(l)-1] == '-':
		return "has a label that starts or ends with '-'"
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			if c == '*' {
				return "may have a wildcard only as its whole first label"
			}
			return "may contain only letters, digits, '-' and '.'"
		}
	}
	return ""
}

// IsWildcard reports whether a normalized hostname is a wildcard.
func IsWildcard(host string) bool { return strings.HasPrefix(host, "*.") }

// WildcardOf is the wildcard hostname that would cover host: the name with
// its first label replaced by "*" ("a.example.com" → "*.example.com"), or
// "" when host has fewer than three labels. A wildcard covers exactly one
// label, as in TLS certificates.
func WildcardOf(host string) string {
	_, rest, ok := strings.Cut(host, ".")
	if !ok || !strings.Contains(rest, ".") {
		return ""
	}
	return "*." + rest
}

// IsUnder reports whether host is domain or a name below it.
func IsUnder(host, domain string) bool {
	return domain != "" && (host == domain || strings.HasSuffix(host, "."+domain))
}
