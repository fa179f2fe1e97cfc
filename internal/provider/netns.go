package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dynogrid/grid/internal/cgroupfs"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/mounts"
)

// NetNSConfig configures a NetNS provider.
type NetNSConfig struct {
	// Fabric proves the bridge exists and this process owns the
	// machine's namespaces. Required.
	Fabric *Fabric
	// Exe is the grid binary each host runs (`grid host`). Required.
	Exe string
	// NATSURL is where hosts join: reachable from inside the namespaces,
	// that is on the fabric (nats://10.199.0.1:<port>). Required.
	NATSURL string
	// Password returns a host's NATS password (a store.Role's Password
	// under the cluster secret). Required. Each host gets it in a 0600
	// file, never on its command line.
	Password func(id string) string
	// DataDir holds one directory per host, DataDir/<id>: its data
	// directory, password file and host.log. Required.
	DataDir string
	// Subnets is carved into one /20 of dyno addresses per host. Zero
	// means 10.208.0.0/12, room for 256 hosts.
	Subnets netip.Prefix
	// BootTimeout and StopGrace are passed to each `grid host`; zero
	// means its defaults.
	BootTimeout, StopGrace time.Duration
	// Services is passed to each `grid host --services`: the add-on
	// servers its dynos may reach although they are on this machine
	// ("10.229.0.1:5432,10.229.0.1:16000-16999"). Empty means none.
	Services string
	// Logger receives lifecycle logs. Nil discards them.
	Logger *slog.Logger
}

const hostSubnetBits = 20

// NetNS runs hosts as `grid host` processes in network namespaces of this
// machine:
//
//	Provision: namespace gridh<n> + veth to gridfab0 + route to its subnet
//	           ─► `grid host` in the namespace (own session, survives us)
//	Cut:       link down/up, processes untouched (a partition)
//	Fail:      every process of the host SIGKILLed at once, link down
//	Release:   SIGTERM the agent (it stops its dynos), wait, kill what is
//	           left, remove route, veth, namespace, cgroups and data
//
// The handle is the namespace's name. Its methods are safe for
// concurrent use.
type NetNS struct {
	cfg NetNSConfig
	log *slog.Logger

	mu sync.Mutex // serialises picking an index and an id
	// agents are the host agents this process started, by handle, kept
	// to reap them once they are gone.
	agents map[string]*exec.Cmd
}

// NewNetNS checks cfg and returns the provider. Leftovers of an earlier
// run stay until Cleanup.
func NewNetNS(cfg NetNSConfig) (*NetNS, error) {
	switch {
	case cfg.Fabric == nil:
		return nil, fmt.Errorf("netns provider: no fabric (OpenFabric): %w", grid.ErrInvalid)
	case cfg.Exe == "" || cfg.NATSURL == "" || cfg.Password == nil || cfg.DataDir == "":
		return nil, fmt.Errorf("netns provider: Exe, NATSURL, Password and DataDir are required: %w", grid.ErrInvalid)
	}
	if !cfg.Subnets.IsValid() {
		cfg.Subnets = netip.MustParsePrefix("10.208.0.0/12")
	}
	cfg.Subnets = cfg.Subnets.Masked()
	if !cfg.Subnets.Addr().Is4() || cfg.Subnets.Bits() > hostSubnetBits {
		return nil, fmt.Errorf("netns provider: subnets %s must be IPv4 and at least a /%d: %w", cfg.Subnets, hostSubnetBits, grid.ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	return &NetNS{cfg: cfg, log: cfg.Logger, agents: map[string]*exec.Cmd{}}, nil
}

// maxHosts is how many hosts fit: one /20 each, and n ≥ 1.
func (p *NetNS) maxHosts() int { return 1 << (hostSubnetBits - p.cfg.Subnets.Bits()) }

// hostNet is the network of host number n (1-based).
func (p *NetNS) hostNet(n int) hostNet {
	return hostNet{
		n: n, netns: netnsPrefix + strconv.Itoa(n), veth: vethPrefix + strconv.Itoa(n),
		addr:   addrAdd(FabricAddr, uint32(n)),
		subnet: netip.PrefixFrom(addrAdd(p.cfg.Subnets.Addr(), uint32(n-1)<<(32-hostSubnetBits)), hostSubnetBits),
	}
}

func addrAdd(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], binary.BigEndian.Uint32(b[:])+n)
	return netip.AddrFrom4(out)
}

// parseHandle is the host number of a handle "gridh<n>".
func (p *NetNS) parseHandle(handle string) (hostNet, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(handle, netnsPrefix))
	if !strings.HasPrefix(handle, netnsPrefix) || err != nil || n < 1 || n > p.maxHosts() {
		return hostNet{}, fmt.Errorf("%q is not a netns host handle (gridh<n>): %w", handle, grid.ErrInvalid)
	}
	return p.hostNet(n), nil
}

// Provision starts one more host: it picks the lowest free namespace
// number and the next host id, wires the namespace and starts `grid host`
// in it. It returns once the agent runs; the agent registers by itself.
func (p *NetNS) Provision(ctx context.Context) (grid.HostControl, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	h, err := p.freeHostNet()
	if err != nil {
		return grid.HostControl{}, err
	}
	id, err := p.nextID()
	if err != nil {
		return grid.HostControl{}, err
	}
	if err := setupHostNet(h); err != nil {
		return grid.HostControl{}, err
	}
	cmd, err := p.startAgent(id, h)
	if err != nil {
		_ = teardownHostNet(h)
		return grid.HostControl{}, err
	}
	p.agents[h.netns] = cmd
	p.log.Info("host provisioned", "host", id, "netns", h.netns, "addr", h.addr.String(), "subnet", h.subnet.String(),
		"pid", cmd.Process.Pid, "duration", time.Since(start).Round(time.Millisecond))
	return grid.HostControl{ID: id, Provider: NameNetNS, Handle: h.netns, Since: time.Now().UTC()}, nil
}

func (p *NetNS) freeHostNet() (hostNet, error) {
	for n := 1; n <= p.maxHosts(); n++ {
		h := p.hostNet(n)
		if _, err := os.Stat(h.nsPath()); errors.Is(err, os.ErrNotExist) {
			return h, nil
		}
	}
	return hostNet{}, fmt.Errorf("netns provider: all %d hosts of %s are in use: %w", p.maxHosts(), p.cfg.Subnets, grid.ErrUnavailable)
}

// nextID hands out h1, h2, ... and never the same id twice for one data
// directory, so records of a released host never mix with a new one's.
func (p *NetNS) nextID() (string, error) {
	path := filepath.Join(p.cfg.DataDir, "last-id")
	last := 0
	if b, err := os.ReadFile(path); err == nil {
		last, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	for {
		last++
		id := "h" + strconv.Itoa(last)
		if _, err := os.Stat(filepath.Join(p.cfg.DataDir, id)); err == nil {
			continue // a host dir the counter did not know of
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(last)+"\n"), 0o600); err != nil {
			return "", err
		}
		return id, nil
	}
}

// hostDir is DataDir/<id>; the handle file there maps the id to its
// namespace for Hosts and Cleanup.
func (p *NetNS) hostDir(id string) string { return filepath.Join(p.cfg.DataDir, id) }

// startAgent starts `grid host` inside h's namespace, in a session of its
// own so it outlives this process, its output appended to host.log.
func (p *NetNS) startAgent(id string, h hostNet) (*exec.Cmd, error) {
	dir := p.hostDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(p.cfg.Password(id)+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "handle"), []byte(h.netns+"\n"), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "host.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	args := []string{"host",
		"--join", p.cfg.NATSURL, "--id", id, "--password-file", pwFile,
		"--addr", h.addr.String(), "--subnet", h.subnet.String(),
		"--data", filepath.Join(dir, "data"), "--cgroup-parent", cgroupParent(id),
		"--internal", p.internal(), "--routers", netip.PrefixFrom(FabricAddr, 32).String(),
	}
	if p.cfg.BootTimeout > 0 {
		args = append(args, "--boot-timeout", p.cfg.BootTimeout.String())
	}
	if p.cfg.StopGrace > 0 {
		args = append(args, "--stop-grace", p.cfg.StopGrace.String())
	}
	if p.cfg.Services != "" {
		args = append(args, "--services", p.cfg.Services)
	}
	cmd := exec.Command(p.cfg.Exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := startIn(h.nsPath(), cmd); err != nil {
		return nil, fmt.Errorf("start grid host in %s: %w", h.netns, err)
	}
	return cmd, nil
}

// internal is what a host's dynos must never reach: the fabric (NATS and
// the API listen there), every host's dyno subnet, and every address of
// this machine (its services listen on them). The router reaches dynos
// from the fabric address only.
func (p *NetNS) internal() string {
	nets := []string{fabricPrefix.String(), p.cfg.Subnets.String()}
	if addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4); err == nil {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && !ip.IsLoopback() {
				nets = append(nets, netip.PrefixFrom(ip, 32).String())
			}
		}
	} else {
		p.log.Warn("listing this machine's addresses for the dyno firewall", "err", err)
	}
	return strings.Join(nets, ",")
}

// startIn starts cmd with the network namespace at path: the fork happens
// on a thread switched into it, and the child keeps the thread's
// namespace. The thread switches back, or is thrown away if it cannot.
func startIn(path string, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err // the thread may be half-switched: let it die locked
			return
		}
		err = cmd.Start()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Release stops a host gracefully and removes it: SIGTERM to its agent,
// which stops its dynos (SIGTERM, grace, SIGKILL) and exits; whatever is
// left after StopGrace plus a margin is killed; then its route, link,
// namespace, cgroups and data go. Releasing a host that is gone succeeds.
func (p *NetNS) Release(ctx context.Context, hc grid.HostControl) error {
	h, err := p.parseHandle(hc.Handle)
	if err != nil {
		return err
	}
	if err := validateID(hc.ID); err != nil {
		return err
	}
	start := time.Now()
	ino, _ := netnsInode(h.nsPath())
	if agents := netnsProcs(ino); ino != 0 && len(agents) > 0 {
		signalAll(agents, syscall.SIGTERM)
		grace := p.cfg.StopGrace
		if grace <= 0 {
			grace = 30 * time.Second
		}
		if err := waitGone(ctx, agents, grace+15*time.Second); err != nil {
			p.log.Warn("host agent did not stop in time; killing it", "host", hc.ID, "err", err)
		}
	}
	if n, err := killAll(ctx, func() []int { return hostProcs(ino, cgroupParent(hc.ID)) }); err != nil {
		return fmt.Errorf("release host %s: %w", hc.ID, err)
	} else if n > 0 {
		p.log.Warn("killed processes left by a host", "host", hc.ID, "processes", n)
	}
	p.reap(h.netns)
	err = errors.Join(teardownHostNet(h), p.removeHostData(hc.ID))
	if err != nil {
		return fmt.Errorf("release host %s: %w", hc.ID, err)
	}
	p.log.Info("host released", "host", hc.ID, "netns", h.netns, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// removeHostData removes a host's cgroups, mounts and directory.
func (p *NetNS) removeHostData(id string) error {
	dir := p.hostDir(id)
	err := errors.Join(removeCgroups(cgroupParent(id)), mounts.DetachBelow(dir))
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// reap collects the exit status of an agent this process started, so it
// leaves no zombie. The agent must be dead already.
func (p *NetNS) reap(handle string) {
	p.mu.Lock()
	cmd := p.agents[handle]
	delete(p.agents, handle)
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Wait()
	}
}

// Fail cuts a host's power: its link goes down, then every process of it
// (the agent and all its dynos) is stopped and SIGKILLed at once. The
// link goes first so that, as from a dead machine, nothing more comes out
// of it: not even the FIN or RST of its dying processes' connections,
// which would tell the router at once what a real power cut leaves it to
// find out. The namespace stays, so that Release cleans up as for a dead
// machine.
func (p *NetNS) Fail(ctx context.Context, hc grid.HostControl) error {
	h, err := p.parseHandle(hc.Handle)
	if err != nil {
		return err
	}
	ino, err := netnsInode(h.nsPath())
	if err != nil {
		return fmt.Errorf("host %s: namespace %s: %w", hc.ID, h.netns, grid.ErrNotFound)
	}
	start := time.Now()
	if err := setLink(h.veth, false); err != nil {
		return fmt.Errorf("fail host %s: %w", hc.ID, err)
	}
	n, err := killAll(ctx, func() []int { return hostProcs(ino, cgroupParent(hc.ID)) })
	if err != nil {
		return fmt.Errorf("fail host %s: %w", hc.ID, err)
	}
	p.reap(h.netns)
	p.log.Info("host failed", "host", hc.ID, "netns", h.netns, "killed", n, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// Cut takes a host's link down (cut) or up again, leaving its processes
// running: a network partition and its healing.
func (p *NetNS) Cut(ctx context.Context, hc grid.HostControl, cut bool) error {
	h, err := p.parseHandle(hc.Handle)
	if err != nil {
		return err
	}
	if err := setLink(h.veth, !cut); err != nil {
		return fmt.Errorf("host %s: %w", hc.ID, err)
	}
	p.log.Info("host link changed", "host", hc.ID, "netns", h.netns, "up", !cut)
	return nil
}

// Hosts lists the hosts whose namespaces exist, as Provision returned
// them (Since is when the host was made).
func (p *NetNS) Hosts() ([]grid.HostControl, error) {
	entries, err := os.ReadDir(p.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var out []grid.HostControl
	for _, e := range entries {
		hf := filepath.Join(p.cfg.DataDir, e.Name(), "handle")
		b, err := os.ReadFile(hf)
		if err != nil || !e.IsDir() {
			continue
		}
		handle := strings.TrimSpace(string(b))
		h, err := p.parseHandle(handle)
		if err != nil {
			continue
		}
		if _, err := os.Stat(h.nsPath()); err != nil {
			continue
		}
		var since time.Time
		if st, err := os.Stat(hf); err == nil {
			since = st.ModTime().UTC()
		}
		out = append(out, grid.HostControl{ID: e.Name(), Provider: NameNetNS, Handle: handle, Since: since})
	}
	return out, nil
}

// Cleanup removes every netns host this machine has, known or left over
// from an earlier run (namespaces gridh*, links gridv*, their routes,
// processes, cgroups and host directories), without grace: call it at
// start, before provisioning.
func (p *NetNS) Cleanup(ctx context.Context) error {
	var errs []error
	entries, _ := os.ReadDir(p.cfg.DataDir)
	ids := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && validateID(e.Name()) == nil {
			ids[e.Name()] = true
		}
	}
	for _, dir := range cgroupfs.Dirs(filepath.Dir(cgroupParent("x"))) {
		dirs, _ := os.ReadDir(dir)
		for _, d := range dirs {
			if d.IsDir() && validateID(d.Name()) == nil {
				ids[d.Name()] = true
			}
		}
	}
	removed := 0
	for n := 1; n <= p.maxHosts(); n++ {
		h := p.hostNet(n)
		ino, err := netnsInode(h.nsPath())
		if err != nil {
			continue
		}
		if _, err := killAll(ctx, func() []int { return hostProcs(ino, "") }); err != nil {
			errs = append(errs, err)
		}
		p.reap(h.netns)
		errs = append(errs, teardownHostNet(h))
		removed++
	}
	for id := range ids {
		if _, err := killAll(ctx, func() []int { return hostProcs(0, cgroupParent(id)) }); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, p.removeHostData(id))
	}
	errs = append(errs, p.removeStrayLinks())
	if removed+len(ids) > 0 {
		p.log.Info("removed netns host leftovers", "namespaces", removed, "host_dirs", len(ids))
	}
	return errors.Join(errs...)
}

// removeStrayLinks deletes gridv* links and routes to host subnets whose
// namespaces are gone.
func (p *NetNS) removeStrayLinks() error {
	var errs []error
	for n := 1; n <= p.maxHosts(); n++ {
		h := p.hostNet(n)
		if _, err := os.Stat(h.nsPath()); err == nil {
			continue
		}
		errs = append(errs, teardownHostNet(h))
	}
	return errors.Join(errs...)
}

// Networks are the fabric and the hosts' dyno subnets: addresses inside
// the grid, which nothing a tenant configures (a log drain) may reach.
func (p *NetNS) Networks() []netip.Prefix { return []netip.Prefix{fabricPrefix, p.cfg.Subnets} }
