package sandbox

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"

	"github.com/dynogrid/grid/internal/grid"
)

func tableExists(t *testing.T, fw *firewall) bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTableOfFamily(fw.table.Name, fw.table.Family)
	return err == nil
}

func TestHasListener(t *testing.T) {
	t.Parallel()
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10123        0 1 1 0000000000000000 100 0 0 10 0
   1: 0200EE0A:1F91 0100EE0A:C350 01 00000000:00000000 00:00000000 00000000 10123        0 2 1 0000000000000000 20 4 30 10 -1
`
	const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 10123        0 3 1 0000000000000000 100 0 0 10 0
`
	for _, c := range []struct {
		table string
		port  int
		want  bool
	}{
		{tcp, 8080, true},
		{tcp, 8081, false}, // established, not listening
		{tcp, 80, false},
		{tcp6, 8000, true},
		{tcp6, 8080, false},
		{"", 8080, false},
	} {
		if got := hasListener([]byte(c.table), c.port); got != c.want {
			t.Errorf("hasListener(port %d) = %v, want %v", c.port, got, c.want)
		}
	}
}

func TestAddrPool(t *testing.T) {
	t.Parallel()
	p, err := newAddrPool(netip.MustParsePrefix("10.9.0.0/28"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		slot, err := p.get()
		if err != nil {
			t.Fatal(err)
		}
		host, sb := p.addrs(slot)
		got = append(got, host.String()+"-"+sb.String())
	}
	want := []string{"10.9.0.1-10.9.0.2", "10.9.0.5-10.9.0.6", "10.9.0.9-10.9.0.10", "10.9.0.13-10.9.0.14"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if _, err := p.get(); !errors.Is(err, grid.ErrUnavailable) {
		t.Errorf("exhausted pool: err = %v, want ErrUnavailable", err)
	}
	p.put(1)
	if slot, err := p.get(); err != nil || slot != 1 {
		t.Errorf("after put(1): get = %d, %v", slot, err)
	}
	for _, bad := range []string{"10.9.0.0/31", "fd00::/64"} {
		if _, err := newAddrPool(netip.MustParsePrefix(bad)); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("newAddrPool(%s): err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestNormalizeDefaults(t *testing.T) {
	t.Parallel()
	got, err := normalize(Spec{ID: "web-1", Args: []string{"true"}, UID: 20001})
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		ID: "web-1", Hostname: "web-1", Args: []string{"true"}, Dir: "/", UID: 20001, GID: 20001,
		Mounts: []Mount{}, MemoryMB: 512, PidsMax: 256, CPUShares: 1024, TmpMB: 256, DiskMB: 2048,
		DiskMBps: 100, DiskIOPS: 2000, EgressMbit: 100,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("normalize (-want +got):\n%s", diff)
	}
}

func TestConfigRejectsUnsafeCgroupParent(t *testing.T) {
	t.Parallel()
	for _, parent := range []string{"/", "../x", "a/../../b", "/abs", "a b"} {
		_, err := Config{StateDir: t.TempDir(), CgroupParent: parent}.normalize()
		if !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("CgroupParent %q: err = %v, want ErrInvalid", parent, err)
		}
	}
}
