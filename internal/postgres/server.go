// Package postgres is the Postgres add-on: a PostgreSQL server the grid
// runs from the installed binaries (Server), and the provider that gives
// each add-on a database and a role of its own on it, or on any server an
// operator names by its admin URL (Provider).
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dynogrid/grid/internal/proc"
)

// ServerConfig says where a local PostgreSQL lives and listens.
type ServerConfig struct {
	// Dir holds the cluster (Dir/data), its log and the admin password.
	// Its parents must let the server's OS user through.
	Dir string
	// Listen is the TCP address to serve on: one dynos can reach.
	Listen netip.AddrPort
	// User is the OS user the server runs as; PostgreSQL refuses root.
	// Empty means "postgres" (Debian's package makes it).
	User string
	// Bin is the directory of initdb and pg_ctl. Empty means the newest
	// /usr/lib/postgresql/<version>/bin, else $PATH.
	Bin string
}

// Server is a running local PostgreSQL cluster.
type Server struct {
	cfg      ServerConfig
	password string
	cred     *syscall.Credential
	proc     *exec.Cmd
	exited   chan struct{} // closed when proc has exited
}

// adminRole is the cluster's superuser, known only to the grid.
const adminRole = "grid_admin"

// StartServer starts the cluster in cfg.Dir, creating it on first use,
// and waits until it accepts connections.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.User == "" {
		cfg.User = "postgres"
	}
	if cfg.Bin == "" {
		cfg.Bin = findBin()
	}
	u, err := user.Lookup(cfg.User)
	if err != nil {
		return nil, fmt.Errorf("postgres: OS user %q: %w (install the postgresql package)", cfg.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	s := &Server{cfg: cfg, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(cfg.Dir, uid, gid); err != nil {
		return nil, err
	}
	if s.password, err = s.adminPassword(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.data(), "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		if err := s.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// findBin is the newest installed PostgreSQL's bin directory, or "" to
// use $PATH.
func findBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	if len(dirs) == 0 {
		return ""
	}
	return dirs[len(dirs)-1]
}

func (s *Server) data() string { return filepath.Join(s.cfg.Dir, "data") }

// AdminURL is the superuser's connection URL.
func (s *Server) AdminURL() string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", adminRole, s.password, s.cfg.Listen)
}

// adminPassword reads the admin password, making one the first time. It
// is kept root-only, outside the cluster's directory.
func (s *Server) adminPassword() (string, error) {
	p := filepath.Join(s.cfg.Dir, "..", filepath.Base(s.cfg.Dir)+"-admin-password")
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pw := randomHex(24)
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("postgres: admin password: %w", err)
	}
	return pw, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// command runs a PostgreSQL program as the server's OS user.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := name
	if s.cfg.Bin != "" {
		bin = filepath.Join(s.cfg.Bin, name)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = s.cfg.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setsid: true}
	return cmd
}

// initdb makes the cluster: scram passwords everywhere, the admin role as
// its superuser, and pg_hba allowing password logins over TCP only.
func (s *Server) initdb(ctx context.Context) error {
	pwfile := filepath.Join(s.cfg.Dir, ".pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return err
	}
	out, err := s.command(ctx, "initdb", "-D", s.data(), "-U", adminRole, "--pwfile", pwfile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8").CombinedOutput()
	if err != nil {
		os.RemoveAll(s.data())
		return fmt.Errorf("postgres: initdb: %v: %s", err, out)
	}
	hba := "# Written by grid: password (scram) logins over TCP, nothing else.\n" +
		"host all all 0.0.0.0/0 scram-sha-256\n" +
		"host all all ::/0 scram-sha-256\n"
	return os.WriteFile(filepath.Join(s.data(), "pg_hba.conf"), []byte(hba), 0o600)
}

// start runs the postmaster as a child of this process (not daemonized
// by pg_ctl, and forked by proc.Start): if the grid dies, the kernel
// sends it SIGINT and it shuts down, instead of living on holding the
// address. It waits until the admin can log in. Settings a tenant must
// not change are fixed here.
func (s *Server) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(s.cfg.Dir, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command(context.Background(), "postgres", "-D", s.data(),
		"-c", "listen_addresses="+s.cfg.Listen.Addr().String(),
		"-p", strconv.Itoa(int(s.cfg.Listen.Port())),
		"-c", "unix_socket_directories=",
		"-c", "password_encryption=scram-sha-256",
		"-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGINT is a fast shutdown: sessions end at once (SIGTERM would
	// wait for them).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	if err := proc.Start(cmd); err != nil {
		return fmt.Errorf("postgres: start: %w", err)
	}
	s.proc = cmd
	s.exited = make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// Ready means a login works: a server recovering after a crash
	// accepts TCP connections but refuses logins ("the database system is
	// starting up") for a while.
	for {
		cctx, ccancel := context.WithTimeout(wctx, 2*time.Second)
		c, err := pgx.Connect(cctx, s.AdminURL())
		ccancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.cfg.Dir, "server.log"))
			return fmt.Errorf("postgres: the server exited at start:\n%s", tail(string(log), 10))
		case <-wctx.Done():
			s.Stop()
			return fmt.Errorf("postgres: no login on %s after a minute: %w", s.cfg.Listen, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast: sessions are ended) and waits.
func (s *Server) Stop() error {
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.proc.Process.Kill()
		<-s.exited
		return errors.New("postgres: killed after 30 s of shutting down")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
