package store

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Dir holds JetStream's files. Required.
	Dir string
	// Listen is host:port for clients. Empty means a free loopback port.
	Listen string
	// Secret is the cluster secret every role's credentials derive from
	// (see Role.Password). Required: even on loopback, other local users
	// must not reach the control plane.
	Secret []byte
	// Name is this server's name, unique in the cluster. Empty means "grid".
	Name string
	// Cluster is host:port where this server meets its peers; empty means
	// a single server.
	Cluster string
	// Peers are the other servers' cluster addresses (host:port).
	Peers []string
}

// Server is an embedded NATS server with JetStream on file storage,
// fsyncing every write before acknowledging it (sync_interval: always).
type Server struct {
	ns *server.Server
}

// StartServer starts the embedded server and waits until it takes clients.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Dir == "" || len(cfg.Secret) == 0 {
		return nil, errors.New("store: server needs a directory and a secret")
	}
	if cfg.Name == "" {
		cfg.Name = "grid"
	}
	host, port := "127.0.0.1", -1
	if cfg.Listen != "" {
		h, p, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("store: listen address %q: %w", cfg.Listen, err)
		}
		host = h
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("store: listen port %q: %w", p, err)
		}
		if port == 0 {
			port = -1
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opts := &server.Options{
		ServerName:                 cfg.Name,
		Host:                       host,
		Port:                       port,
		CustomClientAuthentication: authenticator{secret: cfg.Secret},
		JetStream:                  true,
		StoreDir:                   filepath.Clean(cfg.Dir),
		SyncAlways:                 true,
		SyncInterval:               2 * time.Minute, // only used for housekeeping when SyncAlways is set
		NoSigs:                     true,
		NoLog:                      true,
		MaxPayload:                 8 << 20,
	}
	if err := clusterOptions(opts, cfg); err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("store: nats server: %w", err)
	}
	if os.Getenv("GRID_NATS_LOG") != "" {
		opts.NoLog, opts.Logtime = false, true
		ns.ConfigureLogger()
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("store: nats server did not become ready in 30s")
	}
	return &Server{ns: ns}, nil
}

// clusterOptions joins the server to its peers: routes authenticate with
// credentials derived from the secret, and JetStream forms one Raft group.
func clusterOptions(opts *server.Options, cfg ServerConfig) error {
	if cfg.Cluster == "" {
		return nil
	}
	h, p, err := net.SplitHostPort(cfg.Cluster)
	if err != nil {
		return fmt.Errorf("store: cluster address %q: %w", cfg.Cluster, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return fmt.Errorf("store: cluster port %q: %w", p, err)
	}
	route := Role{Kind: RoleServer, ID: "route"}
	user, pass := route.User(), route.Password(cfg.Secret)
	opts.Cluster = server.ClusterOpts{Name: "grid", Host: h, Port: port, Username: user, Password: pass}
	for _, peer := range cfg.Peers {
		u, err := url.Parse("nats-route://" + url.UserPassword(user, pass).String() + "@" + peer)
		if err != nil {
			return fmt.Errorf("store: peer %q: %w", peer, err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
