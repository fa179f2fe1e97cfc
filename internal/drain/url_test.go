package drain

import (
	"errors"
	"strings"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

var urlCases = []struct {
	in  string
	why string // "" for a valid URL, else part of the error
}{
	{"syslog://logs.example.com:514", ""},
	{"syslog+tls://logs4.papertrailapp.com:12345", ""},
	{"SYSLOG://Logs.Example.COM:514", ""},
	{"syslog://10.0.0.5:514/", ""},
	{"syslog://[2001:db8::1]:6514", ""},
	{"https://user:pass@logs.example.com/drain?x=1", ""},
	{"https://logs.example.com:8443/a/b", ""},
	{"http://example.com", ""},
	{"https://_drain.example.com./", ""},
	{"https://localhost/", ""},

	{"", "scheme is missing"},
	{"logs.example.com:514", "not supported"},
	{"ftp://example.com", `scheme "ftp" is not supported`},
	{"syslog+udp://example.com:514", "not supported"},
	{"syslog:example.com:514", "host is missing"},
	{"https://", "host is missing"},
	{"https:///path", "host is missing"},
	{"https://:443/", "host is missing"},
	{"syslog://example.com", "needs a port"},
	{"syslog://example.com:", "needs a port"},
	{"https://example.com:/", "port is empty"},
	{"syslog://example.com:0", "from 1 to 65535"},
	{"syslog://example.com:65536", "from 1 to 65535"},
	{"syslog://example.com:0514", "from 1 to 65535"},
	{"syslog://example.com:x", "cannot be parsed"},
	{"syslog://example.com:514/path", "cannot have a path"},
	{"syslog://u:p@example.com:514", "user or password"},
	{"syslog://example.com:514?q=1", "query or fragment"},
	{"syslog://example.com:514?", "query or fragment"},
	{"syslog://example.com:514#f", "query or fragment"},
	{"https://exa$mple.com/", "not a valid name"},
	{"https://example..com/", "not a valid name"},
	{"https://" + strings.Repeat("a", 64) + ".com/", "not a valid name"},
	{"https://[::1/", "cannot be parsed"},
	{"https://example.com/\n", "control character"},
	{"https://example.com/\x7f", "control character"},
	{"https://example.com/" + strings.Repeat("a", MaxURLLen), "at most 2000"},
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range urlCases {
		u, err := ParseURL(tc.in)
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("ParseURL(%.40q) = %v, want a URL", tc.in, err)
		case tc.why == "":
			if !strings.HasPrefix(u.Scheme, "syslog") && !strings.HasPrefix(u.Scheme, "http") {
				t.Errorf("ParseURL(%.40q).Scheme = %q", tc.in, u.Scheme)
			}
		case !errors.Is(err, grid.ErrInvalid) || !strings.Contains(err.Error(), tc.why) ||
			!strings.Contains(err.Error(), "syslog://host:port"):
			t.Errorf("ParseURL(%.40q) = %v, want ErrInvalid saying %q and what to type", tc.in, err, tc.why)
		}
	}
}

func TestParseURLHidesPassword(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"https://u:s3cr3t@exa$mple.com/", "ftp://u:s3cr3t@example.com/", "https://u:s3cr3t@example.com:99999/"} {
		if _, err := ParseURL(in); err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseURL(%q) = %v, want an error without the password", in, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, tc := range urlCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, grid.ErrInvalid) {
				t.Fatalf("ParseURL(%q) = %v, not ErrInvalid", s, err)
			}
			return
		}
		if len(s) > MaxURLLen || u.Hostname() == "" || checkURL(u) != "" {
			t.Fatalf("ParseURL(%q) accepted %#v", s, u)
		}
		if isSyslog(u) && (u.Port() == "" || u.User != nil || u.RawQuery != "") {
			t.Fatalf("ParseURL(%q) accepted a syslog URL %#v", s, u)
		}
		if _, err := ParseURL(u.String()); err != nil && len(u.String()) <= MaxURLLen {
			t.Fatalf("ParseURL(%q) = %q, which does not parse again: %v", s, u, err)
		}
	})
}
