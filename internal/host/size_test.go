package host_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
)

// TestSizesSetLimits: a dyno of a size runs under that size's limits, as
// the kernel holds them: memory (the kernel's limit is R15's, twice the
// size's), processes, CPU weight and cap, idle class for eco, and the
// egress rate of its network.
func TestSizesSetLimits(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	for _, name := range []string{"eco", "standard-2x"} {
		size, err := grid.LookupSize(name)
		if err != nil {
			t.Fatal(err)
		}
		a := h.assign(t, "worker.1", "sleep 1000", func(a *grid.Assignment) { a.Size = name })
		h.waitDyno(t, a.DynoID, "worker up", 20*time.Second, up)
		parent := sandboxtest.CgroupParent
		if size.Idle {
			parent += "-idle"
		}
		id := "d-" + strings.ToLower(strings.ReplaceAll(a.DynoID, "-", ""))[:12] + "-0" // its first attempt
		read := func(ctrl, file string) int64 {                                         // the first number in the file
			t.Helper()
			b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, parent, id, file))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			v, err := strconv.ParseInt(first, 10, 64)
			if err != nil {
				t.Fatalf("%s: %s/%s: %v", name, ctrl, file, err)
			}
			return v
		}
		for _, c := range []struct {
			what      string
			got, want int64
		}{
			{"memory.limit_in_bytes", read("memory", "memory.limit_in_bytes"), 2 * int64(size.MemoryMB) << 20},
			{"pids.max", read("pids", "pids.max"), int64(size.MaxProcs)},
			{"cpu.shares", read("cpu", "cpu.shares"), int64(size.CPUShares)},
			{"cpu.cfs_quota_us", read("cpu", "cpu.cfs_quota_us"), int64(size.CPUMilli) * 100},
			{"egress bytes/s", egressRate(t, read("pids", "cgroup.procs")), int64(size.EgressMbit) * 1_000_000 / 8},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s %d, want %d", name, c.what, c.got, c.want)
			}
		}
		h.unassign(t, a)
		h.waitDyno(t, a.DynoID, "worker gone", 20*time.Second, gone)
	}
}

// egressRate is the rate of the token bucket on the network of process
// pid's netns.
func egressRate(t *testing.T, pid int64) int64 {
	t.Helper()
	ns, err := netns.GetFromPid(int(pid))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	qs, err := h.QdiscList(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if tbf, ok := q.(*netlink.Tbf); ok {
			return int64(tbf.Rate)
		}
	}
	t.Fatalf("no token bucket in the netns of pid %d: %v", pid, qs)
	return 0
}
