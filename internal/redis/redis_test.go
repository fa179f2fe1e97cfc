package redis

import (
	"context"
	"fmt"
	"net/netip"
	"os"
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
