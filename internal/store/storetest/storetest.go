// Package storetest starts a real embedded NATS JetStream server for tests.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

// Secret is the cluster secret of test servers.
var Secret = []byte("test-secret")

// Server is an embedded NATS server in a temporary directory.
type Server struct {
	*store.Server
}

// NewServer starts a server that is shut down when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	srv, err := store.StartServer(store.ServerConfig{Dir: t.TempDir(), Secret: Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return &Server{srv}
}

// As opens a client of the server with the credentials of role, as a
// server, host or router would connect; closed when the test ends.
func (s *Server) As(t testing.TB, role store.Role) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{URL: s.ClientURL(), Role: role, Password: role.Password(Secret), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// Start starts a server and opens a client with the server role (full
// access), for tests of any package that needs real NATS.
func Start(t testing.TB) *store.Store {
	t.Helper()
	return NewServer(t).As(t, store.Role{Kind: store.RoleServer, ID: "test"})
}
