package redis

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The tests run real redis-server processes (the README's test command
// installs redis-server).
func supervisor(t *testing.T) *Supervisor {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs redis-server as the redis user")
	}
	dir, err := os.MkdirTemp("", "gridtest-redis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o711)
	base := 17000 + int(time.Now().UnixNano()%1000)*10
	s, err := New(Config{Dir: dir + "/instances", Listen: netip.MustParseAddr("127.0.0.1"), Ports: [2]int{base, base + 9}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, u string) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisInstances: each add-on is its own server with its own
// password; the dangerous commands are gone; the memory cap holds.
func TestRedisInstances(t *testing.T) {
	s := supervisor(t)
	ctx := context.Background()
	a, err := s.Provision(ctx, "tenanta", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Provision(ctx, "tenantb", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	if a == b || !strings.HasPrefix(a, "redis://default:") {
		t.Fatalf("URLs %q %q", a, b)
	}
	ca, cb := client(t, a), client(t, b)
	if err := cb.Set(ctx, "secret", "b only", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := ca.Get(ctx, "secret").Result(); err != goredis.Nil {
		t.Errorf("A read B's key: %q, %v", v, err)
	}

	// Without B's password, B's server answers nothing.
	optB, _ := goredis.ParseURL(b)
	for _, pw := range []string{"", "wrong", strings.TrimPrefix(strings.Split(a, "@")[0], "redis://default:")} {
		o := *optB
		o.Password, o.MaxRetries = pw, -1
		c := goredis.NewClient(&o)
		if v, err := c.Get(ctx, "secret").Result(); err == nil {
			t.Errorf("password %q read B's key: %q", pw, v)
		}
		c.Close()
	}

	for _, cmd := range [][]any{
		{"CONFIG", "SET", "maxmemory", "0"}, {"CONFIG", "GET", "requirepass"}, {"DEBUG", "SLEEP", "1"},
		{"MODULE", "LOAD", "/tmp/x.so"}, {"SHUTDOWN"}, {"REPLICAOF", "127.0.0.1", "6379"}, {"SLAVEOF", "10.0.0.1", "6379"},
		{"MIGRATE", "10.0.0.1", "6379", "secret", "0", "1000"}, {"ACL", "SETUSER", "x", "on", ">pw", "+@all"},
		{"MONITOR"}, {"CLUSTER", "INFO"}, {"FAILOVER"},
	} {
		if err := cb.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%v: %v, want unknown command", cmd, err)
		}
	}

	// The plan's memory, and not a byte more: writes fail, nothing is evicted.
	big := strings.Repeat("x", 1<<20)
	var failed error
	for i := 0; i < 40 && failed == nil; i++ {
		failed = ca.Set(ctx, fmt.Sprintf("k%d", i), big, 0).Err()
	}
	if failed == nil || !strings.Contains(failed.Error(), "OOM") {
		t.Errorf("40 MB into a 25 MB plan: %v, want OOM", failed)
	}
	if v, _ := cb.Get(ctx, "secret").Result(); v != "b only" {
		t.Errorf("B after A filled its memory: %q", v)
	}
}

// TestRedisSupervised: a killed instance comes back with its data (a
// persistent plan) and its password; rotation changes the password;
// deprovision ends it; a grid restart brings instances back.
func TestRedisSupervised(t *testing.T) {
	s := supervisor(t)
	ctx := context.Background()
	u, err := s.Provision(ctx, "durable", Plans[1])
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, u)
	if err := c.Set(ctx, "kept", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // appendfsync everysec
	s.kill("durable")
	var v string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v, err = c.Get(ctx, "kept").Result(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v != "yes" {
		t.Fatalf("after a kill: %q, %v", v, err)
	}

	fresh, err := s.Rotate(ctx, "durable")
	if err != nil || fresh == u {
		t.Fatalf("rotate: %q, %v", fresh, err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("the old password still works")
	}
	if v, err := client(t, fresh).Get(ctx, "kept").Result(); v != "yes" {
		t.Errorf("after rotation: %q, %v", v, err)
	}

	// A new supervisor on the same directory: the grid restarted.
	s.Close()
	s2, err := New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Close)
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := client(t, fresh).Get(ctx, "kept").Result(); v != "yes" {
		t.Errorf("after a restart: %q, %v", v, err)
	}
	if err := s2.Deprovision(ctx, "durable"); err != nil {
		t.Fatal(err)
	}
	if err := client(t, fresh).Ping(ctx).Err(); err == nil {
		t.Error("deprovisioned instance still answers")
	}
	if _, err := os.Stat(s.dir("durable")); !os.IsNotExist(err) {
		t.Errorf("its data is still there: %v", err)
	}
}

// TestChangePlan (issue 7): a plan change applies live (same data, same
// connection) and holds after a restart; a plan smaller than the data is
// refused; the tenant still cannot reach CONFIG.
func TestChangePlan(t *testing.T) {
	s := supervisor(t)
	ctx := context.Background()
	u, err := s.Provision(ctx, "planned", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, u)
	if err := c.Set(ctx, "kept", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePlan(ctx, "planned", Plans[2]); err != nil {
		t.Fatal(err)
	}
	info := func() string {
		t.Helper()
		v, err := c.Info(ctx, "memory", "clients", "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := info(); !strings.Contains(v, fmt.Sprintf("maxmemory:%d\r", Plans[2].MaxMemoryMB<<20)) ||
		!strings.Contains(v, fmt.Sprintf("maxclients:%d\r", Plans[2].MaxClients)) || !strings.Contains(v, "aof_enabled:1\r") {
		t.Errorf("after the plan change:\n%s", v)
	}
	if v, err := c.Get(ctx, "kept").Result(); err != nil || v != "yes" {
		t.Errorf("data after the change: %q, %v", v, err)
	}
	for _, name := range []string{"CONFIG", "config"} {
		if err := c.Do(ctx, name, "GET", "requirepass").Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%s GET: %v", name, err)
		}
	}
	// Restarted from its conf, the instance keeps the plan.
	s.stop("planned")
	if err := s.run(ctx, "planned"); err != nil {
		t.Fatal(err)
	}
	if v := info(); !strings.Contains(v, fmt.Sprintf("maxmemory:%d\r", Plans[2].MaxMemoryMB<<20)) {
		t.Errorf("after a restart:\n%s", v)
	}
	// 30 MB of data does not fit the 25 MB plan.
	big := strings.Repeat("x", 1<<20)
	for i := range 30 {
		if err := c.Set(ctx, fmt.Sprint("big", i), big, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ChangePlan(ctx, "planned", Plans[0]); err == nil || !strings.Contains(err.Error(), "choose a bigger plan") {
		t.Errorf("downgrade below the data: %v", err)
	}
	if v := info(); !strings.Contains(v, fmt.Sprintf("maxmemory:%d\r", Plans[2].MaxMemoryMB<<20)) {
		t.Errorf("a refused change changed it:\n%s", v)
	}
}

// sharedServer runs a plain redis-server from a config file, as an
// operator would, with an admin password; it returns its address and a
// func that restarts it.
func sharedServer(t *testing.T) (addr string, restart func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: as the other Redis tests")
	}
	dir := t.TempDir()
	port := 18000 + int(time.Now().UnixNano()%1000)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := dir + "/redis.conf"
	if err := os.WriteFile(conf, fmt.Appendf(nil, "bind 127.0.0.1\nport %d\nrequirepass adminpw\ndir %s\nsave \"\"\n", port, dir), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command("redis-server", conf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := waitReady(context.Background(), netip.MustParseAddrPort(addr), "adminpw"); err != nil {
			t.Fatal(err)
		}
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	start()
	t.Cleanup(stop)
	return addr, func() { stop(); start() }
}

// TestShared (issue 7): on an operator's Redis each add-on is an ACL user
// held to its own keys, without the commands that reach everyone's; users
// survive the server's restart; rotation and deprovision work.
func TestShared(t *testing.T) {
	addr, restart := sharedServer(t)
	s := &Shared{AdminURL: "redis://default:adminpw@" + addr, Host: addr}
	ctx := context.Background()
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	ua, err := s.Provision(ctx, "shareda", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	ub, err := s.Provision(ctx, "sharedb", Plans[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Provision(ctx, "shareda", Plans[0]); err == nil {
		t.Error("a second provision of the same id worked")
	}
	a, b := client(t, ua), client(t, ub)
	if err := a.Set(ctx, "ushareda:k", "a's", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx, "usharedb:k", "b's", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]any{
		{"GET", "usharedb:k"}, {"SET", "other", "x"}, {"FLUSHALL"}, {"FLUSHDB"}, {"KEYS", "*"},
		{"CONFIG", "GET", "requirepass"}, {"ACL", "LIST"}, {"SELECT", "1"}, {"DEBUG", "SLEEP", "0"}, {"MONITOR"}, {"SHUTDOWN"},
	} {
		if err := a.Do(ctx, cmd...).Err(); err == nil {
			t.Errorf("%v: allowed", cmd)
		}
	}
	if v, _ := b.Get(ctx, "usharedb:k").Result(); v != "b's" {
		t.Errorf("B's key after A's attempts: %q", v)
	}

	// The server keeps no data across restarts here (save ""), but the
	// users are in its config file.
	restart()
	if err := client(t, ub).Set(ctx, "usharedb:k", "b's", 0).Err(); err != nil {
		t.Errorf("B after the server's restart: %v", err)
	}
	fresh, err := s.Rotate(ctx, "shareda")
	if err != nil || fresh == ua {
		t.Fatalf("rotate: %q, %v", fresh, err)
	}
	if err := client(t, ua).Ping(ctx).Err(); err == nil {
		t.Error("the old password still works")
	}
	if err := client(t, fresh).Set(ctx, "ushareda:k2", "v", 0).Err(); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := s.Deprovision(ctx, "shareda"); err != nil {
		t.Fatal(err)
	}
	if err := client(t, fresh).Ping(ctx).Err(); err == nil {
		t.Error("the user outlived deprovision")
	}
	admin := client(t, s.AdminURL)
	if n, _ := admin.Exists(ctx, "ushareda:k2").Result(); n != 0 {
		t.Error("the keys outlived deprovision")
	}
	if v, _ := admin.Get(ctx, "usharedb:k").Result(); v != "b's" {
		t.Errorf("B's key after A's deprovision: %q", v)
	}
}
