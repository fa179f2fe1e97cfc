// Package redis is the Redis add-on: each add-on is a redis-server process
// of its own (its password, memory cap and persistence from the plan),
// run from the installed binary as the redis OS user and kept running by
// a Supervisor.
package redis

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/proc"
)

// Plan is a Redis plan.
type Plan struct {
	Name        string
	MaxMemoryMB int
	MaxClients  int
	Persist     bool // append-only file, fsync every second
}

// Plans are the Redis plans, cheapest first; the first is the default.
var Plans = []Plan{
	{Name: "mini", MaxMemoryMB: 25, MaxClients: 20},
	{Name: "premium-0", MaxMemoryMB: 50, MaxClients: 40, Persist: true},
	{Name: "premium-1", MaxMemoryMB: 100, MaxClients: 80, Persist: true},
}

// LookupPlan finds a plan by name; "" is the default.
func LookupPlan(name string) (Plan, error) {
	if name == "" {
		return Plans[0], nil
	}
	for _, p := range Plans {
		if p.Name == name {
			return p, nil
		}
	}
	return Plan{}, fmt.Errorf("no Redis plan %q: %w", name, grid.ErrInvalid)
}

// disabled are the commands a tenant must not have: they reconfigure or
// stop the server, load code, or make it connect elsewhere (replication,
// MIGRATE), which would turn it into a way out of the tenant's network.
var disabled = []string{"CONFIG", "DEBUG", "MODULE", "SHUTDOWN", "REPLICAOF", "SLAVEOF", "SYNC", "PSYNC", "MIGRATE", "ACL", "FAILOVER", "MONITOR", "CLUSTER"}

// Config says where instances live and listen.
type Config struct {
	// Dir holds one directory per instance: redis.conf and its data.
	Dir string
	// Listen is the address instances serve on: one dynos can reach.
	Listen netip.Addr
	// Ports is the range instances' ports come from, first to last.
	Ports [2]int
	// User is the OS user instances run as. Empty means "redis".
	User string
	// Bin is redis-server. Empty means $PATH's.
	Bin string
}

// Supervisor runs the instances and restarts any that exits.
type Supervisor struct {
	cfg  Config
	cred *syscall.Credential

	mu    sync.Mutex
	procs map[string]*instance
	done  chan struct{}
	wg    sync.WaitGroup
}

type instance struct {
	id   string
	stop chan struct{} // closed to stop it for good
	done chan struct{} // closed once it is stopped
	cmd  *exec.Cmd     // the current process; supervise's alone once running
}

var idRE = regexp.MustCompile(`^[a-z0-9]{1,40}$`)

// New checks cfg; Start runs the instances already provisioned.
func New(cfg Config) (*Supervisor, error) {
	if cfg.User == "" {
		cfg.User = "redis"
	}
	if cfg.Bin == "" {
		cfg.Bin = "redis-server"
	}
	bin, err := exec.LookPath(cfg.Bin)
	if err != nil {
		return nil, fmt.Errorf("redis: %w (install the redis-server package)", err)
	}
	cfg.Bin = bin
	u, err := user.Lookup(cfg.User)
	if err != nil {
		return nil, fmt.Errorf("redis: OS user %q: %w (install the redis-server package)", cfg.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if cfg.Ports[0] <= 0 || cfg.Ports[1] < cfg.Ports[0] {
		return nil, fmt.Errorf("redis: port range %v: %w", cfg.Ports, grid.ErrInvalid)
	}
	// The redis user passes through to its instances' directories only.
	if err := os.MkdirAll(cfg.Dir, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(cfg.Dir, 0o711); err != nil {
		return nil, err
	}
	return &Supervisor{cfg: cfg, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		procs: map[string]*instance{}, done: make(chan struct{})}, nil
}

// Start runs every instance found in Dir (after a restart of the grid).
func (s *Supervisor) Start(ctx context.Context) error {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() && idRE.MatchString(e.Name()) {
			errs = append(errs, s.run(ctx, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// Close stops every instance (their data stays) and waits.
func (s *Supervisor) Close() {
	s.mu.Lock()
	for _, in := range s.procs {
		close(in.stop)
	}
	s.procs = map[string]*instance{}
	s.mu.Unlock()
	s.wg.Wait()
}

// kill kills instance id's process; the supervisor restarts it (tests).
func (s *Supervisor) kill(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.procs[id]; in != nil {
		in.cmd.Process.Kill()
	}
}

func (s *Supervisor) dir(id string) string { return filepath.Join(s.cfg.Dir, id) }

// Provision makes instance id on a free port and returns its URL.
func (s *Supervisor) Provision(ctx context.Context, id string, plan Plan) (string, error) {
	if !idRE.MatchString(id) {
		return "", fmt.Errorf("redis resource id %q: %w", id, grid.ErrInvalid)
	}
	s.mu.Lock()
	port, err := s.freePort()
	if err == nil {
		err = os.Mkdir(s.dir(id), 0o700)
	}
	s.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("redis provision %s: %w", id, err)
	}
	c := conf{port: port, password: randomHex(24), admin: adminPrefix + randomHex(16)}
	err = s.writeConf(id, c, plan)
	if err == nil {
		err = s.run(ctx, id)
	}
	if err != nil {
		return "", errors.Join(err, s.Deprovision(context.WithoutCancel(ctx), id))
	}
	return s.url(port, c.password), nil
}

// url is the instance's URL. The user is "default" (Redis's own), which
// every client takes: redis-cli fails to authenticate with an empty one.
func (s *Supervisor) url(port int, password string) string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("default", password), Host: netip.AddrPortFrom(s.cfg.Listen, uint16(port)).String()}
	return u.String()
}

// freePort is the first port of the range no instance has; s.mu held.
func (s *Supervisor) freePort() (int, error) {
	used := map[int]bool{}
	ents, _ := os.ReadDir(s.cfg.Dir)
	for _, e := range ents {
		if c, err := readConf(s.dir(e.Name())); err == nil {
			used[c.port] = true
		}
	}
	for p := s.cfg.Ports[0]; p <= s.cfg.Ports[1]; p++ {
		if !used[p] {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d: %w", s.cfg.Ports[0], s.cfg.Ports[1], grid.ErrUnavailable)
}

// writeConf writes the instance's redis.conf (root-owned, readable by the
// redis user) and its data directory.
func (s *Supervisor) writeConf(id string, c conf, plan Plan) error {
	dir := s.dir(id)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := os.Chown(data, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by grid for add-on %s: the tenant cannot change it.\n", id)
	fmt.Fprintf(&b, "bind %s\nport %d\nprotected-mode yes\nrequirepass %s\n", s.cfg.Listen, c.port, c.password)
	fmt.Fprintf(&b, "maxmemory %dmb\nmaxmemory-policy noeviction\nmaxclients %d\n", plan.MaxMemoryMB, plan.MaxClients)
	fmt.Fprintf(&b, "dir %s\ndaemonize no\nlogfile \"\"\nenable-debug-command no\nenable-module-command no\nenable-protected-configs no\n", data)
	if plan.Persist {
		b.WriteString("appendonly yes\nappendfsync everysec\nsave \"\"\n")
	} else {
		b.WriteString("appendonly no\nsave \"\"\n")
	}
	for _, cmd := range disabled {
		to := `""`
		if cmd == "CONFIG" && c.admin != "" {
			to = c.admin // the grid's alone: plan changes apply live
		}
		fmt.Fprintf(&b, "rename-command %s %s\n", cmd, to)
	}
	fmt.Fprintf(&b, "# plan %s\n", plan.Name)
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o640); err != nil {
		return err
	}
	if err := os.Chown(conf, 0, int(s.cred.Gid)); err != nil {
		return err
	}
	if err := os.Chown(dir, 0, int(s.cred.Gid)); err != nil {
		return err
	}
	return os.Chmod(dir, 0o750)
}

// conf is what the grid reads back from an instance's redis.conf.
type conf struct {
	port     int
	password string
	admin    string // CONFIG's secret name; "" in instances older than it
}

// adminPrefix begins CONFIG's secret name.
const adminPrefix = "grid-config-"

func readConf(dir string) (conf, error) {
	f, err := os.Open(filepath.Join(dir, "redis.conf"))
	if err != nil {
		return conf{}, err
	}
	defer f.Close()
	var c conf
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "port":
			c.port, _ = strconv.Atoi(v)
		case "requirepass":
			c.password = v
		case "rename-command":
			if name, to, _ := strings.Cut(v, " "); name == "CONFIG" && strings.HasPrefix(to, adminPrefix) {
				c.admin = to
			}
		}
	}
	return c, sc.Err()
}

// run starts instance id's process, waits until it answers, and keeps it
// running: an exit restarts it after a pause.
func (s *Supervisor) run(ctx context.Context, id string) error {
	c, err := readConf(s.dir(id))
	if err != nil {
		return fmt.Errorf("redis %s: %w", id, err)
	}
	in := &instance{id: id, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.spawn(in); err != nil {
		return err
	}
	if err := waitReady(ctx, netip.AddrPortFrom(s.cfg.Listen, uint16(c.port)), c.password); err != nil {
		in.cmd.Process.Kill()
		in.cmd.Wait()
		return fmt.Errorf("redis %s: %w", id, err)
	}
	s.mu.Lock()
	s.procs[id] = in
	s.wg.Add(1)
	go s.supervise(in)
	s.mu.Unlock()
	return nil
}

func (s *Supervisor) spawn(in *instance) error {
	cmd := exec.Command(s.cfg.Bin, filepath.Join(s.dir(in.id), "redis.conf"))
	cmd.Dir = s.dir(in.id)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setsid: true, Pdeathsig: syscall.SIGTERM}
	if err := proc.Start(cmd); err != nil {
		return fmt.Errorf("redis %s: %w", in.id, err)
	}
	in.cmd = cmd
	return nil
}

// supervise waits for the process and restarts it, until stopped.
func (s *Supervisor) supervise(in *instance) {
	defer s.wg.Done()
	defer close(in.done)
	for {
		exited := make(chan struct{})
		go func() { in.cmd.Wait(); close(exited) }()
		select {
		case <-in.stop:
			in.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				in.cmd.Process.Kill()
				<-exited
			}
			return
		case <-exited:
		}
		select {
		case <-in.stop:
			return
		case <-time.After(time.Second):
		}
		s.mu.Lock()
		err := s.spawn(in)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Deprovision stops instance id and deletes its data.
func (s *Supervisor) Deprovision(ctx context.Context, id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("redis resource id %q: %w", id, grid.ErrInvalid)
	}
	s.stop(id)
	return os.RemoveAll(s.dir(id))
}

func (s *Supervisor) stop(id string) {
	s.mu.Lock()
	in := s.procs[id]
	delete(s.procs, id)
	s.mu.Unlock()
	if in != nil {
		close(in.stop)
		<-in.done
	}
}

// Rotate gives instance id a new password (a restart: its connections
// end) and returns the new URL. Persistent data is kept.
func (s *Supervisor) Rotate(ctx context.Context, id string) (string, error) {
	c, err := readConf(s.dir(id))
	if err != nil {
		return "", fmt.Errorf("redis %s: %w", id, err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir(id), "redis.conf"))
	if err != nil {
		return "", err
	}
	password := randomHex(24)
	next := strings.Replace(string(b), "requirepass "+c.password+"\n", "requirepass "+password+"\n", 1)
	s.stop(id)
	if err := os.WriteFile(filepath.Join(s.dir(id), "redis.conf"), []byte(next), 0o640); err != nil {
		return "", err
	}
	if err := s.run(ctx, id); err != nil {
		return "", err
	}
	return s.url(c.port, password), nil
}

// waitReady waits until the instance answers an authenticated PING.
func waitReady(ctx context.Context, addr netip.AddrPort, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if err := ping(addr, password); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering on %s: %w", addr, grid.ErrUnavailable)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping speaks just enough RESP for AUTH and PING.
func ping(addr netip.AddrPort, password string) error {
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n", len(password), password)
	r := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		l, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(l) != want {
			return fmt.Errorf("redis answered %q", strings.TrimSpace(l))
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
