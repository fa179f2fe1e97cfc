package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/postgres"
)

// TestAddons (issue 7): an app gets a real Postgres database and a real
// Redis server with one command each, reads and writes them through
// DATABASE_URL and REDIS_URL from its dynos, shares the database with a
// second app, and cannot reach a third app's database with its own
// credentials; destroying asks for confirmation and detaches everywhere.
func TestAddons(t *testing.T) {
	g := gridtest.Start(t, "--boot-timeout", "10s", "--stop-grace", "5s")
	g.MustCLI("apps:create", "shop")
	created := regexp.MustCompile(`Created ((postgresql|redis)-[a-z]+-\d{5}) as (\w+)`)
	pg := created.FindStringSubmatch(g.MustCLI("addons:create", "heroku-postgresql", "-a", "shop"))
	rd := created.FindStringSubmatch(g.MustCLI("addons:create", "redis", "-a", "shop"))
	if pg == nil || pg[3] != "DATABASE_URL" || rd == nil || rd[3] != "REDIS_URL" {
		t.Fatalf("addons:create said %v and %v", pg, rd)
	}
	config := g.MustCLI("config", "-a", "shop", "--shell")
	if !regexp.MustCompile(`DATABASE_URL='?postgres://`).MatchString(config) || !regexp.MustCompile(`REDIS_URL='?redis://`).MatchString(config) {
		t.Errorf("config:\n%s", config)
	}
	if rel := g.MustCLI("releases", "-a", "shop"); !strings.Contains(rel, "Attach DATABASE (@ref:"+pg[1]+")") {
		t.Errorf("releases:\n%s", rel)
	}
	if list := g.MustCLI("addons", "-a", "shop"); !strings.Contains(list, pg[1]) || !strings.Contains(list, "heroku-redis:mini") {
		t.Errorf("addons:\n%s", list)
	}

	if out, err := g.Push("shop", g.Repo("testdata/addons-app")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	g.WaitBody("shop", "/", "pg 0; redis 0\n", 30*time.Second)
	for i := 1; i <= 2; i++ {
		if _, body, _, err := g.Get("shop", "/hit"); err != nil || body != fmt.Sprintf("pg %d; redis %d\n", i, i) {
			t.Errorf("hit %d: %q, %v", i, body, err)
		}
	}

	// The operator's tools, with the app's URLs.
	if out := g.MustCLI("pg:psql", "-a", "shop", "-c", "SELECT count(*) FROM hits"); !strings.Contains(out, "\n     2\n") {
		t.Errorf("pg:psql:\n%s", out)
	}
	if out := g.MustCLI("redis:cli", "-a", "shop", "GET", "hits"); strings.TrimSpace(out) != "2" {
		t.Errorf("redis:cli GET hits: %q", out)
	}
	info := g.MustCLI("pg:info", "-a", "shop")
	for _, want := range []string{"=== DATABASE_URL", "Plan:        essential-0", "Status:      Available", "Connections: ", "/20", "PG Version:  15", "Add-on:      " + pg[1]} {
		if !strings.Contains(info, want) {
			t.Errorf("pg:info lacks %q:\n%s", want, info)
		}
	}
	if info := g.MustCLI("redis:info", "-a", "shop"); !strings.Contains(info, "Memory:  ") || !strings.Contains(info, "of 25.00M") {
		t.Errorf("redis:info:\n%s", info)
	}

	// New credentials: the app restarts with them, the old URL is dead.
	oldURL := configVar(t, g, "shop", "DATABASE_URL")
	g.MustCLI("pg:credentials:rotate", "-a", "shop", "--confirm", "shop")
	if newURL := configVar(t, g, "shop", "DATABASE_URL"); newURL == oldURL {
		t.Error("DATABASE_URL did not change")
	}
	g.WaitBody("shop", "/", "pg 2; redis 2\n", 30*time.Second)

	// A backup restores the data of its time; it can be downloaded.
	if out := g.MustCLI("pg:backups:capture", "-a", "shop"); !strings.Contains(out, "Backup b001: ") {
		t.Errorf("pg:backups:capture: %s", out)
	}
	if _, body, _, _ := g.Get("shop", "/hit"); body != "pg 3; redis 3\n" {
		t.Errorf("hit after the backup: %q", body)
	}
	if _, errOut, err := g.CLI("pg:backups:restore", "-a", "shop"); err == nil || !strings.Contains(errOut, "--confirm shop") {
		t.Errorf("restore without --confirm: %v %s", err, errOut)
	}
	g.MustCLI("pg:backups:restore", "b001", "-a", "shop", "--confirm", "shop")
	if _, body, _, _ := g.Get("shop", "/"); body != "pg 2; redis 3\n" {
		t.Errorf("after restoring b001: %q", body)
	}
	if out := g.MustCLI("pg:backups", "-a", "shop"); !strings.Contains(out, "b001") {
		t.Errorf("pg:backups: %s", out)
	}
	dump := filepath.Join(t.TempDir(), "shop.dump")
	g.MustCLI("pg:backups:download", "-a", "shop", "-o", dump)
	if b, err := os.ReadFile(dump); err != nil || !strings.HasPrefix(string(b), "PGDMP") {
		t.Errorf("downloaded backup: %.20q, %v", b, err)
	}

	// The add-on servers come back with a restart of the grid: Postgres
	// with its data, the mini Redis (no persistence, as its plan says)
	// empty.
	g.Restart()
	g.WaitBody("shop", "/", "pg 2; redis 0\n", 60*time.Second)

	// Plan changes keep data, URLs and dynos; they show in the servers.
	g.Get("shop", "/hit")
	if out := g.MustCLI("addons:upgrade", pg[1], "standard-0", "-a", "shop"); !strings.Contains(out,
		"Changing "+pg[1]+" on ⬢ shop from heroku-postgresql:essential-0 to heroku-postgresql:standard-0... done") {
		t.Errorf("addons:upgrade: %s", out)
	}
	g.MustCLI("addons:downgrade", rd[1], "heroku-redis:premium-0", "-a", "shop")
	if _, body, _, _ := g.Get("shop", "/"); body != "pg 3; redis 1\n" {
		t.Errorf("after the plan changes: %q", body)
	}
	info = g.MustCLI("pg:info", "-a", "shop")
	for _, want := range []string{"Plan:        standard-0", "/120", " / 68.7 GB (0.0"} {
		if !strings.Contains(info, want) {
			t.Errorf("pg:info after the upgrade lacks %q:\n%s", want, info)
		}
	}
	if info := g.MustCLI("redis:info", "-a", "shop"); !strings.Contains(info, "of 50.00M") {
		t.Errorf("redis:info after the upgrade:\n%s", info)
	}
	for args, want := range map[[2]string]string{
		{rd[1], "heroku-postgresql:standard-0"}: "is a heroku-redis add-on",
		{pg[1], "gigantic-9"}:                   `no Postgres plan "gigantic-9"`,
	} {
		if _, errOut, err := g.CLI("addons:upgrade", args[0], args[1], "-a", "shop"); err == nil || !strings.Contains(errOut, want) {
			t.Errorf("addons:upgrade %s %s: %v %s", args[0], args[1], err, errOut)
		}
	}

	// A second app shares the database.
	g.MustCLI("apps:create", "reports")
	g.MustCLI("addons:attach", pg[1], "-a", "reports", "--as", "SHARED")
	shopURL := configVar(t, g, "shop", "DATABASE_URL")
	if got := configVar(t, g, "reports", "SHARED_URL"); got != shopURL {
		t.Errorf("reports' SHARED_URL %q, want shop's DATABASE_URL", got)
	}

	// A third app's own credentials do not open shop's database.
	g.MustCLI("apps:create", "intruder")
	g.MustCLI("addons:create", "postgresql", "-a", "intruder")
	if out, err := g.Push("intruder", g.Repo("testdata/addons-app")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	shopDB := shopURL[strings.LastIndex(shopURL, "/")+1:]
	out, errOut, err := g.CLI("run", "-x", "--no-tty", "-a", "intruder", "--", "sh", "-c",
		`psql=$(ls /usr/lib/postgresql/*/bin/psql | tail -1); $psql "${DATABASE_URL%/*}/`+shopDB+`" -c "select 1"`)
	if err == nil || !strings.Contains(out+errOut, "permission denied for database") {
		t.Errorf("intruder on shop's database: %v\n%s%s", err, out, errOut)
	}

	// Destroying needs the app's name, then detaches everywhere.
	if _, errOut, err := g.CLI("addons:destroy", rd[1], "-a", "shop"); err == nil || !strings.Contains(errOut, "--confirm shop") {
		t.Errorf("destroy without --confirm: %v %s", err, errOut)
	}
	redisHost := configVar(t, g, "shop", "REDIS_URL")
	redisHost = redisHost[strings.LastIndex(redisHost, "@")+1:]
	g.MustCLI("addons:destroy", rd[1], "-a", "shop", "--confirm", "shop")
	if strings.Contains(g.MustCLI("config", "-a", "shop"), "REDIS_URL") {
		t.Error("REDIS_URL outlived its add-on")
	}
	// Nor may shop's dynos reach where it was.
	if a, err := g.Store().App(t.Context(), "shop"); err != nil || strings.Contains(fmt.Sprint(a.Release.Reach), redisHost) {
		t.Errorf("shop's release still reaches %s: %v, %v", redisHost, a.Release.Reach, err)
	}
	g.WaitBody("shop", "/", "pg 3\n", 30*time.Second)
	g.MustCLI("apps:destroy", "shop", "--confirm", "shop")
	if strings.Contains(g.MustCLI("config", "-a", "reports"), "SHARED_URL") {
		t.Error("SHARED_URL outlived the destroyed app's database")
	}
}

func configVar(t *testing.T, g *gridtest.Grid, app, name string) string {
	t.Helper()
	for _, l := range strings.Split(g.MustCLI("config", "-a", app, "--shell"), "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return strings.Trim(v, "'")
		}
	}
	t.Fatalf("%s has no %s", app, name)
	return ""
}

// TestAddonsOnOperatorServers: with --postgres-admin-url and
// --redis-admin-url, add-ons are databases and ACL users on the
// operator's servers (here ones the test runs), which dynos reach on
// their ports.
func TestAddonsOnOperatorServers(t *testing.T) {
	dir, err := os.MkdirTemp("", "gridtest-operator-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o711)
	addr := netip.MustParseAddr("10.228.0.1")
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	la := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrAdd(lo, la); err != nil && !errors.Is(err, unix.EEXIST) {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.AddrDel(lo, la) })
	srv, err := postgres.StartServer(t.Context(), postgres.ServerConfig{Dir: dir + "/pg", Listen: netip.AddrPortFrom(addr, 15432)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })

	redisAdmin := "redis://default:opspw@10.228.0.1:16379"
	conf := filepath.Join(dir, "redis.conf")
	os.WriteFile(conf, []byte("bind 10.228.0.1\nport 16379\nrequirepass opspw\nsave \"\"\ndir "+dir+"\n"), 0o600)
	rs := exec.Command("redis-server", conf)
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Process.Kill(); rs.Wait() })

	g := gridtest.Start(t, "--boot-timeout", "10s", "--postgres-admin-url", srv.AdminURL(), "--redis-admin-url", redisAdmin, "--addons-listen", "")
	g.MustCLI("apps:create", "ops")
	if out := g.MustCLI("addons:create", "postgresql", "-a", "ops"); !strings.Contains(out, "as DATABASE_URL") {
		t.Fatalf("addons:create: %s", out)
	}
	if out := g.MustCLI("addons:create", "redis", "-a", "ops"); !strings.Contains(out, "as REDIS_URL") {
		t.Fatalf("addons:create redis: %s", out)
	}
	if u := configVar(t, g, "ops", "DATABASE_URL"); !strings.Contains(u, "@10.228.0.1:15432/") {
		t.Errorf("DATABASE_URL %q is not on the operator's server", u)
	}
	if u := configVar(t, g, "ops", "REDIS_URL"); !strings.HasPrefix(u, "redis://u") || !strings.HasSuffix(u, "@10.228.0.1:16379") {
		t.Errorf("REDIS_URL %q is not a user on the operator's server", u)
	}
	if out, err := g.Push("ops", g.Repo("testdata/addons-app")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	g.WaitBody("ops", "/", "pg 0; redis 0\n", 30*time.Second)
	if _, body, _, _ := g.Get("ops", "/hit"); body != "pg 1; redis 1\n" {
		t.Errorf("hit: %q", body)
	}
	for _, secret := range []string{srv.AdminURL(), "opspw"} {
		if strings.Contains(g.Output(), secret) {
			t.Errorf("the grid's log shows %q", secret)
		}
	}
}

// TestAddonsOnNetNSHosts: dynos on hosts in network namespaces (grid up
// --hosts) reach their add-on servers on this machine, through the
// --services their hosts are given, and nothing else there.
func TestAddonsOnNetNSHosts(t *testing.T) {
	g := gridtest.Start(t, "--hosts", "1", "--boot-timeout", "10s", "--stop-grace", "5s")
	g.MustCLI("apps:create", "far")
	g.MustCLI("addons:create", "postgresql", "-a", "far")
	g.MustCLI("addons:create", "redis", "-a", "far")
	if out, err := g.Push("far", g.Repo("testdata/addons-app")); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	g.WaitBody("far", "/", "pg 0; redis 0\n", 60*time.Second)
	if _, body, _, _ := g.Get("far", "/hit"); body != "pg 1; redis 1\n" {
		t.Errorf("hit: %q", body)
	}
	if ps := g.MustCLI("ps", "-a", "far"); !strings.Contains(ps, "web.1") {
		t.Errorf("ps:\n%s", ps)
	}
	// Another port of the add-ons' address (here the API's, were it
	// listening there) is closed to dynos.
	out, errOut, err := g.CLI("run", "-x", "--no-tty", "-a", "far", "--", "python3", "-c",
		`import socket; socket.create_connection(("10.229.0.1", 5433), timeout=3)`)
	if err == nil || !strings.Contains(out+errOut, "No route to host") {
		t.Errorf("a dyno reached 10.229.0.1:5433: %v\n%s%s", err, out, errOut)
	}
}
