package store

import (
	"errors"
	"fmt"
	"net"
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
	// Token is the client authorization token. Required: even on loopback,
	// other local users must not reach the control plane.
	Token string
}

// Server is an embedded NATS server with JetStream on file storage,
// fsyncing every write before acknowledging it (sync_interval: always).
type Server struct {
	ns *server.Server
}

// StartServer starts the embedded server and waits until it takes clients.
func StartServer(cfg ServerConfig) (*Server, error) {
	if cfg.Dir == "" || cfg.Token == "" {
		return nil, errors.New("store: server needs a directory and a token")
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
		ServerName:    "grid",
		Host:          host,
		Port:          port,
		Authorization: cfg.Token,
		JetStream:     true,
		StoreDir:      filepath.Clean(cfg.Dir),
		SyncAlways:    true,
		SyncInterval:  2 * time.Minute, // only used for housekeeping when SyncAlways is set
		NoSigs:        true,
		NoLog:         true,
		MaxPayload:    8 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("store: nats server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("store: nats server did not become ready in 30s")
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
