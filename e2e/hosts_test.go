package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/provider"
	"github.com/dynogrid/grid/internal/schema"
)

// TestManyHosts is the many-hosts demo: `grid up --hosts 3`, dynos spread
// over the hosts, a host's power cut and its dynos back elsewhere, a
// drain, and a clean stop.
func TestManyHosts(t *testing.T) {
	g := gridtest.Start(t, "--hosts", "3", "--boot-timeout", "10s", "--stop-grace", "5s")
	hosts := func() map[string]schema.Host {
		var hs []schema.Host
		if err := json.Unmarshal([]byte(g.MustCLI("hosts", "--json")), &hs); err != nil {
			t.Fatal(err)
		}
		m := map[string]schema.Host{}
		for _, h := range hs {
			m[h.ID] = h
		}
		return m
	}
	// web dynos up, by host.
	upByHost := func() (map[string][]string, int) {
		var ds []schema.Dyno
		if err := json.Unmarshal([]byte(g.MustCLI("ps", "--json", "-a", "hello")), &ds); err != nil {
			t.Fatal(err)
		}
		m, n := map[string][]string{}, 0
		for _, d := range ds {
			if d.State == "up" && d.Host != nil {
				m[d.Host.ID] = append(m[d.Host.ID], d.Name)
				n++
			}
		}
		return m, n
	}

	hs := hosts()
	for _, id := range []string{"h1", "h2", "h3"} {
		if h := hs[id]; h.State != "up" || h.Addr == "" || h.Subnet == "" || h.Provider != "netns" {
			t.Fatalf("host %s: %+v", id, h)
		}
	}

	g.MustCLI("apps:create", "hello")
	if out, err := g.Push("hello", g.Repo("testdata/go-hello")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	g.WaitBody("hello", "/", "hello from web.1", 30*time.Second)

	// Scale 0 → 12: four dynos on each host, two on each of its cores.
	g.MustCLI("ps:scale", "web=0", "-a", "hello")
	gridtest.WaitFor(t, 60*time.Second, "no web dynos", func() error {
		if _, n := upByHost(); n != 0 {
			return fmt.Errorf("%d up", n)
		}
		return nil
	})
	start := time.Now()
	g.MustCLI("ps:scale", "web=12", "-a", "hello")
	gridtest.WaitFor(t, 60*time.Second, "12 web dynos up, 4 on each host", func() error {
		m, n := upByHost()
		if n != 12 || len(m) != 3 {
			return fmt.Errorf("up by host: %v", m)
		}
		for id, ds := range m {
			if len(ds) != 4 {
				return fmt.Errorf("%s has %d dynos: %v", id, len(ds), m)
			}
		}
		return nil
	})
	t.Logf("scale 0 → 12: all up %v after ps:scale", time.Since(start).Round(time.Millisecond))
	checkCores(t, g, upByHost, hs)
	checkIsolation(t, g)

	// A power cut under load: the cut host's dynos serve elsewhere and
	// no request fails.
	g.MustCLI("ps:scale", "web=6", "-a", "hello")
	waitSettled(t, g, "hello", 6)
	stop, failures := hammer(g, "hello")
	victim := "h2"
	start = time.Now()
	g.MustCLI("hosts:fail", victim)
	gridtest.WaitFor(t, 60*time.Second, "6 web dynos up without "+victim, func() error {
		m, n := upByHost()
		if n != 6 || len(m[victim]) > 0 {
			return fmt.Errorf("up by host: %v", m)
		}
		return nil
	})
	t.Logf("dynos of %s up elsewhere %v after the cut", victim, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // load on the new dynos too (a measurement window)
	n, failed, slowest := stop()
	t.Logf("%d requests during the power cut, %d failed, slowest %v", n, failed, slowest)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the power cut: %v", failed, n, failures())
	}
	if h := hosts()[victim]; h.State != "lost" {
		t.Errorf("failed host %+v, want lost", h)
	}

	// A partition: h3 is cut off; its dynos keep running there while
	// replacements start on h1; once healed, the formation is exact.
	cut := "h3"
	onCut, _ := upByHost()
	start = time.Now()
	g.MustCLI("hosts:cut", cut)
	gridtest.WaitFor(t, 60*time.Second, "6 web dynos up without "+cut, func() error {
		m, n := upByHost()
		if n != 6 || len(m[cut]) > 0 {
			return fmt.Errorf("up by host: %v", m)
		}
		return nil
	})
	t.Logf("dynos of cut-off %s up elsewhere %v after the cut", cut, time.Since(start).Round(time.Millisecond))
	if procs := cgroupProcs(cut); procs < len(onCut[cut]) {
		t.Errorf("cut-off host %s runs %d processes, want its %d dynos still running", cut, procs, len(onCut[cut]))
	}
	g.MustCLI("hosts:heal", cut)
	gridtest.WaitFor(t, 60*time.Second, cut+" back up", func() error {
		if h := hosts()[cut]; h.State != "up" {
			return fmt.Errorf("%s is %s", cut, h.State)
		}
		return nil
	})
	waitSettled(t, g, "hello", 6)
	gridtest.WaitFor(t, 60*time.Second, "the healed host's duplicates stopped", func() error {
		if n := cgroupProcs(cut); n > 0 {
			return fmt.Errorf("%s still runs %d dyno processes", cut, n)
		}
		return nil
	})

	// A drain: the host's dynos move, then it is released.
	start = time.Now()
	g.MustCLI("hosts:drain", "h1")
	gridtest.WaitFor(t, 90*time.Second, "h1 drained and released", func() error {
		m, n := upByHost()
		if _, ok := hosts()["h1"]; ok || n != 6 || len(m["h1"]) > 0 {
			return fmt.Errorf("h1 still listed, or up by host: %v", m)
		}
		return nil
	})
	t.Logf("drain h1: %v", time.Since(start).Round(time.Millisecond))
	g.WaitBody("hello", "/", "hello from web.", 10*time.Second)

	// Stopping grid up releases every host and removes the fabric.
	g.Stop()
	if ns, _ := filepath.Glob("/run/netns/gridh*"); len(ns) > 0 {
		t.Errorf("namespaces left: %v", ns)
	}
	if _, err := os.Stat("/sys/class/net/gridfab0"); err == nil {
		t.Error("bridge gridfab0 left")
	}
	if dirs, _ := filepath.Glob(filepath.Join(g.Data, "hosts", "h*")); len(dirs) > 0 {
		t.Errorf("host directories left: %v", dirs)
	}
}

// checkCores asks every web dyno for its cpuset: each is pinned to one
// core, and the dynos of a host are spread evenly over its cores.
func checkCores(t *testing.T, g *gridtest.Grid, upByHost func() (map[string][]string, int), hs map[string]schema.Host) {
	t.Helper()
	cpus := map[string]string{}
	re := regexp.MustCompile(`^(web\.\d+) (\S+)`)
	gridtest.WaitFor(t, 30*time.Second, "every dyno reports its cores", func() error {
		for range 24 {
			if _, body, _, err := g.Get("hello", "/cpus"); err == nil {
				if m := re.FindStringSubmatch(strings.TrimSpace(body)); m != nil {
					cpus[m[1]] = m[2]
				}
			}
		}
		if len(cpus) < 12 {
			return fmt.Errorf("%d of 12 answered", len(cpus))
		}
		return nil
	})
	m, _ := upByHost()
	for id, dynos := range m {
		perCore := map[string]int{}
		for _, d := range dynos {
			perCore[cpus[d]]++
		}
		if len(perCore) != hs[id].Cores {
			t.Errorf("%s (%d cores): dynos on cores %v", id, hs[id].Cores, perCore)
		}
		lo, hi := len(dynos), 0
		for _, n := range perCore {
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi-lo > 1 {
			t.Errorf("%s: dynos per core %v, want an even spread", id, perCore)
		}
		t.Logf("%s: dynos per core %v", id, perCore)
	}
}

// cgroupProcs counts the processes in netns host id's dyno cgroups.
func cgroupProcs(id string) int {
	files, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/pids/grid-hosts", id, "*", "cgroup.procs"))
	n := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		n += len(strings.Fields(string(b)))
	}
	return n
}

// checkIsolation probes from inside hello's dynos, as a hostile tenant
// would: another app's dyno on another host and the control plane's NATS
// are out of reach; the dyno's own port is not (the probe works).
func checkIsolation(t *testing.T, g *gridtest.Grid) {
	t.Helper()
	g.MustCLI("apps:create", "other")
	if out, err := g.Push("other", g.Repo("testdata/go-hello")); err != nil {
		t.Fatalf("push other: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := g.Store().Dynos(ctx, "other")
	if err != nil || len(ds) == 0 || ds[0].Addr == "" {
		t.Fatalf("other's dyno: %v %+v", err, ds)
	}
	u, err := url.Parse(g.NATS)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, addr, want string }{
		{"its own port", "127.0.0.1:$PORT", "open"},
		{"another app's dyno on " + ds[0].Host, ds[0].Addr, "connect: "},
		{"NATS on the fabric", net.JoinHostPort(provider.FabricAddr.String(), u.Port()), "connect: "},
	} {
		for range 6 { // several of hello's dynos, on every host
			_, body, _, err := g.Get("hello", "/dial?addr="+url.QueryEscape(c.addr))
			if err != nil || !strings.Contains(body, c.want) {
				t.Errorf("a dyno dialling %s (%s): %q %v, want %q", c.what, c.addr, body, err, c.want)
				break
			}
		}
	}
}

// TestSpareCapacity: with a headroom of one and a half hosts' memory, the
// manager asks the netns provider for exactly one more host, which joins
// by itself.
func TestSpareCapacity(t *testing.T) {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	hostMB := int(uint64(si.Totalram) * uint64(si.Unit) >> 20)
	g := gridtest.Start(t, "--hosts", "1", "--headroom", strconv.Itoa(hostMB*3/2))
	up := func() []string {
		var hs []schema.Host
		if err := json.Unmarshal([]byte(g.MustCLI("hosts", "--json")), &hs); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range hs {
			if h.State == "up" || h.State == "starting" {
				ids = append(ids, h.ID)
			}
		}
		return ids
	}
	gridtest.WaitFor(t, 60*time.Second, "a second host provisioned and up", func() error {
		if ids := up(); len(ids) != 2 {
			return fmt.Errorf("hosts up: %v", ids)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // a window in which a third host would appear
	if ids := up(); len(ids) != 2 {
		t.Errorf("hosts up: %v, want two (the headroom is met)", ids)
	}
}
