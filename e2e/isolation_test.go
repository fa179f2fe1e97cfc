package e2e

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/gridtest"
)

// TestIsolationInGrid runs the isolation probe (reliability.md I-1,
// internal/sandbox/testdata/probe.py) as a pushed app's web dyno and as
// a one-off dyno of a real grid, next to another tenant, and tries from
// a one-off dyno to reach what a tenant must not (I-3): the other
// tenant's dyno, the grid's API, NATS and router through the dyno's
// gateway, the cloud metadata address, and the other tenant's Redis (its
// own Redis, on the next port of the same server, it reaches).
func TestIsolationInGrid(t *testing.T) {
	// A local buildpack that runs reachScript from bin/compile.
	bps := t.TempDir()
	bp := filepath.Join(bps, "reach")
	os.MkdirAll(filepath.Join(bp, "bin"), 0o755)
	os.Chmod(bps, 0o755)
	writeFile(t, filepath.Join(bp, "bin", "detect"), "#!/bin/sh\necho Reach\n")
	writeFile(t, filepath.Join(bp, "bin", "compile"), "#!/bin/sh\nTARGETS=$(cat \"$3/TARGETS\") exec python3 \"$(dirname \"$0\")/reach.py\"\n")
	writeFile(t, filepath.Join(bp, "bin", "reach.py"), reachScript)
	for _, f := range []string{"detect", "compile", "reach.py"} {
		os.Chmod(filepath.Join(bp, "bin", f), 0o755)
	}
	g := gridtest.Start(t, "--boot-timeout", "10s", "--stop-grace", "5s", "--buildpack-root", bps)
	g.MustCLI("apps:create", "victim")
	g.MustCLI("addons:create", "redis", "-a", "victim")
	if out, err := g.Push("victim", g.Repo("testdata/go-hello")); err != nil {
		t.Fatalf("push victim: %v\n%s", err, out)
	}
	g.WaitBody("victim", "/", "hello from web.1", 30*time.Second)

	src := t.TempDir()
	probe, err := os.ReadFile("../internal/sandbox/testdata/probe.py")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "probe.py"), string(probe))
	writeFile(t, filepath.Join(src, "Procfile"), "web: python3 probe.py > /tmp/probe.txt 2>&1; cd /tmp && exec python3 -m http.server $PORT\n")
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	config := []string{
		"HOSTPID=" + strconv.Itoa(os.Getpid()),
		"HOSTPATHS=" + strings.Join([]string{g.Data, filepath.Join(g.Data, "slugs"), "/var/lib/grid", "/root", g.Home}, ":"),
		"PROBE_UID=any",
		"PROBE_HOSTNAME=!" + hostname,
		// What a dyno's process gets: config vars (REDIS_URL from its
		// add-on), what the host adds,
		// and what bash -c (the process's parent) exports.
		"PROBE_ENV=" + strings.Join([]string{"HOSTPID", "HOSTPATHS", "PROBE_UID", "PROBE_HOSTNAME", "PROBE_ENV", "REDIS_URL", "HOME", "PATH", "PORT", "DYNO", "PWD", "SHLVL", "_"}, ","),
	}
	g.MustCLI("apps:create", "probe")
	g.MustCLI("addons:create", "redis", "-a", "probe")
	g.MustCLI(append([]string{"config:set", "-a", "probe"}, config...)...)
	if out, err := g.Push("probe", g.Repo(src)); err != nil {
		t.Fatalf("push probe: %v\n%s", err, out)
	}

	t.Run("web dyno", func(t *testing.T) {
		assertProbe(t, g.WaitBody("probe", "/probe.txt", "\ndone ", 30*time.Second))
	})

	t.Run("one-off dyno", func(t *testing.T) {
		out, errOut, err := g.CLI("run", "-x", "-a", "probe", "python3 probe.py")
		if err != nil {
			t.Errorf("probe exited %v\n%s", err, errOut)
		}
		assertProbe(t, out)
	})

	t.Run("network reach", func(t *testing.T) {
		var victim string
		ds, err := g.Store().Dynos(t.Context(), "victim")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.State == grid.DynoUp && d.Addr != "" {
				victim = d.Addr
			}
		}
		if victim == "" {
			t.Fatalf("no up victim dyno in %+v", ds)
		}
		port := func(addr string) string {
			_, p, err := net.SplitHostPort(addr)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		natsPort := port(strings.TrimPrefix(g.NATS, "nats://"))
		// The gateway is the host's end of the dyno's link: the only host
		// address a dyno can route to without leaving the machine.
		redisOf := func(app string) string {
			u, err := url.Parse(configVar(t, g, app, "REDIS_URL"))
			if err != nil {
				t.Fatal(err)
			}
			return u.Host
		}
		targets := []string{victim, "GW:" + port(g.APIAddr), "GW:" + natsPort, "GW:" + port(g.RtAddr), "GW:22", "169.254.169.254:80", redisOf("victim"),
			"udp/" + victim, "udp/GW:" + natsPort, "udp/GW:53", "udp/169.254.169.254:53"}
		own := redisOf("probe")
		out, errOut, err := g.CLI("run", "-x", "-a", "probe", "-e", "TARGETS="+strings.Join(append(targets, own), ","), "python3", "-c", reachScript)
		if err != nil {
			t.Fatalf("reach script: %v\n%s\n%s", err, out, errOut)
		}
		if !strings.Contains(out, "REACHED "+own+"\n") {
			t.Errorf("the dyno did not reach its own app's Redis at %s:\n%s", own, out)
		}
		t.Logf("from a one-off dyno of another app:\n%s", out)
		out = strings.ReplaceAll(out, "REACHED "+own+"\n", "")
		if !regexp.MustCompile(`gateway \d+\.\d+\.\d+\.\d+`).MatchString(out) {
			t.Errorf("no gateway found:\n%s", out)
		}
		if strings.Contains(out, "REACHED") || strings.Count(out, "blocked ") != len(targets) {
			t.Errorf("a tenant reached what it must not:\n%s", out)
		}

		// A build runs tenant code too, with the network: the same walls.
		g.MustCLI("apps:create", "buildreach")
		g.MustCLI("config:set", "-a", "buildreach", "TARGETS="+strings.Join(targets, ","))
		g.MustCLI("buildpacks:set", bp, "-a", "buildreach")
		src := t.TempDir()
		writeFile(t, filepath.Join(src, "Procfile"), "worker: sleep 1\n")
		push, err := g.Push("buildreach", g.Repo(src))
		if err != nil {
			t.Fatalf("push: %v\n%s", err, push)
		}
		t.Logf("from a build sandbox:\n%s", push)
		if strings.Contains(push, "REACHED") || strings.Count(push, "blocked ") != len(targets) {
			t.Errorf("a build reached what it must not:\n%s", push)
		}
	})
}

// reachScript connects to each host:port of $TARGETS ("GW" is the
// sandbox's gateway) and prints REACHED or blocked for each. A target
// udp/host:port gets a datagram and is blocked only if the firewall
// answers so (EHOSTUNREACH: ICMP admin-prohibited); a port-unreachable
// from the target itself (ECONNREFUSED) means it got there, and silence
// (five sends a second apart: the kernel allows itself about one ICMP
// error a second per peer after a burst of six) is reported as such.
const reachScript = `
import errno, os, socket, subprocess
gw = subprocess.run(["sh", "-c", "ip route 2>/dev/null | awk '/default/ {print $3}' || true"], capture_output=True, text=True).stdout.strip()
if not gw:
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            gw = socket.inet_ntoa(int(f[2], 16).to_bytes(4, "little"))
print("gateway", gw)
targets = os.environ["TARGETS"].replace("GW", gw).split(",")
for t in targets:
    udp = t.startswith("udp/")
    host, port = t.removeprefix("udp/").rsplit(":", 1)
    s = socket.socket(type=socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    s.settimeout(1 if udp else 2)
    try:
        s.connect((host, int(port)))
        for attempt in range(5 if udp else 0):
            s.send(b"x")
            try:
                s.recv(1)
                break
            except socket.timeout:
                if attempt == 4:
                    raise
        print("REACHED", t)
    except socket.timeout:
        print("SILENT", t)
    except OSError as e:
        if udp and e.errno != errno.EHOSTUNREACH:
            print("REACHED", t, e)
        else:
            print("blocked", t, e)
    finally:
        s.close()
`

// assertProbe checks the probe's report: every check passed, and enough
// of them ran.
func assertProbe(t *testing.T, out string) {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, "FAIL") {
			t.Error(line)
		}
	}
	n := strings.Count("\n"+out, "\nok ")
	if !strings.Contains(out, "\ndone passed") || n < 60 {
		t.Errorf("%d checks passed; report:\n%s", n, out)
	}
	t.Logf("%d isolation checks passed", n)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
