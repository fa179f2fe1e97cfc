package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dynogrid/grid/internal/grid"
)

// The tests run a real PostgreSQL from the installed binaries (the
// README's test command installs the postgresql package).
var server *Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "postgres: not root, the server tests are skipped")
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "gridtest-postgres-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o711) // the server's OS user passes through
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server, err = StartServer(ctx, ServerConfig{Dir: dir + "/pg", Listen: addr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer server.Stop()
	return m.Run()
}

func provider(t *testing.T) *Provider {
	t.Helper()
	if server == nil {
		t.Skip("needs root: runs a real PostgreSQL")
	}
	p := &Provider{AdminURL: server.AdminURL(), Host: server.cfg.Listen.String()}
	if err := p.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dbURL+"?sslmode=disable")
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestProvisionedDatabaseWorks: the URL connects, the role owns its
// database and can do what an app does.
func TestProvisionedDatabaseWorks(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	u, err := p.Provision(ctx, "works1", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deprovision(ctx, "works1") })
	if !strings.HasPrefix(u, "postgres://uworks1:") || !strings.HasSuffix(u, "@"+p.Host+"/dworks1") {
		t.Errorf("URL %q", u)
	}
	c := connect(t, u)
	for _, stmt := range []string{
		"CREATE TABLE notes (id serial PRIMARY KEY, body text)",
		"INSERT INTO notes (body) VALUES ('hello')",
		"CREATE INDEX ON notes (body)",
		"CREATE TEMP TABLE scratch (x int)",
	} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	var body string
	if err := c.QueryRow(ctx, "SELECT body FROM notes").Scan(&body); err != nil || body != "hello" {
		t.Errorf("SELECT: %q, %v", body, err)
	}
}

// TestDatabasesAreIsolated (issue 7): an add-on's role reaches only its
// own database and none of the server's powers.
func TestDatabasesAreIsolated(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	a, err := p.Provision(ctx, "tenanta", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deprovision(ctx, "tenanta") })
	b, err := p.Provision(ctx, "tenantb", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deprovision(ctx, "tenantb") })
	cb := connect(t, b)
	if _, err := cb.Exec(ctx, "CREATE TABLE secrets (s text); INSERT INTO secrets VALUES ('b only')"); err != nil {
		t.Fatal(err)
	}

	// A's credentials on B's database, and on the server's own.
	aOnB := strings.Replace(a, "/dtenanta", "/dtenantb", 1)
	for _, target := range []string{aOnB, strings.Replace(a, "/dtenanta", "/postgres", 1), strings.Replace(a, "/dtenanta", "/template1", 1)} {
		c, err := pgx.Connect(ctx, target+"?sslmode=disable")
		if err == nil {
			c.Close(ctx)
			t.Errorf("A connected to %s", target[strings.LastIndex(target, "/"):])
		} else if !strings.Contains(err.Error(), "permission denied for database") {
			t.Errorf("A on %s: %v, want permission denied", target[strings.LastIndex(target, "/"):], err)
		}
	}
	// B's password is B's: a wrong one fails.
	if c, err := pgx.Connect(ctx, strings.Replace(b, "utenantb:", "utenantb:x", 1)+"?sslmode=disable"); err == nil {
		c.Close(ctx)
		t.Error("a wrong password logged in")
	}

	ca := connect(t, a)
	for _, stmt := range []string{
		"CREATE ROLE sneaky LOGIN",
		"ALTER ROLE utenanta SUPERUSER",
		"ALTER ROLE utenanta CREATEROLE",
		"CREATE DATABASE another",
		"GRANT pg_read_server_files TO utenanta",
		"COPY (SELECT 1) TO PROGRAM 'id'",
		"COPY (SELECT 1) TO '/tmp/grid-pg-escape'",
		"SELECT pg_read_file('/etc/passwd')",
		"SELECT * FROM pg_authid",
		"CREATE EXTENSION dblink",
		"ALTER SYSTEM SET max_connections = 1000",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'utenantb'",
	} {
		if _, err := ca.Exec(ctx, stmt); err == nil {
			// terminate returns rows (false) instead of failing: check it did nothing.
			if strings.Contains(stmt, "pg_terminate_backend") {
				if err := cb.Ping(ctx); err == nil {
					continue
				}
			}
			t.Errorf("tenant A could: %s", stmt)
		}
	}
	var s string
	if err := cb.QueryRow(ctx, "SELECT s FROM secrets").Scan(&s); err != nil || s != "b only" {
		t.Errorf("B's data after A's attempts: %q, %v", s, err)
	}
	if _, err := os.Stat("/tmp/grid-pg-escape"); err == nil {
		t.Error("A wrote a file on the server's host")
		os.Remove("/tmp/grid-pg-escape")
	}
}

// TestConnectionLimit: the plan's connections, and no more.
func TestConnectionLimit(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	u, err := p.Provision(ctx, "limited", Plan{Name: "tiny", Connections: 2, StorageMB: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deprovision(ctx, "limited") })
	connect(t, u)
	connect(t, u)
	if c, err := pgx.Connect(ctx, u+"?sslmode=disable"); err == nil {
		c.Close(ctx)
		t.Error("a third connection on a 2-connection plan")
	} else if !strings.Contains(err.Error(), "too many connections") {
		t.Errorf("third connection: %v", err)
	}
}

// TestRotateAndDeprovision: rotation ends the old sessions and the old
// password; deprovision removes database and role, and may repeat.
func TestRotateAndDeprovision(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	old, err := p.Provision(ctx, "rotated", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, old)
	fresh, err := p.Rotate(ctx, "rotated")
	if err != nil || fresh == old {
		t.Fatalf("rotate: %q, %v", fresh, err)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("a session of the old password survived the rotation")
	}
	if c, err := pgx.Connect(ctx, old+"?sslmode=disable"); err == nil {
		c.Close(ctx)
		t.Error("the old password still works")
	}
	connect(t, fresh)
	if err := p.Deprovision(ctx, "rotated"); err != nil {
		t.Fatal(err)
	}
	if err := p.Deprovision(ctx, "rotated"); err != nil {
		t.Fatalf("deprovision again: %v", err)
	}
	if c, err := pgx.Connect(ctx, fresh+"?sslmode=disable"); err == nil {
		c.Close(ctx)
		t.Error("the database survived deprovision")
	}
	admin, err := p.admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = 'urotated'").Scan(&n)
	if n != 0 {
		t.Error("the role survived deprovision")
	}
}

// TestProvisionFailureLeavesNothing: a provision that fails half way (its
// database name taken) drops the role it made.
func TestProvisionFailureLeavesNothing(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	admin, err := p.admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE dclash"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(ctx, "clash", Plans[0]); err == nil {
		t.Fatal("provision over a taken database name succeeded")
	}
	var n int
	admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = 'uclash'").Scan(&n)
	if n != 0 {
		t.Error("a failed provision left its role")
	}
	if admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = 'dclash'").Scan(&n); n != 1 {
		t.Error("the failed provision dropped a database it had not made")
	}
	if _, err := p.Provision(ctx, "Bad-Id", Plans[0]); !errors.Is(err, grid.ErrInvalid) {
		t.Errorf("a bad resource id: %v, want ErrInvalid", err)
	}
}

// TestDumpRestore: a backup made with the add-on's own URL restores its
// data over later changes.
func TestDumpRestore(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	u, err := p.Provision(ctx, "backedup", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deprovision(ctx, "backedup") })
	c := connect(t, u)
	if _, err := c.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')"); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if err := Dump(ctx, u+"?sslmode=disable", &dump); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "UPDATE t SET v = 'after'; CREATE TABLE extra (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := Restore(ctx, u+"?sslmode=disable", &dump); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != "before" {
		t.Errorf("after restore: %q, %v", v, err)
	}
	if err := Restore(ctx, u+"?sslmode=disable", strings.NewReader("not a dump")); !errors.Is(err, grid.ErrInvalid) {
		t.Errorf("restoring garbage: %v, want ErrInvalid", err)
	}
}

// TestStorageCap (issue 7): a database over its plan's storage is locked
// (reads and TRUNCATE work; writes, DDL and taking the objects back do
// not) until it is under again; a plan change too small is refused.
func TestStorageCap(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	small := Plan{Name: "small", Connections: 5, StorageMB: 12}
	u, err := p.Provision(ctx, "capped", small)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Deprovision(ctx, "capped") })
	c := connect(t, u)
	var limit string
	if err := c.QueryRow(ctx, "SELECT current_setting('"+StorageLimitSetting+"', true)").Scan(&limit); err != nil || limit != "12582912" {
		t.Errorf("storage limit setting %q, %v", limit, err)
	}
	for _, s := range []string{
		"CREATE TABLE big (id serial, pad text)",
		"ALTER TABLE big ALTER pad SET STORAGE PLAIN",
		"INSERT INTO big (pad) SELECT repeat('x', 2000) FROM generate_series(1, 4000)",
	} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	enforce := func(wantLocked bool) {
		t.Helper()
		sts, err := p.Enforce(ctx, map[string]Plan{"capped": small, "absent1": small})
		if err != nil || len(sts) != 1 || sts[0].Locked != wantLocked || !sts[0].Changed {
			t.Fatalf("enforce: %+v, %v; want locked=%v, changed", sts, err, wantLocked)
		}
		if sts, _ := p.Enforce(ctx, map[string]Plan{"capped": small}); sts[0].Changed {
			t.Fatalf("enforce again changed it: %+v", sts)
		}
	}
	enforce(true)
	c = connect(t, u) // the lock ended the old session
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil || n != 4000 {
		t.Errorf("read while locked: %d, %v", n, err)
	}
	// A non-owner's GRANT grants nothing (PostgreSQL only warns).
	c.Exec(ctx, "GRANT INSERT, UPDATE ON big TO ucapped")
	for _, s := range []string{
		"INSERT INTO big (pad) VALUES ('y')",
		"UPDATE big SET pad = 'z'",
		"CREATE TABLE more (x int)",
		"CREATE SCHEMA mine",
		"ALTER TABLE big OWNER TO ucapped",
		"ALTER DATABASE dcapped RESET " + StorageLimitSetting,
	} {
		if _, err := c.Exec(ctx, s); err == nil {
			t.Errorf("%s: worked on a locked database", s)
		}
	}
	if _, err := c.Exec(ctx, "TRUNCATE big"); err != nil {
		t.Fatalf("TRUNCATE while locked: %v", err)
	}
	enforce(false)
	c = connect(t, u)
	for _, s := range []string{"INSERT INTO big (pad) VALUES ('y')", "CREATE TABLE more (x int)", "DROP TABLE more"} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Errorf("%s after unlock: %v", s, err)
		}
	}
	if err := p.ChangePlan(ctx, "capped", Plan{Name: "tiny", Connections: 3, StorageMB: 1}); !errors.Is(err, grid.ErrInvalid) {
		t.Errorf("a plan smaller than the data: %v", err)
	}
	if err := p.ChangePlan(ctx, "capped", Plans[1]); err != nil {
		t.Fatal(err)
	}
	var conns int
	c = connect(t, u)
	if err := c.QueryRow(ctx, "SELECT rolconnlimit, current_setting('"+StorageLimitSetting+"') FROM pg_roles WHERE rolname = current_user").Scan(&conns, &limit); err != nil ||
		conns != Plans[1].Connections || limit != fmt.Sprint(int64(Plans[1].StorageMB)<<20) {
		t.Errorf("after the plan change: %d connections, limit %s, %v", conns, limit, err)
	}
}
