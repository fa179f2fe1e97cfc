package drain

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

func TestDefaultAllow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, why string // why is "" for allowed addresses
	}{
		{"127.0.0.1", "loopback"},
		{"127.3.4.5", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"8.8.8.8", ""},
		{"10.0.0.7", ""},
		{"192.168.1.2", ""},
		{"2001:db8::1", ""},
	} {
		err := DefaultAllow(netip.MustParseAddr(tc.addr))
		if tc.why == "" && err != nil || tc.why != "" && (!errors.Is(err, grid.ErrForbidden) || !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("DefaultAllow(%s) = %v, want %q", tc.addr, err, tc.why)
		}
	}
}

// With the default policy a drain at 127.0.0.1 or at the metadata
// address never connects, and Stats says why.
func TestDefaultAllowRefusesDrains(t *testing.T) {
	t.Parallel()
	r := serveSyslog(t, listen(t), false)
	for _, tc := range []struct{ url, why string }{
		{r.url("syslog"), "is a loopback address"},
		{"http://169.254.169.254/latest/meta-data", "is a link-local address"},
	} {
		cfg := testConfig(tc.url)
		cfg.Allow = nil
		d := start(t, cfg)
		d.Send(line(1))
		waitFor(t, tc.why, func() bool { return strings.Contains(d.Stats().LastError, tc.why) })
		if s := d.Stats(); s.Delivered != 0 {
			t.Errorf("%s: Stats = %+v", tc.url, s)
		}
	}
	if n := r.accepted(); n != 0 {
		t.Errorf("receiver accepted %d connections", n)
	}
}
