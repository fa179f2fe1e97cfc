package gridtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

// Cluster is a grid of separate processes on this machine: servers forming
// one NATS JetStream cluster, a host agent and a router joining them, as
// they would run on separate machines.
type Cluster struct {
	t       testing.TB
	Exe     string
	Secret  []byte
	Servers []*Proc
	Host    *Proc
	Router  *Proc
	RtAddr  string
	Key     string // an admin API key (of server 0)
}

// Proc is one grid process of a cluster.
type Proc struct {
	Name string
	Args []string
	Data string
	API  string // servers: http://127.0.0.1:port
	NATS string // servers: nats://127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
	out  *SyncBuffer
	env  []string
}

// StartCluster starts n servers, one host and one router. Servers run
// builds in their own sandbox subnets; the host's dynos use subnet.
func StartCluster(t testing.TB, n int, hostSubnet string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Exe: Exe(t), Secret: []byte(randomSecret())}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "cluster-secret")
	if err := os.WriteFile(secretFile, c.Secret, 0o600); err != nil {
		t.Fatal(err)
	}
	clusterAddrs := make([]string, n)
	for i := range clusterAddrs {
		clusterAddrs[i] = FreeAddr(t)
	}
	var natsURLs []string
	for i := 0; i < n; i++ {
		var peers []string
		for j, a := range clusterAddrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		api, nats := FreeAddr(t), FreeAddr(t)
		p := &Proc{Name: fmt.Sprintf("s%d", i+1), Data: filepath.Join(dir, fmt.Sprintf("s%d", i+1)), API: "http://" + api, NATS: "nats://" + nats}
		p.Args = []string{"server", "--name", p.Name, "--data", p.Data, "--api", api, "--api-tls", FreeAddr(t), "--nats", nats,
			"--cluster", clusterAddrs[i], "--peers", strings.Join(peers, ","), "--secret-file", secretFile,
			"--build-subnet", fmt.Sprintf("10.%d.0.0/16", 224+i), "--no-login"}
		c.Servers = append(c.Servers, p)
		natsURLs = append(natsURLs, p.NATS)
	}
	t.Cleanup(func() {
		for _, p := range append([]*Proc{c.Router, c.Host}, c.Servers...) {
			c.Stop(p)
		}
		if t.Failed() {
			for _, p := range append([]*Proc{c.Router, c.Host}, c.Servers...) {
				if p != nil && p.out != nil {
					t.Logf("%s output:\n%s", p.Name, tail(p.out.String(), 60))
				}
			}
		}
	})
	for _, s := range c.Servers {
		c.start(s)
	}
	join := strings.Join(natsURLs, ",")
	c.Host = c.joiner(dir, store.Role{Kind: store.RoleHost, ID: "h1"},
		"--addr", "127.0.0.1", "--subnet", hostSubnet)
	c.Host.Args = append(c.Host.Args, "--join", join)
	c.RtAddr = FreeAddr(t)
	c.Router = c.joiner(dir, store.Role{Kind: store.RoleRouter, ID: "r1"}, "--listen", c.RtAddr, "--domain", "localhost")
	c.Router.Args = append(c.Router.Args, "--join", join)
	c.start(c.Host)
	c.start(c.Router)
	WaitFor(t, 2*time.Minute, "server s1 answers with its admin key", func() error {
		key, err := os.ReadFile(filepath.Join(c.Servers[0].Data, "admin-api-key"))
		if err != nil {
			return err
		}
		c.Key = strings.TrimSpace(string(key))
		if code, body := c.API(0, "GET", "/account", ""); code != 200 {
			return fmt.Errorf("GET /account: %d %s", code, body)
		}
		return nil
	})
	return c
}

func (c *Cluster) joiner(dir string, r store.Role, args ...string) *Proc {
	p := &Proc{Name: r.ID, Data: filepath.Join(dir, r.ID)}
	pw := filepath.Join(dir, r.ID+".password")
	if err := os.WriteFile(pw, []byte(r.Password(c.Secret)), 0o600); err != nil {
		c.t.Fatal(err)
	}
	p.Args = append([]string{string(r.Kind), "--id", r.ID, "--data", p.Data, "--password-file", pw}, args...)
	return p
}

func (c *Cluster) start(p *Proc) {
	c.t.Helper()
	if p.out == nil {
		p.out = &SyncBuffer{}
	}
	p.cmd = exec.Command(c.Exe, p.Args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
}

// Start starts a stopped process again with the same arguments and data.
func (c *Cluster) Start(p *Proc) { c.t.Helper(); c.start(p) }

// Stop stops p with SIGINT (SIGKILL after 60 s).
func (c *Cluster) Stop(p *Proc) { c.signal(p, syscall.SIGINT, 60*time.Second) }

// Kill kills p's whole process group at once, as a crash would.
func (c *Cluster) Kill(p *Proc) {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

func (c *Cluster) signal(p *Proc, sig syscall.Signal, wait time.Duration) {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		c.t.Errorf("%s did not stop within %v of %v", p.Name, wait, sig)
		c.Kill(p)
	}
	p.cmd = nil
}

// Output is what p has printed so far.
func (p *Proc) Output() string { return p.out.String() }

// API makes an authenticated request to server i's API.
func (c *Cluster) API(i int, method, path, body string) (int, string) {
	g := &Grid{t: c.t, APIURL: c.Servers[i].API, Key: c.Key}
	return g.API(method, path, body)
}

// Grid returns a Grid view of server i for CLI, git and router helpers.
func (c *Cluster) Grid(i int) *Grid {
	s := c.Servers[i]
	home := filepath.Join(s.Data, "home")
	_ = os.MkdirAll(home, 0o700)
	return &Grid{t: c.t, Exe: c.Exe, Data: s.Data, Home: home, APIURL: s.API,
		APIAddr: strings.TrimPrefix(s.API, "http://"), RtAddr: c.RtAddr, Key: c.Key, NATS: s.NATS}
}

func randomSecret() string {
	b := make([]byte, 32)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, _ = f.Read(b)
		f.Close()
	}
	return fmt.Sprintf("%x", b)
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
