package host_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/host"
	"github.com/dynogrid/grid/internal/slug"
)

const webCmd = "python3 /app/server.py"

// get fetches the web dyno's environment report.
func get(t *testing.T, addr string) map[string]string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env map[string]string
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %s: %v", addr, body, err)
	}
	return env
}

func TestWebDynoLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	hb := time.Now()
	begin := time.Now()
	a := h.assign(t, "web.1", webCmd, nil)
	d := h.waitDyno(t, a.DynoID, "web.1 up", 30*time.Second, up)
	t.Logf("assignment → up: %v (first start, slug fetched and unpacked)", time.Since(begin))

	if d.Addr == "" || d.Host != hostID || d.Name != "web.1" || d.Type != "web" || d.Release != 2 || d.Command != webCmd {
		t.Errorf("record %+v", d)
	}
	env := get(t, d.Addr)
	if env["DYNO"] != "web.1" || env["HOME"] != "/app" || env["GREETING"] != "hi there" || env["PROFILED"] != "yes" ||
		env["PATH"] != slug.DefaultPath || !strings.HasSuffix(d.Addr, ":"+env["PORT"]) {
		t.Errorf("dyno env %v (addr %s)", env, d.Addr)
	}
	hosts, err := h.st.Hosts(context.Background())
	if err != nil || len(hosts) != 1 || hosts[0].ID != hostID || hosts[0].MemoryMB != 8192 || !hosts[0].HeartbeatAt.After(hb.Add(-time.Second)) {
		t.Errorf("hosts %+v %v", hosts, err)
	}

	// A second dyno of the same slug starts from the cache.
	begin = time.Now()
	b := h.assign(t, "web.2", webCmd, nil)
	h.waitDyno(t, b.DynoID, "web.2 up", 30*time.Second, up)
	t.Logf("assignment → up: %v (slug cached)", time.Since(begin))

	// Removing the assignment stops the dyno gracefully: down first,
	// SIGTERM seen by the app, record deleted.
	h.unassign(t, a)
	h.waitDyno(t, a.DynoID, "web.1 down first", 10*time.Second, func(d grid.Dyno, found bool) bool { return !found || d.State == grid.DynoDown })
	h.waitDyno(t, a.DynoID, "web.1 record deleted", 10*time.Second, gone)
	h.waitLines(t, 5*time.Second,
		"heroku[web.1]: Starting process with command `"+webCmd+"`",
		"heroku[web.1]: State changed from starting to up",
		"heroku[web.1]: Stopping all processes with SIGTERM",
		"app[web.1]: graceful shutdown",
		"heroku[web.1]: Process exited with status 0",
		"heroku[web.1]: State changed from up to down",
	)
	if d := h.waitDyno(t, b.DynoID, "web.2 still up", time.Second, up); d.State != grid.DynoUp {
		t.Errorf("web.2: %+v", d)
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	h := newHarness(t, func(c *host.Config) {
		c.Backoff = host.Backoff{BootWindow: time.Minute, CoolOff: 300 * time.Millisecond, Max: 600 * time.Millisecond}
	})
	h.start(t)
	a := h.assign(t, "worker.1", "echo boom; exit 3", nil)
	d := h.waitDyno(t, a.DynoID, "four restarts", 20*time.Second, func(d grid.Dyno, found bool) bool { return found && d.Restarts >= 4 })
	if d.Type != "worker" {
		t.Errorf("record %+v", d)
	}
	lines := h.waitLines(t, 5*time.Second,
		"heroku[worker.1]: Starting process with command `echo boom; exit 3`",
		"app[worker.1]: boom",
		"heroku[worker.1]: Process exited with status 3",
		"heroku[worker.1]: State changed from up to crashed",
		"heroku[worker.1]: State changed from crashed to starting",
		"heroku[worker.1]: Starting process with command `echo boom; exit 3`",
	)
	if n := count(lines, "heroku[worker.1]: Process exited with status 3"); n < 4 {
		t.Errorf("%d crashes logged, want ≥ 4", n)
	}
	// Crash times: the first two restarts are immediate, then 300 ms,
	// then 600 ms (the cap). The agent's last lines may still be on their
	// way (its log batches lines for a few ms): read until they are in.
	var times []time.Duration
	for deadline := time.Now().Add(5 * time.Second); len(times) < 4 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		times = h.crashGaps(t, "worker.1")
	}
	if len(times) < 4 {
		t.Fatalf("restart gaps %v", times)
	}
	for i, want := range []time.Duration{0, 0, 300 * time.Millisecond, 600 * time.Millisecond} {
		got := times[i]
		if got < want || got > want+250*time.Millisecond {
			t.Errorf("gap before restart %d: %v, want ~%v", i+1, got, want)
		}
	}
	h.unassign(t, a)
	h.waitDyno(t, a.DynoID, "record deleted", 10*time.Second, gone)
}

// crashGaps returns, per restart, the time from "State changed … to
// crashed" to the next "Starting process".
func (h *harness) crashGaps(t *testing.T, dyno string) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ch, err := h.log.Read(ctx, appName, logQuery(dyno))
	if err != nil {
		t.Fatal(err)
	}
	var gaps []time.Duration
	var crashed time.Time
	for l := range ch {
		switch {
		case l.Source == "heroku" && strings.HasSuffix(l.Text, "to crashed"):
			crashed = l.Time
		case l.Source == "heroku" && strings.HasPrefix(l.Text, "State changed from crashed to starting") && !crashed.IsZero():
			gaps = append(gaps, l.Time.Sub(crashed))
		}
	}
	return gaps
}

func TestBootTimeout(t *testing.T) {
	h := newHarness(t, func(c *host.Config) {
		c.BootTimeout = 500 * time.Millisecond
		c.Backoff = host.Backoff{CoolOff: time.Hour}
	})
	h.start(t)
	a := h.assign(t, "web.1", "sleep 1000", nil)
	d := h.waitDyno(t, a.DynoID, "crashed", 10*time.Second, func(d grid.Dyno, found bool) bool { return found && d.State == grid.DynoCrashed && d.Restarts == 2 })
	if d.ExitCode != 137 || d.Addr != "" {
		t.Errorf("record %+v", d)
	}
	h.waitLines(t, 5*time.Second,
		"heroku[web.1]: Starting process with command `sleep 1000`",
		"heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1 seconds of launch",
		"heroku[web.1]: Stopping process with SIGKILL",
		"heroku[web.1]: Process exited with status 137",
		"heroku[web.1]: State changed from starting to crashed",
	)
	// The third boot crash waits an hour: stopping it then just forgets it.
	h.unassign(t, a)
	h.waitDyno(t, a.DynoID, "record deleted", 10*time.Second, gone)
	h.waitLines(t, 5*time.Second, "heroku[web.1]: State changed from crashed to down")
}

func TestExitTimeout(t *testing.T) {
	h := newHarness(t, func(c *host.Config) { c.StopGrace = 300 * time.Millisecond })
	h.start(t)
	a := h.assign(t, "worker.1", "trap '' TERM; echo ready; sleep 1000", nil)
	h.waitDyno(t, a.DynoID, "up", 30*time.Second, up)
	h.waitLines(t, 5*time.Second, "app[worker.1]: ready")
	h.unassign(t, a)
	h.waitDyno(t, a.DynoID, "record deleted", 10*time.Second, gone)
	h.waitLines(t, 5*time.Second,
		"heroku[worker.1]: Stopping all processes with SIGTERM",
		"heroku[worker.1]: Error R12 (Exit timeout) -> At least one process failed to exit within 0 seconds of SIGTERM",
		"heroku[worker.1]: Stopping remaining processes with SIGKILL",
		"heroku[worker.1]: Process exited with status 137",
		"heroku[worker.1]: State changed from up to down",
	)
}

func TestOneOffNeverRestarts(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	a := h.assign(t, "run.1", "echo done", func(a *grid.Assignment) { a.OneOff = true })
	d := h.waitDyno(t, a.DynoID, "exited", 30*time.Second, func(d grid.Dyno, found bool) bool { return found && d.State == grid.DynoCrashed })
	if d.Restarts != 0 || d.ExitCode != 0 {
		t.Errorf("record %+v", d)
	}
	lines := h.waitLines(t, 5*time.Second, "app[run.1]: done", "heroku[run.1]: Process exited with status 0")
	if n := count(lines, "heroku[run.1]: Starting process with command `echo done`"); n != 1 {
		t.Errorf("started %d times", n)
	}
	h.unassign(t, a)
	h.waitDyno(t, a.DynoID, "record deleted", 10*time.Second, gone)
}

// Shutdown stops every dyno at once and keeps the assignments; the next
// agent of the host brings the dynos back.
func TestShutdownAndRestart(t *testing.T) {
	const grace = 2 * time.Second
	h := newHarness(t, func(c *host.Config) { c.StopGrace = grace })
	ag := h.start(t)
	var as []grid.Assignment
	for _, name := range []string{"web.1", "web.2", "web.3"} {
		as = append(as, h.assign(t, name, "IGNORE_TERM=1 "+webCmd, nil))
	}
	for _, a := range as {
		h.waitDyno(t, a.DynoID, a.Name+" up", 30*time.Second, up)
	}
	// A record a previous run left behind without an assignment.
	stale := grid.Dyno{ID: "stale", App: appName, Name: "web.9", Host: hostID, State: grid.DynoUp}
	if err := h.st.PutDyno(context.Background(), stale); err != nil {
		t.Fatal(err)
	}

	took := ag.stop(t)
	t.Logf("3 dynos ignoring SIGTERM stopped in %v with a %v grace", took, grace)
	if took > 2*grace {
		t.Errorf("shutdown took %v: dynos not stopped in parallel (grace %v)", took, grace)
	}
	ds, err := h.st.Dynos(context.Background(), appName)
	if err != nil || len(ds) != 1 || ds[0].ID != "stale" {
		t.Errorf("records after shutdown: %+v %v", ds, err)
	}
	left, err := h.st.Assignments(context.Background(), hostID)
	if err != nil || len(left) != 3 {
		t.Fatalf("assignments after shutdown: %d %v", len(left), err)
	}

	h.start(t)
	for _, a := range as {
		d := h.waitDyno(t, a.DynoID, a.Name+" back up", 30*time.Second, up)
		get(t, d.Addr)
	}
	h.waitDyno(t, "stale", "stale record deleted", 10*time.Second, gone)
}
